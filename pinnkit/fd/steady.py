"""Steady problems: sparse Newton on all grid unknowns (PDE rows inside, condition rows on
the boundary), with a backtracking line search and a convergence check that reports failure."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ReferenceSolverError, UnsupportedSpecError
from .discretize import Discretization, compile_residual
from .guard import nonfinite_message

__all__ = ["solve_steady"]


def stabilization(disc: Discretization, stabilize: dict | None) -> dict:
    """{equation name: sparse (interior rows x unknowns) matrix S}: S u is added to that
    equation's residual: S = -c Σ_k h_k² D_kk on the stabilised field, the second differences
    taken between interior points only."""
    if stabilize is None:
        return {}
    if not isinstance(stabilize, dict) or set(stabilize) - {"equation", "field", "coefficient"} \
            or not {"equation", "field"} <= set(stabilize):
        raise UnsupportedSpecError("stabilize must be {'equation': name, 'field': name, "
                                   f"'coefficient': c}}, got {stabilize!r}")
    eq, f = stabilize["equation"], stabilize["field"]
    c = float(stabilize.get("coefficient", 1.0))
    if eq not in disc.problem.equations:
        raise UnsupportedSpecError(f"stabilize: no equation {eq!r} (equations: "
                                   f"{', '.join(disc.problem.equations)})")
    if f not in disc.fields:
        raise UnsupportedSpecError(f"stabilize: no field {f!r} (fields: {', '.join(disc.fields)})")
    # graph Laplacian over pairs of neighbouring interior points (the natural, zero-flux
    # boundary condition of the stabilisation): it annihilates constants, so a field known
    # up to a constant (pressure) keeps exactly that freedom for the gauge to fix
    ndim = len(disc.grid.names)
    inside = np.zeros(disc.P, dtype=bool)
    inside[disc.interior] = True
    L = sp.csr_matrix((disc.P, disc.P))
    for k in range(ndim):
        D = disc.grid.derivative(tuple(2 if j == k else 0 for j in range(ndim)), 2).tocoo()
        keep = inside[D.row] & inside[D.col] & (D.row != D.col)
        off = sp.csr_matrix((D.data[keep], (D.row[keep], D.col[keep])), shape=D.shape)
        off = off * disc.grid.h[k] ** 2
        L = L + off - sp.diags(np.asarray(off.sum(axis=1)).ravel())
    blocks = [(-c * L[disc.interior]) if g == f else sp.csr_matrix((len(disc.interior), disc.P))
              for g in disc.fields]
    S = sp.hstack(blocks, format="csr")
    return {eq: S}


class _SteadySystem:
    """The discrete steady system R(w) = 0 and its sparse Jacobian: every equation at the
    interior points, every condition at its boundary points, and with a gauge (one field
    value fixed at a point) one more unknown, the multiplier that absorbs the system's
    compatibility defect."""

    def __init__(self, disc: Discretization, stabilize: dict | None) -> None:
        problem = disc.problem
        if len(problem.equations) != len(disc.fields):
            raise UnsupportedSpecError(
                f"{len(problem.equations)} equation(s) for {len(disc.fields)} field(s) "
                f"({', '.join(disc.fields)}): the steady reference needs a square system")
        self.disc = disc
        self.pdes = [(name, compile_residual(problem, e)) for name, e in problem.equations.items()]
        self.extra = stabilization(disc, stabilize)
        self.rows = rows = disc.interior
        self.coords = disc.coords_at(rows, None)
        self.gauges = gauges = disc.gauges
        if len(gauges) > 1:
            raise UnsupportedSpecError(f"{len(gauges)} field values at boundary grid nodes; the "
                                       "steady reference takes one (a level such as p(0, 0) = 0)")
        self.n = n = len(disc.fields) * disc.P
        if gauges:
            # the gauge row fixes the free constant; its multiplier, one unknown constant added
            # to the stabilised (or every) equation, absorbs the discrete system's
            # compatibility defect and is reported (it tends to 0 with the grid spacing)
            f, point, self.value = gauges[0]
            names = [stabilize["equation"]] if stabilize else list(problem.equations)
            self.col = np.concatenate([np.full(len(rows), float(name in names)) for name, _ in self.pdes]
                                      + [np.zeros(len(disc.boundary_unknowns()))])
            self.G = sp.csr_matrix(([1.0], ([0], [disc.fields.index(f) * disc.P + point])),
                                   shape=(1, n))
        if len(rows) * len(self.pdes) + len(disc.boundary_unknowns()) != n:
            raise UnsupportedSpecError("the discrete system is not square (conditions overlap "
                                       "or leave points free)")
        self.blocks = [(f"equation {name!r}", rows) for name, _ in self.pdes] \
            + [(f"condition {g['term'].name!r}", g["rows"]) for g in disc.bc_groups] \
            + [("the gauge", 1)]

    @property
    def size(self) -> int:
        return self.n + len(self.gauges)

    def __call__(self, w: np.ndarray) -> tuple:
        """(R(w), its Jacobian as a CSC matrix)."""
        disc, rows, n = self.disc, self.rows, self.n
        u = w[:n]
        rs, js = [], []
        for name, r in self.pdes:
            vals = disc.key_values(r.keys, u, rows)
            res = np.broadcast_to(np.asarray(r(self.coords, [], vals), float), (len(rows),))
            jac = disc.jacobian_rows(r, r.partials(self.coords, [], vals), rows)
            if name in self.extra:
                res, jac = res + self.extra[name] @ u, jac + self.extra[name]
            rs.append(res)
            js.append(jac)
        rb, jb = disc.boundary_system(u, None)
        if not self.gauges:
            return np.concatenate(rs + [rb]), sp.vstack(js + [jb], format="csc")
        r = np.concatenate(rs + [rb]) + w[n] * self.col
        J = sp.bmat([[sp.vstack(js + [jb]), sp.csr_matrix(self.col[:, None])], [self.G, None]],
                    format="csc")
        return np.append(r, u[self.G.indices[0]] - self.value), J

    def check(self, what: str, r: np.ndarray, J) -> None:
        """Never hand SuperLU/BLAS a non-finite or visibly singular system (it prints 'illegal
        value' lines on stdout and fails), never stop on a NaN or infinite residual: a
        `ReferenceSolverError` naming the equation or condition and the point."""
        where = dict(names=self.disc.grid.names, points=self.disc.grid.points)
        if not np.all(np.isfinite(r)):
            raise ReferenceSolverError(nonfinite_message(what + ": the residual is not finite",
                                                         self.blocks, r, **where))
        Jc = J.tocoo()
        row_max = np.zeros(J.shape[0])
        np.maximum.at(row_max, Jc.row, np.abs(Jc.data))    # NaN propagates into its row
        if not np.all(np.isfinite(row_max)):
            raise ReferenceSolverError(nonfinite_message(what + ": the Jacobian is not finite",
                                                         self.blocks, row_max, **where))
        if np.any(row_max == 0):
            raise ReferenceSolverError(nonfinite_message(
                what + ": the Jacobian has a zero row (the linearisation there determines "
                "nothing, e.g. a condition like u**2 - c or u*u_x - c at the start value u = 0)",
                self.blocks, row_max, test=lambda v: v == 0, **where))

    def result(self, w: np.ndarray, iterations: int, norm: float, history: list) -> tuple:
        info = {"method": "newton", "iterations": iterations, "residual": norm, "history": history}
        if self.gauges:
            info["gauge_multiplier"] = float(w[self.n])
        return w[:self.n], info


def solve_steady(disc: Discretization, tol: float = 1e-10, max_iter: int = 50,
                 progress=None, stabilize: dict | None = None) -> tuple[np.ndarray, dict]:
    """Full unknown vector and info (iterations, residual norm): Newton with step halving from
    all fields 0. Raises `ReferenceSolverError` on non-convergence or a singular system."""
    system = _SteadySystem(disc, stabilize)
    u = np.zeros(system.size)
    r, J = system(u)
    system.check("Newton's start (all fields 0)", r, J)
    norm0 = norm = float(np.linalg.norm(r, np.inf))
    history = [norm]
    for it in range(1, max_iter + 1):
        if norm <= tol * max(1.0, norm0) or norm == 0.0:
            return system.result(u, it - 1, norm, history)
        try:
            du = spla.spsolve(J, -r)
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or ["singular"])[0]
            raise ReferenceSolverError(f"Newton iteration {it}: singular Jacobian ({first})") from None
        if not np.all(np.isfinite(du)):
            raise ReferenceSolverError(f"Newton iteration {it}: the linear solve failed "
                                       "(singular Jacobian: is every field determined?)")
        if it > 1 and np.max(np.abs(du)) <= 1e-11 * (1.0 + np.max(np.abs(u))):
            # the Newton correction is at rounding level: the residual cannot drop further
            # (fine grids: stencil weights ~1/h² amplify rounding in the residual)
            return system.result(u, it - 1, norm, history)
        step = 1.0
        while True:
            r_new, J_new = system(u + step * du)
            new = float(np.linalg.norm(r_new, np.inf))
            if new < norm or step < 1e-4:
                break
            step /= 2
        u, r, J, norm = u + step * du, r_new, J_new, new
        system.check(f"Newton iteration {it}", r, J)
        history.append(norm)
        if step == 1.0 and np.max(np.abs(du)) <= 1e-11 * (1.0 + np.max(np.abs(u))):
            return system.result(u, it, norm, history)
        if progress is not None:
            progress(it, norm)
        if not np.isfinite(norm):
            break
    raise ReferenceSolverError(f"Newton did not converge in {max_iter} iterations (residual "
                               f"{norm:.3e}, started at {norm0:.3e})")
