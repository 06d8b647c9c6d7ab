"""The residual of a spec on an operator's predicted grid, through the reference's
finite-difference operators (physics-informed operator learning; cf. Li et al. 2021,
"Physics-informed neural operator", arXiv:2111.03794, which uses the PDE residual on the
output grid in the same way). `GridResidual`: steady specs. `SpaceTimeResidual`:
time-dependent specs on periodic boxes, predicted on a (t, *x) grid.

The spec's equations and boundary conditions are compiled as for the reference
(`pinnkit.reference.discretize.compile_residual`'s placeholders), then evaluated with torch:
derivative keys become the reference's sparse stencil matrices, conservative flux terms the
same face-flux scheme (harmonic face means) computed per sample from its coefficient.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import sympy
import torch

from ..errors import TrainingError
from ..expr import compile_expr
from ..fd.discretize import Discretization
from ..fd.inputs import conservative_placeholders, input_symbols

__all__ = ["GridResidual", "SpaceTimeResidual"]

def _sparse(M) -> torch.Tensor:
    M = M.tocoo()
    idx = torch.from_numpy(np.vstack([M.row, M.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(M.data.astype(np.float32)),
                                   M.shape, check_invariants=True).coalesce()


class _Compiled:
    def __init__(self, problem, expr):
        expr, self.flux_keys, flux_syms = conservative_placeholders(problem, expr)
        expr, in_syms = input_symbols(problem, expr)
        sub, self.keys, syms, normals = problem.placeholders(expr)
        if normals:
            raise TrainingError("the physics loss does not take boundary conditions with normals")
        self.fn = compile_expr(list(problem.coords) + in_syms + syms + flux_syms, sub, "torch")


class GridResidual:
    """``residual(u, inputs)``: per sample, the sum of squared residuals of the spec (interior
    equations and boundary conditions) on a box grid, shape (batch,). u: {field: (batch,
    *grid)}, inputs: {name: (batch, *grid)} as torch tensors in physical units; ``shape`` the
    grid shape. ``relative(u, inputs)``: residual(u) / residual(0) per sample (the squared
    relative residual: scale-free, 1 for a zero prediction)."""

    def __init__(self, problem, shape: tuple, order: int | None = None) -> None:
        if problem.time is not None:
            raise TrainingError(
                f"the physics loss needs a steady problem here; {problem.name!r} is "
                "time-dependent: make its dataset with pk.dataset(..., times=[...]) so that the "
                "operator predicts space-time grids (SpaceTimeResidual)")
        names = problem.space_names
        res = dict(zip(names, shape))
        order = order or problem.reference_options.get("order", 2)
        zeros = {k: np.ones(tuple(res[a.name] for a in v.args)) for k, v in problem.inputs.items()}
        self.disc = d = Discretization(problem, res, order=order, inputs=zeros)
        if not d.grid.is_box or np.any(d.grid.node != np.arange(d.P)):
            raise TrainingError("the physics loss needs a box domain")
        self.problem, self.shape = problem, tuple(shape)
        self.points = torch.from_numpy(d.grid.points.T.astype(np.float32))   # (dim, P)
        self.rows = [(_Compiled(problem, e), torch.from_numpy(d.interior))
                     for e in problem.equations.values()]
        self.rows += [(_Compiled(problem, g["term"].exprs[0]), torch.from_numpy(g["rows"]))
                      for g in d.bc_groups]
        self._ops: dict = {}
        self._coefs: dict = {}   # flux coefficient -> torch function of coordinates and inputs
        for comp, _ in self.rows:
            for k in comp.flux_keys:
                coef, syms = input_symbols(problem, k[2][1])
                self._coefs[k] = compile_expr(list(problem.coords) + syms, coef, "torch")

    def _op(self, key) -> torch.Tensor:
        if key not in self._ops:
            self._ops[key] = _sparse(self.disc.operator(key))
        return self._ops[key]

    def _flux(self, key, a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Face-flux d/dx_k (a du/dx_k) at every point (boundary points 0), batched (B, P)."""
        axis = self.disc.spatial_orders(key).index(2)
        g = self.disc.grid
        sh = (a.shape[0],) + self.shape
        A, U = a.reshape(sh), u.reshape(sh)
        ax = axis + 1
        periodic = g.periodic[axis]
        h = float(g.h[axis])
        if periodic:
            Ar, Ur = torch.roll(A, -1, ax), torch.roll(U, -1, ax)
        else:
            Ar, Ur = A.narrow(ax, 1, A.shape[ax] - 1), U.narrow(ax, 1, U.shape[ax] - 1)
            A, U = A.narrow(ax, 0, A.shape[ax] - 1), U.narrow(ax, 0, U.shape[ax] - 1)
        pos = (A > 0) & (Ar > 0)
        af = torch.where(pos, 2 * A * Ar / torch.where(pos, A + Ar, torch.ones_like(A)),
                         0.5 * (A + Ar))
        F = af * (Ur - U) / h                          # flux at the face right of each point
        if periodic:
            out = (F - torch.roll(F, 1, ax)) / h
        else:
            inner = (F.narrow(ax, 1, F.shape[ax] - 1) - F.narrow(ax, 0, F.shape[ax] - 1)) / h
            pad = [0, 0] * (len(self.shape) - axis - 1) + [1, 1]
            out = torch.nn.functional.pad(inner, pad)
        return out.reshape(a.shape[0], -1)

    def __call__(self, u: dict, inputs: dict) -> torch.Tensor:
        B = next(iter(u.values())).shape[0]
        flat_u = {f: v.reshape(B, -1) for f, v in u.items()}
        flat_in = [inputs[k].reshape(B, -1) for k in self.problem.inputs]
        total = 0.0
        for comp, rows in self.rows:
            vals = []
            for k in comp.keys:
                U = flat_u[k[0]]
                vals.append(torch.sparse.mm(self._op(k), U.T).T)
            for k in comp.flux_keys:
                a = self._coefs[k](*self.points, *flat_in) * torch.ones_like(flat_u[k[0]])
                vals.append(self._flux(k, a, flat_u[k[0]]))
            r = comp.fn(*[p[rows] for p in self.points], *[v[:, rows] for v in flat_in],
                        *[v[:, rows] for v in vals])
            r = r * torch.ones(B, len(rows), device=next(iter(u.values())).device)
            total = total + (r ** 2).sum(dim=1)
        return total

    def relative(self, u: dict, inputs: dict) -> torch.Tensor:
        with torch.no_grad():
            r0 = self({f: torch.zeros_like(v) for f, v in u.items()}, inputs)
        return self(u, inputs) / r0.clamp_min(1e-30)


def _phi(z: np.ndarray) -> tuple:
    """exp(z), phi1(z) = (e^z - 1)/z and phi2(z) = (e^z - 1 - z)/z² (Taylor series near 0,
    where the closed forms cancel)."""
    small = np.abs(z) < 1e-2
    zs = np.where(small, 1.0, z)
    e = np.exp(z)
    p1 = np.where(small, 1 + z / 2 + z ** 2 / 6 + z ** 3 / 24, (np.exp(zs) - 1) / zs)
    p2 = np.where(small, 0.5 + z / 6 + z ** 2 / 24 + z ** 3 / 120, (np.exp(zs) - 1 - zs) / zs ** 2)
    return e, p1, p2


class SpaceTimeResidual:
    """The defect of a time-dependent spec between consecutive predicted time slices, on a
    periodic box, in exponential-integrator form.

    The spec's equation c u_t + G(u) = 0 is split into its constant-coefficient linear part,
    diagonal in Fourier space with the symbols σ_k of the reference's own stencil matrices
    (circulant on a periodic grid), and the rest: u_t = L u + N(u). The variation-of-constants
    formula with N linear between slices t_n, t_n + h (the second-order exponential time
    differencing rule, Cox & Matthews 2002, J. Comput. Phys. 176, eq. 22) gives the defect

        d_n = û_{n+1} − e^{hL} û_n − h (φ1(hL) − φ2(hL)) N̂_n − h φ2(hL) N̂_{n+1}.

    The stiff linear part (diffusion of the input's high modes, rates up to ν(π/Δx)²) is
    integrated exactly, so the defect of the reference solution is the quadrature error of
    the smooth nonlinear term only; backward differences in t leave a residual as large as
    the input's high modes on any practical t grid (docs/operators.md).

    ``relative(u, inputs)`` per sample (batch,):
    ‖u(t_0) − u_0‖² / ‖u_0‖² + Σ_n ‖d_n‖² / s²_{n+1},
    where s_n = ‖e^{(t_n − t_0)L} u_0‖ is the size of the input's linear flow at t_n, so that
    late slices (where the solution has decayed) count like early ones. u: {field: (batch,
    nt, *space)}; inputs: {name: (batch, *space)}; ``times``: the nt slice times.
    Raises `TrainingError` for a spec outside this form (non-periodic axes, several fields,
    second time derivatives, conservative flux terms, boundary conditions with normals).
    """

    def __init__(self, problem, shape: tuple, times, order: int | None = None) -> None:
        name = problem.name
        if problem.time is None:
            raise TrainingError(f"SpaceTimeResidual needs a time-dependent problem; {name!r} "
                                "is steady (GridResidual)")
        if len(problem.fields) != 1 or len(problem.equations) != 1:
            raise TrainingError(f"the space-time physics loss takes one field and one equation; "
                                f"{name!r} has fields {', '.join(problem.fields)}")
        times = np.asarray(times, dtype=float)
        space = tuple(int(v) for v in shape[1:])
        if len(times) != shape[0] or len(times) < 2 or np.any(np.diff(times) <= 0):
            raise TrainingError(f"times must be {shape[0]} increasing values (the grid's t axis)")
        order = order or problem.reference_options.get("order", 2)
        names = problem.space_names
        zeros = {k: np.ones(tuple(dict(zip(names, space))[a.name] for a in v.args))
                 for k, v in problem.inputs.items()}
        d = Discretization(problem, dict(zip(names, space)), order=order, inputs=zeros)
        if not d.grid.is_box or not all(d.grid.periodic) or np.any(d.grid.node != np.arange(d.P)):
            raise TrainingError(f"the space-time physics loss needs a box periodic in every "
                                f"spatial axis ({', '.join(names)}); {name!r} is not")
        self.problem, self.shape = problem, (len(times),) + space
        self.field = next(iter(problem.fields))
        self.dims = tuple(range(-len(space), 0))
        expr = next(iter(problem.equations.values()))
        expr, flux_keys, _ = conservative_placeholders(problem, expr)
        if flux_keys:
            raise TrainingError("the space-time physics loss does not take conservative flux "
                                "terms")
        expr, in_syms = input_symbols(problem, expr)
        sub, keys, syms, normals = problem.placeholders(expr)
        time_keys = [k for k in keys if d.time_order(k)]
        ut = (self.field, (0,) * len(space) + (1,))
        if time_keys != [ut]:
            raise TrainingError(f"the space-time physics loss takes equations first order in "
                                f"time (c u_t + G(u) = 0); {name!r} has {time_keys}")
        s_ut = syms[keys.index(ut)]
        c = sympy.diff(sub, s_ut)
        G = sympy.expand(sub - c * s_ut)
        if c.free_symbols or c == 0 or s_ut in G.free_symbols:
            raise TrainingError(f"the space-time physics loss needs a constant coefficient of "
                                f"u_t in {name!r}; got {c}")
        at_zero = {s: 0 for s in syms}
        lin = {}
        for k, s in zip(keys, syms):
            a = sympy.sympify(sympy.diff(G, s).xreplace(at_zero))
            if k != ut and not a.free_symbols and a != 0:
                lin[k] = float(a)
        self.keys = [k for k in keys if k != ut]
        self.key_syms = [syms[keys.index(k)] for k in self.keys]
        # N(u) = -(G(u) - Σ a_k D^k u) / c, evaluated pointwise from the derivative values
        rest = -(G - sum(a * syms[keys.index(k)] for k, a in lin.items())) / c
        self.N = compile_expr(list(problem.coords) + in_syms + self.key_syms, rest, "torch")
        # Fourier symbols of the stencil matrices on the rfft half grid
        sym = {k: np.fft.rfftn(d.operator(k).tocsc()[:, 0].toarray().reshape(space))
               for k in self.keys}
        self._sym = {k: torch.from_numpy(v.astype(np.complex64)) for k, v in sym.items()}
        Lsym = np.zeros(space[:-1] + (space[-1] // 2 + 1,), complex)
        for k, a in lin.items():
            Lsym -= a * sym[k] / float(c)
        h = np.diff(times)[:, None]
        Lf = np.reshape(Lsym, (1, -1))
        E, p1, p2 = _phi(h * Lf)
        half = (len(times) - 1,) + np.shape(Lsym)
        as_t = lambda v: torch.from_numpy(np.reshape(v, half).astype(np.complex64))   # noqa: E731
        self._E, self._A, self._B = as_t(E), as_t(h * (p1 - p2)), as_t(h * p2)
        self._flow = as_t(np.exp((times[1:, None] - times[0]) * Lf))
        pts = torch.from_numpy(d.grid.points.T.astype(np.float32))           # (dim, P)
        tt = torch.from_numpy(times.astype(np.float32))
        # coordinate arguments on the (t, *space) grid, coordinates in problem order
        grid = {c.name: pts[i].reshape(space).unsqueeze(0).expand(self.shape)
                for i, c in enumerate(problem.spatial_coords)}
        grid[problem.time.name] = tt.reshape((-1,) + (1,) * len(space)).expand(self.shape)
        self.coords = [grid[c.name] for c in problem.coords]
        init = [t for t in problem.terms if t.kind == "initial" and t.condition.order == 0]
        if len(init) != 1:
            raise TrainingError(f"the space-time physics loss needs one initial value of "
                                f"{self.field} in {name!r}")
        iexpr, isyms = input_symbols(problem, init[0].exprs[0])
        isub, ikeys, iph, _ = problem.placeholders(iexpr)
        if ikeys != [(self.field, (0,) * (len(space) + 1))]:
            raise TrainingError(f"the initial condition of {name!r} must be a value of "
                                f"{self.field}")
        self.g0 = compile_expr(list(problem.coords) + isyms, -isub.xreplace({iph[0]: 0}), "torch")
        self.coords0 = [v[0] for v in self.coords]

    def _deriv(self, uh: torch.Tensor, key, n: tuple) -> torch.Tensor:
        return torch.fft.irfftn(uh * self._sym[key].to(uh.device), s=n, dim=self.dims)

    def _nonlinear(self, u: torch.Tensor, inputs: list) -> torch.Tensor:
        """N(u) on every slice, (batch, nt, *space)."""
        n = u.shape[2:]
        uh = torch.fft.rfftn(u, dim=self.dims)
        vals = [self._deriv(uh, k, n) for k in self.keys]
        ins = [v.unsqueeze(1).expand(u.shape) for v in inputs]
        coords = [c.to(u.device) for c in self.coords]
        return self.N(*coords, *ins, *vals) * torch.ones_like(u)

    def initial_value(self, inputs: Mapping) -> torch.Tensor:
        """u(t_0) from the initial condition, (batch, *space)."""
        ins = [inputs[k] for k in self.problem.inputs]
        coords = [c.to(ins[0].device) for c in self.coords0] if ins else self.coords0
        B = ins[0].shape[0] if ins else 1
        return self.g0(*coords, *ins) * torch.ones((B,) + self.shape[1:], device=coords[0].device)

    def defects(self, u: dict, inputs: Mapping) -> torch.Tensor:
        """The defects d_n of each step in physical space, (batch, nt - 1, *space)."""
        U = u[self.field]
        ins = [inputs[k] for k in self.problem.inputs]
        N = self._nonlinear(U, ins)
        Uh, Nh = torch.fft.rfftn(U, dim=self.dims), torch.fft.rfftn(N, dim=self.dims)
        E, A, B = (v.to(U.device) for v in (self._E, self._A, self._B))
        D = Uh[:, 1:] - E * Uh[:, :-1] - A * Nh[:, :-1] - B * Nh[:, 1:]
        return torch.fft.irfftn(D, s=U.shape[2:], dim=self.dims)

    def relative(self, u: dict, inputs: Mapping) -> torch.Tensor:
        g = self.initial_value(inputs)
        with torch.no_grad():
            flow = torch.fft.irfftn(torch.fft.rfftn(g, dim=self.dims).unsqueeze(1)
                                    * self._flow.to(g.device), s=g.shape[1:], dim=self.dims)
            s0 = g.flatten(1).pow(2).sum(1).clamp_min(1e-30)
            s = flow.flatten(2).pow(2).sum(2).clamp_min(1e-30)                  # (batch, nt - 1)
        U = u[self.field]
        ic = (U[:, 0] - g).flatten(1).pow(2).sum(1) / s0
        return ic + (self.defects(u, inputs).flatten(2).pow(2).sum(2) / s).sum(1)
