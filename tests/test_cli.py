"""scripts/solve.py and the output files (DESIGN.md §4-§5)."""
import json
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pinnkit.cli import load_problem_file, main

from conftest import ROOT

SOLVE = [sys.executable, str(ROOT / "scripts" / "solve.py")]
FAST = ["--steps", "60", "--lbfgs-steps", "20", "--width", "12", "--depth", "2",
        "--interior-points", "300", "--boundary-points", "40", "--initial-points", "40", "--quiet"]


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


def test_scripts_keep_their_folder_off_the_path_of_subprocesses(tmp_path):
    """scripts/operator.py shadows the standard library's `operator` in any child process whose
    PYTHONPATH is the parent's sys.path, which is how torch Inductor starts its SIMD probe: with
    scripts/ on the path the probe failed silently and every compiled step ran scalar kernels,
    2.7x slower. A problem file run by scripts/solve.py starts a child the way Inductor does."""
    from pathlib import Path
    where = tmp_path / "where.txt"
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os, subprocess, sys\nimport pinnkit as pk\n"
        "child = subprocess.run([sys.executable, '-c', 'import operator; print(operator.__file__)'],"
        " env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}, capture_output=True, text=True)\n"
        f"open({str(where)!r}, 'w').write(child.stdout)\n"
        "x = pk.coords('x')\nu = pk.field('u', x)\n"
        "problem = pk.Problem('probe', pk.Interval(x, 0, 1), [u.diff(x, 2) + 1], [pk.Dirichlet(u, 0)])\n")
    r = _run(str(probe), "--reference-only", "--quiet", "--out", str(tmp_path / "out"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    found = Path(where.read_text().strip())
    assert found.name == "operator.py" and found.resolve() != ROOT / "scripts" / "operator.py"
    # every script that puts the checkout on the path takes its own folder off it
    for script in sorted((ROOT / "scripts").glob("*.py")):
        text = script.read_text()
        if "sys.path.insert" in text:
            assert "Path(__file__).resolve().parent]" in text, script.name
