"""Finite-difference reference: observed convergence orders against exact solutions."""
import numpy as np
import pytest
import sympy

import pinnkit as pk
from pinnkit.fd import reference

from conftest import l2re, load_problem, shared_data

x, y, t = pk.coords("x y t")


def error(problem, ref):
    pts, m = ref.points(), ref.full_mask()
    errs = []
    for f in ref.fields:
        e = problem.exact_function(f)(**pts)
        errs.append(l2re(ref.fields[f][m], e[m]))
    return max(errs)


def observed_order(make, ns, **kw):
    errs, hs = [], []
    for n in ns:
        problem = make()
        ref = reference(problem, resolution=n, **kw)
        errs.append(error(problem, ref))
        hs.append(1.0 / (n - 1))
    p = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    return p, errs


def _poisson1d(kind):
    u = pk.field("u", x)
    ex = sympy.exp(x) * sympy.sin(3 * x)
    left = {"dirichlet": pk.Dirichlet(u, ex, on="x_min"),
            "neumann": pk.Neumann(u, -ex.diff(x), on="x_min"),
            "robin": pk.Robin(u, 2, 1, 2 * ex - ex.diff(x), on="x_min")}[kind]
    return pk.Problem("p1", pk.Interval(x, 0, 1), [-u.diff(x, 2) + ex.diff(x, 2)],
                      [left, pk.Robin(u, 1, 0.5, ex + 0.5 * ex.diff(x), on="x_max")],
                      exact={"u": ex})


@pytest.mark.parametrize("kind", ["dirichlet", "neumann", "robin"])
def test_poisson1d_second_order(kind):
    p, errs = observed_order(lambda: _poisson1d(kind), [21, 41, 81, 161])
    assert abs(p - 2) <= 0.3, (p, errs)


def test_poisson1d_fourth_order():
    p, errs = observed_order(lambda: _poisson1d("robin"), [11, 21, 41, 81], order=4)
    assert abs(p - 4) <= 0.3, (p, errs)


def _poisson2d(domain):
    u = pk.field("u", x, y)
    ex = sympy.sin(2 * x + 1) * sympy.cosh(y) + x * y ** 2
    return pk.Problem("p2", domain, [pk.laplacian(u) - pk.laplacian(ex)],
                      [pk.Dirichlet(u, ex)], exact={"u": ex})


def test_poisson2d_square_second_order():
    p, errs = observed_order(lambda: _poisson2d(pk.Rectangle((x, y), (0, 0), (1, 1))),
                             [11, 21, 41, 81])
    assert abs(p - 2) <= 0.3, (p, errs)


def test_poisson2d_disk_shortley_weller_second_order():
    p, errs = observed_order(lambda: _poisson2d(pk.Disk((x, y), (0.5, 0.5), 0.45)),
                             [21, 41, 81, 161])
    assert abs(p - 2) <= 0.3, (p, errs)


def test_poisson2d_csg_with_hole_second_order():
    dom = pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), (0.43, 0.57), 0.21, name="hole")
    p, errs = observed_order(lambda: _poisson2d(dom), [21, 41, 81, 161])
    assert abs(p - 2) <= 0.3, (p, errs)


def _heat1d():
    u = pk.field("u", x, t)
    ex = sympy.exp(-t) * sympy.sin(sympy.pi * x) + x
    return pk.Problem("h1", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.5),
                      [u.diff(t) - u.diff(x, 2) / sympy.pi ** 2],
                      [pk.Dirichlet(u, ex.subs(x, 0), on="x_min"),
                       pk.Neumann(u, ex.diff(x).subs(x, 1), on="x_max"),
                       pk.Initial(u, ex.subs(t, 0))], exact={"u": ex})


def test_heat1d_second_order():
    p, errs = observed_order(_heat1d, [11, 21, 41, 81], rtol=1e-11, atol=1e-13)
    assert abs(p - 2) <= 0.3, (p, errs)


def _heat2d():
    u = pk.field("u", x, y, t)
    ex = sympy.exp(-2 * t) * sympy.sin(x + 0.3) * sympy.cos(y - 0.2)
    return pk.Problem("h2", pk.Rectangle((x, y), (0, 0), (1, 1)) * pk.TimeInterval(t, 0, 0.3),
                      [u.diff(t) - pk.laplacian(u)],
                      [pk.Dirichlet(u, ex, on=["x_min", "y_min", "y_max"]),
                       pk.Robin(u, 1, 1, ex + ex.diff(x), on="x_max"),
                       pk.Initial(u, ex.subs(t, 0))], exact={"u": ex})


def test_heat2d_second_order():
    p, errs = observed_order(_heat2d, [9, 17, 33], rtol=1e-11, atol=1e-13)
    assert abs(p - 2) <= 0.3, (p, errs)


def _wave():
    u = pk.field("u", x, t)
    ex = sympy.sin(sympy.pi * x) * sympy.cos(2 * sympy.pi * t) + sympy.sin(2 * sympy.pi * x) * sympy.sin(4 * sympy.pi * t) / 4
    return pk.Problem("w", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.5),
                      [u.diff(t, 2) - 4 * u.diff(x, 2)],
                      [pk.Dirichlet(u, 0), pk.Initial(u, ex.subs(t, 0)),
                       pk.Initial(u, ex.diff(t).subs(t, 0), order=1)], exact={"u": ex})


def test_wave_second_order_in_time():
    p, errs = observed_order(_wave, [21, 41, 81, 161], rtol=1e-11, atol=1e-13)
    assert abs(p - 2) <= 0.3, (p, errs)


def _advection_diffusion():
    u = pk.field("u", x, t)
    c, nu = 1.0, 0.05
    ex = sympy.exp(-nu * 4 * sympy.pi ** 2 * t) * sympy.sin(2 * sympy.pi * (x - c * t))
    return pk.Problem("ad", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.5),
                      [u.diff(t) + c * u.diff(x) - nu * u.diff(x, 2)],
                      [pk.Periodic(u, x), pk.Initial(u, ex.subs(t, 0))], exact={"u": ex})


def test_periodic_advection_diffusion_second_order():
    p, errs = observed_order(_advection_diffusion, [17, 33, 65, 129], rtol=1e-11, atol=1e-13)
    assert abs(p - 2) <= 0.3, (p, errs)


def test_periodic_upwind_first_order():
    p, errs = observed_order(_advection_diffusion, [65, 129, 257, 513], rtol=1e-10,
                             atol=1e-12, advection="upwind")
    assert abs(p - 1) <= 0.3, (p, errs)


def _reaction_diffusion():
    u, v = pk.fields("u v", x, t)
    eu = sympy.exp(-t) * sympy.cos(sympy.pi * x)
    ev = sympy.exp(-t) * sympy.sin(sympy.pi * x) + 1
    eqs = {"u": u.diff(t) - 0.1 * u.diff(x, 2) + u * v,
           "v": v.diff(t) - 0.2 * v.diff(x, 2) - u ** 2}
    # forcing makes (eu, ev) exact
    force = {k: e.subs({u: eu, v: ev}).doit() for k, e in eqs.items()}
    eqs = {k: e - force[k] for k, e in eqs.items()}
    return pk.Problem("rd", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.5), eqs,
                      [pk.Neumann(u, 0), pk.Dirichlet(v, ev), pk.Initial(u, eu.subs(t, 0)),
                       pk.Initial(v, ev.subs(t, 0))], exact={"u": eu, "v": ev})


def test_two_field_reaction_diffusion_second_order():
    p, errs = observed_order(_reaction_diffusion, [11, 21, 41, 81], rtol=1e-11, atol=1e-13)
    assert abs(p - 2) <= 0.3, (p, errs)


def test_nonlinear_steady_newton():
    # Bratu-type: -u'' + u^3 = f with exact u = sin(pi x) + x
    u = pk.field("u", x)
    ex = sympy.sin(sympy.pi * x) + x
    p = pk.Problem("n", pk.Interval(x, 0, 1), [-u.diff(x, 2) + u ** 3 - (-ex.diff(x, 2) + ex ** 3)],
                   [pk.Dirichlet(u, ex)], exact={"u": ex})
    ref = reference(p, resolution=201)
    assert ref.info["iterations"] >= 3 and error(p, ref) < 1e-4


def test_3d_laplace_small_grid():
    z = pk.coords("z")
    u = pk.field("u", x, y, z)
    ex = sympy.exp(x) * sympy.sin(y) + z ** 2 - x ** 2
    p = pk.Problem("l3", pk.Box((x, y, z), (0, 0, 0), (1, 1, 1)), [pk.laplacian(u)],
                   [pk.Dirichlet(u, ex)], exact={"u": ex})
    e1 = error(p, reference(p, resolution=9))
    e2 = error(p, reference(p, resolution=17))
    assert abs(np.log2(e1 / e2) - 2) <= 0.3


def test_burgers_against_exact():
    problem = load_problem("burgers")["problem"]
    ref = reference(problem)
    d = shared_data("burgers_shock.npz")
    X, T = np.meshgrid(d["x"], d["t"])
    u = ref({"x": X, "t": T})["u"]   # the 256-point grid is a subgrid of the 2041 points
    assert l2re(u, d["u"]) <= 1e-4
    assert ref.seconds < 10  # ~0.6 s on the 2-core machine; loose bound against noise


def test_allen_cahn_against_public_data():
    problem = load_problem("allen_cahn")["problem"]
    d = shared_data("allen_cahn.npz")
    ref = reference(problem)   # the problem's defaults are the data's grid
    assert np.allclose(ref.coords["x"], d["x"]) and np.allclose(ref.coords["t"], d["t"])
    assert l2re(ref.fields["u"], d["u"]) <= 1e-3


# --------------------------------------------------------------------------- unsupported specs

def test_inverse_problem_is_unsupported():
    problem = load_problem("burgers_inverse")["problem"]
    with pytest.raises(pk.UnsupportedSpecError, match="unknown parameters.*log_nu"):
        reference(problem)


def test_mixed_space_time_derivative_is_unsupported():
    u = pk.field("u", x, t)
    p = pk.Problem("m", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t) - u.diff(x, t)], [pk.Dirichlet(u, 0), pk.Initial(u, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match="equation 'pde' has a mixed space-time"):
        reference(p)


def test_not_linear_in_time_derivative():
    u = pk.field("u", x, t)
    p = pk.Problem("m", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t) ** 2 - u.diff(x, 2)], [pk.Dirichlet(u, 0), pk.Initial(u, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match=r"not linear in the highest time derivative"):
        reference(p)


def test_field_without_time_derivative():
    u, v = pk.fields("u v", x, t)
    p = pk.Problem("m", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t) - u.diff(x, 2) - v, v - u.diff(x, 2)],
                   [pk.Dirichlet(u, 0), pk.Dirichlet(v, 0), pk.Initial(u, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match="field v has no time derivative"):
        reference(p)


def test_curved_neumann_hole_second_order():
    # Neumann on a hole: the crossing's gradient components off its own grid line come from a
    # least-squares quadratic fit (they used to be copied from the adjacent node: first order)
    u = pk.field("u", x, y)
    ex = sympy.sin(2 * x + 1) * sympy.cosh(y) + x * y ** 2
    c, r = (0.43, 0.57), 0.21
    dudn = -((x - c[0]) * ex.diff(x) + (y - c[1]) * ex.diff(y)) / r

    def make():
        dom = pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), c, r, name="hole")
        return pk.Problem("cn", dom, [pk.laplacian(u) - pk.laplacian(ex)],
                          [pk.Dirichlet(u, ex, on=["x_min", "x_max", "y_min", "y_max"]),
                           pk.Neumann(u, dudn, on="hole")], exact={"u": ex})
    p, errs = observed_order(make, [21, 41, 81, 161])
    assert p >= 1.8, (p, errs)


# Curved Neumann/Robin rims (issue 22): -Δu + u = f with a manufactured solution; the disk and
# the annulus are off-centre so the rims cut the grid lines at irregular distances.
_EX = sympy.sin(2 * x + 1) * sympy.cosh(y) + x * y ** 2
_RIM, _HOLE = ((0.1, -0.05), 0.9), ((0.15, 0.0), 0.35)


def _dudr(center, radius):
    return ((x - center[0]) * _EX.diff(x) + (y - center[1]) * _EX.diff(y)) / radius


def _curved(annulus: bool):
    u = pk.field("u", x, y)
    dom = pk.Disk((x, y), *_RIM, name="rim")
    conditions = [pk.Neumann(u, _dudr(*_RIM), on="rim")]
    if annulus:
        dom = dom - pk.Disk((x, y), *_HOLE, name="hole")
        # outward normal of the annulus on the hole points to the hole's centre
        conditions.append(pk.Robin(u, 1.0, 0.5, _EX - 0.5 * _dudr(*_HOLE), on="hole"))
    return pk.Problem("curved", dom, [-pk.laplacian(u) + u - (-pk.laplacian(_EX) + _EX)],
                      conditions, exact={"u": _EX})


@pytest.mark.parametrize("annulus", [False, True], ids=["disk_neumann", "annulus_neumann_robin"])
def test_curved_neumann_robin_second_order(annulus):
    p, errs = observed_order(lambda: _curved(annulus), [17, 33, 65, 129])
    assert p >= 1.8, (p, errs)


def test_richardson_error_estimate_within_factor_3():
    from pinnkit.metrics import evaluate, reference_errors
    problem = _curved(True)
    ref = reference(problem, resolution=65, error_estimate=True)
    true = reference_errors(evaluate(problem, None, ref))["u"]
    est = ref.error_estimate["u"]
    assert ref.info["error_estimate"]["coarse_resolution"] == {"x": 33, "y": 33}
    assert true / 3 <= est <= 3 * true, (est, true)
    # a grid that does not halve gets a note, not a wrong estimate
    odd = reference(problem, resolution=64, error_estimate=True)
    assert odd.error_estimate is None and "does not halve" in odd.notes[-1]


def test_l_shape_csg_and_polygon_give_the_same_mask_and_errors():
    u = pk.field("u", x, y)
    ex = sympy.sin(2 * x + 1) * sympy.cosh(y) + x * y ** 2
    csg = pk.Rectangle((x, y), (-1, -1), (1, 1)) - pk.Rectangle((x, y), (0, -1), (1, 0))
    poly = pk.Polygon((x, y), [(-1, -1), (0, -1), (0, 0), (1, 0), (1, 1), (-1, 1)])

    class Fake:  # a "PINN": exact inside the L, badly wrong in the notch (as off-domain nets are)
        def __call__(self, pts):
            xx, yy = pts["x"], pts["y"]
            bump = np.where((xx > 1e-9) & (yy < -1e-9), 0.5, 0.0)
            return {"u": sympy.lambdify((x, y), ex)(xx, yy) + 1e-4 * xx + bump}
    from pinnkit.metrics import compare, evaluate, reference_errors
    out = []
    for dom in (csg, poly):
        problem = pk.Problem("L", dom, [pk.laplacian(u) - pk.laplacian(ex)], [pk.Dirichlet(u, ex)],
                             exact={"u": ex})
        ref = reference(problem, resolution=41)
        out.append((ref.mask, reference_errors(evaluate(problem, None, ref))["u"],
                    compare(Fake(), ref, problem)["u"]))
    (m1, e1, c1), (m2, e2, c2) = out
    assert np.array_equal(m1, m2) and int(m1.sum()) == 41 * 41 - 20 * 20
    assert abs(e1 - e2) <= 1e-3 * e2 and e1 < 1e-3
    for key in ("l2re_exact", "l2re_reference", "linf_exact"):
        assert abs(c1[key] - c2[key]) <= 1e-3 * max(c2[key], 1e-12), (key, c1, c2)
    assert c1["linf_exact"] < 1e-3       # the notch's wrong values are not counted


def test_curved_second_derivative_condition_is_unsupported():
    u = pk.field("u", x, y)
    p = pk.Problem("c", pk.Disk((x, y), (0, 0), 1, name="rim"), [pk.laplacian(u) - 1],
                   [pk.BoundaryEquation(u.diff(x, 2) - 1, on="rim")])
    with pytest.raises(pk.UnsupportedSpecError, match="boundary_eq_rim.*second or higher"):
        reference(p)


def test_missing_boundary_condition():
    u = pk.field("u", x, y)
    p = pk.Problem("c", pk.Rectangle((x, y), (0, 0), (1, 1)), [pk.laplacian(u)],
                   [pk.Dirichlet(u, 0, on=["x_min", "x_max", "y_min"])])
    with pytest.raises(pk.UnsupportedSpecError, match="field u has no boundary condition on 'y_max'"):
        reference(p)


def test_missing_initial_velocity():
    u = pk.field("u", x, t)
    p = pk.Problem("w", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t, 2) - u.diff(x, 2)], [pk.Dirichlet(u, 0), pk.Initial(u, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match=r"initial condition of order 1"):
        reference(p)


def test_third_order_in_time_unsupported():
    u = pk.field("u", x, t)
    p = pk.Problem("w", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t, 3) - u.diff(x, 2)], [pk.Dirichlet(u, 0), pk.Initial(u, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match="order 3"):
        reference(p)


def test_nonlinear_boundary_condition_in_time_unsupported():
    u = pk.field("u", x, t)
    p = pk.Problem("w", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t) - u.diff(x, 2)],
                   [pk.BoundaryEquation(u ** 2 - 1), pk.Initial(u, 1)])
    with pytest.raises(pk.UnsupportedSpecError, match="nonlinear in the fields"):
        reference(p)


def test_incompressible_pressure_unsupported():
    u, v, pr = pk.fields("u v p", x, y)
    eqs = [u * u.diff(x) + v * u.diff(y) + pr.diff(x) - 0.01 * pk.laplacian(u),
           u * v.diff(x) + v * v.diff(y) + pr.diff(y) - 0.01 * pk.laplacian(v),
           u.diff(x) + v.diff(y)]
    p = pk.Problem("ns", pk.Rectangle((x, y), (0, 0), (1, 1)), eqs,
                   [pk.Dirichlet(u, 0), pk.Dirichlet(v, 0)])
    with pytest.raises(pk.UnsupportedSpecError, match="field p has no boundary condition"):
        reference(p)


def _manufactured_ns(nu=0.05):
    """Navier-Stokes with a forcing that makes a divergence-free (u, v) and p exact; the
    pressure enters only through its gradient and is fixed by p(0, 0) = 1."""
    u, v, pr = pk.fields("u v p", x, y)
    ue = sympy.pi * sympy.sin(sympy.pi * x) ** 2 * sympy.sin(2 * sympy.pi * y)
    ve = -sympy.pi * sympy.sin(2 * sympy.pi * x) * sympy.sin(sympy.pi * y) ** 2
    pe = sympy.cos(sympy.pi * x) * sympy.cos(sympy.pi * y)
    mx = lambda a, b, q: a * a.diff(x) + b * a.diff(y) + q.diff(x) - nu * pk.laplacian(a, [x, y])  # noqa: E731
    my = lambda a, b, q: a * b.diff(x) + b * b.diff(y) + q.diff(y) - nu * pk.laplacian(b, [x, y])  # noqa: E731
    fx, fy = sympy.simplify(mx(ue, ve, pe)), sympy.simplify(my(ue, ve, pe))
    return pk.Problem(
        "ns_manufactured", pk.Rectangle((x, y), (0, 0), (1, 1)),
        {"mx": mx(u, v, pr) - fx, "my": my(u, v, pr) - fy, "continuity": u.diff(x) + v.diff(y)},
        [pk.Dirichlet(u, 0), pk.Dirichlet(v, 0),
         pk.BoundaryEquation(mx(u, v, pr) - fx, on=["x_min", "x_max"], field=pr),
         pk.BoundaryEquation(my(u, v, pr) - fy, on=["y_min", "y_max"], field="p"),
         pk.Data(pr, points={"x": [0.0], "y": [0.0]}, values=[1.0])],
        exact={"u": ue, "v": ve, "p": pe})


@pytest.mark.parametrize("coefficient", [0.0, 0.25])
def test_incompressible_flow_with_pressure_gauge_second_order(coefficient):
    """Wall-pressure rows (``field=p``), the p(0, 0) gauge and the pressure stabilisation
    converge at second order in velocity and pressure; the gauge holds exactly and the
    compatibility multiplier vanishes with h."""
    stab = {"equation": "continuity", "field": "p", "coefficient": coefficient}
    order, errs = observed_order(_manufactured_ns, [17, 33, 65], stabilize=stab)
    assert order > 1.8 and errs[-1] < 5e-3
    ref = reference(_manufactured_ns(), resolution=33, stabilize=stab)
    assert abs(ref.fields["p"][0, 0] - 1.0) < 1e-12
    coarse = reference(_manufactured_ns(), resolution=17, stabilize=stab)
    assert abs(ref.info["gauge_multiplier"]) <= abs(coarse.info["gauge_multiplier"]) + 1e-14


def test_stabilize_and_field_option_errors():
    problem = _manufactured_ns()
    with pytest.raises(pk.UnsupportedSpecError, match="no equation 'mass'"):
        reference(problem, resolution=9, stabilize={"equation": "mass", "field": "p"})
    with pytest.raises(pk.UnsupportedSpecError, match="no field 'q'"):
        reference(problem, resolution=9, stabilize={"equation": "continuity", "field": "q"})
    with pytest.raises(pk.UnsupportedSpecError, match="stabilize must be"):
        reference(problem, resolution=9, stabilize={"equation": "continuity"})
    with pytest.raises(pk.UnsupportedSpecError, match="steady problems only"):
        reference(load_problem("heat1d")["problem"],
                  stabilize={"equation": "heat", "field": "u"})
    u = pk.field("u", x)
    with pytest.raises(pk.SpecError, match="field 'w' is not a field"):
        pk.Problem("b", pk.Interval(x, 0, 1), [u.diff(x, 2)],
                   [pk.BoundaryEquation(u, field="w")])


def test_newton_failure_is_reported():
    u = pk.field("u", x)
    # -u'' = exp(u) with a huge load has no solution (Bratu beyond the turning point)
    p = pk.Problem("b", pk.Interval(x, 0, 1), [u.diff(x, 2) + 20 * sympy.exp(u)], [pk.Dirichlet(u, 0)])
    with pytest.raises(pk.ReferenceSolverError, match="Newton did not converge"):
        reference(p, resolution=51)


def test_bad_resolution_and_options():
    problem = load_problem("heat1d")["problem"]
    with pytest.raises(pk.UnsupportedSpecError, match="unknown coordinate.*y"):
        reference(problem, resolution={"y": 10})
    with pytest.raises(pk.UnsupportedSpecError, match="unknown reference option.*ordr"):
        reference(problem, ordr=4)
    with pytest.raises(pk.UnsupportedSpecError, match="order must be 2 or 4"):
        reference(problem, order=3)


@pytest.mark.parametrize("name", ["heat1d", "poisson_robin1d", "poisson2d", "wave1d_c",
                                  "helmholtz2d", "heat2d_neumann", "burgers"])
def test_problem_library_reference_error(name):
    problem = load_problem(name)["problem"]
    ref = reference(problem)
    assert error(problem, ref) < 2e-3


def test_ns2d_c_reference_agrees_with_pinnacle_comsol():
    """Lid-driven cavity (problems/ns2d_c.py) on 65 x 65 vs PINNacle's COMSOL nodes: measured
    u 9.0e-3, v 1.8e-2, p 5.9e-2 (p away from the lid corners 1.2e-2); 257 x 257 gives
    7.3e-4, 1.3e-3, 1.3e-2 (docs/reference.md)."""
    d = shared_data("pinnacle_ns2d_c.npz")
    problem = load_problem("ns2d_c")["problem"]
    ref = reference(problem, resolution=65)
    got = ref({"x": d["x"], "y": d["y"]})
    assert l2re(got["u"], d["u"]) < 1.2e-2 and l2re(got["v"], d["v"]) < 2.5e-2
    away = (np.hypot(d["x"], d["y"] - 1) > 0.1) & (np.hypot(d["x"] - 1, d["y"] - 1) > 0.1)
    assert l2re(got["p"][away], d["p"][away]) < 1.6e-2
    assert abs(ref.fields["p"][0, 0]) < 1e-14 and abs(ref.info["gauge_multiplier"]) < 1e-4
