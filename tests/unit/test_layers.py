"""The layering is a checked contract (import-linter, configured in pyproject.toml): cli →
broker → coordinator → metadata | storage → protocol | config → errors | clock; streams and
client import no broker internals; metadata and storage do not know each other; no import
circles among the modules of broker/, coordinator/, storage/ and metadata/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken", proc.stdout), proc.stdout
