"""Each condition kind's loss is ~0 for the exact solution and clearly > 0 for a perturbed one."""
import numpy as np
import pytest
import sympy
import torch

import pinnkit as pk
from pinnkit.expr import compile_expr
from pinnkit.losses import CompiledProblem, sample_batches

from conftest import load_problem


class ExactModel(torch.nn.Module):
    def __init__(self, problem, exprs):
        super().__init__()
        self.fns = [compile_expr(list(problem.coords), exprs[f], "torch") for f in problem.fields]

    def forward(self, X):
        cols = [X[:, i] for i in range(X.shape[1])]
        return torch.stack([torch.as_tensor(f(*cols), dtype=X.dtype).expand(len(X))
                            for f in self.fns], dim=1)


def term_losses(problem, exprs, params=None):
    comp = CompiledProblem(problem)
    batches = sample_batches(problem, comp.terms, 512, 128, 128, seed=0)
    batches = batches.map(lambda a: torch.as_tensor(a, dtype=torch.float64))
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in (params or {}).items()}
    losses = comp.losses(ExactModel(problem, exprs), params, batches)
    return {k: float(v.detach()) for k, v in losses.items()}


def perturbed(problem):
    bump = sum(problem.coords) * 0 + sympy.Rational(1, 10) * sympy.sin(
        3 * sum(problem.coords) + 1)
    return {f: e + bump for f, e in problem.exact.items()}


@pytest.mark.parametrize("name,kinds", [
    ("heat1d", {"dirichlet_u_boundary", "initial_u"}),
    ("poisson_robin1d", {"robin_u_x_min", "robin_u_x_max"}),
    ("poisson2d", {"dirichlet_u_x_min_y_min_hole", "neumann_u_x_max", "neumann_u_y_max"}),
    ("heat2d_neumann", {"neumann_u_boundary", "initial_u"}),
    ("wave1d_c", {"initial_u", "initial_u_t1", "dirichlet_u_boundary"}),
    ("helmholtz2d", {"dirichlet_u_boundary"}),
])
def test_exact_solution_has_zero_loss(name, kinds):
    problem = load_problem(name)["problem"]
    exact = term_losses(problem, problem.exact)
    assert kinds <= set(exact)
    assert max(exact.values()) < 1e-20, exact
    bad = term_losses(problem, perturbed(problem))
    for k in set(exact):
        assert bad[k] > 1e-4, (k, bad[k])


def _periodic_problem():
    x, t = pk.coords("x t")
    u = pk.field("u", x, t)
    exact = pk.sin(pk.pi * x) * pk.exp(-pk.pi ** 2 * t)
    return pk.Problem("p", pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 1),
                      [u.diff(t) - u.diff(x, 2)],
                      [pk.Periodic(u, x), pk.BoundaryEquation(pk.normal(x) * u.diff(x) -
                                                              pk.normal(x) * exact.diff(x))],
                      exact={"u": exact}), x, t


def test_periodic_and_boundary_equation():
    problem, x, t = _periodic_problem()
    assert max(term_losses(problem, problem.exact).values()) < 1e-20
    # u = cos(pi x / 2) matches values at +-1 but not its derivative: periodic loss > 0
    bad = term_losses(problem, {"u": sympy.cos(sympy.pi * x / 2) + x / 10})
    assert bad["periodic_u_x"] > 1e-3 and bad["boundary_eq_boundary"] > 1e-3


def test_data_and_parameter_losses():
    x, t = pk.coords("x t")
    u = pk.field("u", x, t)
    k = pk.parameter("k", init=0.5)
    exact = sympy.exp(-2 * t) * sympy.sin(x)
    rng = np.random.default_rng(0)
    xs, ts = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    vals = np.exp(-2 * ts) * np.sin(xs)
    problem = pk.Problem("inv", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                         [u.diff(t) - k * u.diff(x, 2)],
                         [pk.Data(u, {"x": xs, "t": ts}, vals)])
    good = term_losses(problem, {"u": exact}, {"k": 2.0})
    assert good["pde"] < 1e-20 and good["data_u"] < 1e-20
    bad = term_losses(problem, {"u": exact}, {"k": 1.0})
    assert bad["pde"] > 1e-3 and bad["data_u"] < 1e-20
