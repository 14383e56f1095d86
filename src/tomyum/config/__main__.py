"""``python -m tomyum.config [PATH]``: write the generated configuration reference
(default ``docs/configuration.md``, relative to the current directory)."""

from __future__ import annotations

import sys
from pathlib import Path

from tomyum.config.docs import render


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(f"usage: python -m tomyum.config [PATH]\n{__doc__}", file=sys.stderr)
        return 0 if argv[0] in ("-h", "--help") else 2
    path = Path(argv[0] if argv else "docs/configuration.md")
    path.write_text(render())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
