"""The iteration order of Java's ``java.util.HashMap``, which Kafka Connect's schemaless maps have.

Kafka's JsonConverter reads a JSON object without schema into a ``HashMap``, and the transforms
copy schemaless values into new ``HashMap``s (``new HashMap<>(value)``, ``new HashMap<>(n)``);
JsonConverter then writes the map in the order it iterates. So for the same input, Kafka's
worker writes the fields of a schemaless object in hash order, not in the order they came: to
write the same bytes, tomyum orders its maps as Java's would.

A HashMap iterates its table bucket by bucket; a key's bucket is ``(h ^ (h >>> 16)) & (cap - 1)``
with ``h`` Java's ``String.hashCode``, and the keys of one bucket come in insertion order (a
resize splits a bucket's chain keeping its order). So the order is a stable sort of the keys by
bucket under the table's final capacity, which depends on the constructor and the puts:
``HashMap()`` starts at 16, ``HashMap(n)`` at ``tableSizeFor(n)``, ``HashMap(map)`` at
``tableSizeFor((int)(size / 0.75f + 1))`` (JDK 17's rule; JDK 19 changed it to
``ceil(size / 0.75)``, so Kafka's own bytes differ between JVMs there), and the table doubles
whenever the size passes three quarters of it. Only string keys are ordered (the schemaless
case); a map with other keys keeps its insertion order. Buckets of 8 or more colliding keys
(which Java turns into trees) are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def java_string_hash(s: str) -> int:
    """``String.hashCode()`` as an unsigned 32-bit int (over UTF-16 code units)."""
    h = 0
    units = s.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] | units[i + 1] << 8)) & 0xFFFFFFFF
    return h


def _table_size_for(c: int) -> int:
    return 1 if c <= 1 else 1 << (c - 1).bit_length()


class HashMapOrder:
    """Puts and removes as on a Java HashMap; :meth:`to_dict` has its iteration order.

    ``HashMapOrder()`` is ``new HashMap<>()``, ``HashMapOrder(capacity=n)`` is
    ``new HashMap<>(n)``, ``HashMapOrder.copy_of(m)`` is ``new HashMap<>(m)``."""

    def __init__(self, capacity: int | None = None) -> None:
        # 0: no table yet; the first put makes the default one of 16
        self.cap = 0 if capacity is None else _table_size_for(capacity)
        self.items: dict[Any, Any] = {}

    @classmethod
    def copy_of(cls, source: Mapping[Any, Any]) -> HashMapOrder:
        size = len(source)
        out = cls()
        if size:
            out.cap = _table_size_for(int(size / 0.75 + 1.0))
        for k, v in source.items():
            out.put(k, v)
        return out

    def put(self, key: Any, value: Any) -> HashMapOrder:
        if key in self.items:
            self.items[key] = value
            return self
        if self.cap == 0:
            self.cap = 16
        self.items[key] = value
        if len(self.items) > int(self.cap * 0.75):
            self.cap *= 2
        return self

    def remove(self, key: Any) -> HashMapOrder:
        self.items.pop(key, None)
        return self

    def to_dict(self) -> dict[Any, Any]:
        if not all(isinstance(k, str) for k in self.items):
            return dict(self.items)
        mask = self.cap - 1

        def bucket(item: tuple[Any, Any]) -> int:
            h = java_string_hash(item[0])
            return (h ^ (h >> 16)) & mask
        return dict(sorted(self.items.items(), key=bucket))


def java_hash_map(items: Iterable[tuple[Any, Any]], capacity: int | None = None) -> dict[Any, Any]:
    """A dict in the order of a Java HashMap built with ``new HashMap<>(capacity)`` (or
    ``new HashMap<>()``) and these puts, in order."""
    m = HashMapOrder(capacity)
    for k, v in items:
        m.put(k, v)
    return m.to_dict()


__all__ = ["HashMapOrder", "java_hash_map", "java_string_hash"]
