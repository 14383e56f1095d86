"""Fixtures of the handler unit tests (``test_handlers_*.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tomyum.testing.handlers import BlockingHarness


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[BlockingHarness]:
    """A broker in this process, its handlers called directly (see tomyum.testing.handlers)."""
    with BlockingHarness(tmp_path / "data") as harness:
        yield harness
