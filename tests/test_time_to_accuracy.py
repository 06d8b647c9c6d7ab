"""scripts/time_to_accuracy.py: the record every solver prints, its clock, the plot of several
records, and the JAX PINN being pinnkit's (same points, network, ansatz and loss)."""
import json
import runpy
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_data

SCRIPT = ROOT / "scripts" / "time_to_accuracy.py"
KEYS = {"solver", "seed", "options", "ran_s", "final_error", "reached_s", "messages", "trajectory"}


@pytest.fixture(scope="module")
def tta():
    shared_data("burgers_shock.npz")          # the error grid (skips without the shared data)
    ns = runpy.run_path(str(SCRIPT))
    yield ns
    ns["CLOCK"][0] = __import__("time").perf_counter


def synthetic_run(tta, errors, train_s=10.0, eval_s=3.0, budget=1e9, stop_at=None, seed=0):
    """A Tracker fed a prediction with relative error ``errors[i]`` at the i-th check, after
    ``train_s`` of training; each evaluation costs ``eval_s`` on the clock."""
    now = [100.0]
    tta["CLOCK"][0] = lambda: now[0]
    tr = tta["Tracker"](budget, stop_at)
    ref = tr.ref

    def predict_with(e):
        def predict(X, T):
            now[0] += eval_s
            assert X.shape == T.shape == ref.shape
            return ref * (1 + e)
        return predict
    stops = []
    for i, e in enumerate(errors):
        now[0] += train_s
        stops.append(tr.record("adam", 100 * (i + 1), predict_with(e)))
    now[0] += 1.0
    return tr.result("synthetic", seed, {"errors": list(errors)}, predict_with(errors[-1]), []), stops


def test_record_times_exclude_evaluation_and_first_hits(tta):
    r, stops = synthetic_run(tta, [2e-2, 3e-3, 5e-4, 2e-3, 5e-5])
    assert set(r) == KEYS
    assert not any(stops)
    # training time only: 10 s a check, evaluation (3 s each) off the clock
    assert [p[0] for p in r["trajectory"]] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert [tuple(p[1:3]) for p in r["trajectory"]] == [("adam", 100 * i) for i in range(1, 6)]
    np.testing.assert_allclose([p[3] for p in r["trajectory"]], [2e-2, 3e-3, 5e-4, 2e-3, 5e-5],
                               rtol=1e-9)
    assert r["reached_s"] == {"0.0047": 20.0, "0.001": 30.0, "0.0001": 50.0}
    assert r["ran_s"] == 51.0
    assert r["final_error"] == pytest.approx(5e-5, rel=1e-9)
    back = json.loads(json.dumps(r))                 # one JSON line, read back the same
    assert back["reached_s"] == r["reached_s"] and len(back["trajectory"]) == 5
    assert tta["first_hit"](back, 1e-3) == (30.0, "adam", 300)
    assert tta["first_hit"](back, 1e-6) is None


def test_record_stops_at_budget_and_at_target(tta):
    _, stops = synthetic_run(tta, [1e-1, 1e-1, 1e-1], budget=25.0)
    assert stops == [False, False, True]             # 30 s of training > 25 s
    _, stops = synthetic_run(tta, [1e-2, 9e-4, 1e-4], stop_at=1e-3)
    assert stops == [False, True, True]


def test_plot_round_trip_of_curves_files(tta, tmp_path):
    a, _ = synthetic_run(tta, [2e-2, 3e-3, 5e-4], seed=0)
    b, _ = synthetic_run(tta, [3e-2, 8e-3, 4e-3], seed=1, train_s=30.0)
    a["label"], b["label"] = "fast", "slow"
    curves = tmp_path / "curves.jsonl"
    curves.write_text("a note that is not a record\n" + json.dumps(a) + "\n" + json.dumps(b) + "\n")
    assert [r["seed"] for r in tta["read_curves"](curves)] == [0, 1]
    png = tmp_path / "curves.png"
    out = subprocess.run([sys.executable, str(SCRIPT), "--no-run", "--curves", str(curves),
                          "--plot", str(png)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""                           # plotting only: no runs printed
    from matplotlib.image import imread
    img = imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert img[..., :3].std() > 0.05                  # not a blank canvas
    assert not list(tmp_path.glob("*.tmp.png"))       # written atomically


def test_cli_refuses_pinnkit_options_for_other_solvers():
    out = subprocess.run([sys.executable, str(SCRIPT), "--solver", "jax", "--set", "width=8"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "--set and --recipe are pinnkit's options, not jax's" in out.stderr
    assert "Traceback" not in out.stderr


def test_jax_pinn_is_pinnkits_default_pinn(tta):
    jax = pytest.importorskip("jax")
    import torch
    from pinnkit.cli import load_problem_file
    from pinnkit.trainer import TrainOptions, Trainer
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    u, loss, init, points, net = tta["jax_pinn"](3)
    problem, opts = load_problem_file(ROOT / "problems" / "burgers.py")
    assert net == {k: opts[k] for k in ("width", "depth", "interior_points")}
    opts.update(steps=0, lbfgs_steps=0, seed=3, quiet=True, dtype="float64", compile=False)
    tr = Trainer(problem, TrainOptions.from_kwargs(**opts))
    X = tr.np_batches.interior.X
    np.testing.assert_array_equal(points, X)          # the same Sobol points
    p = [(jnp.asarray(W), jnp.asarray(b)) for W, b in init]
    uj = np.asarray(jax.vmap(u, (None, 0, 0))(p, jnp.asarray(X[:, 0]), jnp.asarray(X[:, 1])))
    ut = tr.model(torch.as_tensor(X)).detach().numpy()[:, 0]
    np.testing.assert_allclose(uj, ut, rtol=0, atol=1e-13)   # same weights and ansatz
    # the ansatz holds the initial and boundary values exactly
    xs = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(jax.vmap(u, (None, 0, 0))(p, jnp.asarray(xs), jnp.zeros(7)),
                               -np.sin(np.pi * xs), atol=1e-15)
    np.testing.assert_allclose(jax.vmap(u, (None, 0, 0))(p, jnp.asarray([-1.0, 1.0]),
                                                         jnp.asarray([0.3, 0.7])), 0, atol=1e-15)
    lt = float(tr.compiled.losses(tr.model, tr.params, tr.batches)["pde"].detach())
    assert float(loss(p, jnp.asarray(X))) == pytest.approx(lt, rel=1e-12)


def test_deepxde_record_has_the_same_shape(tta):
    pytest.importorskip("deepxde")
    # in a child process: DeepXDE seeds torch, numpy and random globally
    code = (f"import json, runpy; ns = runpy.run_path({str(SCRIPT)!r}); "
            "print(json.dumps(ns['run_deepxde'](0, budget=0.0, stop_at=None)))")  # 1st check stops
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(r) == KEYS and r["solver"] == "deepxde"
    assert len(r["trajectory"]) == 1 and tuple(r["trajectory"][0][1:3]) == ("adam", 100)
    assert 0 < r["final_error"] < 2 and r["final_error"] == pytest.approx(r["trajectory"][0][3])
