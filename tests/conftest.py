import runpy
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def load_problem(name: str) -> dict:
    """Namespace of problems/<name>.py (its ``problem`` and ``options``)."""
    return runpy.run_path(str(ROOT / "problems" / f"{name}.py"))


def shared_data(name: str) -> dict:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present (shared data is beside the repository, not in it)")
    return dict(np.load(path))


def l2re(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
