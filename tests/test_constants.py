"""Problem files with symbolic numeric constants (sqrt(2), Rational, cos(1), pi) train, solve and
export exactly as the same problems written with float literals (issue: `pk.sqrt(2)` in an
equation crashed the PINN path)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import pinnkit as pk

from conftest import ROOT

SOLVE = [sys.executable, str(ROOT / "scripts" / "solve.py")]

CONST = '''
import pinnkit as pk
x = pk.coords("x")
u = pk.field("u", x)
problem = pk.Problem(
    name="const",
    domain=pk.Interval(x, 0, 1),
    equations=[u.diff(x, 2) + {c} * pk.pi**2 * pk.sin(pk.pi * x)],
    conditions=[pk.Dirichlet(u, 0, on="boundary")],
    exact={{"u": {c} * pk.sin(pk.pi * x)}},
)
'''


def _variant(name: str, replacements: list) -> str:
    text = (ROOT / "problems" / name).read_text()
    for old, new in replacements:
        assert old in text, (name, old)
        text = text.replace(old, new)
    return "import sympy as sp\n" + text


def _f(expr) -> str:
    """A symbolic constant as the float literal a user would type."""
    return repr(float(sp.sympify(expr).evalf(30)))


def _robin(a0, a1, b1) -> list:
    return [("pk.Robin(u, 1, 1, exact - exact.diff(x), on=\"x_min\")",
             f"pk.Robin(u, {a0}, 1, ({a0}) * exact - exact.diff(x), on=\"x_min\")"),
            ("pk.Robin(u, 1, 1, exact + exact.diff(x), on=\"x_max\")",
             f"pk.Robin(u, {a1}, {b1}, ({a1}) * exact + ({b1}) * exact.diff(x), on=\"x_max\")")]


# constant-bearing variants of shipped problem files, each beside its float-literal twin
VARIANTS = {
    "heat1d_rational.py": (
        _variant("heat1d.py", [
            ("a = 0.1", "a = sp.Rational(1, 10)"),
            ("pk.sin(pk.pi * x) + 0.5 * pk.sin(3 * pk.pi * x)),",
             "pk.sin(pk.pi * x) + sp.Rational(1, 2) * pk.sin(3 * pk.pi * x)),")]),
        _variant("heat1d.py", [])),
    "robin_cos1.py": (
        _variant("poisson_robin1d.py", _robin("2 * sp.cos(1) - sp.sin(1)", "sp.cos(1)",
                                              "pk.sqrt(3)")),
        _variant("poisson_robin1d.py", _robin(_f("2 * cos(1) - sin(1)"), _f("cos(1)"),
                                              _f("sqrt(3)")))),
}


def _solve(path, out):
    # float64 so that the L-BFGS phase runs in float64 too (constants must follow the dtype)
    proc = subprocess.run(SOLVE + [str(path), "--out", str(out), "--steps", "300",
                                   "--lbfgs-steps", "30", "--dtype", "float64", "--width", "16",
                                   "--depth", "2", "--interior-points", "200", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert (out / "fields.h5").is_file()
    return json.loads((out / "report.json").read_text())


# the Robin variant is the longer run; the expression-level tests cover its constants
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("robin")
                                  else n for n in sorted(VARIANTS)])
def test_constant_variant_runs_through_solve_py(tmp_path, name):
    errors = []
    for i, text in enumerate(VARIANTS[name]):
        path = tmp_path / f"{i}_{name}"
        path.write_text(text)
        report = _solve(path, tmp_path / f"out{i}")
        assert report["reference"]["l2re_exact"]["u"] < 1e-3
        errors.append(report["metrics"]["u"]["l2re_exact"])
    print(name, errors)
    # the same problem: the PINN error equals the float-literal twin's up to rounding noise
    # amplified by training (a wrong constant changes it by orders of magnitude)
    assert abs(errors[0] - errors[1]) <= 1e-3 * errors[1]


def test_const_sqrt2_problem_file_runs_through_solve_py(tmp_path):
    path = tmp_path / "const.py"
    path.write_text(CONST.format(c="pk.sqrt(2)"))
    report = _solve(path, tmp_path / "out")
    assert report["reference"]["l2re_exact"]["u"] < 1e-3
    assert report["metrics"]["u"]["l2re_exact"] < 5e-2


def _const_problem(c):
    x = pk.coords("x")
    u = pk.field("u", x)
    return pk.Problem("const", pk.Interval(x, 0, 1),
                      [u.diff(x, 2) + c * pk.pi**2 * pk.sin(pk.pi * x)],
                      [pk.Dirichlet(u, 0, on="boundary")], exact={"u": c * pk.sin(pk.pi * x)})


def test_symbolic_constant_trains_like_its_float_literal():
    kw = dict(steps=300, lbfgs_steps=20, width=16, depth=2, interior_points=200, seed=0,
              dtype="float64", quiet=True)
    errors = []
    for c in (pk.sqrt(2), 1.4142135623730951):
        problem = _const_problem(c)
        sol = pk.train(problem, **kw)
        xs = np.linspace(0, 1, 101)
        exact = problem.exact_function("u")(x=xs)
        errors.append(np.linalg.norm(sol({"x": xs})["u"] - exact) / np.linalg.norm(exact))
    assert errors[0] < 1e-2
    # the same float64 arithmetic up to the last bit of one constant
    assert abs(errors[0] - errors[1]) <= 1e-6 * errors[1]


def test_reference_of_symbolic_constants_equals_float_literal():
    r1 = pk.reference(_const_problem(sp.sqrt(2)), resolution=101)
    r2 = pk.reference(_const_problem(1.4142135623730951), resolution=101)
    assert np.allclose(r1.fields["u"], r2.fields["u"], rtol=1e-13, atol=1e-13)
