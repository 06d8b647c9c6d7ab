"""Options checked in one place before any work (pinnkit/options.py): every bad value is an
`OptionsError` from pk.train naming the option (and the valid choices, from the registries),
and one line with exit status 2 from the CLI."""
import subprocess
import sys

import pytest
import torch

import pinnkit as pk
from pinnkit.options import option_choices
from pinnkit.trainer import TrainOptions

from conftest import ROOT, load_problem

# one bad value for every option of pk.train (test_every_option_has_a_bad_value keeps this complete)
BAD = {
    "steps": -1, "lbfgs_steps": 2.5, "seed": -1, "device": "tpu", "dtype": "float16",
    "lbfgs_dtype": "half", "network": "bogus", "width": 0, "depth": -2, "activation": "bogus",
    "fourier_features": -1, "fourier_scale": 0.0, "fourier_scales": {"x": "wide"},
    "periodic_embedding": "yes", "weight_factorization": 1, "interior_points": -5,
    "boundary_points": "many", "initial_points": None, "sampling": "grid", "mesh_vertices": "no",
    "resample_every": -1, "time_windows": 1.5, "lr": float("nan"), "lr_decay": -0.5,
    "lr_decay_steps": 0, "lbfgs_history": -1, "weights": {"pde": "x"}, "hard_constraints": 1,
    "engine": "bogus", "compile": "fast", "optimizer": "adam", "causal_eps": -1.0,
    "causal_bins": 0, "loss_weighting": "bogus", "weight_every": 0, "weight_momentum": 1.0,
    "relobralo_alpha": "x", "relobralo_temperature": 0.0, "relobralo_saudade": 1.5,
    "ntk_points": 0, "point_weighting": "bogus", "rba_gamma": 1.0, "rba_eta": 0.0,
    "rba_every": 0, "adaptive": "bogus", "adaptive_every": 0, "adaptive_points": -5,
    "adaptive_candidates": -1, "rad_k": -1.0, "rad_c": float("inf"), "log_every": 0,
    "checkpoint": 3, "checkpoint_every": -1, "resume": "no", "quiet": "yes", "threads": -1,
    "progress_seconds": -1.0,
}


@pytest.fixture(scope="module")
def steady():
    return load_problem("poisson_robin1d")["problem"]


def test_every_option_has_a_bad_value():
    assert set(BAD) == set(TrainOptions.names())


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_option_is_an_options_error_naming_it(name, steady, tmp_path):
    ck = tmp_path / "checkpoint.pt"
    kw = {"steps": 5, "lbfgs_steps": 0, "quiet": True, "checkpoint": str(ck), name: BAD[name]}
    rng = torch.random.get_rng_state()
    with pytest.raises(pk.OptionsError, match=rf"\b{name}\b") as info:
        pk.train(steady, **kw)
    assert isinstance(info.value, pk.TrainingError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, pk.PinnkitError)
    if name in option_choices():    # the valid names, read from the registry
        assert ", ".join(option_choices()[name]) in str(info.value)
    assert not ck.exists()          # raised before any work: no checkpoint, no training
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_choices_come_from_the_registries():
    from pinnkit.derivatives import ENGINES
    from pinnkit.geometry import SAMPLERS
    from pinnkit.nn import ACTIVATIONS, NETWORKS
    from pinnkit.pinn.points import ADAPTIVE_SAMPLING, POINT_WEIGHTINGS
    from pinnkit.pinn.second_phase import SECOND_PHASES
    from pinnkit.weighting import WEIGHTINGS
    c = option_choices()
    assert c["network"] == tuple(NETWORKS) and c["activation"] == tuple(ACTIVATIONS)
    assert c["engine"] == tuple(ENGINES) and c["sampling"] == tuple(SAMPLERS)
    assert c["optimizer"] == tuple(SECOND_PHASES)
    assert c["loss_weighting"] == ("fixed", *WEIGHTINGS)
    assert c["adaptive"] == ("none", *ADAPTIVE_SAMPLING)
    assert c["point_weighting"] == ("none", *POINT_WEIGHTINGS)


def test_unknown_option_and_method():
    p = load_problem("poisson_robin1d")["problem"]
    with pytest.raises(pk.OptionsError, match="unknown option.*stepz"):
        pk.train(p, stepz=3)
    with pytest.raises(pk.OptionsError, match="unknown method 'sde'; choose from pinn, ode"):
        pk.train(p, method="sde")


@pytest.mark.parametrize("problem,kw,message", [
    ("poisson_robin1d", {"time_windows": 4}, "option time_windows needs a time-dependent problem"),
    ("poisson_robin1d", {"causal_eps": 1.0}, "option causal_eps needs a time-dependent problem"),
    ("poisson_robin1d", {"periodic_embedding": True}, "option periodic_embedding: .*no Periodic"),
    ("poisson_robin1d", {"weights": {"nope": 1.0}}, "option weights .*unknown term.*nope"),
    ("poisson_robin1d", {"fourier_features": 4, "fourier_scales": {"z": 1.0}},
     "fourier_scales for unknown coordinate.*z; coordinates: x"),
    ("allen_cahn", {"periodic_embedding": True, "fourier_features": 4, "fourier_scales": {"x": 2.0}},
     "fourier_scales cannot be combined with periodic_embedding"),
    ("poisson_robin1d", {"mesh_vertices": True}, "option mesh_vertices needs a domain on a pk.Mesh"),
    ("poisson_robin1d", {"interior_points": 0}, "option interior_points is 0 but term 'pde'"),
    ("heat1d", {"initial_points": 0}, "option initial_points is 0"),
    ("poisson_robin1d", {"width": 10**9}, r"width=1000000000.*parameters.*GiB of memory"),
    ("poisson_robin1d", {"depth": 10**12}, r"depth=1000000000000.*parameters.*GiB of memory"),
    ("poisson_robin1d", {"optimizer": "bfgs", "lbfgs_steps": 5, "width": 200},
     r"optimizer='bfgs' keeps a dense 121201 x 121201 inverse Hessian.*optimizer='lbfgs'"),
])
def test_options_that_depend_on_the_problem(problem, kw, message, tmp_path):
    ck = tmp_path / "checkpoint.pt"
    with pytest.raises(pk.OptionsError, match=message):
        pk.train(load_problem(problem)["problem"], steps=5, lbfgs_steps=kw.pop("lbfgs_steps", 0),
                 quiet=True, checkpoint=str(ck), **kw)
    assert not ck.exists()


def test_hard_constraints_need_no_points_for_the_terms_they_enforce():
    # heat1d's Dirichlet and initial conditions are exact with hard_constraints: 0 points is fine
    sol = pk.train(load_problem("heat1d")["problem"], steps=2, lbfgs_steps=0, width=8, depth=1,
                   interior_points=50, boundary_points=0, initial_points=0, hard_constraints=True,
                   quiet=True)
    assert len(sol.history["loss"]) >= 1


def test_a_dense_optimizer_on_a_small_network_is_accepted():
    sol = pk.train(load_problem("poisson_robin1d")["problem"], steps=2, lbfgs_steps=2, width=8,
                   depth=2, interior_points=32, boundary_points=4, optimizer="bfgs", quiet=True)
    assert sol.final_loss == sol.final_loss     # trained, finite


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_options_error():
    with pytest.raises(pk.OptionsError, match="option device: 'cuda' requested but CUDA is not"):
        pk.train(load_problem("poisson_robin1d")["problem"], device="cuda", steps=1)


@pytest.mark.parametrize("kw,message", [
    ({"ode_solver": "bogus"}, "option ode_solver must be one of dopri5"),
    ({"seed": -1}, "option seed must be a non-negative integer"),
    ({"batch_time": 1}, "option batch_time must be 0"),
    ({"adjoint": "yes"}, "option adjoint must be true or false"),
    ({"lr": float("inf")}, "option lr must be a positive number"),
    ({"width": 3}, "unknown option.*width.*method='ode'"),
    ({"lbfgs_loss": "shooting"}, "option lbfgs_loss must be one of trajectory, windows"),
    ({"lbfgs_loss": "windows"}, "lbfgs_loss='windows' fits the sub-trajectories .* batch_time > 0"),
])
def test_ode_options(kw, message):
    with pytest.raises(pk.OptionsError, match=message):
        pk.train(load_problem("lotka_volterra_ude")["problem"], method="ode", steps=1, **kw)


@pytest.mark.parametrize("args,message", [
    (["--set", "network=bogus"], "option network must be one of mlp, modified_mlp, pirate, got 'bogus'"),
    (["--set", "activation=bogus"], "option activation must be one of tanh, sin,"),
    (["--set", 'weights={"pde":"x"}'], "option weights: values must be finite numbers >= 0"),
    (["--seed", "-1"], "option seed must be a non-negative integer, got -1"),
    (["--width", str(10**9)], "width=1000000000, depth=3 (network 'mlp') give a network of"),
    (["--set", "time_windows=3"], "option time_windows needs a time-dependent problem"),
])
def test_cli_bad_option_one_line_exit_2(args, message, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "solve.py"),
                        "problems/poisson_robin1d.py", "--out", str(tmp_path / "out"), *args],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: problem 'poisson_robin1d': ") and r.stderr.count("\n") == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()      # refused before the output folder is made


OPERATOR_PROBLEM = '''
import pinnkit as pk
x, t = pk.coords("x t")
u = pk.field("u", x, t)
u0 = pk.input_field("u0", x)
problem = pk.Problem("heat_opts", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.01),
                     [u.diff(t) - u.diff(x, 2)], [pk.Periodic(u, x), pk.Initial(u, u0)])
samplers = {"u0": pk.GaussianRandomField(sigma=10.0, tau=3.0, alpha=2.0)}
options = {"n_train": 8, "n_test": 4, "resolution": 32, "epochs": 2, "quiet": True}
'''


@pytest.mark.parametrize("args,message", [
    (["--model", "unet"], "option model: unknown model 'unet'; choose one of fno"),
    (["--epochs", "0"], "option epochs must be a positive integer, got 0"),
    (["--lr", "-1"], "option lr must be a positive number, got -1.0"),
    (["--device", "tpu"], "option device must be one of auto, cpu, cuda (or cuda:N), got 'tpu'"),
    (["--n-val", "0"], "option n_val must be a positive integer, got 0"),
    (["--seed", "-3"], "option seed must be a non-negative integer, got -3"),
])
def test_operator_cli_bad_option_before_any_dataset(args, message, tmp_path, capsys):
    from pinnkit.operator.cli import main
    f = tmp_path / "heat_opts.py"
    f.write_text(OPERATOR_PROBLEM)
    out = tmp_path / "out"
    assert main([str(f), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: problem 'heat_opts': {message}"
    assert not out.exists()     # no dataset made

