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


def solve_mol(disc: Discretization, times: np.ndarray, method: str = "BDF", rtol: float = 1e-8,
              atol: float = 1e-10, advection: str = "central", progress=None) -> tuple[dict, dict]:
    """Integrate in time; returns ({field: array (nt, P)}, info)."""
    problem = disc.problem
    domain = problem.domain
    q, rhs_exprs = _isolate(disc)
    G = {f: compile_residual(problem, e) for f, e in rhs_exprs.items()}
    nf, P = len(disc.fields), disc.P
    I, B = disc.interior, disc.bpoints
    nI = len(I)
    full_I = np.concatenate([k * P + I for k in range(nf)])
    full_B = disc.boundary_unknowns()
    if len(full_B) != nf * len(B):
        raise UnsupportedSpecError("boundary conditions overlap or leave boundary points free")
    # state layout: per field, values at interior points, then (q == 2) velocities there
    offsets, n = {}, 0
    for f in disc.fields:
        offsets[f] = n
        n += nI * q[f]

    # linear boundary conditions: A u = g(t) with A independent of u
    for grp in disc.bc_groups:
        for d in grp["residual"].dsym:
            if any(isinstance(s, sympy.Dummy) for s in d.free_symbols):
                raise UnsupportedSpecError(f"condition {grp['term'].name!r} is nonlinear in the "
                                           "fields: the method of lines needs linear boundary "
                                           "conditions")
    bc_time_dependent = any(problem.time in d.free_symbols for grp in disc.bc_groups
                            for d in grp["residual"].dsym)

    def bc_matrices(t):
        _, A = disc.boundary_system(None, t)
        A_BB = A[:, full_B].tocsc()
        A_BI = A[:, full_I].tocsc()
        lu = spla.splu(A_BB)
        M = -sp.csr_matrix(lu.solve(A_BI.toarray())) if A_BI.nnz else sp.csr_matrix((len(full_B), len(full_I)))
        return lu, M

    cache = {"t": None}

    def boundary(t):
        """Factorized A_BB, M = -A_BB^-1 A_BI (refreshed only for time-dependent BCs), g(t)."""
        if cache["t"] is None or (bc_time_dependent and cache["t"] != t):
            cache["lu"], cache["M"] = bc_matrices(t)
            cache["t"] = t
        g = -disc.boundary_system(None, t, jacobian=False)[0]   # residual at u = 0 is -g
        return cache["lu"], cache["M"], g

    def full_state(t, y):
        u = np.zeros(nf * P)
        uI = np.concatenate([y[offsets[f]:offsets[f] + nI] for f in disc.fields])
        u[full_I] = uI
        lu, M, g = boundary(t)
        if len(full_B):
            u[full_B] = M @ uI + lu.solve(g)
        return u, M

    upwind = {}
    if advection == "upwind":
        for k in range(len(disc.grid.names)):
            upwind[k] = (disc.grid.upwind1d(k, -1)[I], disc.grid.upwind1d(k, +1)[I])
    elif advection != "central":
        raise UnsupportedSpecError(f"advection must be 'central' or 'upwind', got {advection!r}")
    coords_cache = {}

    def evaluate(t, y, want_jac):
        u, M = full_state(t, y)
        if t not in coords_cache:
            coords_cache.clear()
            coords_cache[t] = disc.coords_at(I, t)
        coords = coords_cache[t]
        dy = np.empty_like(y)
        blocks = []
        for f in disc.fields:
            r = G[f]
            extra, chosen = {}, {}
            for k in r.keys:
                if disc.time_order(k) == 1 and q[k[0]] == 2:
                    extra[k] = y[offsets[k[0]] + nI: offsets[k[0]] + 2 * nI]
            vals = disc.key_values(r.keys, u, I, extra)
            if upwind:
                vals, chosen = _apply_upwind(disc, r, coords, vals, u, upwind)
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
        return _jacobian(disc, blocks, M, q, offsets, nI, full_I, full_B, n)

    progress_state = {"last": domain.t0}

    def rhs(t, y):
        if progress is not None and t > progress_state["last"]:
            progress_state["last"] = t
            progress(t)
        return evaluate(t, y, False)

    def jac(t, y):
        return evaluate(t, y, True)

    y0 = _initial_state(disc, q, offsets, n, nI)
    if not np.all(np.isfinite(y0)):
        raise ReferenceSolverError("initial condition is not finite on the grid")
    sol = solve_ivp(rhs, (domain.t0, domain.t1), y0, method=method, t_eval=times, rtol=rtol,
                    atol=atol, jac=jac if method in ("BDF", "Radau", "LSODA") else None)
    if not sol.success:
        raise ReferenceSolverError(f"time integration ({method}) failed at t = {sol.t[-1]:.6g}: "
                                   f"{sol.message}")
    out = {f: np.empty((len(times), P)) for f in disc.fields}
    for j, t in enumerate(sol.t):
        u, _ = full_state(t, sol.y[:, j])
        for i, f in enumerate(disc.fields):
            out[f][j] = u[i * P:(i + 1) * P]
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
