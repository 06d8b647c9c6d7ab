"""Faults and hostile input (issue 16): no silent wrong answer, no lost run.

Every numbered finding of the issue has a test here (the docstring names it). Problems are
tiny, signals are real (sent to this process through the trainer's and the CLI's handlers,
or to a child process), and full disks are an injected writer fault (ENOSPC from fsync) or
a real per-process file-size limit in a child (RLIMIT_FSIZE, 20 kB: the checkpoint fits,
fields.h5 does not).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

import pinnkit as pk
from pinnkit.checkpoint import load_checkpoint, save_checkpoint
from pinnkit.cli import main
from pinnkit.errors import TrainingInterrupted, WriteError
from pinnkit.losses import CompiledProblem
from pinnkit.fd.guard import ReferenceSizeError

from conftest import ROOT

SOLVE = [sys.executable, str(ROOT / "scripts" / "solve.py")]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
TINY = dict(dtype="float64", width=8, depth=2, interior_points=16, boundary_points=2, quiet=True)


@pytest.fixture(autouse=True)
def _terminal_signal_handlers():
    """The SIGINT/SIGTERM handlers of a program started from a terminal. A shell without job
    control starts a background job (``pytest &``, nohup) with SIGINT ignored, and training
    keeps an ignored signal ignored (test below), so the interrupt tests would see no
    interrupt there."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, h in old.items():
        signal.signal(s, h)


def test_an_ignored_sigint_stays_ignored(monkeypatch):
    # nohup / a background job: the parent asked for SIGINT to be ignored; training must not
    # install its handler over that (SIGTERM still checkpoints and stops)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    at = SignalAt(monkeypatch)
    at.arm(5, signal.SIGINT)
    sol = pk.train(poisson(), **dict(TINY, steps=20, lbfgs_steps=0))
    assert at.sent and at.handler is signal.SIG_IGN and sol.history["step"][-1] == 20
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    at.arm(5, signal.SIGTERM)
    with at.raises():
        pk.train(poisson(), **dict(TINY, steps=20, lbfgs_steps=0))


def poisson(name="p1", rhs=1.0, lo=0.0, hi=1.0, g=0.0):
    x = pk.coords("x")
    u = pk.field("u", x)
    return pk.Problem(name=name, domain=pk.Interval(x, lo, hi),
                      equations=[u.diff(x, 2) + rhs * pk.pi ** 2 * pk.sin(pk.pi * x)],
                      conditions=[pk.Dirichlet(u, g, on="boundary")])


def write(path, text):
    path.write_text(text)
    return str(path)


POISSON_FILE = """
import pinnkit as pk
x = pk.coords("x")
u = pk.field("u", x)
problem = pk.Problem(name={name!r}, domain=pk.Interval(x, 0, 1),
                     equations=[u.diff(x, 2) + {rhs} * pk.pi**2 * pk.sin(pk.pi * x)],
                     conditions=[pk.Dirichlet(u, 0, on="boundary")])
options = {{"steps": 20, "lbfgs_steps": 0, "width": 8, "depth": 2, "interior_points": 16,
            "boundary_points": 2, "log_every": 5, "checkpoint_every": 5}}
"""


def cli(*args, capsys=None):
    code = main([*map(str, args)])
    err = capsys.readouterr().err if capsys is not None else ""
    return code, err


class SignalAt:
    """Send ``sig`` to this process at the k-th evaluation of the loss (any phase: inside an
    Adam step or inside an L-BFGS line search)."""

    def __init__(self, monkeypatch):
        self.n, self.k, self.sig, self.sent, self.handler = 0, None, signal.SIGINT, False, None
        orig = CompiledProblem.losses

        def counting(cp, *a, **kw):
            self.n += 1
            if self.n == self.k:
                self.sent, self.handler = True, signal.getsignal(self.sig)
                os.kill(os.getpid(), self.sig)
            return orig(cp, *a, **kw)
        monkeypatch.setattr(CompiledProblem, "losses", counting)

    def arm(self, k, sig):
        self.n, self.k, self.sig, self.sent, self.handler = 0, k, sig, False, None

    def raises(self):
        """pytest.raises(TrainingInterrupted), saying on failure whether the signal was sent
        and which handler it met (a run in the full suite once did not raise)."""
        return _Raises(self)


class _Raises:
    def __init__(self, at):
        self.at, self.value = at, None

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, TrainingInterrupted):
            self.value = exc
            return True
        if kind is None:
            pytest.fail(f"did not raise TrainingInterrupted: {self.at.n} loss evaluations, signal "
                        f"at {self.at.k} {'sent' if self.at.sent else 'not sent'}, "
                        f"handler then {self.at.handler!r}")
        return False


# ----------------------------------------------------------------------------- finding 1

def test_resume_refuses_an_edited_problem_naming_what_changed(tmp_path):
    """Finding 1: only the name and the options were compared; an edited equation, domain,
    boundary value or point count was resumed silently."""
    ck = tmp_path / "ck.pt"
    kw = dict(TINY, steps=5, lbfgs_steps=0, checkpoint=str(ck))
    pk.train(poisson(), **kw)
    for edited, what in ((poisson(rhs=2.0), "equations"), (poisson(hi=2.0), "domain"),
                         (poisson(g=1.0), "conditions")):
        with pytest.raises(pk.TrainingError, match=f"different run: the problem's [^;]*{what}[^;]* changed"):
            pk.train(edited, resume=True, **kw)
    with pytest.raises(pk.TrainingError, match=r"interior_points 16 -> 17"):
        pk.train(poisson(), resume=True, **dict(kw, interior_points=17))
    with pytest.raises(pk.TrainingError, match=r"collocation points changed.*seed 0 -> 1"):
        pk.train(poisson(), resume=True, **dict(kw, seed=1))
    # the same problem and options resume (a larger budget is allowed)
    assert pk.train(poisson(), resume=True, **dict(kw, steps=8)).history["step"][-1] == 8


def test_resume_refuses_edited_data(tmp_path):
    """Finding 1 (data): observations are part of the fingerprint."""
    x = pk.coords("x")
    u = pk.field("u", x)
    k = pk.parameter("k", 1.0)

    def inverse(values):
        return pk.Problem(name="inv", domain=pk.Interval(x, 0, 1), equations=[k * u.diff(x, 2) + 1],
                          conditions=[pk.Dirichlet(u, 0, on="boundary"),
                                      pk.Data(u, points={"x": [0.25, 0.5]}, values=values)])
    kw = dict(TINY, steps=3, lbfgs_steps=0, checkpoint=str(tmp_path / "ck.pt"))
    pk.train(inverse([0.1, 0.12]), **kw)
    with pytest.raises(pk.TrainingError, match="problem's data[^;]* changed"):
        pk.train(inverse([0.1, 0.13]), resume=True, **kw)


def test_cli_resume_of_edited_problem_file_is_refused(tmp_path, capsys):
    """Finding 1 through the CLI: exit 2, one line naming the change."""
    f = tmp_path / "p.py"
    write(f, POISSON_FILE.format(name="edited", rhs=1.0))
    assert cli(f, "--out", tmp_path / "o", "--no-reference", "--quiet", capsys=capsys)[0] == 0
    write(f, POISSON_FILE.format(name="edited", rhs=3.0))
    code, err = cli(f, "--out", tmp_path / "o", "--no-reference", "--quiet", "--resume", capsys=capsys)
    assert code == 2 and "equations changed" in err and err.count("\n") == 1


# ------------------------------------------------------------------- findings 2 and acceptance 3

def test_interrupt_at_random_points_resumes_exactly(tmp_path, monkeypatch):
    """Finding 2 and acceptance 3: SIGINT/SIGTERM at 24 random loss evaluations (Adam steps,
    L-BFGS line searches, the phase change); every checkpoint resumes, to the same final loss
    as the uninterrupted run to 1e-12 (float64, CPU)."""
    torch.set_num_threads(1)
    kw = dict(TINY, steps=30, lbfgs_steps=30, log_every=5, checkpoint_every=7)
    at = SignalAt(monkeypatch)
    ref = pk.train(poisson(), **kw).final_loss
    total = at.n
    rng = random.Random(16)
    phases = set()
    for trial in range(24):
        ck = tmp_path / f"ck{trial}.pt"
        at.arm(rng.randint(1, total), rng.choice([signal.SIGINT, signal.SIGTERM]))
        with at.raises() as info:
            pk.train(poisson(), checkpoint=str(ck), **kw)
        assert info.value.checkpoint == str(ck) and info.value.signum == at.sig
        phases.add(info.value.where.split()[0])
        at.arm(None, signal.SIGINT)
        resumed = pk.train(poisson(), checkpoint=str(ck), resume=True, **kw)
        assert abs(resumed.final_loss - ref) <= 1e-12 * max(1.0, abs(ref)), (trial, info.value.where)
    assert {"Adam", "L-BFGS"} <= phases      # both phases were hit


def test_interrupt_inside_lbfgs_step_leaves_a_consistent_checkpoint(tmp_path, monkeypatch):
    """Finding 2: a signal inside an L-BFGS line search checkpoints the state at the start of
    that chunk (log_every iterations), never a half-done step; resuming does not crash."""
    kw = dict(TINY, steps=10, lbfgs_steps=40, log_every=10, checkpoint_every=1000)
    at = SignalAt(monkeypatch)
    ref = pk.train(poisson(), **kw).final_loss
    at.arm(30, signal.SIGINT)          # inside an L-BFGS line search (10 Adam evaluations before)
    with at.raises() as info:
        pk.train(poisson(), checkpoint=str(tmp_path / "ck.pt"), **kw)
    assert info.value.where.startswith("L-BFGS iteration")
    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["lbfgs"] is not None and state["lbfgs_best"] is not None
    at.arm(None, signal.SIGINT)
    resumed = pk.train(poisson(), checkpoint=str(tmp_path / "ck.pt"), resume=True, **kw)
    assert abs(resumed.final_loss - ref) <= 1e-12 * max(1.0, ref)


# ----------------------------------------------------------------------------- finding 3

def test_nan_guard_never_checkpoints_nan_weights(tmp_path, monkeypatch):
    """Finding 3: with checkpoint_every (3) not a multiple of log_every (10) the NaN was seen
    only at step 10 and NaN weights were saved at step 6 over the last good checkpoint."""
    orig = CompiledProblem.losses
    calls = {"n": 0}

    def poisoned(cp, *a, **kw):
        calls["n"] += 1
        out = orig(cp, *a, **kw)
        if calls["n"] >= 5:           # the loss (and so the weights) turns NaN at step 5
            out = {k: v * float("nan") for k, v in out.items()}
        return out
    monkeypatch.setattr(CompiledProblem, "losses", poisoned)
    ck = tmp_path / "ck.pt"
    with pytest.raises(pk.TrainingError, match=r"non-finite at step 6.*holds the last good state, Adam step 3"):
        pk.train(poisson(), **dict(TINY, steps=30, lbfgs_steps=0, log_every=10, checkpoint_every=3,
                                   checkpoint=str(ck)))
    state = load_checkpoint(ck)
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    monkeypatch.setattr(CompiledProblem, "losses", orig)
    sol = pk.train(poisson(), **dict(TINY, steps=30, lbfgs_steps=0, log_every=10, checkpoint_every=3,
                                     checkpoint=str(ck), resume=True))
    assert np.isfinite(sol.final_loss)


# ----------------------------------------------------------------------------- finding 4

def inv_x_problem():
    x = pk.coords("x")
    u = pk.field("u", x)
    return pk.Problem(name="inv_x", domain=pk.Interval(x, -1, 1), equations=[u.diff(x, 2) - 1 / x],
                      conditions=[pk.Dirichlet(u, 0, on="boundary")])


def test_reference_never_returns_zeros_for_a_nonfinite_system():
    """Finding 4: u'' = 1/x with x = 0 on the grid gave 0 Newton iterations and all zeros."""
    with pytest.raises(pk.ReferenceSolverError, match=r"not finite \(-inf\) in equation 'pde' at x = 0"):
        pk.reference(inv_x_problem(), resolution=21)
    x = pk.coords("x")
    u = pk.field("u", x)
    logbc = pk.Problem(name="logbc", domain=pk.Interval(x, 0, 1), equations=[u.diff(x, 2) - 1],
                       conditions=[pk.BoundaryEquation(pk.log(u) - 1, on="x_min"),
                                   pk.Dirichlet(u, 1, on="x_max")])
    with pytest.raises(pk.ReferenceSolverError, match="condition 'boundary_eq_x_min' at x = 0"):
        pk.reference(logbc, resolution=21)


def test_report_json_is_strict(tmp_path):
    """Finding 4: report.json contained Infinity (not JSON); now null plus the reason."""
    prob = poisson("strict")
    ref = pk.reference(prob, resolution=11)
    pk.export(tmp_path, prob, None, ref, {"u": {"l2re_exact": float("inf"), "linf_exact": float("nan")}},
              plots=False)

    def refuse(c):
        raise ValueError(f"non-JSON constant {c}")
    report = json.loads((tmp_path / "report.json").read_text(), parse_constant=refuse)
    assert report["metrics"]["u"] == {"l2re_exact": None, "linf_exact": None}
    assert report["nonfinite"] == {"metrics.u.l2re_exact": "inf", "metrics.u.linf_exact": "nan"}
    with h5py.File(tmp_path / "fields.h5") as h5:
        json.loads(h5.attrs["metrics"], parse_constant=refuse)


def test_cli_reference_failure_keeps_training_and_exits_cleanly(tmp_path, capsys):
    """Finding 4 through the CLI: the reference failure is reported with its reason."""
    f = write(tmp_path / "p.py", "import pinnkit as pk\nx = pk.coords('x')\nu = pk.field('u', x)\n"
              "problem = pk.Problem(name='inv_x', domain=pk.Interval(x, -1, 1), "
              "equations=[u.diff(x, 2) - 1 / x], conditions=[pk.Dirichlet(u, 0, on='boundary')])\n")
    code, err = cli(f, "--out", tmp_path / "o", "--steps", "5", "--lbfgs-steps", "0", "--width", "8",
                    "--depth", "2", "--interior-points", "16", "--quiet", capsys=capsys)
    assert code == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert "not finite" in report["reference"]["reason"] and report["train"]["final_loss"] > 0


# ----------------------------------------------------------------------------- finding 5

def rect(res=None, **ref):
    x, y = pk.coords("x y")
    u = pk.field("u", x, y)
    return pk.Problem(name="rect", domain=pk.Rectangle((x, y), (0, 0), (1, 1)),
                      equations=[u.diff(x, 2) + u.diff(y, 2) + 1],
                      conditions=[pk.Dirichlet(u, 0, on="boundary")],
                      reference=dict(ref, **({"resolution": res} if res else {})))


def test_reference_size_is_estimated_and_refused_before_solving():
    """Finding 5: resolution=100000 was a MemoryError traceback (and 3000 used 2.5 GB with
    no warning); now the estimate is refused before any allocation, naming a fit."""
    t = time.perf_counter()
    with pytest.raises(ReferenceSizeError, match=r"1e\+10 unknowns and needs an estimated [\d.e+]+ GB.*"
                                                 r"about \{'x': \d+, 'y': \d+\} fits"):
        pk.reference(rect(100000))
    assert time.perf_counter() - t < 5
    with pytest.raises(ReferenceSizeError, match="above the limit of"):
        pk.reference(rect(3000), memory_limit_gb=1.0)
    # the override: a tiny limit refuses a small grid, no limit solves it
    with pytest.raises(ReferenceSizeError):
        pk.reference(rect(9), memory_limit_gb=1e-6)
    ref = pk.reference(rect(9), memory_limit_gb=None)
    assert np.all(np.isfinite(ref.fields["u"])) and ref.info["estimate"]["bytes"] > 0


def test_reference_refusal_in_a_full_run_keeps_the_trained_network(tmp_path, capsys):
    """Finding 5: in a full run the reference's MemoryError threw away the trained network."""
    f = write(tmp_path / "p.py", "import pinnkit as pk\nx, y = pk.coords('x y')\nu = pk.field('u', x, y)\n"
              "problem = pk.Problem(name='big', domain=pk.Rectangle((x, y), (0, 0), (1, 1)), "
              "equations=[u.diff(x, 2) + u.diff(y, 2) + 1], conditions=[pk.Dirichlet(u, 0, on='boundary')], "
              "reference={'resolution': 100000})\n")
    code, err = cli(f, "--out", tmp_path / "o", "--steps", "5", "--lbfgs-steps", "0", "--width", "8",
                    "--depth", "2", "--interior-points", "16", "--boundary-points", "8", "--quiet",
                    capsys=capsys)
    assert code == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert "estimated" in report["reference"]["reason"]
    with h5py.File(tmp_path / "o" / "fields.h5") as h5:
        assert "pinn" in h5


def test_signal_during_the_reference_exports_the_trained_results(tmp_path, capsys, monkeypatch):
    """Finding 5: SIGINT/SIGTERM during the reference lost the finished training's export."""
    refmod = sys.modules["pinnkit.fd"]    # the FD package (pk.reference is its function)

    def slow_reference(problem, **kw):
        os.kill(os.getpid(), signal.SIGTERM)      # through the CLI's own SIGTERM handler
        time.sleep(5)
        raise AssertionError("the signal did not interrupt the reference")
    monkeypatch.setattr(refmod, "reference", slow_reference)
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="sigref", rhs=1.0))
    code, err = cli(f, "--out", tmp_path / "o", "--quiet", capsys=capsys)
    assert code == 143 and "interrupted during the reference" in err and "--resume" in err
    with h5py.File(tmp_path / "o" / "fields.h5") as h5:
        assert "pinn/u" in h5
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["reference"]["reason"] == "interrupted during the reference"
    # the rerun skips training (the checkpoint holds the finished run) and adds the reference
    monkeypatch.undo()
    code, _ = cli(f, "--out", tmp_path / "o", "--quiet", "--resume", capsys=capsys)
    assert code == 0
    with h5py.File(tmp_path / "o" / "fields.h5") as h5:
        assert "reference/u" in h5


# ----------------------------------------------------------------------------- finding 6

def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".pinnkit.lock"}


def test_full_disk_during_export_keeps_previous_results(tmp_path, capsys, monkeypatch):
    """Finding 6: ENOSPC during the export crashed inside HDF5 and left a temporary; now one
    line naming the file, previous results byte-identical, no temporaries."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="disk", rhs=1.0))
    out = tmp_path / "o"
    assert cli(f, "--out", out, "--quiet", "--no-reference", capsys=capsys)[0] == 0
    before = _snapshot(out)

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", enospc)
    code, err = cli(f, "--out", out, "--quiet", "--no-reference", "--steps", "30", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "no space left on device" in err
    assert "checkpoint.pt" in err       # the first write of the run: a checkpoint
    assert _snapshot(out) == before
    assert not [p for p in out.rglob("*.tmp")]
    # the export itself (training without checkpoints)
    code, err = cli(f, "--out", out, "--quiet", "--no-reference", "--set", "checkpoint=none",
                    capsys=capsys)
    assert code == 2 and "cannot write" in err and "fields.h5" in err and "Traceback" not in err
    assert _snapshot(out) == before and not [p for p in out.rglob("*.tmp")]


def test_real_write_failure_in_a_child_process(tmp_path):
    """Finding 6 with a real OS error (the process's file-size limit, EFBIG, as from a tiny
    disk): exit 2, one line naming the file, no crash of the HDF5 library, no temporaries."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="fsize", rhs=1.0))

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    r = subprocess.run([*SOLVE, f, "--out", str(tmp_path / "o"), "--quiet", "--no-reference",
                        "--steps", "5"], env=ENV, capture_output=True, text=True, preexec_fn=limit,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: cannot write") and "fields.h5" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not [p for p in (tmp_path / "o").rglob("*.tmp")]
    assert load_checkpoint(tmp_path / "o" / "checkpoint.pt")["step"] == 5     # kept


def test_write_helper_removes_temporary_and_names_file(tmp_path, monkeypatch):
    """Finding 6 (checkpoints): an OSError while writing a checkpoint was a traceback."""
    save_checkpoint(tmp_path / "ck.pt", {"a": torch.ones(3)})
    before = (tmp_path / "ck.pt").read_bytes()

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(WriteError, match=r"cannot write .*ck\.pt: no space left on device"):
        save_checkpoint(tmp_path / "ck.pt", {"a": torch.zeros(3)})
    assert (tmp_path / "ck.pt").read_bytes() == before and len(list(tmp_path.iterdir())) == 1


# ----------------------------------------------------------------------------- finding 7

@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_to_a_child_writes_checkpoint_and_partial_outputs(tmp_path, sig, code):
    """Finding 7: SIGTERM killed the run (exit -15, no message, no checkpoint)."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="sig", rhs=1.0))
    out = tmp_path / "o"
    proc = subprocess.Popen([*SOLVE, f, "--out", str(out), "--steps", "1000000", "--quiet",
                             "--no-reference", "--set", "checkpoint_every=20",
                             "--set", "compile=false"],
                            env=ENV, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    # training runs once the first periodic checkpoint exists (a fixed sleep after the output
    # lock was too short on a loaded machine: the signal came before the trainer's handler)
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (out / "checkpoint.pt").exists():
            break
    first = load_checkpoint(out / "checkpoint.pt")["step"]
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "checkpoint written to" in err and "resume with: python scripts/solve.py" in err
    assert "Traceback" not in err and err.count("\n") == 1
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] > first     # written at the signal, past the periodic ones
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["interrupted"] == "training interrupted"
    assert f"interrupted by {signal.Signals(sig).name}" in report["train"]["messages"][-1]
    # the printed command resumes (here with a budget just past the checkpoint)
    r = subprocess.run([*SOLVE, f, "--out", str(out), "--quiet", "--no-reference", "--resume",
                        "--steps", str(state["step"] + 5), "--set", "checkpoint_every=100000",
                        "--set", "compile=false"],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(out / "checkpoint.pt")["step"] == state["step"] + 5


# ----------------------------------------------------------------------------- finding 8

def test_problem_file_calling_sys_exit_is_an_error(tmp_path, capsys):
    """Finding 8: a problem file calling sys.exit(0) ended the run with exit 0, nothing done."""
    f = write(tmp_path / "p.py", "import sys\nsys.exit(0)\n")
    code, err = cli(f, capsys=capsys)
    assert code == 2 and "called sys.exit(0)" in err


def test_time_dependent_problem_without_initial_condition_is_refused(tmp_path, capsys):
    """Finding 8: a heat equation without pk.Initial trained and exited 0."""
    f = write(tmp_path / "p.py", "import pinnkit as pk\nx, t = pk.coords('x t')\nu = pk.field('u', x, t)\n"
              "problem = pk.Problem(name='noinit', domain=pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1), "
              "equations=[u.diff(t) - u.diff(x, 2)], conditions=[pk.Dirichlet(u, 0, on='boundary')])\n")
    code, err = cli(f, "--out", tmp_path / "o", "--steps", "3", "--quiet", capsys=capsys)
    assert code == 2 and "no initial condition of order 0; add pk.Initial(u, g)" in err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    """Finding 8: --resume without a checkpoint silently started from scratch."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="nock", rhs=1.0))
    code, err = cli(f, "--out", tmp_path / "o", "--quiet", "--resume", capsys=capsys)
    assert code == 2 and "no checkpoint at" in err and "to resume from" in err


@pytest.mark.parametrize("name", ["../escaped", "/tmp/abs_escaped", "a/b", ".."])
def test_problem_name_cannot_escape_runs(tmp_path, capsys, monkeypatch, name):
    """Finding 8: a problem named ../x or /abs/path wrote outside runs/."""
    monkeypatch.chdir(tmp_path)
    f = write(tmp_path / "p.py", POISSON_FILE.format(name=name, rhs=1.0))
    code, err = cli(f, "--quiet", capsys=capsys)
    assert code == 2 and "not a plain name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.py"]


@pytest.mark.parametrize("args, message", [
    (["--lr", "inf"], "option lr must be a finite number"),
    (["--lr", "nan"], "option lr must be"),
    (["--set", "fourier_scale=nan"], "option fourier_scale must be a finite number"),
    (["--set", "lr_decay=inf"], "option lr_decay must be a finite number"),
    (["--set", 'weights={"pde": NaN}'], "option weights: values must be finite"),
    (["--interior-points", "0"], "option interior_points is 0 but term 'pde' needs pde points"),
    (["--boundary-points", "0"], "option boundary_points is 0"),
])
def test_bad_numbers_are_refused_before_training(tmp_path, capsys, args, message):
    """Finding 8: --lr inf, fourier_scale=nan, --interior-points 0 were accepted and failed
    only after training, with misleading advice."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="bad", rhs=1.0))
    code, err = cli(f, "--out", tmp_path / "o", "--quiet", *args, capsys=capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "checkpoint.pt").exists()


# ----------------------------------------------------------------------------- finding 9

def test_mesh_with_nan_vertex_is_a_clear_error():
    """Finding 9: a mesh with a NaN vertex was a traceback."""
    pts = np.array([[0, 0], [1, 0], [0, np.nan], [1, 1]], float)
    with pytest.raises(pk.GeometryError, match=r"vertex 2 has a non-finite coordinate"):
        pk.Mesh(pts, {"triangle": np.array([[0, 1, 2], [1, 3, 2]])})


@pytest.mark.parametrize("name", ["fields.h5", "checkpoint.pt", "report.json"])
def test_directory_in_place_of_an_output_file(tmp_path, capsys, name):
    """Finding 9: a directory named fields.h5 or checkpoint.pt in the output folder was a
    traceback (after training)."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="dirs", rhs=1.0))
    (tmp_path / "o" / name).mkdir(parents=True)
    code, err = cli(f, "--out", tmp_path / "o", "--quiet", capsys=capsys)
    assert code == 2 and f"{name} is a directory" in err and err.count("\n") == 1


def _crafted(tmp_path, kind):
    ck = tmp_path / "o" / "checkpoint.pt"
    ck.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        ck.write_bytes(b"")
    elif kind == "truncated":
        save_checkpoint(ck, {"problem": "crafted", "model": {"w": torch.ones(1000)}})
        ck.write_bytes(ck.read_bytes()[:1500])
    elif kind == "missing key":
        torch.save({"problem": "crafted", "step": 3}, ck)
    elif kind == "pickled code":
        torch.save({"problem": "crafted", "x": np.float64(1.0).__class__}, ck)
    elif kind == "garbage":
        ck.write_bytes(os.urandom(4096))
    elif kind == "wrong shapes":     # a real checkpoint of this run, with its weights resized
        f = write(tmp_path / "p.py", POISSON_FILE.format(name="crafted", rhs=1.0))
        assert main([f, "--out", str(ck.parent), "--quiet", "--no-reference"]) == 0
        s = torch.load(ck, weights_only=True)
        s["model"] = {k: torch.zeros(1) for k in s["model"]}
        torch.save(s, ck)
    return ck


@pytest.mark.parametrize("kind, message", [
    ("empty", "is empty (0 bytes)"), ("truncated", "damaged or not a pinnkit checkpoint"),
    ("missing key", "missing fingerprint, model"), ("pickled code", "outside the plain-tensor"),
    ("garbage", "damaged or not a pinnkit checkpoint"), ("wrong shapes", "does not fit this network"),
])
def test_crafted_checkpoints_are_one_line_without_unsafe_advice(tmp_path, capsys, kind, message):
    """Finding 9: crafted/truncated checkpoints gave tracebacks, empty or [Errno 22] reasons
    and torch's advice to load with weights_only=False (never to be followed)."""
    _crafted(tmp_path, kind)
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="crafted", rhs=1.0))
    code, err = cli(f, "--out", tmp_path / "o", "--quiet", "--resume", capsys=capsys)
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "weights_only" not in err and "Errno" not in err


# ----------------------------------------------------------------------------- finding 10

def test_output_files_respect_the_umask(tmp_path, capsys):
    """Finding 10: outputs were created with mode 0600 whatever the umask."""
    old = os.umask(0o022)
    try:
        f = write(tmp_path / "p.py", POISSON_FILE.format(name="modes", rhs=1.0))
        assert cli(f, "--out", tmp_path / "o", "--quiet", "--no-reference", capsys=capsys)[0] == 0
    finally:
        os.umask(old)
    for name in ("fields.h5", "fields.xdmf", "report.json", "checkpoint.pt", "plots/u.png"):
        assert (tmp_path / "o" / name).stat().st_mode & 0o777 == 0o644, name


def test_two_runs_into_one_folder_are_refused(tmp_path, capsys):
    """Finding 10: two runs into the same --out raced silently."""
    f = write(tmp_path / "p.py", POISSON_FILE.format(name="race", rhs=1.0))
    (tmp_path / "o").mkdir()
    with open(tmp_path / "o" / ".pinnkit.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)      # another run holds the folder
        code, err = cli(f, "--out", tmp_path / "o", "--quiet", capsys=capsys)
    assert code == 2 and "in use by another pinnkit run" in err
    assert cli(f, "--out", tmp_path / "o", "--quiet", "--no-reference", capsys=capsys)[0] == 0


def test_coarse_burgers_reference_says_what_resolution_resolves_it():
    """Finding 10: a coarse Burgers reference failed with SciPy's 'Required step size is less
    than spacing between numbers' and no hint."""
    import math
    x, t = pk.coords("x t")
    u = pk.field("u", x, t)
    burgers = pk.Problem(name="burgers", domain=pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 1),
                         equations=[u.diff(t) + u * u.diff(x) - 0.01 / math.pi * u.diff(x, 2)],
                         conditions=[pk.Dirichlet(u, 0, on="boundary"), pk.Initial(u, -pk.sin(pk.pi * x))])
    with pytest.raises(pk.ReferenceSolverError,
                       match=r"grid does not resolve the solution: cell Péclet number .* = 2\.47 > 1 in x.*"
                             r"at least 316 points in x"):
        pk.reference(burgers, resolution={"x": 128, "t": 11})


def test_nonlinear_boundary_equation_prints_no_blas_errors(capfd):
    """Finding 10: 'illegal value' lines from BLAS on stdout (SuperLU on a Jacobian with zero
    rows, from a nonlinear boundary equation at Newton's start u = 0) and a two-line error."""
    x, y = pk.coords("x y")
    u = pk.field("u", x, y)
    prob = pk.Problem(name="nlbc", domain=pk.Rectangle((x, y), (0, 0), (1, 1)),
                      equations=[u.diff(x, 2) + u.diff(y, 2) - 1],
                      conditions=[pk.BoundaryEquation(u ** 2 - 1, on="x_min"),
                                  pk.Dirichlet(u, 1, on=["x_max", "y_min", "y_max"])])
    with pytest.raises(pk.ReferenceSolverError, match=r"zero row .* condition 'boundary_eq_x_min' at x = 0") as info:
        pk.reference(prob, resolution=33)
    out, err = capfd.readouterr()
    assert "illegal value" not in out + err and "\n" not in str(info.value)
