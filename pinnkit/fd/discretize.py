"""Spec -> sparse finite-difference operators and pointwise residual functions.

Every field derivative in a residual becomes a placeholder symbol; the residual is
lambdified to numpy (evaluated pointwise on grid vectors) together with its symbolic
partial derivatives with respect to each placeholder, so Jacobians are assembled as
sum_k diag(dr/dp_k) · D_k (D_k the stencil matrix of derivative k) — sparse, never dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sympy
from scipy.spatial import cKDTree
from sympy.core.function import AppliedUndef

from ..errors import UnsupportedSpecError
from ..expr import compile_expr
from ..geometry import Shape
from ..spec import BoundaryEquation, Dirichlet, Problem, Term
from .grid import Grid
from .inputs import conservative_placeholders, input_point_values, input_symbols

__all__ = ["Discretization", "CompiledResidual", "default_resolution"]


def default_resolution(problem: Problem) -> dict:
    """Problem's own ``resolution`` if it set one, else 201 (1-D), 65 (2-D), 25 (3-D); t: 101."""
    space_dims = len(problem.spatial_coords)
    n = {1: 201, 2: 65}.get(space_dims, 25)
    res = {c.name: n for c in problem.spatial_coords}
    if problem.time is not None:
        res[problem.time.name] = 101
    return res


@dataclass
class CompiledResidual:
    """A residual as numpy functions of (coords..., normals..., placeholders...)."""

    keys: list
    fn: object
    dfn: list           # d residual / d placeholder_k, same signature
    dsym: list          # the symbolic partials (to test linearity)
    normal_names: list
    expr: sympy.Expr

    def __call__(self, coords: list, normals: list, values: list) -> np.ndarray:
        return self.fn(*coords, *normals, *values)

    def partials(self, coords: list, normals: list, values: list) -> list:
        return [f(*coords, *normals, *values) for f in self.dfn]


def compile_residual(problem: Problem, expr: sympy.Expr) -> CompiledResidual:
    # conservative flux terms become placeholders with their own keys (field, orders, flux);
    # input fields become arguments after the coordinates (see Discretization.coords_at)
    expr, flux_keys, flux_syms = conservative_placeholders(problem, expr)
    expr, in_syms = input_symbols(problem, expr)
    sub, keys, syms, normals = problem.placeholders(expr)
    keys, syms = keys + flux_keys, syms + flux_syms
    args = list(problem.coords) + in_syms + normals + syms
    dsym = [sympy.diff(sub, p) for p in syms]
    # DiracDelta in a partial (from Heaviside/sign/Abs of a field) is 0 almost everywhere
    return CompiledResidual(keys, compile_expr(args, sub, "numpy"),
                            [compile_expr(args, d, "numpy", delta_zero=True) for d in dsym], dsym,
                            [s.coord_name for s in normals], sub)


def _broadcast(v, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=float), (n,))


class Discretization:
    """The grid, the unknown layout and the boundary-condition assignment for ``problem``.

    Unknown vector: field blocks of ``grid.n_points`` values each (field order of the
    problem). ``interior`` / ``bpoints`` are point indices; each boundary point of each field
    is assigned one condition (Dirichlet first where names overlap, e.g. at corners).
    """

    def __init__(self, problem: Problem, resolution: dict, order: int = 2,
                 inputs: dict | None = None) -> None:
        if order not in (2, 4):
            raise UnsupportedSpecError(f"finite-difference order must be 2 or 4, got {order}")
        self.problem, self.order = problem, order
        if problem.parameters:
            raise UnsupportedSpecError(
                f"problem {problem.name!r} has unknown parameters "
                f"({', '.join(p.name for p in problem.parameters)}): an inverse problem has no "
                "finite-difference reference (its value is what training finds)")
        space = problem.space
        if not isinstance(space, Shape):
            raise UnsupportedSpecError(f"the finite-difference reference needs a shape domain "
                                       f"(box, disk, polygon, CSG), not {type(space).__name__}")
        self.notes: list[str] = []
        self.fields = list(problem.fields)
        self.time = problem.time
        self.ncoord = len(problem.coords)
        periodic = self._periodic_axes()
        self.grid = Grid(space, {c.name: int(resolution[c.name]) for c in problem.spatial_coords},
                         periodic)
        g = self.grid
        self.P = g.n_points
        # input fields: values at every point, in the order of problem.inputs
        self.input_values = input_point_values(problem, g, inputs or {})
        self._flux_ops: dict = {}
        self.interior = np.flatnonzero(~g.boundary)
        self.bpoints = np.flatnonzero(g.boundary)
        self.gauges = self._gauges()
        self.bc_groups = self._assign_conditions()

    # -- setup
    def _periodic_axes(self) -> frozenset:
        axes = {}
        for t in self.problem.terms:
            if t.kind == "periodic":
                axes.setdefault(t.coord, set()).add(t.condition.u.func.__name__)
        for coord, fs in axes.items():
            if fs != set(self.problem.fields):
                raise UnsupportedSpecError(
                    f"Periodic in {coord} is given for {', '.join(sorted(fs))} but not for every "
                    "field; the reference grid wraps the whole axis")
        return frozenset(axes)

    def _gauges(self) -> list:
        """[(field, point index, value)] from Data conditions of a steady problem whose points
        are boundary grid nodes (e.g. a pressure level p(0, 0) = 0): extra rows for a field
        the other equations fix only up to a constant (see `solve_steady`). Other Data
        conditions are not used."""
        gauges, unused = [], []
        g = self.grid
        bpts = g.points[self.bpoints]
        for t in self.problem.terms:
            if t.kind != "data":
                continue
            if self.time is not None:
                unused.append(t.name)
                continue
            X = np.stack([t.data_points[n] for n in g.names], axis=1)
            dist, j = cKDTree(bpts).query(X)
            if len(t.exprs) == 1 and np.all(dist <= g.tol):
                f = t.exprs[0].func.__name__
                gauges += [(f, int(self.bpoints[jj]), float(v))
                           for jj, v in zip(j, np.ravel(t.data_values))]
            else:
                unused.append(t.name)
        if unused:
            self.notes.append(f"Data condition(s) {', '.join(unused)} are not used by the "
                              "finite-difference reference (only values at boundary grid nodes "
                              "of a steady problem are)")
        return gauges

    def _field_of(self, term: Term) -> str:
        c = term.condition
        if isinstance(c, BoundaryEquation) and c.field is not None:
            return c.field if isinstance(c.field, str) else c.field.func.__name__
        if hasattr(c, "u"):
            return c.u.func.__name__
        fs = sorted({f.func.__name__ for f in term.exprs[0].atoms(AppliedUndef)})
        if len(fs) != 1:
            raise UnsupportedSpecError(f"condition {term.name!r} involves fields {fs}; the "
                                       "reference needs each boundary condition to constrain one field")
        return fs[0]

    def _assign_conditions(self) -> list:
        """Groups (term, field, point indices, normals) covering every boundary point of every field."""
        terms = [t for t in self.problem.terms if t.kind == "boundary"]
        by_field = {f: [t for t in terms if self._field_of(t) == f] for f in self.fields}
        groups: dict = {}
        g = self.grid
        for f in self.fields:
            ordered = ([t for t in by_field[f] if isinstance(t.condition, Dirichlet)]
                       + [t for t in by_field[f] if not isinstance(t.condition, Dirichlet)])
            for i in self.bpoints:
                choice = None
                for t in ordered:
                    for name, normal in g.bnames[int(i)]:
                        if "boundary" in t.on or name in t.on:
                            choice = (t, normal)
                            break
                    if choice:
                        break
                if choice is None:
                    names = ", ".join(sorted({n for n, _ in g.bnames[int(i)]}))
                    raise UnsupportedSpecError(
                        f"field {f} has no boundary condition on {names!r} (at point "
                        f"{np.round(g.points[i], 6).tolist()}); the reference needs one condition "
                        "per field on every boundary part")
                t, normal = choice
                grp = groups.setdefault((t.name, f), {"term": t, "field": f, "rows": [], "normals": []})
                grp["rows"].append(int(i))
                grp["normals"].append(normal)
        out = []
        for grp in groups.values():
            grp["rows"] = np.array(grp["rows"])
            grp["normals"] = np.array(grp["normals"])
            grp["residual"] = res = compile_residual(self.problem, grp["term"].exprs[0])
            derivs = [k for k in res.keys if sum(self.spatial_orders(k)) > 1]
            if derivs and np.any(g.node[grp["rows"]] < 0):
                raise UnsupportedSpecError(
                    f"condition {grp['term'].name!r} needs second or higher derivatives on a curved "
                    f"boundary ({', '.join(grp['term'].on)}); the finite-difference reference "
                    "supports values and first derivatives there")
            out.append(grp)
        return out

    # -- evaluation helpers
    def spatial_orders(self, key) -> tuple:
        orders = key[1]
        if self.time is None:
            return tuple(orders)
        return tuple(orders[:-1])

    def time_order(self, key) -> int:
        return key[1][-1] if self.time is not None else 0

    def operator(self, key) -> sp.csr_matrix:
        if len(key) == 3:   # a conservative flux term d/dx_k (a du/dx_k)
            return self.flux_operator(self.spatial_orders(key).index(2), key[2][1])
        return self.grid.derivative(self.spatial_orders(key), self.order)

    def flux_operator(self, axis: int, coef: sympy.Expr) -> sp.csr_matrix:
        """d/dx_axis (a d/dx_axis) in conservative form: face fluxes a_f (u_r - u_l)/dx between
        neighbouring points of each grid line, a_f the harmonic mean of the two point values
        (arithmetic where a is not positive on both sides), differenced over the half-cell
        widths (second order on smooth a; conservative, so it converges for a jump in a)."""
        cached = self._flux_ops.get((axis, coef))
        if cached is not None:
            return cached
        if self.time is not None and self.time in coef.free_symbols:
            raise UnsupportedSpecError(f"flux coefficient {coef} depends on time; conservative "
                                       "flux terms need a coefficient of space and inputs")
        t0 = self.problem.domain.t0 if self.time is not None else None   # a(x) is steady
        a = _broadcast(self.point_function(coef)(np.arange(self.P), t0), self.P)
        g = self.grid
        rows, cols, vals = [], [], []
        for idx, periodic in g.lines[axis]:
            n = len(idx)
            if n < 3:
                continue
            x = g.points[idx, axis]
            left = np.arange(n if periodic else n - 1)
            right = (left + 1) % n
            dx = x[right] - x[left]
            if periodic:
                dx[-1] += g.h[axis] * n
            al, ar = a[idx[left]], a[idx[right]]
            pos = (al > 0) & (ar > 0)
            af = np.where(pos, 2 * al * ar / np.where(pos, al + ar, 1.0), 0.5 * (al + ar))
            w = af / dx
            pts = np.arange(n) if periodic else np.arange(1, n - 1)
            fm, fp = (pts - 1) % len(left), pts % len(left)   # faces left and right of each point
            vol = 0.5 * (dx[fm] + dx[fp])
            im, ip = left[fm], right[fp]
            rows += [idx[pts]] * 3
            cols += [idx[im], idx[pts], idx[ip]]
            vals += [w[fm] / vol, -(w[fm] + w[fp]) / vol, w[fp] / vol]
        D = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(self.P, self.P)) if rows else sp.csr_matrix((self.P, self.P))
        self._flux_ops[(axis, coef)] = D
        return D

    def coords_at(self, rows: np.ndarray, t: float | None) -> list:
        """Argument columns of compiled residuals at ``rows``: coordinates (time last), then
        the input fields' values."""
        cols = [self.grid.points[rows, k] for k in range(self.grid.points.shape[1])]
        if self.time is not None:
            cols.append(np.full(len(rows), float(t)))
        return cols + [v[rows] for v in self.input_values.values()]

    def point_function(self, expr: sympy.Expr):
        """``f(rows, t) -> values`` of a field-free expression of coordinates and inputs."""
        expr, in_syms = input_symbols(self.problem, sympy.sympify(expr))
        fn = compile_expr(list(self.problem.coords) + in_syms, expr, "numpy")
        return lambda rows, t: np.broadcast_to(np.asarray(fn(*self.coords_at(rows, t)), float),
                                               (len(rows),))

    def normals_at(self, res: CompiledResidual, normals: np.ndarray | None) -> list:
        names = self.grid.names
        return [normals[:, names.index(n)] for n in res.normal_names]

    def block(self, field: str) -> slice:
        i = self.fields.index(field)
        return slice(i * self.P, (i + 1) * self.P)

    def key_values(self, keys: list, u: np.ndarray, rows: np.ndarray, extra: dict | None = None) -> list:
        """Values of each derivative key at ``rows`` from the full unknown vector ``u``."""
        out = []
        for k in keys:
            if extra is not None and k in extra:
                out.append(extra[k])
                continue
            if self.time_order(k):
                raise UnsupportedSpecError(f"time derivative {k} where the reference expects none")
            out.append((self.operator(k) @ u[self.block(k[0])])[rows])
        return out

    def jacobian_rows(self, res: CompiledResidual, partials: list, rows: np.ndarray,
                      skip: set = frozenset()) -> sp.csr_matrix:
        """d residual(rows) / d u_full as a sparse (len(rows), nfields*P) matrix."""
        n = len(rows)
        blocks = {f: sp.csr_matrix((n, self.P)) for f in self.fields}
        for k, d in zip(res.keys, partials):
            if k in skip:
                continue
            d = _broadcast(d, n)
            if not np.any(d):
                continue
            blocks[k[0]] = blocks[k[0]] + sp.diags(d) @ self.operator(k)[rows]
        return sp.hstack([blocks[f] for f in self.fields], format="csr")

    def boundary_system(self, u: np.ndarray | None, t: float | None, jacobian: bool = True):
        """Boundary residuals and their Jacobian rows (stacked over groups, field-major);
        the Jacobian is None when ``jacobian`` is False."""
        res_parts, jac_parts = [], []
        for grp in self.bc_groups:
            r = grp["residual"]
            rows = grp["rows"]
            coords = self.coords_at(rows, t)
            normals = self.normals_at(r, grp["normals"])
            vals = self.key_values(r.keys, u, rows) if u is not None else \
                [np.zeros(len(rows))] * len(r.keys)
            res_parts.append(_broadcast(r(coords, normals, vals), len(rows)))
            if jacobian:
                jac_parts.append(self.jacobian_rows(r, r.partials(coords, normals, vals), rows))
        res = np.concatenate(res_parts) if res_parts else np.zeros(0)
        if not jacobian:
            return res, None
        return res, (sp.vstack(jac_parts, format="csr") if jac_parts
                     else sp.csr_matrix((0, len(self.fields) * self.P)))

    def boundary_unknowns(self) -> np.ndarray:
        """Indices into the full unknown vector of the points each boundary row determines."""
        return np.concatenate([self.fields.index(g["field"]) * self.P + g["rows"]
                               for g in self.bc_groups]) if self.bc_groups else np.zeros(0, int)
