"""`tomyum top`'s frame (the pure part): groups beyond the table's rows are counted, not dropped
silently."""

from __future__ import annotations

import io

from rich.console import Console

from tomyum.cli.top import MAX_ROWS, GroupRow, frame


def render(rows: list[GroupRow]) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(frame("127.0.0.1:9092", None, None, None, rows, 1.0))
    return out.getvalue()


def test_groups_beyond_the_table_are_counted() -> None:
    rows = [GroupRow(f"g{i:02d}", "Stable", "classic", 1, 100 - i) for i in range(MAX_ROWS + 3)]
    text = render(rows)
    assert "g00" in text and f"g{MAX_ROWS - 1:02d}" in text and f"g{MAX_ROWS:02d}" not in text
    assert "and 3 more groups with less lag" in text


def test_a_short_list_has_no_more_line() -> None:
    text = render([GroupRow("only", "Empty", "consumer", 0, None)])
    assert "only" in text and "more groups" not in text
