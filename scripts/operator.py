#!/usr/bin/env python3
"""Learn the solution operator of a problem file with input fields:
`python scripts/operator.py problems/burgers_operator.py [options]` (DESIGN.md §8).

See `python scripts/operator.py --help` and docs/operators.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from pinnkit.operator.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
