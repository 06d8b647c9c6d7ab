#!/usr/bin/env python3
"""Learn the solution operator of a problem file with input fields:
`python scripts/operator.py problems/burgers_operator.py [options]` (DESIGN.md §8).

See `python scripts/operator.py --help` and docs/operators.md.
"""
import sys
from pathlib import Path

# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinnkit.operator.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
