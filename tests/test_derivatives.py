import sympy
import torch

from pinnkit.derivatives import DerivativePlan, compute_derivatives
from pinnkit.expr import compile_expr

xs = sympy.symbols("x y t", real=True)
X_, Y_, T_ = xs
FUNCS = {"u": sympy.sin(2 * X_) * sympy.exp(Y_ * T_) + X_ ** 3 * T_,
         "v": sympy.cos(X_ * Y_) + sympy.tanh(T_ - X_)}


class Analytic(torch.nn.Module):
    """A 'network' whose outputs are known functions, to check derivatives analytically."""

    def __init__(self):
        super().__init__()
        self.fns = [compile_expr(list(xs), e, "torch") for e in FUNCS.values()]

    def forward(self, X):
        return torch.stack([f(X[:, 0], X[:, 1], X[:, 2]) for f in self.fns], dim=1)


def _analytic(field, orders):
    e = FUNCS[field]
    for s, n in zip(xs, orders):
        if n:
            e = sympy.diff(e, s, n)
    return compile_expr(list(xs), e, "torch")


def test_plan_reuses_parents():
    plan = DerivativePlan([("u", (1, 0, 0)), ("u", (2, 0, 0)), ("u", (1, 1, 0))], ["u"], 3)
    # u_xx and u_xy both come from one backward pass of u_x
    assert plan.parent[("u", (2, 0, 0))] == (("u", (1, 0, 0)), 0)
    assert plan.parent[("u", (1, 1, 0))] == (("u", (1, 0, 0)), 1)
    assert ("u", (0, 0, 0)) in plan.keys


def test_nested_autograd_matches_analytic_derivatives():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(64, 3, generator=g, dtype=torch.float64)
    keys = [(f, o) for f in ("u", "v") for o in
            [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (2, 0, 0), (1, 1, 0), (1, 0, 1),
             (0, 2, 1), (3, 0, 0), (4, 0, 0), (2, 2, 0), (1, 1, 1)]]
    plan = DerivativePlan(keys, ["u", "v"], 3)
    out = compute_derivatives(Analytic(), X, plan)
    assert set(out) == set(keys)
    for (f, o), value in out.items():
        expected = _analytic(f, o)(X[:, 0], X[:, 1], X[:, 2])
        expected = torch.as_tensor(expected, dtype=torch.float64).expand_as(value)
        assert torch.allclose(value, expected, atol=1e-6, rtol=1e-6), (f, o)


def test_derivative_of_constant_output_is_zero():
    class Const(torch.nn.Module):
        def forward(self, X):
            return torch.ones(len(X), 1, dtype=X.dtype) * 3.0 + 0 * X[:, :1]
    X = torch.rand(5, 2, dtype=torch.float64)
    out = compute_derivatives(Const(), X, DerivativePlan([("u", (2, 0))], ["u"], 2))
    assert torch.all(out[("u", (2, 0))] == 0)
