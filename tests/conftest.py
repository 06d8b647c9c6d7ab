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


def load_script(name: str):
    """scripts/<name>.py as a module, loaded by its path: scripts/ never goes on sys.path,
    where scripts/operator.py would shadow the standard library's `operator` in the child
    processes that inherit the path, torch Inductor's vector-ISA probe among them (it then
    fails for the rest of the worker process, whose compiles could no longer build the
    vectorized kernels Inductor had cached: .ci/run failed so, twice)."""
    import importlib.util
    import sys
    module_name = f"pinnkit_script_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture(autouse=True)
def _scripts_stay_off_the_path():
    """No test may leave scripts/ on sys.path (see `load_script`)."""
    import sys
    yield
    scripts = ROOT / "scripts"
    assert not any(Path(p or ".").resolve() == scripts for p in sys.path), (
        "scripts/ was left on sys.path; load scripts with conftest.load_script")


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
