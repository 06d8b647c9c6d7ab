"""Time-dependent problems: the method of lines with `scipy.integrate.solve_ivp`.

The equations are solved symbolically for each field's highest time derivative (they must be
linear in them); second order in time becomes a first-order system (u, u_t). Boundary values
are eliminated through the (linear) boundary conditions, u_B = A_BB⁻¹ (g(t) − A_BI u_I), so
the integrator sees an ODE in the interior values only, with a sparse analytic Jacobian.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import sympy
from scipy.integrate import solve_ivp
from sympy.solvers.solveset import NonlinearError

from ..errors import ReferenceSolverError, UnsupportedSpecError
from .discretize import Discretization, compile_residual

__all__ = ["solve_mol"]


def _isolate(disc: Discretization) -> tuple[dict, dict]:
    """{field: time order q} and {field: expression of d^q field/dt^q} (sympy, in derivatives)."""
    problem = disc.problem
    time_orders: dict = {}
    for name, eq in problem.equations.items():
        for f, orders in problem.derivative_keys(eq):
            qt, qs = orders[-1], sum(orders[:-1])
            if qt and qs:
                raise UnsupportedSpecError(f"equation {name!r} has a mixed space-time derivative "
                                           f"of {f}; the method of lines needs none")
            time_orders[f] = max(time_orders.get(f, 0), qt)
    for f in disc.fields:
        q = time_orders.get(f, 0)
        if q == 0:
            raise UnsupportedSpecError(f"field {f} has no time derivative in the equations (an "
                                       "algebraic constraint): the method of lines cannot integrate it")
        if q > 2:
            raise UnsupportedSpecError(f"field {f} has time derivatives of order {q}; only 1 and 2 "
                                       "are supported")
    if len(problem.equations) != len(disc.fields):
        raise UnsupportedSpecError(f"{len(problem.equations)} equation(s) for {len(disc.fields)} "
                                   "field(s): the method of lines needs one equation per field")
    t = problem.time
    targets = {f: sympy.diff(problem.fields[f], t, time_orders[f]) for f in disc.fields}
    syms = {f: sympy.Dummy(f"d{f}") for f in disc.fields}
    eqs = [e.xreplace({targets[f]: syms[f] for f in disc.fields}) for e in problem.equations.values()]
    try:
        A, b = sympy.linear_eq_to_matrix(eqs, [syms[f] for f in disc.fields])
    except NonlinearError:
        raise UnsupportedSpecError(
            "the equations are not linear in the highest time derivative(s) "
            f"{', '.join(str(targets[f]) for f in disc.fields)}; cannot isolate them") from None
    if A.free_symbols & set(syms.values()) or sympy.simplify(A.det()) == 0:
        raise UnsupportedSpecError("cannot isolate the highest time derivatives "
                                   f"{', '.join(str(targets[f]) for f in disc.fields)}")
    sol = A.LUsolve(b)
    return time_orders, {f: sympy.simplify(sol[i]) for i, f in enumerate(disc.fields)}


class _Boundary:
    """The linear boundary conditions A u = g(t), solved for the boundary unknowns: the
    factorized A_BB and M = −A_BB⁻¹ A_BI, refreshed only when the conditions depend on t."""

    def __init__(self, disc: Discretization, full_I: np.ndarray, full_B: np.ndarray) -> None:
        problem = disc.problem
        for grp in disc.bc_groups:
            for d in grp["residual"].dsym:
                if any(isinstance(s, sympy.Dummy) for s in d.free_symbols):
                    raise UnsupportedSpecError(f"condition {grp['term'].name!r} is nonlinear in "
                                               "the fields: the method of lines needs linear "
                                               "boundary conditions")
        self.time_dependent = any(problem.time in d.free_symbols for grp in disc.bc_groups
                                  for d in grp["residual"].dsym)
        self.disc, self.full_I, self.full_B = disc, full_I, full_B
        self.t: float | None = None
        self.lu = self.M = None

    def _factorize(self, t: float) -> None:
        _, A = self.disc.boundary_system(None, t)
        A_BB = A[:, self.full_B].tocsc()
        A_BI = A[:, self.full_I].tocsc()
        self.lu = spla.splu(A_BB)
        self.M = (-sp.csr_matrix(self.lu.solve(A_BI.toarray())) if A_BI.nnz
                  else sp.csr_matrix((len(self.full_B), len(self.full_I))))
        self.t = t

    def at(self, t: float) -> tuple:
        """(lu of A_BB, M, g(t))."""
        if self.t is None or (self.time_dependent and self.t != t):
            self._factorize(t)
        g = -self.disc.boundary_system(None, t, jacobian=False)[0]   # residual at u = 0 is -g
        return self.lu, self.M, g


class _MOLSystem:
    """The semi-discrete system dy/dt = F(t, y) of the method of lines. The state y holds,
    per field, its values at the interior points, then (second order in time) their
    velocities; the boundary values follow from the boundary conditions (`_Boundary`)."""

    def __init__(self, disc: Discretization, advection: str) -> None:
        problem = disc.problem
        self.disc = disc
        self.q, rhs_exprs = _isolate(disc)
        self.G = {f: compile_residual(problem, e) for f, e in rhs_exprs.items()}
        self.nf, self.P = len(disc.fields), disc.P
        self.I = disc.interior
        self.nI = nI = len(self.I)
        self.full_I = np.concatenate([k * self.P + self.I for k in range(self.nf)])
        self.full_B = disc.boundary_unknowns()
        if len(self.full_B) != self.nf * len(disc.bpoints):
            raise UnsupportedSpecError("boundary conditions overlap or leave boundary points free")
        self.offsets, self.n = {}, 0
        for f in disc.fields:
            self.offsets[f] = self.n
            self.n += nI * self.q[f]
        self.boundary = _Boundary(disc, self.full_I, self.full_B)
        self.upwind = {}
        if advection == "upwind":
            for k in range(len(disc.grid.names)):
                self.upwind[k] = (disc.grid.upwind1d(k, -1)[self.I], disc.grid.upwind1d(k, +1)[self.I])
        elif advection != "central":
            raise UnsupportedSpecError(f"advection must be 'central' or 'upwind', got {advection!r}")
        self._coords: tuple = (None, None)       # (t, interior coordinates at t)

    def full_state(self, t: float, y: np.ndarray) -> tuple:
        """(every unknown at every point, M) for the state y at time t."""
        u = np.zeros(self.nf * self.P)
        uI = np.concatenate([y[self.offsets[f]:self.offsets[f] + self.nI] for f in self.disc.fields])
        u[self.full_I] = uI
        lu, M, g = self.boundary.at(t)
        if len(self.full_B):
            u[self.full_B] = M @ uI + lu.solve(g)
        return u, M

    def _coords_at(self, t: float):
        if self._coords[0] != t:
            self._coords = (t, self.disc.coords_at(self.I, t))
        return self._coords[1]

    def evaluate(self, t: float, y: np.ndarray, want_jac: bool):
        """F(t, y), or (``want_jac``) its sparse Jacobian."""
        disc, q, offsets, nI = self.disc, self.q, self.offsets, self.nI
        u, M = self.full_state(t, y)
        coords = self._coords_at(t)
        dy = np.empty_like(y)
        blocks = []
        for f in disc.fields:
            r = self.G[f]
            extra, chosen = {}, {}
            for k in r.keys:
                if disc.time_order(k) == 1 and q[k[0]] == 2:
                    extra[k] = y[offsets[k[0]] + nI: offsets[k[0]] + 2 * nI]
            vals = disc.key_values(r.keys, u, self.I, extra)
            if self.upwind:
                vals, chosen = _apply_upwind(disc, r, coords, vals, u, self.upwind)
            o = offsets[f]
            gval = np.broadcast_to(np.asarray(r(coords, [], vals), float), (nI,))
            if q[f] == 1:
                dy[o:o + nI] = gval
            else:
                dy[o:o + nI] = y[o + nI:o + 2 * nI]
                dy[o + nI:o + 2 * nI] = gval
            if want_jac:
                blocks.append((f, r, r.partials(coords, [], vals), extra, chosen))
        if not want_jac:
            return dy
        return _jacobian(disc, blocks, M, q, offsets, nI, self.full_I, self.full_B, self.n)

    def initial_state(self) -> np.ndarray:
        y0 = _initial_state(self.disc, self.q, self.offsets, self.n, self.nI)
        if not np.all(np.isfinite(y0)):
            raise ReferenceSolverError("initial condition is not finite on the grid")
        return y0

    def fields(self, t: float, y: np.ndarray) -> dict:
        """{field: values at every point (P,)} of the state y at t."""
        u, _ = self.full_state(t, y)
        return {f: u[i * self.P:(i + 1) * self.P] for i, f in enumerate(self.disc.fields)}


def solve_mol(disc: Discretization, times: np.ndarray, method: str = "BDF", rtol: float = 1e-8,
              atol: float = 1e-10, advection: str = "central", progress=None) -> tuple[dict, dict]:
    """Integrate in time; returns ({field: array (nt, P)}, info). ``progress(t)`` is called
    with each new time the integrator reaches."""
    domain = disc.problem.domain
    system = _MOLSystem(disc, advection)
    reached = [domain.t0]

    def rhs(t, y):
        if progress is not None and t > reached[0]:
            reached[0] = t
            progress(t)
        return system.evaluate(t, y, False)

    sol = solve_ivp(rhs, (domain.t0, domain.t1), system.initial_state(), method=method,
                    t_eval=times, rtol=rtol, atol=atol,
                    jac=((lambda t, y: system.evaluate(t, y, True))
                         if method in ("BDF", "Radau", "LSODA") else None))
    if not sol.success:
        raise ReferenceSolverError(f"time integration ({method}) failed at t = {sol.t[-1]:.6g}: "
                                   f"{sol.message}")
    out = {f: np.empty((len(times), disc.P)) for f in disc.fields}
    for j, t in enumerate(sol.t):
        for f, values in system.fields(t, sol.y[:, j]).items():
            out[f][j] = values
    return out, {"method": method, "nfev": int(sol.nfev), "njev": int(sol.njev),
                 "nlu": int(sol.nlu), "rtol": rtol, "atol": atol, "advection": advection}


def _apply_upwind(disc, r, coords, vals, u, upwind):
    """Replace first derivatives by one-sided differences taken against the flow."""
    partial = r.partials(coords, [], vals)
    vals = list(vals)
    chosen = {}
    for j, k in enumerate(r.keys):
        so = disc.spatial_orders(k)
        if sum(so) != 1 or disc.time_order(k):
            continue
        axis = so.index(1)
        back, fwd = upwind[axis]
        c = np.broadcast_to(np.asarray(partial[j], float), (back.shape[0],))
        uf = u[disc.block(k[0])]
        # u_t = G with dG/du_x = -a: a > 0 (flow to +x) takes the backward difference
        use_back = c < 0
        vals[j] = np.where(use_back, back @ uf, fwd @ uf)
        chosen[k] = sp.diags(use_back.astype(float)) @ back + sp.diags((~use_back).astype(float)) @ fwd
    return vals, chosen


def _jacobian(disc, blocks, M, q, offsets, nI, full_I, full_B, n):
    nfull = len(disc.fields) * disc.P
    # E: d u_full / d u_I  (identity on interior unknowns, M on eliminated boundary unknowns)
    E = sp.csr_matrix((np.ones(len(full_I)), (full_I, np.arange(len(full_I)))),
                      shape=(nfull, len(full_I)))
    if len(full_B):
        E = E + _place_rows(M, full_B, nfull)
    # columns of E map to state positions of each field's values
    col_state = np.concatenate([offsets[f] + np.arange(nI) for f in disc.fields])
    S = sp.csr_matrix((np.ones(len(col_state)), (np.arange(len(col_state)), col_state)),
                      shape=(len(col_state), n))
    ES = (E @ S).tocsr()
    rows = []
    for f in disc.fields:
        o = offsets[f]
        _, r, partials, extra, chosen = next(b for b in blocks if b[0] == f)
        dG = sp.csr_matrix((nI, n))
        skip = set(extra) | set(chosen)
        dG = dG + disc.jacobian_rows(r, partials, disc.interior, skip=skip) @ ES
        for k, d in zip(r.keys, partials):
            if k in extra:
                vo = offsets[k[0]] + nI
                D = sp.csr_matrix((np.broadcast_to(np.asarray(d, float), (nI,)),
                                   (np.arange(nI), vo + np.arange(nI))), shape=(nI, n))
                dG = dG + D
            elif k in chosen:
                fi = disc.fields.index(k[0])
                pad = sp.hstack([sp.csr_matrix((nI, fi * disc.P)), chosen[k],
                                 sp.csr_matrix((nI, nfull - (fi + 1) * disc.P))], format="csr")
                dG = dG + sp.diags(np.broadcast_to(np.asarray(d, float), (nI,))) @ pad @ ES
        if q[f] == 1:
            rows.append(dG)
        else:
            ident = sp.csr_matrix((np.ones(nI), (np.arange(nI), o + nI + np.arange(nI))),
                                  shape=(nI, n))
            rows += [ident, dG]
    return sp.vstack(rows, format="csc")


def _place_rows(M, full_B, nfull):
    M = sp.coo_matrix(M)
    return sp.csr_matrix((M.data, (full_B[M.row], M.col)), shape=(nfull, M.shape[1]))


def _initial_state(disc, q, offsets, n, nI):
    problem = disc.problem
    y0 = np.zeros(n)
    given = {}
    for t in problem.terms:
        if t.kind == "initial":
            given[(t.condition.u.func.__name__, t.condition.order)] = t.condition
    for f in disc.fields:
        for order in range(q[f]):
            c = given.get((f, order))
            if c is None:
                raise UnsupportedSpecError(f"field {f} needs an initial condition of order {order} "
                                           f"(pk.Initial({f}, g, order={order}))")
            o = offsets[f] + order * nI
            y0[o:o + nI] = disc.point_function(c.g)(disc.interior, problem.domain.t0)
    return y0
