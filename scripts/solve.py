#!/usr/bin/env python3
"""Solve a pinnkit problem file: `python scripts/solve.py problems/burgers.py [options]`.

See `python scripts/solve.py --help` and DESIGN.md §4.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from pinnkit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
