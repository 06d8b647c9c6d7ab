"""The residual of a steady spec on an operator's predicted grid, through the reference's
finite-difference operators (physics-informed operator learning; cf. Li et al. 2021,
"Physics-informed neural operator", arXiv:2111.03794, which uses the PDE residual on the
output grid in the same way).

The spec's equations and boundary conditions are compiled as for the reference
(`pinnkit.reference.discretize.compile_residual`'s placeholders), then evaluated with torch:
derivative keys become the reference's sparse stencil matrices, conservative flux terms the
same face-flux scheme (harmonic face means) computed per sample from its coefficient.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import TrainingError
from ..expr import compile_expr
from ..fd.discretize import Discretization
from ..fd.inputs import conservative_placeholders, input_symbols

__all__ = ["GridResidual"]

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
                f"the physics loss needs a steady problem; {problem.name!r} is time-dependent and "
                "its operator outputs the final time only, where the equation's time derivative "
                "is unknown")
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
