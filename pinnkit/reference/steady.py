"""Steady problems: sparse Newton on all grid unknowns (PDE rows inside, condition rows on
the boundary), with a backtracking line search and a convergence check that reports failure."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ReferenceSolverError, UnsupportedSpecError
from .discretize import Discretization, compile_residual

__all__ = ["solve_steady"]


def solve_steady(disc: Discretization, tol: float = 1e-10, max_iter: int = 50,
                 progress=None) -> tuple[np.ndarray, dict]:
    """Full unknown vector and info (iterations, residual norm). Raises on non-convergence."""
    problem = disc.problem
    if len(problem.equations) != len(disc.fields):
        raise UnsupportedSpecError(
            f"{len(problem.equations)} equation(s) for {len(disc.fields)} field(s) "
            f"({', '.join(disc.fields)}): the steady reference needs a square system")
    pdes = [compile_residual(problem, e) for e in problem.equations.values()]
    rows = disc.interior
    coords = disc.coords_at(rows, None)

    def system(u):
        rs, js = [], []
        for r in pdes:
            vals = disc.key_values(r.keys, u, rows)
            rs.append(np.broadcast_to(np.asarray(r(coords, [], vals), float), (len(rows),)))
            js.append(disc.jacobian_rows(r, r.partials(coords, [], vals), rows))
        rb, jb = disc.boundary_system(u, None)
        return np.concatenate(rs + [rb]), sp.vstack(js + [jb], format="csc")

    n = len(disc.fields) * disc.P
    if len(rows) * len(pdes) + len(disc.boundary_unknowns()) != n:
        raise UnsupportedSpecError("the discrete system is not square (conditions overlap or "
                                   "leave points free)")
    u = np.zeros(n)
    r, J = system(u)
    norm0 = norm = float(np.linalg.norm(r, np.inf))
    history = [norm]
    for it in range(1, max_iter + 1):
        if norm <= tol * max(1.0, norm0) or norm == 0.0:
            return u, {"method": "newton", "iterations": it - 1, "residual": norm,
                       "history": history}
        try:
            du = spla.spsolve(J, -r)
        except RuntimeError as exc:
            raise ReferenceSolverError(f"Newton iteration {it}: singular Jacobian ({exc})") from exc
        if not np.all(np.isfinite(du)):
            raise ReferenceSolverError(f"Newton iteration {it}: the linear solve failed "
                                       "(singular Jacobian: is every field determined?)")
        if it > 1 and np.max(np.abs(du)) <= 1e-11 * (1.0 + np.max(np.abs(u))):
            # the Newton correction is at rounding level: the residual cannot drop further
            # (fine grids: stencil weights ~1/h² amplify rounding in the residual)
            return u, {"method": "newton", "iterations": it - 1, "residual": norm,
                       "history": history}
        step = 1.0
        while True:
            r_new, J_new = system(u + step * du)
            new = float(np.linalg.norm(r_new, np.inf))
            if new < norm or step < 1e-4:
                break
            step /= 2
        u, r, J, norm = u + step * du, r_new, J_new, new
        history.append(norm)
        if step == 1.0 and np.max(np.abs(du)) <= 1e-11 * (1.0 + np.max(np.abs(u))):
            return u, {"method": "newton", "iterations": it, "residual": norm,
                       "history": history}
        if progress is not None:
            progress(it, norm)
        if not np.isfinite(norm):
            break
    raise ReferenceSolverError(f"Newton did not converge in {max_iter} iterations (residual "
                               f"{norm:.3e}, started at {norm0:.3e})")
