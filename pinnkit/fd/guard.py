"""Guards of the finite-difference reference: a size estimate before solving (refused above
a memory limit, with the estimate in the message), the location of non-finite values, and
the reason a time integration failed on a grid that does not resolve the solution.

The memory model is the sparse LU factor (SuperLU, COLAMD ordering) of the Newton or BDF
matrix, which dominates: nnz(L+U) ~ 5 N (1-D), ~ 7 N log2 N (2-D), ~ N^(2 - 1/d) (d >= 3)
for N unknowns, fitted to measured factorizations of 5- and 7-point Laplacians
(N = 2.5e3 .. 1.6e5 in 2-D: 47 .. 110 N; 3-D n = 10 .. 40: 0.93 .. 1.24 N^(5/3)), at 12
bytes per entry; plus the grid arrays and, for time-dependent problems, the stored output
and the dense boundary-elimination matrix (boundary x interior values) of the method of lines.
Work: nested-dissection flop counts N^(3(d-1)/d) (N for 1-D), 1e-8 s per unit (measured:
2-D N = 1.6e5 in 0.85 s, 3-D N = 6.4e4 in 27 s).
"""

from __future__ import annotations

import math
import os

import numpy as np
import sympy

from ..errors import ReferenceSolverError

__all__ = ["ReferenceSizeError", "estimate", "check_size", "default_memory_limit", "peclet_hint",
           "nonfinite_message"]


class ReferenceSizeError(ReferenceSolverError):
    """The reference at this resolution would need more memory than the limit allows."""


def default_memory_limit() -> float:
    """Half the machine's physical memory, in bytes (8 GiB where it cannot be read)."""
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2.0 ** 30


def estimate(problem, res: dict) -> dict:
    """{"points", "unknowns", "bytes", "seconds"} of the reference at resolution ``res``
    (upper bounds for masked grids: the full box is counted)."""
    space = problem.space_names
    d = len(space)
    points = math.prod(int(res[n]) for n in space)
    nf = len(problem.fields)
    N = float(points * nf)
    if d == 1:
        fill, work = 5 * N, N
    elif d == 2:
        fill, work = 7 * N * math.log2(max(N, 2.0)), N ** 1.5
    else:
        fill, work = N ** (2 - 1 / d), N ** (3 * (d - 1) / d)
    stencil = 2 * d + 1
    nbytes = 12 * fill + 8 * N * stencil * 6 + 8 * points * (4 + d)
    if problem.time is not None:
        nt = int(res[problem.time.name])
        nbytes += 8 * N * nt * 2                       # solve_ivp's output and ours
        boundary = points - math.prod(max(int(res[n]) - 2, 0) for n in space)
        nbytes += 8.0 * (boundary * nf) * (N - boundary * nf)   # dense boundary elimination
    return {"points": points, "unknowns": int(N), "bytes": float(nbytes), "seconds": 1e-8 * work}


def _gb(b: float) -> str:
    return f"{b / 2.0 ** 30:.3g} GB"


def check_size(problem, res: dict, limit: float | None) -> dict:
    """The `estimate`; raises `ReferenceSizeError` when it exceeds ``limit`` bytes (None: no
    limit), suggesting a resolution that fits."""
    est = estimate(problem, res)
    if limit is None or est["bytes"] <= limit:
        return est
    space = problem.space_names
    lo, hi = 0.0, 1.0      # the largest uniform scaling of the spatial resolution that fits
    for _ in range(40):
        mid = (lo + hi) / 2
        trial = dict(res, **{n: max(3, int(res[n] * mid)) for n in space})
        lo, hi = (mid, hi) if estimate(problem, trial)["bytes"] <= limit else (lo, mid)
    fits = {n: max(3, int(res[n] * lo)) for n in space}
    shown = ", ".join(f"{n}: {res[n]}" for n in space)
    raise ReferenceSizeError(
        f"problem {problem.name!r}: the reference at resolution {{{shown}}} has "
        f"{est['unknowns']:.3g} unknowns and needs an estimated {_gb(est['bytes'])} of memory "
        f"(sparse LU factor; about {est['seconds']:.3g} s per factorization), above the limit of "
        f"{_gb(limit)}; use a smaller resolution (about {fits} fits) or raise the reference option "
        "memory_limit_gb")


def nonfinite_message(what: str, blocks: list, values: np.ndarray, names: list | None = None,
                      points: np.ndarray | None = None, test=None) -> str:
    """"<what> is not finite (inf) in equation 'pde' at x = 0" for the first entry of the
    stacked ``values`` that fails ``test`` (default: not finite). ``blocks``: (name, grid
    node indices or a count) per stacked block; ``points`` (nodes x axes) and ``names`` give
    the nodes' coordinates."""
    bad = np.flatnonzero(~np.isfinite(values) if test is None else test(values))
    if not len(bad):
        return f"{what} is not finite"
    i = int(bad[0])
    for name, rows in blocks:
        size = rows if isinstance(rows, (int, np.integer)) else len(rows)
        if i < size:
            where = name
            if points is not None and not isinstance(rows, (int, np.integer)):
                where += " at " + ", ".join(f"{n} = {points[rows[i], k]:.6g}"
                                            for k, n in enumerate(names))
            more = f" and {len(bad) - 1} more place(s)" if len(bad) > 1 else ""
            shown = "" if test is not None else f" ({values[int(bad[0])]})"
            return f"{what}{shown} in {where}{more}"
        i -= size
    return what


def peclet_hint(problem, res: dict) -> str | None:
    """For an advection-diffusion equation whose time integration failed: the cell Péclet
    number |a| h / (2 |D|) at the initial state, and the resolution that makes it <= 1
    (central differences resolve the solution's steepest layers, of width ~ D/|a|, only then)."""
    if problem.time is None:
        return None
    init = {t.condition.u: t.condition.g for t in problem.terms
            if t.kind == "initial" and t.condition.order == 0}
    coords = list(problem.coords)
    hints = []
    for expr in problem.equations.values():
        for u, g in init.items():
            for x in problem.spatial_coords:
                try:
                    a = sympy.diff(expr, sympy.Derivative(u, x))
                    D = sympy.diff(expr, sympy.Derivative(u, (x, 2)))
                    if D == 0 or a == 0:
                        continue
                    a0 = a.subs(u, sympy.sympify(g)).subs(problem.time, problem.domain.t0)
                    D0 = D.subs(u, sympy.sympify(g)).subs(problem.time, problem.domain.t0)
                    lo, hi = problem.domain.bbox
                    k = coords.index(x)
                    xs = np.linspace(float(lo[k]), float(hi[k]), 2001)
                    mid = [float((lo[j] + hi[j]) / 2) for j in range(len(coords))]
                    args = [xs if c == x else mid[j] for j, c in enumerate(coords)]

                    def along(e):     # |e| along x through the middle of the box
                        f = sympy.lambdify(coords, e, "numpy")
                        return np.abs(np.broadcast_to(np.asarray(f(*args), float), xs.shape))
                    amax, dmin = float(np.max(along(a0))), float(np.min(along(D0)))
                except (TypeError, ValueError, AttributeError, ZeroDivisionError, IndexError):
                    continue
                if not (math.isfinite(amax) and dmin > 0 and amax > 0):
                    continue
                L = float(hi[k] - lo[k])
                h = L / (int(res[x.name]) - 1)
                pe = amax * h / (2 * dmin)
                if pe > 1:
                    need = math.ceil(L * amax / (2 * dmin)) + 1
                    hints.append(f"the grid does not resolve the solution: cell Péclet number "
                                 f"|a|h/(2|D|) = {pe:.3g} > 1 in {x.name} (|a| up to {amax:.3g}, "
                                 f"D = {dmin:.3g}, h = {h:.3g}); a resolution of at least "
                                 f"{need} points in {x.name} resolves it (or reference option "
                                 "advection='upwind', first order)")
    return "; ".join(hints) if hints else None
