"""mypy --strict holds for the pure cores (protocol/, storage/, the KIP-848 consumer group
state machine, the transaction coordinator), the broker (broker/: server, dispatch, handlers),
the client and streams, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_on_protocol_and_storage() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
