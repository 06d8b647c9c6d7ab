import os
import runpy
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    """Under pytest-xdist (``-n auto`` in the README's test command) each worker gets one of the
    machine's cores: torch's intra-op threads, and those of the subprocesses the tests start
    (CLI, torchrun), are set to one, so the workers do not oversubscribe the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch
        torch.set_num_threads(1)


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


@pytest.fixture(autouse=True)
def _compile_backend(request, monkeypatch):
    """pinnkit's graphs compile with the aot_eager backend in tests (the same dynamo and AOT
    autograd tracing, eager kernels): Inductor's code generation costs ~40 s a cold graph
    here, and most compile tests check tracing-level behaviour (caches, guards, in-place
    updates, fallbacks). Tests marked ``inductor`` compile with Inductor as users do; the
    environment variable reaches subprocesses (CLI, torchrun) too."""
    from pinnkit.pinn import compiled
    backend = "inductor" if request.node.get_closest_marker("inductor") else "aot_eager"
    monkeypatch.setattr(compiled, "BACKEND", backend)
    monkeypatch.setenv("PINNKIT_COMPILE_BACKEND", backend)
