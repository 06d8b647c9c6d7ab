"""Grids for the finite-difference reference: tensor grids, masked for curved domains.

The unknowns live on *points*: the active nodes of a tensor grid over the domain's bounding
box, plus — for curved boundaries — the points where grid lines cross the boundary. Along
each axis the points form *lines* (ordered, possibly periodic); every 1-D derivative is a
Fornberg stencil on a line, so the spacing next to a curved boundary is the true distance
(Shortley–Weller). Derivative operators are sparse (points x points) matrices.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq

from ..errors import UnsupportedSpecError
from ..geometry import Shape, _AxisBox, boundary_info
from .stencils import fornberg, stencil_indices

__all__ = ["Grid"]


class Grid:
    """Points, lines and boundary metadata of a (masked) tensor grid over ``space``.

    ``n``: nodes per spatial axis (endpoints included; periodic axes drop the right end).
    After construction: ``axes`` (1-D node coordinates), ``shape``, ``points`` (P, d),
    ``node`` (P,) flat tensor-grid index or -1 for boundary crossings, ``boundary`` (P,)
    bool, ``bnames[i]`` = list of (boundary name, outward normal) of boundary point i.
    """

    def __init__(self, space: Shape, n: dict, periodic: frozenset = frozenset()) -> None:
        self.space = space
        self.names = [c.name for c in space.coords]
        self.periodic = [name in periodic for name in self.names]
        lo, hi = space.bbox
        self.axes = []
        for k, name in enumerate(self.names):
            if self.periodic[k]:
                self.axes.append(np.linspace(lo[k], hi[k], n[name] + 1)[:-1])
            else:
                self.axes.append(np.linspace(lo[k], hi[k], n[name]))
        self.shape = tuple(len(a) for a in self.axes)
        self.h = np.array([a[1] - a[0] for a in self.axes])
        self.tol = 1e-9 * float(np.min(self.h))
        self.is_box = isinstance(space, _AxisBox)
        mesh = np.stack([g.ravel() for g in np.meshgrid(*self.axes, indexing="ij")], axis=1)
        if self.is_box:
            sdf = np.full(len(mesh), -1.0)
            on = np.zeros(len(mesh), dtype=bool)
            idx = np.indices(self.shape).reshape(len(self.shape), -1)
            for k in range(len(self.shape)):
                if not self.periodic[k]:
                    on |= (idx[k] == 0) | (idx[k] == self.shape[k] - 1)
            sdf[on] = 0.0
        else:
            sdf = space.sdf(mesh)
            sdf[np.abs(sdf) <= self.tol] = 0.0
        self.active = sdf <= 0            # flat tensor-grid mask
        self.interior_node = sdf < 0
        nodes = np.flatnonzero(self.active)
        self.index = np.full(mesh.shape[0], -1)
        self.index[nodes] = np.arange(len(nodes))
        pts = [mesh[nodes]]
        self.node = list(nodes)
        self.lines: list[list[tuple[np.ndarray, bool]]] = []
        self.owner: list[tuple[int, int]] = []   # crossing point -> (adjacent node, its axis)
        extra: list[np.ndarray] = []
        for k in range(len(self.shape)):
            self.lines.append(self._lines_along(k, mesh, sdf, extra, len(nodes)))
        if extra:
            pts.append(np.array(extra))
            self.node += [-1] * len(extra)
        self.points = np.concatenate(pts)
        self.node = np.array(self.node)
        self.boundary = np.ones(len(self.points), dtype=bool)
        self.boundary[:len(nodes)] = ~self.interior_node[nodes]
        bidx = np.flatnonzero(self.boundary)
        info = boundary_info(space, self.points[bidx], 1e-7 * float(np.min(self.h)))
        self.bnames = {int(i): inf for i, inf in zip(bidx, info)}
        lost = [int(i) for i, inf in self.bnames.items() if not inf]
        if lost:
            raise UnsupportedSpecError(f"grid point {self.points[lost[0]]} lies on the boundary "
                                       "but on no named boundary part")

    @property
    def n_points(self) -> int:
        return len(self.points)

    def _lines_along(self, k: int, mesh: np.ndarray, sdf: np.ndarray, extra: list,
                     n_nodes: int) -> list:
        flat = np.arange(mesh.shape[0]).reshape(self.shape)
        lines = []
        for line in np.moveaxis(flat, k, -1).reshape(-1, self.shape[k]):
            if self.periodic[k]:
                if not np.all(self.active[line]):
                    raise UnsupportedSpecError("periodic axes need a box domain")
                lines.append((self.index[line], True))
                continue
            act = self.active[line]
            j = 0
            while j < len(line):
                if not act[j]:
                    j += 1
                    continue
                start = j
                while j < len(line) and act[j]:
                    j += 1
                seg = [int(self.index[g]) for g in line[start:j]]
                if start > 0 and sdf[line[start]] < 0:
                    seg.insert(0, self._crossing(mesh[line[start]], mesh[line[start - 1]],
                                                 extra, n_nodes))
                    self.owner.append((seg[1], k))
                if j < len(line) and sdf[line[j - 1]] < 0:
                    seg.append(self._crossing(mesh[line[j - 1]], mesh[line[j]], extra, n_nodes))
                    self.owner.append((seg[-2], k))
                lines.append((np.array(seg), False))
        return lines

    def _crossing(self, inside: np.ndarray, outside: np.ndarray, extra: list, n_nodes: int) -> int:
        f = lambda s: float(self.space.sdf((inside + s * (outside - inside))[None])[0])  # noqa: E731
        s = brentq(f, 0.0, 1.0, xtol=1e-14, rtol=1e-14)
        extra.append(inside + s * (outside - inside))
        return n_nodes + len(extra) - 1

    # -- operators
    @lru_cache(maxsize=None)
    def diff1d(self, k: int, m: int, order: int) -> sp.csr_matrix:
        """d^m/dx_k^m on every point that lies on a line along axis k (other rows empty)."""
        rows, cols, vals = [], [], []
        for idx, periodic in self.lines[k]:
            x = self.points[idx, k]
            n = len(idx)
            if n < 2:
                continue
            for i in range(n):
                try:
                    st = stencil_indices(i, n, m, order, periodic)
                except ValueError as exc:
                    raise UnsupportedSpecError(f"axis {self.names[k]}: {exc}") from None
                xs = x[st]
                if periodic:  # unwrap positions around i
                    L = self.h[k] * n
                    xs = x[i] + ((xs - x[i] + L / 2) % L) - L / 2
                rows.extend([idx[i]] * len(st))
                cols.extend(idx[st])
                vals.extend(fornberg(x[i], xs, m))
        P = self.n_points
        D = sp.csr_matrix((vals, (rows, cols)), shape=(P, P))
        if m == 1 and self.owner:
            # a boundary crossing has a grid line along one axis only; along the others its
            # first derivative is taken from the adjacent inside node: first order, O(h)
            first = P - len(self.owner)
            copy = [(first + c, a) for c, (a, axis) in enumerate(self.owner) if axis != k]
            if copy:
                src = sp.csr_matrix((np.ones(len(copy)), ([c for c, _ in copy], [a for _, a in copy])),
                                    shape=(P, P))
                D = D + src @ D
        return D.tocsr()

    @lru_cache(maxsize=None)
    def derivative(self, orders: tuple, order: int) -> sp.csr_matrix:
        """Operator of the mixed derivative with ``orders`` per axis (identity for all zeros)."""
        D = sp.identity(self.n_points, format="csr")
        for k, m in enumerate(orders):
            if m:
                D = self.diff1d(k, m, order) @ D
        if sum(1 for m in orders if m) > 1 and not self.is_box:
            raise UnsupportedSpecError("mixed spatial derivatives on a non-rectangular "
                                       "(masked) grid are not supported")
        return D.tocsr()

    def upwind1d(self, k: int, side: int) -> sp.csr_matrix:
        """First-order one-sided first derivative along k: side -1 backward, +1 forward."""
        rows, cols, vals = [], [], []
        for idx, periodic in self.lines[k]:
            x = self.points[idx, k]
            n = len(idx)
            for i in range(n):
                j = i + side
                if periodic:
                    j %= n
                elif j < 0 or j >= n:
                    j = i - side
                dx = x[j] - x[i]
                if periodic and abs(dx) > self.h[k] * 1.5:
                    dx = -np.sign(dx) * self.h[k]
                rows += [idx[i], idx[i]]
                cols += [idx[j], idx[i]]
                vals += [1 / dx, -1 / dx]
        P = self.n_points
        return sp.csr_matrix((vals, (rows, cols)), shape=(P, P))

    def to_tensor(self, values: np.ndarray) -> np.ndarray:
        """Point values -> array of the tensor-grid shape (NaN at nodes outside the domain)."""
        out = np.full(int(np.prod(self.shape)), np.nan)
        grid_pts = self.node >= 0
        out[self.node[grid_pts]] = values[grid_pts]
        return out.reshape(self.shape)
