"""Equation discovery: sparse regression of trained learned terms onto a library (SINDy).

Brunton, Proctor & Kutz (2016), "Discovering governing equations from data by sparse
identification of nonlinear dynamical systems", PNAS 113(15): sequentially thresholded least
squares (STLSQ). Used on a universal differential equation's network as in Rackauckas et al.
(2020): the network is evaluated along the trained solution, each output is regressed onto the
library, and the result is a sympy expression of the fields that `Problem.substitute` puts
back into the spec. Numpy only (the trained networks come as numpy callables).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import sympy

from .errors import SpecError
from .expr import compile_expr
from .learned import PolynomialLibrary

__all__ = ["discover", "stlsq"]


def stlsq(theta: np.ndarray, y: np.ndarray, threshold: float, max_iter: int = 20) -> np.ndarray:
    """ξ minimizing ‖Θξ − y‖ with every |ξ_j| < threshold set to 0 (STLSQ; Brunton 2016).

    theta (n, p), y (n,); returns ξ (p,)."""
    xi = np.linalg.lstsq(theta, y, rcond=None)[0]
    for _ in range(max_iter):
        small = np.abs(xi) < threshold
        new = np.zeros_like(xi)
        if (~small).any():
            new[~small] = np.linalg.lstsq(theta[:, ~small], y, rcond=None)[0]
        if np.array_equal(new != 0, xi != 0) and np.allclose(new, xi):
            return new
        xi = new
    return xi


def _sample_points(problem, samples: int, seed: int) -> dict:
    """Points at which to evaluate the learned terms: equally spaced times on the data window
    (ODE systems), else quasi-random interior points of the domain."""
    domain = problem.domain
    if not problem.spatial_coords:
        return {problem.time.name: np.linspace(float(domain.t0), float(domain.t1), samples)}
    return domain.sample_interior(samples, "sobol", seed)


def discover(sol: Any, library: PolynomialLibrary | Sequence | None = None,
             threshold: float = 0.1, samples: int = 200, seed: int = 0) -> dict:
    """{learned output name: sympy expression of the fields/coordinates} by SINDy.

    sol: a trained solution with ``problem``, ``__call__`` and ``learned_terms()`` (method
    "ode" or a PINN with learned terms). library: `pk.polynomials(degree)` of each network's
    inputs (default degree 2), or a list of sympy expressions of the fields and coordinates.
    threshold: STLSQ's cut on coefficients. samples: points along the solution.
    Raises `SpecError` for a solution without learned terms or a bad library.
    """
    problem = sol.problem
    if not problem.networks:
        raise SpecError(f"discover: problem {problem.name!r} has no learned terms (pk.network)")
    if not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise SpecError(f"discover: threshold must be a number >= 0, got {threshold!r}")
    library = PolynomialLibrary(2) if library is None else library
    points = _sample_points(problem, samples, seed)
    values = sol(points)
    names = [c.name for c in problem.coords]
    arrays = [np.asarray(points[n], float).ravel() for n in names]
    arrays += [np.asarray(values[f], float).ravel() for f in problem.fields]
    args = list(problem.coords) + list(problem.fields.values())
    nets = sol.learned_terms()
    out: dict = {}
    for name, net in problem.networks.items():
        X = np.stack([_evaluate(args, e, arrays) for e in net.inputs], axis=1)
        Y = np.asarray(nets[name](X), float).reshape(len(X), -1)
        if isinstance(library, PolynomialLibrary):
            terms = library.terms(list(net.inputs))
        elif isinstance(library, (list, tuple)) and library:
            terms = [sympy.sympify(e) for e in library]
        else:
            raise SpecError(f"discover: library must be pk.polynomials(...) or a non-empty list of "
                            f"sympy expressions, got {library!r}")
        for e in terms:
            extra = e.free_symbols - set(problem.coords)
            if extra:
                raise SpecError(f"discover: library term {e} uses {', '.join(map(str, extra))}, "
                                "which are not coordinates")
        theta = np.stack([_evaluate(args, e, arrays) for e in terms], axis=1)
        for k, call in enumerate(net.outputs):
            xi = stlsq(theta, Y[:, k], float(threshold))
            out[call.func.__name__] = sympy.Add(*[sympy.Float(c, 6) * e
                                                  for c, e in zip(xi, terms) if c != 0])
    return out


def _evaluate(args: list, expr: sympy.Expr, arrays: list) -> np.ndarray:
    fn = compile_expr(args, expr, "numpy")
    return np.broadcast_to(np.asarray(fn(*arrays), float), arrays[0].shape).astype(float)
