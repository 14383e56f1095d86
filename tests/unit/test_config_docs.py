"""docs/configuration.md is generated from the config definitions and kept current."""

from __future__ import annotations

from pathlib import Path

from tomyum.config.docs import COMMAND, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_configuration_reference_is_current() -> None:
    assert DOCS.read_text() == render(), f"docs/configuration.md is stale: regenerate it with `{COMMAND}`"


def test_the_reference_lists_every_key_with_its_synonyms() -> None:
    text = render()
    assert "| `retention.ms` | long | `604800000` | [-1,...] | per topic | yes | `log.retention.ms`, " \
           "`log.retention.minutes` (×60000), `log.retention.hours` (×3600000) |" in text
    assert "| `num.network.threads` | int | `3` |  | read-only | ignored |" in text
