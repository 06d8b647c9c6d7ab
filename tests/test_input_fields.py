"""Input fields in specs and the conservative (face-flux) discretization of div(a grad u)."""

import numpy as np
import pytest
import sympy

import pinnkit as pk
from pinnkit.spec import ConservativeDerivative

x, y = pk.coords("x y")


def _darcy1d(rhs):
    u, a = pk.field("u", x), pk.input_field("a", x)
    return pk.Problem("flux1d", pk.Interval(x, 0, 1),
                      [pk.Eq(-pk.div([a * g for g in pk.grad(u)]), rhs)], [pk.Dirichlet(u, 0)])


def test_div_with_input_coefficient_stays_conservative():
    u, a = pk.field("u", x, y), pk.input_field("a", x, y)
    e = pk.div([a * g for g in pk.grad(u)])
    assert e.atoms(ConservativeDerivative) and not e.atoms(sympy.Derivative) - {
        u.diff(x), u.diff(y)}
    # without an input coefficient div is the plain derivative (PINN path unchanged)
    assert pk.div([(1 + x) * g for g in pk.grad(u)]) == sympy.diff((1 + x) * u.diff(x), x) + \
        sympy.diff((1 + x) * u.diff(y), y)
    p = pk.Problem("d", pk.Rectangle((x, y), (0, 0), (1, 1)), [pk.Eq(-e, 1)], [pk.Dirichlet(u, 0)])
    assert list(p.inputs) == ["a"] and list(p.fields) == ["u"]


def test_smooth_coefficient_second_order():
    aex = 1 + 0.5 * sympy.sin(2 * sympy.pi * x)
    uex = sympy.sin(sympy.pi * x)
    p = _darcy1d(-sympy.diff(aex * sympy.diff(uex, x), x))
    af, uf = sympy.lambdify(x, aex), sympy.lambdify(x, uex)
    errs = []
    for n in (21, 41, 81):
        r = pk.reference(p, resolution=n, inputs={"a": af})
        errs.append(np.max(np.abs(r.fields["u"] - uf(r.coords["x"]))))
    orders = np.log2(np.array(errs[:-1]) / errs[1:])
    assert np.all(np.abs(orders - 2) < 0.05), orders
    # a grid array gives the same solution as the callable
    xs = np.linspace(0, 1, 41)
    r2 = pk.reference(p, resolution=41, inputs={"a": af(xs)})
    assert np.max(np.abs(r2.fields["u"] - uf(xs))) == pytest.approx(errs[1], rel=1e-9)


def test_discontinuous_coefficient_converges():
    # -(a u')' = 1, a = 1 left of c, 10 right of c (c off the grid), u(0) = u(1) = 0:
    # u piecewise quadratic with a continuous flux a u' = C - x
    c, a1, a2 = 0.5 + 0.1 / np.pi, 1.0, 10.0
    C = ((1 - c ** 2) / (2 * a2) + c ** 2 / (2 * a1)) / (c / a1 - (c - 1) / a2)

    def exact(X):
        return np.where(X < c, (C * X - X ** 2 / 2) / a1, (C * (X - 1) - (X ** 2 - 1) / 2) / a2)

    p = _darcy1d(1)
    errs = []
    for n in (41, 161, 641, 2561):
        r = pk.reference(p, resolution=n, inputs={"a": lambda X: np.where(X < c, a1, a2)})
        X = r.coords["x"]
        errs.append(np.max(np.abs(r.fields["u"] - exact(X))) / np.max(np.abs(exact(X))))
        assert errs[-1] <= 2.0 / (n - 1)   # first order (the jump sits inside a cell)
    assert errs[-1] < errs[0] / 100


def test_two_dimensional_flux_matches_manufactured_solution():
    u, a = pk.field("u", x, y), pk.input_field("a", x, y)
    aex = 2 + sympy.cos(sympy.pi * x) * sympy.sin(sympy.pi * y)
    uex = sympy.sin(sympy.pi * x) * sympy.sin(2 * sympy.pi * y)
    f = -(sympy.diff(aex * uex.diff(x), x) + sympy.diff(aex * uex.diff(y), y))
    p = pk.Problem("flux2d", pk.Rectangle((x, y), (0, 0), (1, 1)),
                   [pk.Eq(-pk.div([a * g for g in pk.grad(u)]), f)], [pk.Dirichlet(u, 0)])
    errs = []
    for n in (17, 33):
        r = pk.reference(p, resolution=n, inputs={"a": sympy.lambdify((x, y), aex)})
        P = r.points()
        errs.append(np.max(np.abs(r.fields["u"] - sympy.lambdify((x, y), uex)(P["x"], P["y"]))))
    assert 3.6 < errs[0] / errs[1] < 4.4


def test_time_dependent_input_initial_value():
    # heat equation with an input initial value: u0 = sin(2 pi x) decays like exp(-4 pi^2 t)
    x_, t = pk.coords("x t")
    u, u0 = pk.field("u", x_, t), pk.input_field("u0", x_)
    p = pk.Problem("heat_in", pk.Interval(x_, 0, 1) * pk.TimeInterval(t, 0, 0.1),
                   [u.diff(t) - u.diff(x_, 2)], [pk.Periodic(u, x_), pk.Initial(u, u0)])
    xs = np.arange(64) / 64
    r = pk.reference(p, resolution={"x": 64}, times=[0, 0.1], order=4,
                     inputs={"u0": np.sin(2 * np.pi * xs)})
    exact = np.exp(-4 * np.pi ** 2 * 0.1) * np.sin(2 * np.pi * xs)
    assert np.max(np.abs(r.fields["u"][-1] - exact)) < 1e-5


def test_input_errors():
    p = _darcy1d(1)
    with pytest.raises(pk.UnsupportedSpecError, match="input field.*a.*give their values"):
        pk.reference(p, resolution=11)
    with pytest.raises(pk.UnsupportedSpecError, match="'b'.*does not declare"):
        pk.reference(p, resolution=11, inputs={"a": 1.0, "b": 2.0})
    with pytest.raises(pk.UnsupportedSpecError,
                       match=r"shape \(7,\) does not match the grid \(11,\)"):
        pk.reference(p, resolution=11, inputs={"a": np.ones(7)})
    with pytest.raises(pk.UnsupportedSpecError, match="NaN"):
        pk.reference(p, resolution=11, inputs={"a": np.full(11, np.nan)})
    u, a = pk.field("u", x), pk.input_field("a", x)
    q = pk.Problem("nc", pk.Interval(x, 0, 1), [a.diff(x) * u.diff(x) + a * u.diff(x, 2) + 1],
                   [pk.Dirichlet(u, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match="cannot differentiate the input field"):
        pk.reference(q, resolution=11, inputs={"a": 1.0})
    with pytest.raises(pk.SpecError, match="input field 'u'.*name of a field"):
        pk.Problem("clash", pk.Interval(x, 0, 1), [u.diff(x, 2) + pk.input_field("u", x)],
                   [pk.Dirichlet(u, 0)])
    t = pk.coords("t")
    with pytest.raises(pk.SpecError, match="inputs are functions of space"):
        pk.input_field("f", x, t)


def test_conservative_flux_in_a_time_dependent_problem():
    # u_t = (a u_x)_x with a = 2, periodic: u = exp(-2 (2 pi)^2 t) sin(2 pi x); the flux term
    # must survive the symbolic isolation of u_t (sympy.simplify) in conservative form
    x_, t = pk.coords("x t")
    u, a = pk.field("u", x_, t), pk.input_field("a", x_)
    p = pk.Problem("tflux", pk.Interval(x_, 0, 1) * pk.TimeInterval(t, 0, 0.05),
                   [u.diff(t) - pk.div([a * g for g in pk.grad(u)])],
                   [pk.Periodic(u, x_), pk.Initial(u, pk.sin(2 * pk.pi * x_))])
    errs = []
    for n in (32, 64):
        xs = np.arange(n) / n
        r = pk.reference(p, resolution={"x": n}, times=[0, 0.05], inputs={"a": np.full(n, 2.0)})
        exact = np.exp(-8 * np.pi ** 2 * 0.05) * np.sin(2 * np.pi * xs)
        errs.append(np.max(np.abs(r.fields["u"][-1] - exact)))
    assert 3.5 < errs[0] / errs[1] < 4.5


def test_input_over_a_subset_of_the_coordinates():
    # -lap u = f(x) on the unit square: a 1-D array over x gives the callable's solution
    u, f = pk.field("u", x, y), pk.input_field("f", x)
    p = pk.Problem("src", pk.Rectangle((x, y), (0, 0), (1, 1)), [pk.Eq(-pk.laplacian(u), f)],
                   [pk.Dirichlet(u, 0)])
    xs = np.linspace(0, 1, 17)
    a = pk.reference(p, resolution=17, inputs={"f": np.sin(np.pi * xs)})
    b = pk.reference(p, resolution=17, inputs={"f": lambda X: np.sin(np.pi * X)})
    assert np.max(np.abs(a.fields["u"] - b.fields["u"])) < 1e-14
    assert np.max(np.abs(a.fields["u"])) > 1e-2
    with pytest.raises(pk.UnsupportedSpecError, match=r"over \(x\)"):
        pk.reference(p, resolution=17, inputs={"f": np.ones((17, 17))})
