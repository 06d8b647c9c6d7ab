"""scripts/solve.py and the output files (DESIGN.md §4-§5)."""
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

import pinnkit as pk
from pinnkit.cli import load_problem_file, main

from conftest import ROOT

SOLVE = [sys.executable, str(ROOT / "scripts" / "solve.py")]
FAST = ["--steps", "60", "--lbfgs-steps", "20", "--width", "12", "--depth", "2",
        "--interior-points", "300", "--boundary-points", "40", "--initial-points", "40", "--quiet"]


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("heat")
    assert main([str(ROOT / "problems" / "heat1d.py"), "--out", str(out), *FAST]) == 0
    return out


def test_output_files_exist(heat_run):
    for name in ("fields.h5", "fields.xdmf", "report.json", "checkpoint.pt", "plots/u.png",
                 "plots/u_slices.png", "plots/loss.png"):
        assert (heat_run / name).is_file(), name
    assert not [p for p in heat_run.iterdir() if p.name.endswith(".tmp")]


def test_hdf5_schema(heat_run):
    with h5py.File(heat_run / "fields.h5") as h5:
        for attr in ("problem", "equations", "axes", "config", "metrics", "seed", "versions",
                     "git_commit", "created"):
            assert attr in h5.attrs, attr
        assert h5.attrs["problem"] == "heat1d"
        axes = list(h5.attrs["axes"])
        assert axes == ["t", "x"]
        shape = tuple(len(h5["coords"][a]) for a in axes)
        for group in ("pinn", "reference", "exact", "error"):
            assert h5[group]["u"].shape == shape and h5[group]["u"].dtype == np.float64
        assert np.allclose(h5["error/u"][()], h5["pinn/u"][()] - h5["reference/u"][()])
        hist = h5["history"]
        assert {"step", "loss", "time", "loss_pde", "loss_initial_u"} <= set(hist)
        assert len(hist["step"]) == len(hist["loss"])
        json.loads(h5.attrs["config"]), json.loads(h5.attrs["metrics"]), json.loads(h5.attrs["versions"])


def test_report_matches_h5(heat_run):
    report = json.loads((heat_run / "report.json").read_text())
    assert set(report) >= {"problem", "metrics", "reference", "train", "config"}
    m = report["metrics"]["u"]
    assert set(m) == {"l2re_reference", "l2re_exact", "linf_reference", "linf_exact"}
    assert set(report["train"]) >= {"seconds", "steps", "lbfgs_steps", "final_loss"}
    assert report["reference"]["l2re_exact"]["u"] < 1e-4
    # the CLI estimates the reference's error (Richardson, 2x coarser grid): within 3x of the
    # true one on this problem with an exact solution
    est, true = report["reference"]["error_estimate"]["u"], report["reference"]["l2re_exact"]["u"]
    assert true / 3 <= est <= 3 * true, (est, true)
    with h5py.File(heat_run / "fields.h5") as h5:
        p, r = h5["pinn/u"][()], h5["reference/u"][()]
    recomputed = np.linalg.norm(p - r) / np.linalg.norm(r)
    assert abs(recomputed - m["l2re_reference"]) <= 1e-12


def test_xdmf_valid_and_readable(heat_run):
    tree = ET.parse(heat_run / "fields.xdmf")
    items = [e.text for e in tree.iter("DataItem")]
    with h5py.File(heat_run / "fields.h5") as h5:
        for text in items:
            fname, dset = text.split(":")
            assert fname == "fields.h5" and dset in h5
    from meshio.xdmf import TimeSeriesReader
    with TimeSeriesReader(str(heat_run / "fields.xdmf")) as rd:
        points, cells = rd.read_points_cells()
        t, pdata, _ = rd.read_data(5)
    with h5py.File(heat_run / "fields.h5") as h5:
        assert np.allclose(points[:, 0], h5["coords/x"][()])
        assert t == pytest.approx(h5["coords/t"][5])
        assert np.array_equal(pdata["pinn_u"], h5["pinn/u"][5])


def test_steady_masked_export_reads_with_meshio(tmp_path):
    import meshio
    assert main([str(ROOT / "problems" / "poisson2d.py"), "--out", str(tmp_path),
                 "--reference-only", "--quiet"]) == 0
    mesh = meshio.read(tmp_path / "fields.xdmf")
    with h5py.File(tmp_path / "fields.h5") as h5:
        mask = h5["mask"][()].astype(bool)
        ref = h5["reference/u"][()]
        # every grid node, NaN outside the domain; cells only over the nodes inside
        assert np.array_equal(mesh.point_data["reference_u"], ref.ravel(), equal_nan=True)
        assert np.isnan(ref[~mask]).all() and not np.isnan(ref[mask]).any()
        X, Y = np.meshgrid(h5["coords/x"][()], h5["coords/y"][()], indexing="ij")
        assert np.array_equal(mesh.points[:, :2], np.stack([X.ravel(), Y.ravel()], axis=1))
    assert "quad" in mesh.cells_dict and mask.ravel()[mesh.cells_dict["quad"]].all()


def _run(*args, **kw):
    return subprocess.run([*SOLVE, *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("args,message", [
    (["problems/missing.py"], "no such problem file"),
    (["problems/heat1d.py", "--bogus"], "unrecognized arguments: --bogus"),
    (["problems/heat1d.py", "--set", "widht=3"], "problem 'heat1d': unknown option 'widht'"),
    (["problems/heat1d.py", "--set", "width=abc"], "option width: 'abc' is not a valid int"),
    (["problems/heat1d.py", "--set", "width"], "expected KEY=VALUE"),
    (["problems/heat1d.py", "--no-reference", "--reference-only"], "exclude each other"),
])
def test_bad_input_one_line_exit_2(args, message):
    r = _run(*args, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_recipes_of_a_problem_file():
    path = ROOT / "problems" / "burgers.py"
    _, fast = load_problem_file(path)
    _, accurate = load_problem_file(path, "accurate")
    assert fast["optimizer"] == "ssbfgs" and fast["depth"] == 4
    assert accurate == {**fast, "depth": 8, "interior_points": 10000, "steps": 3000,
                        "lbfgs_steps": 8000, "optimizer": "lbfgs"}
    r = _run("problems/burgers.py", "--recipe", "fastest", cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no recipe 'fastest'; the file has accurate" in r.stderr
    r = _run("problems/heat1d.py", "--recipe", "accurate", cwd=ROOT)
    assert r.returncode == 2 and "the file has no `recipes`" in r.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "problems").glob("*.py")), ids=lambda p: p.stem)
def test_every_problem_files_options_and_recipes_are_valid(path):
    """A shipped option set with a bad key, value or term name would only fail after a long
    run's start (the accurate recipes run up to half an hour): each is checked as solve.py
    checks it before any work, the default and every recipe."""
    from pinnkit.cli import read_problem_file
    from pinnkit.trainer import TrainOptions
    ns, _ = read_problem_file(str(path))
    if "samplers" in ns or ns.get("options", {}).get("method") == "ode":
        pytest.skip("operator / ODE options are checked by their own tests")
    for recipe in [None, *ns.get("recipes", {})]:
        problem, options = load_problem_file(str(path), recipe)
        TrainOptions.from_kwargs(**options).check_problem(problem)


def test_bad_problem_files(tmp_path):
    cases = {
        "syntax.py": ("import pinnkit as pk\nx = (\n", "syntax.py:2: syntax error"),
        "noproblem.py": ("x = 1\n", "defines no `problem`"),
        "invalid.py": ("import pinnkit as pk\nx, t = pk.coords('x t')\nu = pk.field('u', x, t)\n"
                       "problem = pk.Problem('bad', pk.Interval(x, 0, 1), [u.diff(x) - t])\n",
                       "invalid problem: field u(x, t) must take every coordinate"),
        "raises.py": ("import pinnkit as pk\n\nraise RuntimeError('boom')\n", "raises.py:3: RuntimeError: boom"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        r = _run(str(tmp_path / name))
        assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_device_and_unwritable_output(tmp_path):
    import torch
    if not torch.cuda.is_available():
        r = _run("problems/heat1d.py", "--device", "cuda", cwd=ROOT)
        assert r.returncode == 2 and "CUDA is not available" in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = _run("problems/heat1d.py", "--out", str(blocker / "sub"), cwd=ROOT)
    assert r.returncode == 2 and "is not writable" in r.stderr


def test_nan_during_training_keeps_previous_outputs(tmp_path):
    (tmp_path / "nan.py").write_text(
        "import pinnkit as pk\nx, = pk.coords('x,')\nu = pk.field('u', x)\n"
        "problem = pk.Problem('nanprob', pk.Interval(x, 0, 1), [pk.log(u - 10) - x],"
        " [pk.Dirichlet(u, 0)])\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{\"old\": 1}")
    r = _run(str(tmp_path / "nan.py"), "--out", str(out), "--steps", "30", "--set", "log_every=10")
    assert r.returncode == 2 and "non-finite at step 10" in r.stderr and "nanprob" in r.stderr
    assert json.loads((out / "report.json").read_text()) == {"old": 1}


def test_set_parsing():
    from pinnkit.cli import _convert, _option_types, UsageError
    types = _option_types()
    assert _convert("lr", "3e-4", types) == 3e-4
    assert _convert("hard_constraints", "yes", types) is True
    assert _convert("weights", '{"pde": 2}', types) == {"pde": 2}
    assert _convert("checkpoint", "none", types) is None
    assert _convert("network", "modified_mlp", types) == "modified_mlp"
    # compile is bool | str: a boolean word is a bool, anything else a torch.compile mode
    assert _convert("compile", "true", types) is True
    assert _convert("compile", "max-autotune-no-cudagraphs", types) == "max-autotune-no-cudagraphs"
    with pytest.raises(UsageError, match="not a valid bool"):
        _convert("hard_constraints", "maybe", types)
    with pytest.raises(UsageError, match="not a valid dict"):
        _convert("weights", "[1]", types)


def test_resume_equals_uninterrupted(tmp_path):
    base = [str(ROOT / "problems" / "heat1d.py"), "--no-reference", "--width", "10", "--depth", "2",
            "--interior-points", "200", "--boundary-points", "30", "--initial-points", "30",
            "--quiet", "--set", "log_every=10", "--set", "checkpoint_every=20"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main([*base, "--out", str(full), "--steps", "60", "--lbfgs-steps", "30"]) == 0
    # "killed" after 40 Adam steps, then resumed to the same budget
    assert main([*base, "--out", str(part), "--steps", "40", "--lbfgs-steps", "0"]) == 0
    assert main([*base, "--out", str(part), "--steps", "60", "--lbfgs-steps", "30", "--resume"]) == 0
    with h5py.File(full / "fields.h5") as a, h5py.File(part / "fields.h5") as b:
        assert np.array_equal(a["history/loss"][()], b["history/loss"][()])
        assert np.array_equal(a["pinn/u"][()], b["pinn/u"][()])


def test_resume_refuses_other_config(tmp_path):
    base = [str(ROOT / "problems" / "heat1d.py"), "--no-reference", "--quiet", "--out", str(tmp_path),
            "--interior-points", "100", "--steps", "10", "--lbfgs-steps", "0"]
    assert main([*base, "--width", "8"]) == 0
    r = _run(*base, "--width", "9", "--resume")
    assert r.returncode == 2 and "different options" in r.stderr


def test_ctrl_c_writes_checkpoint(tmp_path):
    proc = subprocess.Popen([*SOLVE, str(ROOT / "problems" / "heat1d.py"), "--out", str(tmp_path),
                             "--steps", "100000", "--quiet", "--no-reference", "--width", "8",
                             "--set", "checkpoint_every=50", "--set", "compile=false"],
                            stderr=subprocess.PIPE, text=True,
                            # a shell starts background jobs with SIGINT ignored, and Python
                            # then keeps ignoring it: give the child the default disposition
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while not (tmp_path / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)   # training has started once the first checkpoint exists
    assert (tmp_path / "checkpoint.pt").exists()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "checkpoint written to" in err and "Traceback" not in err
    from pinnkit.checkpoint import load_checkpoint
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["problem"] == "heat1d" and state["step"] > 0


def test_unsupported_reference_is_reported(tmp_path):
    assert main([str(ROOT / "problems" / "burgers_inverse.py"), "--out", str(tmp_path), "--quiet",
                 "--steps", "20", "--lbfgs-steps", "0", "--width", "8", "--depth", "2",
                 "--interior-points", "100"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reference"]["skipped"] is True
    assert "unknown parameters" in report["reference"]["reason"]
    assert "log_nu" in report["parameters"] and "l2re_exact" in report["metrics"]["u"]
    with h5py.File(tmp_path / "fields.h5") as h5:
        assert "log_nu" in h5["parameters"] and "reference" not in h5


def test_help_shows_defaults_and_list_options_every_option():
    from pinnkit.cli import build_parser, option_schema
    from pinnkit.trainer import TrainOptions
    parser = build_parser()
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings       # one help line for every flag
    text = parser.format_help()
    assert text.startswith("usage: pinnkit ")
    assert "--steps STEPS         Adam steps (default: 2000)" in text
    assert "--threads" in text and "--list-options" in text
    schema = option_schema()
    assert [o.name for o in schema] == TrainOptions.names()
    assert all(o.meaning for o in schema), [o.name for o in schema if not o.meaning]
    r = subprocess.run([sys.executable, "-m", "pinnkit", "--list-options"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stderr == ""
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:-1]}
    assert set(rows) == set(TrainOptions.names())
    assert rows["lr"].split()[1:4] == ["float", "0.001", "Adam"]
    assert rows["checkpoint"].split()[1:5] == ["str", "|", "None", "None"]


def test_entry_points_name_themselves():
    r = subprocess.run([sys.executable, "-m", "pinnkit", "--help"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m pinnkit ")
    r = _run("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: solve.py ")
    r = subprocess.run([sys.executable, "-m", "pinnkit"], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "problem_file" in r.stderr
    code = ("import pinnkit, sys; "
            "print('train' in dir(pinnkit), 'export' in dir(pinnkit), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert r.stdout.split() == ["True", "True", "False"]      # listed, and still lazy


def test_non_tty_run_logs_progress(tmp_path):
    r = _run("problems/heat1d.py", "--out", str(tmp_path), "--no-reference", "--steps", "60",
             "--lbfgs-steps", "0", "--width", "8", "--depth", "2", "--interior-points", "100",
             "--set", "log_every=20", "--set", "progress_seconds=0", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "Adam step" in ln and ": loss" in ln]
    assert len(lines) == 3 and "Adam step 60/60: loss" in lines[-1]
    assert all("pde" in ln and "steps/s" in ln and "ETA" in ln for ln in lines)
    quiet = _run("problems/heat1d.py", "--out", str(tmp_path), "--no-reference", "--steps", "20",
                 "--lbfgs-steps", "0", "--width", "8", "--quiet", "--set", "progress_seconds=0",
                 "--set", "log_every=10", cwd=ROOT)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_cli_evaluates_pinn_and_exact_once(tmp_path):
    calls = tmp_path / "calls"
    (tmp_path / "counted.py").write_text(
        "import numpy as np\nimport pinnkit as pk\n"
        "x, t = pk.coords('x t')\nu = pk.field('u', x, t)\n"
        "def exact(x, t):\n"
        f"    open({str(calls)!r}, 'a').write('exact\\n')\n"
        "    return np.exp(-np.pi**2 * t) * np.sin(np.pi * x)\n"
        "problem = pk.Problem('counted', pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.1),\n"
        "    [u.diff(t) - u.diff(x, 2)], [pk.Dirichlet(u, 0), pk.Initial(u, pk.sin(pk.pi * x))],\n"
        "    exact={'u': exact}, reference={'resolution': {'x': 21, 't': 5}})\n")
    from pinnkit.trainer import Solution
    seen = []
    original = Solution.__call__

    def counted(self, points, **kw):
        seen.append(next(iter(points.values())).shape)
        return original(self, points, **kw)
    Solution.__call__ = counted
    try:
        assert main([str(tmp_path / "counted.py"), "--out", str(tmp_path / "out"), "--steps", "5",
                     "--lbfgs-steps", "0", "--width", "4", "--depth", "1", "--quiet"]) == 0
    finally:
        Solution.__call__ = original
    assert calls.read_text() == "exact\n"        # the exact solution on the grid: once
    assert seen == [(5, 21)]                     # the PINN on the grid: once


HOLED_HEAT = """
import numpy as np
import pinnkit as pk
x, y, t = pk.coords("x y t")
u = pk.field("u", x, y, t)
exact = pk.exp(-2 * pk.pi**2 * t) * pk.sin(pk.pi * x) * pk.sin(pk.pi * y)
space = pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), (0.5, 0.5), 0.2, name="hole")
problem = pk.Problem("holed_heat", space * pk.TimeInterval(t, 0, 0.1),
                     [u.diff(t) - pk.laplacian(u)],
                     [pk.Dirichlet(u, exact, on="boundary"), pk.Initial(u, exact.subs(t, 0))],
                     exact={"u": exact}, reference={"resolution": {"x": 21, "y": 21, "t": 6}})
"""


@pytest.fixture(scope="module")
def holed_run(tmp_path_factory):
    """A masked 2-D time-dependent run with PINN, reference, exact and error, written under
    umask 027."""
    out = tmp_path_factory.mktemp("holed")
    (out / "holed_heat.py").write_text(HOLED_HEAT)
    old = os.umask(0o027)
    try:
        assert main([str(out / "holed_heat.py"), "--out", str(out / "run"), "--steps", "5",
                     "--lbfgs-steps", "0", "--width", "4", "--depth", "1", "--quiet",
                     "--interior-points", "50", "--boundary-points", "20",
                     "--initial-points", "20"]) == 0
    finally:
        os.umask(old)
    return out / "run"


def test_time_series_xdmf_round_trip_with_meshio(holed_run):
    from meshio.xdmf import TimeSeriesReader
    with h5py.File(holed_run / "fields.h5") as h5, \
            TimeSeriesReader(str(holed_run / "fields.xdmf")) as rd:
        points, cells = rd.read_points_cells()
        X, Y = np.meshgrid(h5["coords/x"][()], h5["coords/y"][()], indexing="ij")
        assert np.array_equal(points[:, :2], np.stack([X.ravel(), Y.ravel()], axis=1))
        mask = h5["mask"][()].astype(bool).ravel()
        assert cells[0].type == "quad" and mask[cells[0].data].all()
        ts = h5["coords/t"][()]
        assert rd.num_steps == len(ts) == 6
        for k in range(rd.num_steps):
            t, pdata, _ = rd.read_data(k)
            assert t == ts[k]
            assert set(pdata) == {"pinn_u", "reference_u", "exact_u", "error_u"}
            for name, values in pdata.items():
                label = name.rsplit("_", 1)[0]
                assert np.array_equal(values, h5[f"{label}/u"][k].ravel(), equal_nan=True)
                assert not np.isnan(values[mask]).any()


def test_h5_attributes_views_and_compression(holed_run):
    from pinnkit.io import _compression
    with h5py.File(holed_run / "fields.h5") as h5:
        err = h5["error/u"]
        assert err.attrs["definition"] == "pinn - reference"
        assert h5[err.attrs["minuend"]].name == "/pinn/u"
        assert h5[err.attrs["subtrahend"]].name == "/reference/u"
        assert np.array_equal(err[()], h5["pinn/u"][()] - h5["reference/u"][()], equal_nan=True)
        for label in ("pinn", "reference", "exact", "error"):
            assert list(h5[f"{label}/u"].attrs["axes"]) == ["t", "x", "y"]
            assert h5[f"{label}/u"].attrs["description"]
        assert h5["coords/y"].attrs["axis"] == 2 and list(h5["mask"].attrs["axes"]) == ["x", "y"]
        assert h5["history/loss"].attrs["description"] == "weighted total loss"
        # /xdmf holds the geometry and views, never a copy of the field values
        views = [d for name, d in h5["xdmf"].items() if name not in ("points", "cells")]
        assert len(views) == 4 * 6 and all(d.is_virtual for d in views)
        assert h5["xdmf/points"].compression == "gzip"   # a grid's coordinates: it pays
        assert h5["mask"].compression is None            # 441 bytes: it does not
    assert _compression(np.zeros(5000))["compression"] == "gzip"
    assert _compression(np.linspace(0, 1, 5000))["shuffle"]     # shuffling packs a ramp tighter
    assert _compression(np.random.default_rng(0).standard_normal(5000)) == {}
    assert _compression(np.zeros(100)) == {}             # too small to pay for a chunk


def test_output_files_follow_the_umask(holed_run):
    files = [holed_run / n for n in ("fields.h5", "fields.xdmf", "report.json")]
    files += sorted((holed_run / "plots").glob("*.png"))
    assert len(files) >= 5
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o640, (f, oct(f.stat().st_mode))


def test_plots_keep_the_callers_backend_and_figures(tmp_path):
    code = ("import matplotlib\nmatplotlib.use('svg')\nimport matplotlib.pyplot as plt\n"
            "plt.figure()\nfrom pinnkit.cli import main\n"
            f"assert main([{str(ROOT / 'problems' / 'heat1d.py')!r}, '--out', {str(tmp_path)!r}, "
            "'--steps', '5', '--lbfgs-steps', '0', '--width', '4', '--depth', '1', "
            "'--quiet']) == 0\n"
            "print(matplotlib.get_backend(), plt.get_fignums())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "[1]"]
    assert (tmp_path / "plots" / "u.png").stat().st_size > 1000


def test_plot_panels_error_against_exact_centred_on_zero(holed_run):
    from pinnkit.metrics import Evaluation
    from pinnkit.plot import _panels, _style
    x, = pk.coords("x,")
    u = pk.field("u", x)
    problem = pk.Problem("p", pk.Interval(x, 0, 1), [u.diff(x, 2)], [pk.Dirichlet(u, 0)])
    ev = Evaluation(problem, ["x"], {"x": np.linspace(0, 1, 3)}, np.ones(3, bool))
    ev.pinn, ev.reference, ev.exact = ({"u": np.array(a, float)} for a in
                                       ([1, 2, 3], [1, 2, 2.5], [1.5, 2, 3.25]))
    panels = dict(_panels(ev, "u"))
    assert list(panels) == ["PINN", "exact", "error: PINN − exact", "error: reference − exact"]
    assert np.array_equal(panels["error: PINN − exact"], [-0.5, 0, -0.25])
    cmap, norm = _style("error: PINN − exact", np.array([-0.1, 0.3]))
    assert cmap == "RdBu_r" and (norm.vmin, norm.vcenter, norm.vmax) == (-0.3, 0.0, 0.3)
    assert _style("PINN", np.array([1.0]))[1] is None
    ev.exact = {}                                          # no exact solution: vs the reference
    titles = [t for t, _ in _panels(ev, "u")]
    assert titles == ["PINN", "reference (FD)", "error: PINN − reference"]
    # a 2-D time-dependent run draws a grid of snapshots besides the last time
    assert (holed_run / "plots" / "u_snapshots.png").stat().st_size > 10000
def test_summary_headline_is_against_exact_with_reference_estimate():
    from pinnkit.cli import summary

    class P:
        name = "demo"
    report = {"metrics": {"u": {"l2re_exact": 1.1e-3, "l2re_reference": 8.3e-3}},
              "reference": {"l2re_exact": {"u": 8.3e-3}, "error_estimate": {"u": 7.9e-3}}}
    text = summary(P(), report, ROOT, 1.0)
    head, row = text.splitlines()[1:3]
    assert head.split()[1:4] == ["L2RE", "vs", "exact"] and row.split()[1] == "1.100e-03"
    assert "FD est. error" in head and "7.900e-03" in row
    assert "reference's estimated error (7.9e-03) is comparable" in text
    no_exact = {"metrics": {"u": {"l2re_reference": 2e-3}}, "reference": {}}
    assert summary(P(), no_exact, ROOT, 1.0).splitlines()[1].split()[1:4] == ["L2RE", "vs", "reference"]
