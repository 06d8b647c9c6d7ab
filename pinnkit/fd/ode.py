"""The reference for ODE systems: SciPy `solve_ivp` on the problem's first-order system.

Implicit methods (Radau, BDF, LSODA) get the exact Jacobian, differentiated by sympy, so
stiff systems (Robertson) take a few hundred steps. Learned terms come from ``terms``: a
trained solution's ``learned_terms()`` or a dict {network name: f(X (n, n_in)) -> (n, n_out)}
of numpy callables, so this module imports no torch.
"""

from __future__ import annotations

import time as _time
from typing import Any, Callable

import numpy as np
import sympy
from scipy.integrate import solve_ivp

from ..errors import ReferenceSolverError, UnsupportedSpecError
from ..expr import compile_exprs
from ..ode.system import ODESystem, ode_system, split_networks
from ..spec import Problem

__all__ = ["solve_ode_reference", "ode_right_hand_side", "IMPLICIT_METHODS"]

IMPLICIT_METHODS = ("Radau", "BDF", "LSODA")
METHODS = ("RK45", "RK23", "DOP853") + IMPLICIT_METHODS


def _learned(problem: Problem, terms: Any) -> tuple[dict, dict]:
    """({network name: numpy callable}, {parameter name: value}) from ``terms``."""
    if terms is None:
        return {}, {}
    if hasattr(terms, "learned_terms"):
        return dict(terms.learned_terms()), dict(getattr(terms, "parameters", {}) or {})
    if isinstance(terms, dict):
        return dict(terms), {}
    raise UnsupportedSpecError(f"terms must be a trained solution or a dict network name -> "
                               f"callable, got {type(terms).__name__}")


def ode_right_hand_side(system: ODESystem, terms: Any = None) -> tuple[Callable, Callable | None, np.ndarray]:
    """(f(t, y) -> dy/dt, Jacobian(t, y) or None with learned terms, y0) as numpy functions."""
    problem = system.problem
    nets, trained = _learned(problem, terms)
    missing = [n for n in system.networks if n not in nets]
    if missing:
        raise UnsupportedSpecError(
            f"problem {problem.name!r} has learned term(s) {', '.join(missing)}: pass "
            "terms=<trained solution> to evaluate them, or replace them first "
            "(problem.substitute(pk.discover(sol)))")
    values = {p.name: float(trained.get(p.name, p.init)) for p in system.parameters}
    pvals = [values[p.name] for p in system.parameters]
    base = [system.t] + list(system.symbols) + list(system.parameters)
    rhs, groups = split_networks(system.rhs)
    holders = [ph for _, _, outs in groups for _, ph in outs]
    f_rhs = compile_exprs(base + holders, rhs, "numpy")
    f_inputs = [(nets[net.name], compile_exprs(base, list(args), "numpy"),
                 [k for k, _ in outs]) for net, args, outs in groups]
    y0 = np.array([float(sympy.sympify(g).subs(dict(zip(system.parameters, pvals))))
                   for g in system.y0])

    def f(t: float, y: np.ndarray) -> np.ndarray:
        a = [t, *y, *pvals]
        outs = []
        for fn, inputs, ks in f_inputs:
            X = np.asarray(inputs(*a), float).reshape(1, -1)
            Y = np.asarray(fn(X), float).reshape(1, -1)
            outs += [Y[0, k] for k in ks]
        return np.array(f_rhs(*a, *outs), dtype=float).reshape(-1)

    if groups:                  # learned terms: no symbolic Jacobian
        return f, None, y0
    J = system.jacobian()
    f_jac = compile_exprs(base, list(J), "numpy")

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        return np.array(f_jac(t, *y, *pvals), dtype=float).reshape(J.shape)
    return f, jac, y0


def solve_ode_reference(problem: Problem, resolution: int | dict | None, quiet: bool = True,
                        terms: Any = None, **options: Any):
    """Integrate the ODE system of ``problem`` with `solve_ivp`; returns a `GridSolution` with
    the time axis only. Options: times (output times, may go past t1: extrapolation),
    method (Radau default, BDF, LSODA, RK45, RK23, DOP853), rtol, atol, max_step."""
    from . import GridSolution
    system = ode_system(problem, "the ODE reference")
    opts = {"times": None, "method": "Radau", "rtol": 1e-8, "atol": 1e-10, "max_step": np.inf}
    defaults = dict(problem.reference_options)
    given_res = defaults.pop("resolution", None)
    resolution = given_res if resolution is None else resolution
    for source in (defaults, options):
        unknown = sorted(set(source) - set(opts))
        if unknown:
            raise UnsupportedSpecError(f"unknown reference option(s) {', '.join(unknown)} for an "
                                       f"ODE system; valid: resolution, {', '.join(opts)}")
        opts.update({k: v for k, v in source.items() if v is not None or k == "times"})
    if opts["method"] not in METHODS:
        raise UnsupportedSpecError(f"unknown method {opts['method']!r}; choose from {', '.join(METHODS)}")
    tname = system.t.name
    if isinstance(resolution, dict):
        resolution = resolution.get(tname)
    n = 101 if resolution is None else int(resolution)
    if n < 2:
        raise UnsupportedSpecError(f"resolution of {tname} must be at least 2, got {n}")
    tt = (np.linspace(system.t0, system.t1, n) if opts["times"] is None
          else np.asarray(opts["times"], float).ravel())
    if np.any(np.diff(tt) <= 0) or tt[0] < system.t0:
        raise UnsupportedSpecError(f"times must increase and start at or after t0 = {system.t0}")
    f, jac, y0 = ode_right_hand_side(system, terms)
    kw = {"jac": jac} if opts["method"] in IMPLICIT_METHODS and jac is not None else {}
    t0 = _time.perf_counter()
    try:
        res = solve_ivp(f, (system.t0, float(tt[-1])), y0, method=opts["method"], t_eval=tt,
                        rtol=opts["rtol"], atol=opts["atol"], max_step=opts["max_step"], **kw)
    except ValueError as exc:   # Radau/BDF: "array must not contain infs or NaNs" (overflow)
        if "infs or NaNs" not in str(exc):
            raise
        raise ReferenceSolverError(f"problem {problem.name!r}: solve_ivp ({opts['method']}) "
                                   f"failed: the solution overflowed ({exc})") from None
    if not res.success:
        raise ReferenceSolverError(f"problem {problem.name!r}: solve_ivp ({opts['method']}) "
                                   f"failed: {res.message}")
    fields = {fname: res.y[col] for fname, col in system.fields.items()}
    info = {"method": opts["method"], "rtol": opts["rtol"], "atol": opts["atol"],
            "nfev": int(res.nfev), "njev": int(res.njev), "nlu": int(res.nlu),
            "jacobian": "sympy" if kw else ("finite differences" if opts["method"] in
                                             IMPLICIT_METHODS else "none"),
            "resolution": {tname: len(tt)}, "points": len(tt)}
    return GridSolution(problem.name, [tname], {tname: tt}, fields, np.ones(len(tt), dtype=bool),
                        _time.perf_counter() - t0, info)
