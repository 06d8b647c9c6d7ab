"""Full-accuracy runs with each problem's default options, or its `recipes["accurate"]` where
the default is a short first run (minutes each, up to half an hour): `pytest -m slow`."""
import math

import numpy as np
import pytest

import pinnkit as pk
from pinnkit.metrics import evaluate, metrics_of

from conftest import l2re, load_problem, shared_data

pytestmark = pytest.mark.slow


def _train(name, seed=0, recipe=None):
    ns = load_problem(name)
    options = {**ns["options"], **(ns["recipes"][recipe] if recipe else {})}
    return ns["problem"], pk.train(ns["problem"], seed=seed, quiet=True, **options)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_burgers_each_seed(seed):
    problem, sol = _train("burgers", seed)
    d = shared_data("burgers_shock.npz")
    X, T = np.meshgrid(d["x"], d["t"])
    assert l2re(sol({"x": X, "t": T})["u"], d["u"]) <= 1e-3


@pytest.mark.parametrize("name", ["poisson_robin1d", "heat1d", "poisson2d", "heat2d_neumann",
                                  "helmholtz2d", "poisson_plate_hole", "heat_lshape", "laplace3d"])
def test_problem_defaults_reach_1e_2(name):
    problem, sol = _train(name)
    m = metrics_of(evaluate(problem, sol, None))
    assert m["u"]["l2re_exact"] <= 1e-2


def test_burgers_inverse_recovers_nu():
    problem, sol = _train("burgers_inverse")
    nu = math.exp(sol.parameters["log_nu"])
    assert abs(nu - 0.01 / math.pi) / (0.01 / math.pi) <= 0.02


def test_wave1d_c_beats_published_best():
    problem, sol = _train("wave1d_c", recipe="accurate")
    m = metrics_of(evaluate(problem, sol, None))
    assert m["u"]["l2re_exact"] < 9.79e-2   # PINNacle's best published Wave1d-C error


def test_allen_cahn_against_data():
    problem, sol = _train("allen_cahn", recipe="accurate")
    d = shared_data("allen_cahn.npz")
    X, T = np.meshgrid(d["x"], d["t"])
    err = l2re(sol({"x": X, "t": T})["u"], d["u"])
    assert err <= 1e-3  # the target; measured 7.3e-4 with the file's recipe (docs/accuracy.md)


def test_poisson2d_c_recipe_reaches_1e_2_vs_reference():
    problem, sol = _train("poisson2d_c", recipe="accurate")
    ref = pk.reference(problem, resolution=129)
    m = metrics_of(evaluate(problem, sol, ref))
    assert m["u"]["l2re_reference"] <= 1e-2   # PINNacle best 1.23e-2; measured 8.7e-4 (NTK recipe)


def test_ns2d_c_recipe_vs_reference():
    problem, sol = _train("ns2d_c", recipe="accurate")
    ref = pk.reference(problem)
    pinn = sol(ref.points())
    stack = lambda v: np.stack([v[f] for f in ("u", "v", "p")])  # noqa: E731
    # measured 5.0e-3 (u 3.0e-3, v 3.9e-3, p 1.7e-2) in 1134 s (NTK weighting); PINNacle best 3.6e-2
    assert l2re(stack(pinn), stack(ref.fields)) <= 1e-2
    assert max(l2re(pinn[f], ref.fields[f]) for f in "uv") <= 1e-2


def test_heat2d_ms_recipe_reaches_1e_2_vs_exact():
    problem, sol = _train("heat2d_ms", recipe="accurate")
    m = metrics_of(evaluate(problem, sol, None))
    assert m["u"]["l2re_exact"] <= 1e-2   # measured 7.3e-3 in 1229 s (one thread)
