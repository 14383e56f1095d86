"""The record cache (``statestore.cache.max.bytes``): writes to a key between commits become
one store write, one changelog record and one downstream update; evictions pass entries on
early; at every commit the results equal those without a cache — checked on seeded random
skewed inputs against the same topology with the cache off."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver
from tomyum.streams.state import InMemoryBytesStore, KeyValueStore
from tomyum.streams.state.base import ChangelogRecord
from tomyum.streams.state.caching import CachingKeyValueStore, ThreadCache


def config(cache_bytes: int) -> StreamsConfig:
    return StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string(),
                         statestore_cache_max_bytes=cache_bytes)


def word_count_then_totals() -> StreamsBuilder:
    """Words counted (a cached store), the counts re-grouped by first letter and summed (a
    second cached store, fed by what the first one's cache forwards)."""
    builder = StreamsBuilder()
    counts = (builder.stream("text").flat_map_values(str.split)
              .group_by(lambda key, word: word).count(Materialized(store_name="counts")))
    counts.to_stream().to("counts", value_serde=Serdes.long())
    (counts.group_by(lambda word, n: (word[0], n), key_serde=Serdes.string(), value_serde=Serdes.long())
        .reduce(lambda a, b: a + b, lambda a, b: a - b, Materialized(store_name="by-letter"))
        .to_stream().to("by-letter", value_serde=Serdes.long()))
    return builder


def run(cache_bytes: int, lines: list[str]) -> dict[str, Any]:
    with TopologyTestDriver(word_count_then_totals().build(), config(cache_bytes)) as driver:
        for i, line in enumerate(lines):
            driver.pipe_input("text", None, line, timestamp=i)
        return {
            "counts": driver.get_key_value_store("counts").all(),
            "by-letter": driver.get_key_value_store("by-letter").all(),
            "out": [(r.key, r.value) for r in driver.read_output("counts")],
            "out-letters": [(r.key, r.value) for r in driver.read_output("by-letter")],
            "changelog": driver.read_changelog("counts"),
        }


def test_updates_of_one_key_between_commits_become_one() -> None:
    line = "hot hot cold hot hot hot"
    off, on = run(0, [line]), run(1 << 20, [line])
    assert off["out"] == [("hot", 1), ("hot", 2), ("cold", 1), ("hot", 3), ("hot", 4), ("hot", 5)]
    assert on["out"] == [("cold", 1), ("hot", 5)]  # each key once, in order of last write (as Kafka)
    assert len(off["changelog"]) == 6 and len(on["changelog"]) == 2
    assert on["counts"] == off["counts"] == [("cold", 1), ("hot", 5)]
    assert on["by-letter"] == off["by-letter"] == [("c", 1), ("h", 5)]


def last_per_key(pairs: list[tuple[str, int]]) -> dict[str, int]:
    return dict(pairs)


@pytest.mark.parametrize("cache_bytes", [1, 40, 200, 1 << 20])
@pytest.mark.parametrize("seed", range(5))
def test_committed_results_equal_those_without_a_cache(cache_bytes: int, seed: int) -> None:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(30)]
    weights = [1 / (i + 1) ** 1.5 for i in range(30)]  # skewed: a few hot words
    lines = [" ".join(rng.choices(words, weights, k=rng.randint(1, 25))) for _ in range(60)]
    off, on = run(0, lines), run(cache_bytes, lines)
    assert on["counts"] == off["counts"]
    assert on["by-letter"] == off["by-letter"]
    assert last_per_key(on["out"]) == last_per_key(off["out"])
    assert last_per_key(on["out-letters"]) == last_per_key(off["out-letters"])
    assert {c.key: c.value for c in on["changelog"]} == {c.key: c.value for c in off["changelog"]}
    # each key's updates with the cache are some of those without, in the same order
    for word in words:
        with_cache = [n for w, n in on["out"] if w == word]
        without = iter(n for w, n in off["out"] if w == word)
        assert all(n in without for n in with_cache)
    assert len(on["changelog"]) <= len(off["changelog"])
    if cache_bytes >= 200:
        assert len(on["changelog"]) < len(off["changelog"]) / 2


def test_eviction_passes_on_the_oldest_entries_of_the_store_written() -> None:
    log: list[ChangelogRecord] = []
    cache = ThreadCache(3 * (2 + 8 + 8))  # three entries of a 2-byte key and an 8-byte value
    store = CachingKeyValueStore(KeyValueStore(InMemoryBytesStore("s"), Serdes.string(), Serdes.long(), log.append,
                                               timestamped=True), cache)
    forwarded: list[Any] = []
    store.set_flush_listener(lambda r: forwarded.append((r.key, r.value.new_value, r.value.old_value)))
    for key in ("k1", "k2", "k3", "k1"):
        store.put(key, 1, 0)
    assert forwarded == [] and store.get("k1") == 1
    store.put("k4", 1, 0)  # over the size: k2, the least recently written, goes on
    assert forwarded == [("k2", 1, None)] and cache.evictions == 1
    store.put("k2", 2, 0)
    store.flush()
    assert forwarded[1:] == [("k3", 1, None), ("k1", 1, None), ("k4", 1, None), ("k2", 2, 1)]
    assert len(log) == 5 and cache.size_bytes == 0
    store.delete("never", 0)  # a delete of a key the store does not hold: nothing written or forwarded
    store.flush()
    assert len(log) == 5 and len(forwarded) == 5


def test_reads_see_the_cache() -> None:
    store = CachingKeyValueStore(KeyValueStore(InMemoryBytesStore("s"), Serdes.string(), Serdes.string(),
                                               timestamped=True), ThreadCache(1 << 10))
    store.put("b", "in store", 5)
    store.flush()
    store.put("a", "cached", 7)
    store.delete("b", 8)
    assert store.all() == [("a", "cached")]
    assert store.get_with_timestamp("a") is not None and store.get_with_timestamp("a").timestamp == 7  # type: ignore[union-attr]
    assert store.get("b") is None and store.wrapped.get("b") == "in store"


def test_cache_max_bytes_buffering_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="statestore_cache_max_bytes"):
        old = StreamsConfig(cache_max_bytes_buffering=100)
    assert old.cache_max_bytes == 100
    assert StreamsConfig(statestore_cache_max_bytes=5).cache_max_bytes == 5
    with pytest.raises(ValueError):
        StreamsConfig(statestore_cache_max_bytes=-1)
