"""tomyum.streams' modules import one another one way: the only import cycle allowed is the
DSL's own (``KStream`` ↔ ``KTable`` ↔ the grouped streams, as in Kafka Streams). Imports under
``TYPE_CHECKING`` and inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tomyum.streams

pytestmark = pytest.mark.timeout(30)

ROOT = Path(tomyum.streams.__file__).parent
ALLOWED = {frozenset({"tomyum.streams.grouped", "tomyum.streams.kstream", "tomyum.streams.ktable"})}


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = ("tomyum", "streams", *path.relative_to(ROOT).with_suffix("").parts)
        names[".".join(parts).removesuffix(".__init__")] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the tomyum.streams modules it imports (the package itself left out)."""
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t not in (name, "tomyum.streams")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module."""
    reach = {name: reachable(graph, name) for name in graph}
    components = {frozenset({b for b in graph if b in reach[a] and a in reach[b]} | {a}) for a in graph}
    return sorted((c for c in components if len(c) > 1), key=sorted)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_the_only_import_cycle_is_the_dsls() -> None:
    assert set(cycles(import_graph())) <= ALLOWED


def test_processor_knows_its_task_only_as_a_protocol() -> None:
    graph = import_graph()
    assert "tomyum.streams._task" not in graph["tomyum.streams.processor"]
    assert "tomyum.streams.topology" not in reachable(graph, "tomyum.streams.processor")
