#!/usr/bin/env python3
"""Solve a pinnkit problem file: `python scripts/solve.py problems/burgers.py [options]`.

See `python scripts/solve.py --help`, `--list-options` and docs/cli.md. The same command is
`pinnkit` (installed console script) and `python -m pinnkit`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from pinnkit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="solve.py"))
