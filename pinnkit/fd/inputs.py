"""Input fields and conservative flux terms in the finite-difference reference.

An input field (`pinnkit.input_field`) is known data of one problem instance: the reference
takes its values at the grid points (from a grid array or a callable) and passes them to the
compiled residuals as extra arguments after the coordinates. A `ConservativeDerivative`
``d/dx_k (a du/dx_k)`` becomes a placeholder whose operator is the face-flux matrix of
`Discretization.flux_operator`, so the product rule never differentiates ``a``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
from scipy.interpolate import RegularGridInterpolator
from sympy.core.function import AppliedUndef

from ..errors import UnsupportedSpecError
from ..spec import ConservativeDerivative, InputField, Problem

__all__ = ["conservative_placeholders", "input_symbols", "input_point_values"]


def conservative_placeholders(problem: Problem, expr: sympy.Expr) -> tuple:
    """``expr`` with each conservative flux term replaced by a placeholder symbol.

    Returns (expr, keys, symbols); a key is ``(field, orders, (text, coefficient))`` with
    order 2 along the flux axis. Raises `UnsupportedSpecError` unless each term is
    ``d/dx_k (a * du/dx_k)`` with ``a`` free of fields."""
    nodes = sorted(sympy.sympify(expr).atoms(ConservativeDerivative), key=str)
    keys, syms, repl = [], [], {}
    for node in nodes:
        v, c = node.args
        derivs = [d for d in v.atoms(sympy.Derivative) if isinstance(d.expr, AppliedUndef)]
        ok = len(derivs) == 1 and derivs[0].variable_count == ((c, 1),)
        if ok:
            s = sympy.Dummy("s")
            vs = v.xreplace({derivs[0]: s})
            coef = sympy.expand(sympy.diff(vs, s))
            ok = (sympy.diff(coef, s) == 0 and sympy.simplify(vs - coef * s) == 0
                  and not coef.atoms(AppliedUndef) and not coef.atoms(sympy.Derivative))
        if not ok:
            raise UnsupportedSpecError(
                f"the finite-difference reference takes divergence terms with an input-field "
                f"coefficient only as d/d{c} (a * d(field)/d{c}) with a free of fields; got "
                f"d/d{c} ({v})")
        f = derivs[0].expr.func.__name__
        orders = tuple(2 if q == c else 0 for q in problem.coords)
        keys.append((f, orders, (str(coef), coef)))
        syms.append(sympy.Dummy(f"flux_{f}_{c}"))
        repl[node] = syms[-1]
    return sympy.sympify(expr).xreplace(repl), keys, syms


def input_symbols(problem: Problem, expr: sympy.Expr) -> tuple:
    """``expr`` with each input field replaced by a symbol; (expr, symbols in the order of
    ``problem.inputs``). Derivatives of input fields are unsupported (say how to avoid them)."""
    for d in sympy.sympify(expr).atoms(sympy.Derivative):
        if isinstance(d.expr, InputField):
            raise UnsupportedSpecError(
                f"the finite-difference reference cannot differentiate the input field {d.expr} "
                f"({d}); write a flux with an input coefficient as pk.div([a * g for g in "
                "pk.grad(u)]), which is discretized in conservative form")
    syms = [sympy.Dummy(name) for name in problem.inputs]
    return sympy.sympify(expr).xreplace(dict(zip(problem.inputs.values(), syms))), syms


def input_point_values(problem: Problem, grid: Any, given: dict) -> dict:
    """{input name: values at every grid point} from grid arrays, callables or numbers.

    A grid array has the shape of the tensor grid over the input's coordinates (periodic axes
    without their right end); callables take those coordinates as arrays."""
    names = list(problem.inputs)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UnsupportedSpecError(
            f"inputs for {', '.join(map(repr, unknown))}, which the problem {problem.name!r} does "
            f"not declare (input fields: {', '.join(names) or 'none'})")
    missing = [n for n in names if n not in given]
    if missing:
        raise UnsupportedSpecError(
            f"problem {problem.name!r} has input field(s) {', '.join(missing)}: give their values, "
            f"e.g. pk.reference(problem, inputs={{{missing[0]!r}: array or callable}})")
    out = {}
    for name in names:
        args = [a.name for a in problem.inputs[name].args]
        axes = [grid.names.index(a) for a in args]
        cols = [grid.points[:, k] for k in axes]
        v = given[name]
        if callable(v):
            vals = np.asarray(v(*cols), dtype=float)
        elif np.ndim(v) == 0:
            vals = np.asarray(v, dtype=float)
        else:
            vals = _from_grid_array(name, args, np.asarray(v, dtype=float), grid, axes)
        try:
            vals = np.broadcast_to(vals, (grid.n_points,)).copy()
        except ValueError:
            raise UnsupportedSpecError(f"input {name!r}: the callable returned shape "
                                       f"{np.shape(vals)} for {grid.n_points} points") from None
        if not np.all(np.isfinite(vals)):
            raise UnsupportedSpecError(f"input {name!r} has NaN or Inf values on the grid")
        out[name] = vals
    return out


def _from_grid_array(name: str, args: list, v: np.ndarray, grid: Any, axes: list) -> np.ndarray:
    shape = tuple(grid.shape[k] for k in axes)
    if v.shape != shape:
        raise UnsupportedSpecError(
            f"input {name!r}: array of shape {v.shape} does not match the grid {shape} over "
            f"({', '.join(args)}); sample it at the reference resolution")
    idx = np.array(np.unravel_index(np.maximum(grid.node, 0), grid.shape))   # (d, P)
    vals = v[tuple(idx[k] for k in axes)]
    off = grid.node < 0
    if np.any(off):   # boundary crossings of a masked grid: linear interpolation
        interp = RegularGridInterpolator([grid.axes[k] for k in axes], v)
        vals[off] = interp(grid.points[np.ix_(off, axes)])
    return vals
