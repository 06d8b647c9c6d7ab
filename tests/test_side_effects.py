"""A library leaves its caller's process as it found it: the matplotlib backend, pyplot's
figures, and memory (no grid kept alive by a class-level cache)."""
import gc
import re
import subprocess
import sys

import pytest

import pinnkit as pk

from conftest import ROOT, load_problem

PLOTS = """
import sys, matplotlib
{setup}
import pinnkit as pk, runpy
ns = runpy.run_path("problems/heat1d.py")
p = ns["problem"]
sol = pk.train(p, steps=3, lbfgs_steps=1, width=4, depth=1, interior_points=16,
               boundary_points=4, initial_points=4, quiet=True)
ref = pk.reference(p, resolution=12, quiet=True)
out = sys.argv[1]
pk.export(out, p, sol, ref, pk.compare(sol, ref))
ode = runpy.run_path("problems/robertson.py")["problem"]
pk.export(out + "/ode", ode, None, pk.reference(ode, quiet=True), {{}})
{check}
print("ok")
"""


@pytest.mark.parametrize("setup,check", [
    # a caller who chose a backend and uses pyplot: the backend and pyplot's figures stay
    ("import matplotlib.pyplot as plt\nplt.switch_backend('svg')\nplt.figure()",
     "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
     "assert plt.get_fignums() == [1], plt.get_fignums()"),
    # a caller without pyplot: pinnkit's plots never import it (nor select a backend)
    ("matplotlib.use('svg')",
     "assert 'matplotlib.pyplot' not in sys.modules\n"
     "assert matplotlib.rcParams['backend'] == 'svg', matplotlib.rcParams['backend']"),
])
def test_train_and_plots_leave_the_matplotlib_backend_alone(setup, check, tmp_path):
    code = PLOTS.format(setup=setup, check=check)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    assert (tmp_path / "run" / "plots" / "u.png").is_file()
    assert list((tmp_path / "run" / "ode" / "plots").glob("*.png"))


def test_no_pyplot_or_backend_switch_in_the_package():
    for path in (ROOT / "pinnkit").rglob("*.py"):
        text = path.read_text()
        assert "matplotlib.use(" not in text and "import matplotlib.pyplot" not in text, path
        # per-instance caches only (a method's lru_cache keeps every instance alive; below)
        assert not re.search(r"@(functools\.)?(lru_cache|cache)\b", text), path


def _grids() -> int:
    return sum(1 for o in gc.get_objects()
               if type(o).__name__ == "Grid" and type(o).__module__.startswith("pinnkit."))


@pytest.mark.parametrize("name,resolution", [("poisson2d", 12), ("heat1d", 16),
                                             ("poisson2d_c", 24)])
def test_no_grid_outlives_the_reference(name, resolution):
    gc.collect()
    before = _grids()
    ref = pk.reference(load_problem(name)["problem"], resolution=resolution, quiet=True)
    gc.collect()
    assert _grids() == before == 0
    assert all(v.size for v in ref.fields.values())


LAZY = """
import sys, runpy
import pinnkit as pk
import pinnkit.spec
assert not [m for m in sys.modules if m.startswith(("pinnkit.fd", "pinnkit.metrics"))], "import"
p = runpy.run_path("problems/poisson_robin1d.py")["problem"]
sol = pk.train(p, steps=2, lbfgs_steps=1, width=4, depth=1, interior_points=16,
               boundary_points=4, quiet=True)
loaded = sorted(m for m in sys.modules if m.startswith(("pinnkit.fd", "pinnkit.metrics")))
assert not loaded, loaded
# the FD package and the metrics module load on first use, and their names do not shadow
# the functions pk.reference and pk.compare (whichever is imported first)
import pinnkit.fd.grid, pinnkit.metrics
ref = pk.reference(p, resolution=17, quiet=True)
assert callable(pk.reference) and callable(pk.compare) and pk.GridSolution is type(ref)
assert set(pk.compare(sol, ref)) == {"u"}
print("ok")
"""


def test_the_pinn_path_loads_no_reference_solver_and_no_metrics():
    r = subprocess.run([sys.executable, "-c", LAZY], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
