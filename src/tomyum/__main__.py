"""``python -m tomyum``: the command line (how tests and benchmarks start brokers)."""

import sys

# kio registers hypothesis strategies whenever hypothesis is importable (as in a test
# environment), which adds ~130 ms to every start; the command line never needs them
sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]

from tomyum.cli.app import main  # noqa: E402

main()
