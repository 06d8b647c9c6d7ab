"""``python -m pinnkit PROBLEM.py [options]``: the command line of `pinnkit.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m pinnkit"))
