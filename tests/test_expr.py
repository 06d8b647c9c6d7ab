"""The expression compiler (`pinnkit.expr`): torch, numpy and mpmath agree on every construct.

A corpus of expressions (every supported construct, nested, with constant subterms, plus every
equation, condition and exact solution of the shipped problem files) is evaluated at random
points by the torch path (float64), the numpy path and sympy's mpmath lambdify at 40 digits;
the three must agree to 1e-12 relative. Derivatives of the differentiable ones through the
derivative engine are checked against sympy's symbolic derivatives the same way.
"""
import glob
import os

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

import pinnkit as pk
from pinnkit.cli import load_problem_file
from pinnkit.derivatives import DerivativePlan, compute_derivatives
from pinnkit.expr import check_expr, compile_expr
from pinnkit.learned import network_calls
from pinnkit.fd.inputs import conservative_placeholders, input_symbols

x, y, t = sp.symbols("x y t", real=True)
ARGS = [x, y, t]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (expression, differentiable on the sample box [0.1, 0.9]^3)
CORPUS = [
    (sp.sqrt(2) * sp.pi**2 * sp.sin(sp.pi * x), True),
    (2 * sp.cos(1) - sp.sin(1) + x, True),
    (sp.Rational(1, 3) * x**3 - sp.Rational(2, 7), True),
    (sp.E**x + sp.exp(sp.Rational(1, 2)) * y, True),
    (x**sp.Rational(3, 2) + y**sp.Rational(-1, 3), True),
    (x**-2 + (x + y)**5 - t**7, True),
    (sp.sqrt(x * y + 1) / (1 + t**2), True),
    (1 / sp.sqrt(x + sp.pi), True),
    (sp.Abs(x - y) * sp.sign(x - 0.5), False),
    (sp.Abs(sp.sin(3 * x)) + sp.Abs(-2), False),
    (sp.Min(x, y) + sp.Max(x, y, t), False),
    (sp.Max(x, sp.Rational(1, 2)) - sp.Min(0.3, t), False),
    (sp.Piecewise((x**2, x < 0.5), (1 - x, True)), False),
    (sp.Piecewise((sp.sin(x), (x < 0.4) & (y > 0.2)), (sp.cos(y), x > 0.7), (1, True)), False),
    (sp.Piecewise((1, x <= y), (0, True)) * t, False),
    (sp.Piecewise((2.5, sp.Or(x < 0.2, t >= 0.8)), (-1, True)), False),
    (sp.Piecewise((x, sp.Not(x < y)), (y, True)), False),
    (sp.Heaviside(x - 0.5), False),
    (sp.Heaviside(y - t, 1) + sp.Heaviside(x - y, 0), False),
    (sp.atan2(y, x) + sp.atan2(1, x), True),
    (sp.atan2(sp.sin(x), sp.cos(y) - 2), True),
    (sp.exp(-x**2 / (2 * sp.sqrt(3))) * sp.log(1 + y), True),
    (sp.log(x) * sp.log(sp.pi), True),
    (sp.sin(x) * sp.cos(y) * sp.tan(t), True),
    (sp.asin(x) + sp.acos(y) + sp.atan(t), True),
    (sp.sinh(x) * sp.cosh(y) - sp.tanh(t), True),
    (sp.asinh(x) + sp.acosh(1 + y) + sp.atanh(t - 0.5), True),
    (sp.cot(x + 0.2) + sp.sec(y) + sp.csc(t + 0.1), True),
    (sp.coth(x) + sp.sech(y) + sp.csch(t), True),
    (sp.acot(x), True),
    (sp.erf(x - y) + sp.erfc(t), True),
    (sp.erf(sp.Rational(1, 2)) * x, True),
    (sp.floor(5 * x) + sp.ceiling(3 * y), False),
    (sp.exp(sp.sin(sp.pi * x) * sp.cos(sp.pi * y)) * sp.exp(-t), True),
    (sp.tanh(sp.sqrt(2) * x) ** 2 + sp.cosh(sp.cos(1)) * y, True),
    (x * sp.sin(1 / (x + 1)) + y**sp.pi, True),
    (2**x + sp.pi**t, True),
    (sp.exp(x) ** sp.Rational(1, 3) - sp.cbrt(y + 1), True),
    (sp.Abs(x) ** 3 + sp.sqrt(sp.Abs(y - 0.5) + 1), False),
    (sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1 + t, True),
    (sp.Integer(3), True),
    (sp.sqrt(2), True),
    (sp.Rational(-5, 9), True),
    (sp.pi * sp.E, True),
    (sp.sin(1) ** 2 + sp.cos(sp.Rational(1, 3)), True),
    (sp.Float("1.41421356237309505") * x, True),
    (-sp.sin(sp.pi * x) * sp.exp(-sp.pi**2 * t / 10), True),
    (sp.exp(-(x**2 + y**2) / sp.Rational(1, 10)), True),
    (sp.Piecewise((sp.exp(-1 / (1 - (2 * x - 1) ** 2)), sp.Abs(2 * x - 1) < 1), (0, True)), False),
    (sp.Max(sp.sin(x), sp.cos(x)) * sp.Heaviside(t - sp.Rational(1, 2)), False),
    (sp.log(1 + sp.exp(x * y)) / sp.log(2), True),
    (1 / (1 + 25 * x**2) - sp.atan(5 * x) / 5, True),
]


def _problem_expressions():
    """(label, args, expr) of every term and sympy exact solution of problems/*.py."""
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "problems", "*.py"))):
        problem, _ = load_problem_file(path)
        name = os.path.basename(path)
        for term in problem.terms:
            for i, e in enumerate(term.exprs):
                # as the solvers see them: conservative fluxes and input fields are arguments
                e, _, flux = conservative_placeholders(problem, e)
                e, inputs = input_symbols(problem, e)
                learned = {c: sp.Dummy(f"learned{k}") for k, c in enumerate(network_calls(e))}
                sub, _, syms, normals = problem.placeholders(e.xreplace(learned))
                args = (list(problem.coords) + inputs + normals + problem.parameters + syms + flux
                        + list(learned.values()))
                out.append((f"{name}:{term.name}[{i}]", args, sub))
        for f, e in problem.exact.items():
            if isinstance(e, sp.Basic):
                out.append((f"{name}:exact[{f}]", list(problem.coords), e))
    return out


def _points(n_args, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.1, 0.9, n) for _ in range(n_args)]


def _mpmath_values(args, expr, cols):
    fn = sp.lambdify(args, expr, "mpmath")
    with mpmath.workdps(40):
        vals = [fn(*[mpmath.mpf(float(c[i])) for c in cols]) for i in range(len(cols[0]))]
        return np.array([float(mpmath.re(v)) for v in vals])


def _agree(value, ref, n):
    value = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
    scale = max(1.0, float(np.max(np.abs(ref))))
    return float(np.max(np.abs(value - ref))) / scale


def _check_three_ways(args, expr, seed=0):
    cols = _points(len(args), seed=seed)
    ref = _mpmath_values(args, expr, cols)
    assert np.all(np.isfinite(ref)), expr
    n = len(ref)
    f_np = compile_expr(args, expr, "numpy")
    f_t = compile_expr(args, expr, "torch")
    v_np = f_np(*cols)
    v_t = f_t(*[torch.tensor(c, dtype=torch.float64) for c in cols])
    if isinstance(v_t, torch.Tensor):
        assert v_t.dtype == torch.float64, (expr, v_t.dtype)
        v_t = v_t.numpy()
    assert _agree(v_np, ref, n) < 1e-12, (expr, "numpy")
    assert _agree(v_t, ref, n) < 1e-12, (expr, "torch")


def test_corpus_is_large_enough():
    assert len(CORPUS) + len(_problem_expressions()) >= 50
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("i", range(len(CORPUS)))
def test_torch_numpy_and_mpmath_agree(i):
    _check_three_ways(ARGS, CORPUS[i][0], seed=i)


def test_every_problem_file_expression_agrees():
    exprs = _problem_expressions()
    assert len(exprs) >= 30
    for label, args, expr in exprs:
        try:
            _check_three_ways(args, expr)
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from None


class _ExprModel(torch.nn.Module):
    """A 'network' whose one output is a compiled expression of (x, y, t)."""

    def __init__(self, expr):
        super().__init__()
        self.fn = compile_expr(ARGS, expr, "torch")

    def forward(self, X):
        v = self.fn(X[:, 0], X[:, 1], X[:, 2])
        return torch.as_tensor(v, dtype=X.dtype).expand(len(X)).reshape(-1, 1) + 0 * X[:, :1]


DERIVATIVE_KEYS = [(1, 0, 0), (0, 1, 0), (2, 0, 0), (1, 1, 0), (0, 0, 2), (1, 0, 1)]


@pytest.mark.parametrize("i", [i for i, (_, smooth) in enumerate(CORPUS) if smooth])
def test_derivatives_through_the_engine_agree_with_sympy(i):
    expr = CORPUS[i][0]
    cols = _points(3, n=16, seed=100 + i)
    X = torch.tensor(np.stack(cols, axis=1), dtype=torch.float64)
    plan = DerivativePlan([("u", o) for o in DERIVATIVE_KEYS], ["u"], 3)
    out = compute_derivatives(_ExprModel(expr), X, plan, engine="autograd", create_graph=False)
    for o in DERIVATIVE_KEYS:
        d = expr
        for s, k in zip(ARGS, o):
            if k:
                d = sp.diff(d, s, k)
        ref = _mpmath_values(ARGS, d, cols)
        got = out[("u", o)].detach().numpy()
        # nested autograd of float64 arithmetic: a few ulps per derivative level
        assert _agree(got, ref, len(ref)) < 1e-11, (expr, o)


def test_constants_take_the_dtype_and_device_of_the_arguments():
    exprs = [sp.Piecewise((sp.sqrt(2), x < 0.5), (sp.cos(1), True)), sp.Max(x, sp.pi / 4),
             sp.atan2(1, x), sp.Heaviside(x - 0.5), sp.sqrt(3) * x]
    for dtype in (torch.float32, torch.float64):
        X = torch.linspace(0.1, 0.9, 7, dtype=dtype)
        for e in exprs:
            v = compile_expr([x], e, "torch")(X)
            assert v.dtype == dtype and v.device == X.device, (e, v.dtype)
            ref = compile_expr([x], e, "numpy")(X.double().numpy())
            tol = 1e-6 if dtype == torch.float32 else 1e-14
            assert np.allclose(v.double().numpy(), ref, rtol=tol, atol=tol), e


def test_constants_are_evaluated_once_as_floats():
    src = compile_expr([x], sp.sqrt(2) * sp.cos(1) * sp.sin(sp.pi * x), "torch").source
    assert "sqrt" not in src and "cos" not in src and "_F.sin(" in src
    assert repr(float(sp.sqrt(2) * sp.cos(1) * sp.pi)) in src or \
        repr(float(sp.sqrt(2) * sp.cos(1))) in src


@pytest.mark.parametrize("bad, name", [
    (sp.gamma(x), "gamma"),
    (sp.besselj(0, x), "besselj"),
    (sp.Function("g")(x), "g(x)"),
    (sp.Mod(x, 2), "Mod"),
    (sp.sqrt(-2) * x, "not a real number"),
    (sp.log(0) + x, "finite"),
])
def test_untranslatable_expressions_name_the_subexpression(bad, name):
    with pytest.raises(pk.SpecError, match=name.replace("(", r"\(").replace(")", r"\)")):
        check_expr(ARGS, bad, "equation 'pde'")


def test_problem_rejects_untranslatable_expression_at_construction():
    xx = pk.coords("x")
    u = pk.field("u", xx)
    with pytest.raises(pk.SpecError, match=r"equation 'pde': gamma\(x\)"):
        pk.Problem("bad", pk.Interval(xx, 0, 1), [u.diff(xx, 2) + sp.gamma(xx)],
                   [pk.Dirichlet(u, 0, on="boundary")])
    with pytest.raises(pk.SpecError, match=r"besselj\(0, Derivative\(u\(x\), x\)\)"):
        pk.Problem("bad", pk.Interval(xx, 0, 1), [u.diff(xx, 2) + sp.besselj(0, u.diff(xx))],
                   [pk.Dirichlet(u, 0, on="boundary")])
    with pytest.raises(pk.SpecError, match=r"exact\['u'\]"):
        pk.Problem("bad", pk.Interval(xx, 0, 1), [u.diff(xx, 2)],
                   [pk.Dirichlet(u, 0, on="boundary")], exact={"u": sp.gamma(xx)})
