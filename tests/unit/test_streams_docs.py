"""The examples of docs/streams.md run, and state what they print.

Every block fenced ```` ```python ```` in the guide is a complete program (imports included)
that needs no broker; each is executed here with ``exec`` in a fresh namespace, and its
``assert`` lines hold the outputs the guide shows, so this test fails when the guide and the
code drift apart. A failing block is reported at its line in the guide.

Blocks fenced ```` ```py ```` are skipped by design: they run an application against a broker
(``KafkaStreams``), which the integration tests (tests/integration/test_streams_runtime.py)
exercise instead. Keep those few; anything that can run in the ``TopologyTestDriver`` belongs
in a ``python`` block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "streams.md"
FENCE = re.compile(r"^```(?P<lang>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
HEADING = re.compile(r"^(#{2,3}) +(.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Block:
    chapter: str
    """The ``##`` section the block is in."""
    section: str
    """The nearest heading above the block (``##`` or ``###``)."""
    line: int
    """The guide's line number of the block's first line of code."""
    code: str


def blocks(lang: str) -> list[Block]:
    """The blocks fenced with exactly ``lang``, in the order of the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    headings = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in HEADING.finditer(text)]
    found = []
    for m in FENCE.finditer(text):
        if m.group("lang").strip() != lang:
            continue
        above = [(level, title) for at, level, title in headings if at < m.start()]
        chapter = next((title for level, title in reversed(above) if level == 2), "")
        section = above[-1][1] if above else ""
        line = text.count("\n", 0, m.start("code")) + 1
        found.append(Block(chapter, section, line, m.group("code")))
    return found


def block_id(block: Block) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', block.section.lower()).strip('-')}-line{block.line}"


RUNNABLE = blocks("python")
CONCEPTS = ("Quick start", "Streams", "Tables", "Topology", "Windowing", "Joins", "State", "Exactly-once", "Testing")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("block", RUNNABLE, ids=[block_id(b) for b in RUNNABLE])
def test_example_runs(block: Block) -> None:
    # padded with blank lines so that a traceback names the guide's own line numbers
    code = compile("\n" * (block.line - 1) + block.code, str(GUIDE), "exec")
    exec(code, {"__name__": "streams_guide_example"})  # a fresh namespace per example


def test_the_guide_has_a_section_per_concept_with_examples() -> None:
    chapters = [m.group(2).strip() for m in HEADING.finditer(GUIDE.read_text(encoding="utf-8"))
                if m.group(1) == "##"]
    for concept in CONCEPTS:
        title = next((t for t in chapters if t.startswith(concept)), None)
        assert title is not None, f"the guide has no section for {concept!r}"
        if concept != "Exactly-once":  # runs against a broker: its examples are ```py
            assert any(b.chapter == title for b in RUNNABLE), f"section {title!r} has no runnable example"


def test_broker_examples_are_few() -> None:
    broker = blocks("py")
    assert 1 <= len(broker) <= 8, [b.line for b in broker]


def test_links_within_the_guide_name_its_headings() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    anchors = {re.sub(r"[^a-z0-9 _-]", "", m.group(2).strip().lower()).replace(" ", "-")
               for m in re.finditer(r"^(#{1,4}) +(.+)$", text, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, sorted(links - anchors)
