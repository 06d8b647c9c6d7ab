import numpy as np
import pytest
import sympy

import pinnkit as pk


@pytest.fixture
def xt():
    x, t = pk.coords("x t")
    return x, t, pk.field("u", x, t), pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1)


def test_equations_list_dict_and_eq(xt):
    x, t, u, dom = xt
    p = pk.Problem("a", dom, [pk.Eq(u.diff(t), u.diff(x, 2))])
    assert list(p.equations) == ["pde"]
    assert sympy.simplify(p.equations["pde"] - (u.diff(t) - u.diff(x, 2))) == 0
    p = pk.Problem("b", dom, {"heat": u.diff(t) - u.diff(x, 2), "extra": u.diff(t)})
    assert list(p.equations) == ["heat", "extra"]
    p = pk.Problem("c", dom, [u.diff(t), u.diff(x)])
    assert list(p.equations) == ["pde0", "pde1"]


def test_unknown_free_symbol_is_named(xt):
    x, t, u, dom = xt
    k = sympy.Symbol("kappa")
    with pytest.raises(pk.SpecError, match="symbol kappa is neither a coordinate"):
        pk.Problem("a", dom, [u.diff(t) - k * u.diff(x, 2)])


def test_parameter_is_allowed_and_collected(xt):
    x, t, u, dom = xt
    k = pk.parameter("k", init=2.5)
    p = pk.Problem("a", dom, [u.diff(t) - k * u.diff(x, 2)])
    assert [q.name for q in p.parameters] == ["k"] and p.parameters[0].init == 2.5


def test_field_with_wrong_arguments(xt):
    x, t, u, dom = xt
    with pytest.raises(pk.SpecError, match=r"field u is used as u\(x, 0\)"):
        pk.Problem("a", dom, [u.diff(t) - u.subs(t, 0)])
    v = pk.field("v", x)
    with pytest.raises(pk.SpecError, match="must take every coordinate"):
        pk.Problem("a", dom, [u.diff(t) - v])


def test_condition_on_field_not_in_problem(xt):
    x, t, u, dom = xt
    w = pk.field("w", x, t)
    with pytest.raises(pk.SpecError, match="field 'w' is not in the problem"):
        pk.Problem("a", dom, [u.diff(t) - u.diff(x, 2)], [pk.Dirichlet(w, 0)])


def test_initial_without_time_interval():
    x, y = pk.coords("x y")
    u = pk.field("u", x, y)
    with pytest.raises(pk.SpecError, match="Initial needs a time interval"):
        pk.Problem("a", pk.Rectangle((x, y), (0, 0), (1, 1)), [pk.laplacian(u)],
                   [pk.Initial(u, 0)])


def test_unknown_boundary_lists_existing(xt):
    x, t, u, dom = xt
    with pytest.raises(pk.SpecError, match=r"unknown boundary 'left'.*boundary, x_min, x_max"):
        pk.Problem("a", dom, [u.diff(t) - u.diff(x, 2)], [pk.Dirichlet(u, 0, on="left")])


def test_normal_outside_boundary_condition(xt):
    x, t, u, dom = xt
    with pytest.raises(pk.SpecError, match="only defined on boundary"):
        pk.Problem("a", dom, [u.diff(t) - pk.normal(x) * u])


def test_equality_instead_of_eq(xt):
    x, t, u, dom = xt
    with pytest.raises(pk.SpecError, match="pk.Eq"):
        pk.Problem("a", dom, [u.diff(t) == u.diff(x)])


def test_data_validation(xt):
    x, t, u, dom = xt
    eq = [u.diff(t) - u.diff(x, 2)]
    with pytest.raises(pk.SpecError, match="must give every coordinate"):
        pk.Problem("a", dom, eq, [pk.Data(u, {"x": [0.1]}, [1.0])])
    with pytest.raises(pk.SpecError, match="differ in size"):
        pk.Problem("a", dom, eq, [pk.Data(u, {"x": [0.1, 0.2], "t": [0, 0]}, [1.0])])
    with pytest.raises(pk.SpecError, match="NaN"):
        pk.Problem("a", dom, eq, [pk.Data(u, {"x": [0.1], "t": [0]}, [np.nan])])


def test_periodic_needs_box_face():
    x, y = pk.coords("x y")
    u = pk.field("u", x, y)
    with pytest.raises(pk.SpecError, match="no face 'x_min'"):
        pk.Problem("a", pk.Disk((x, y), (0, 0), 1), [pk.laplacian(u)], [pk.Periodic(u, x)])


def test_exact_must_be_known_field(xt):
    x, t, u, dom = xt
    with pytest.raises(pk.SpecError, match="'v', which is not a field"):
        pk.Problem("a", dom, [u.diff(t)], exact={"v": x})


def test_operators():
    x, y, t = pk.coords("x y t")
    u, v = pk.fields("u v", x, y, t)
    assert pk.grad(u) == [u.diff(x), u.diff(y)]
    assert pk.div([u, v]) == u.diff(x) + v.diff(y)
    assert pk.laplacian(u) == u.diff(x, 2) + u.diff(y, 2)
    with pytest.raises(pk.SpecError, match="2 spatial coordinates"):
        pk.div([u])


def test_derivative_keys(xt):
    x, t, u, dom = xt
    p = pk.Problem("a", dom, [u.diff(t) + u * u.diff(x) - u.diff(x, 2)])
    assert p.derivative_keys(p.equations["pde"]) == [("u", (0, 0)), ("u", (0, 1)),
                                                      ("u", (1, 0)), ("u", (2, 0))]
    assert p.derivative_key(u.diff(x, t, x)) == ("u", (2, 1))


def test_condition_terms(xt):
    x, t, u, dom = xt
    p = pk.Problem("a", dom, [u.diff(t) - u.diff(x, 2)],
                   [pk.Neumann(u, 1, on="x_max"), pk.Robin(u, 2, 3, 4, on="x_min"),
                    pk.Initial(u, x, order=1), pk.BoundaryEquation(u - pk.normal(x), on="x_min")])
    nx = pk.normal(x)
    neu, rob, ini, beq = p.terms[1:]
    assert sympy.simplify(neu.exprs[0] - (nx * u.diff(x) - 1)) == 0
    assert sympy.simplify(rob.exprs[0] - (2 * u + 3 * nx * u.diff(x) - 4)) == 0
    assert ini.kind == "initial" and sympy.simplify(ini.exprs[0] - (u.diff(t) - x)) == 0
    assert beq.on == ("x_min",)
