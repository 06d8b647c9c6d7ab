"""Grids for the finite-difference reference: tensor grids, masked for curved domains.

The unknowns live on *points*: the active nodes of a tensor grid over the domain's bounding
box, plus — for curved boundaries — the points where grid lines cross the boundary. Along
each axis the points form *lines* (ordered, possibly periodic); every 1-D derivative is a
Fornberg stencil on a line, so the spacing next to a curved boundary is the true distance
(Shortley–Weller). A boundary point without such a line along some axis (a crossing has
one line only) takes its first derivatives from a least-squares polynomial fit over its
neighbours, second order like the rest, so curved Neumann/Robin conditions keep the scheme's
order. Derivative operators are sparse (points x points) matrices.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.spatial import cKDTree

from ..errors import UnsupportedSpecError
from ..geometry import Shape, _AxisBox, boundary_info
from .stencils import fornberg, stencil_indices

__all__ = ["Grid"]


def _per_grid_cache(method):
    """Memoize an operator of a grid in the grid itself: the cache goes with its grid (an
    ``lru_cache`` on the method would be one cache for the class, keeping every grid alive)."""
    @functools.wraps(method)
    def cached(self, *args):
        cache = self.__dict__.setdefault("_operators", {})
        key = (method.__name__, args)
        if key not in cache:
            cache[key] = method(self, *args)
        return cache[key]
    return cached


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
            # regularized CSG: faces a difference removes are outside, faces a union glues
            # are inside (only the sign of sdf is used below)
            sdf = space.sdf(mesh)
            state = space.classify(mesh, self.tol)
            sdf = np.where(state == 0, 0.0, state * np.maximum(np.abs(sdf), self.tol))
        self.active = sdf <= 0            # flat tensor-grid mask
        self.interior_node = sdf < 0
        nodes = np.flatnonzero(self.active)
        self.index = np.full(mesh.shape[0], -1)
        self.index[nodes] = np.arange(len(nodes))
        pts = [mesh[nodes]]
        self.node = list(nodes)
        self.lines: list[list[tuple[np.ndarray, bool]]] = []
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
                if j < len(line) and sdf[line[j - 1]] < 0:
                    seg.append(self._crossing(mesh[line[j - 1]], mesh[line[j]], extra, n_nodes))
                lines.append((np.array(seg), False))
        return lines

    def _crossing(self, inside: np.ndarray, outside: np.ndarray, extra: list, n_nodes: int) -> int:
        f = lambda s: float(self.space.sdf((inside + s * (outside - inside))[None])[0])  # noqa: E731
        s = brentq(f, 0.0, 1.0, xtol=1e-14, rtol=1e-14)
        extra.append(inside + s * (outside - inside))
        return n_nodes + len(extra) - 1

    # -- operators
    @_per_grid_cache
    def diff1d(self, k: int, m: int, order: int) -> sp.csr_matrix:
        """d^m/dx_k^m on every point that lies on a line along axis k (other rows empty).

        First derivatives (m = 1) at points without a long enough line along k — a boundary
        crossing has a grid line along one axis only; a boundary node may sit alone on its
        line — come from a least-squares polynomial fit over nearby points (`_lsq_gradient`),
        of the same order as the line stencils (what curved Neumann/Robin conditions need)."""
        rows, cols, vals = [], [], []
        covered = np.zeros(self.n_points, dtype=bool)
        for idx, periodic in self.lines[k]:
            x = self.points[idx, k]
            n = len(idx)
            if n < 2 or (m == 1 and n < m + order and not periodic and not self.is_box):
                continue
            covered[idx] = True
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
        if m == 1 and not self.is_box:
            for i in np.flatnonzero(~covered):
                nb, w = self._lsq_gradient(int(i), order)
                rows.extend([int(i)] * len(nb))
                cols.extend(nb)
                vals.extend(w[k])
        P = self.n_points
        return sp.csr_matrix((vals, (rows, cols)), shape=(P, P))

    def _lsq_gradient(self, i: int, order: int) -> tuple[np.ndarray, np.ndarray]:
        """(point indices, gradient weights (d, len)) at point i from a weighted
        least-squares fit of a polynomial of degree ``order`` through u_i (the generalized
        finite differences of Liszka & Orkisz 1980, Comput. Struct. 11(1-2)): exact for
        polynomials of that degree, so the gradient is O(h^order) accurate."""
        d = len(self.names)
        expo = [e for e in itertools.product(range(order + 1), repeat=d) if 0 < sum(e) <= order]
        need = 2 * len(expo)
        scaled = self.points / self.h
        tree = self._tree()
        dist, nb = tree.query(scaled[i], k=min(need + 1 + 4 * d, self.n_points))
        keep = (nb != i) & np.isfinite(dist)
        nb = nb[keep]
        # no neighbours across a gap of the domain (the far side of a thin slot or hole)
        mid = 0.5 * (self.points[nb] + self.points[i])
        nb = nb[self.space.sdf(mid) <= 0.25 * float(np.min(self.h))]
        S = scaled[nb] - scaled[i]
        M = np.stack([np.prod(S ** np.array(e), axis=1) for e in expo], axis=1)
        sw = 1.0 / np.maximum(np.linalg.norm(S, axis=1), 1e-6)   # sqrt of the weights 1/r²
        if len(nb) < len(expo) or np.linalg.matrix_rank(M * sw[:, None]) < len(expo):
            raise UnsupportedSpecError(
                f"too few grid points near the boundary point {np.round(self.points[i], 6).tolist()} "
                "for its gradient; refine the grid")
        coef = np.linalg.pinv(M * sw[:, None]) * sw[None]      # (terms, neighbours)
        lin = [expo.index(tuple(int(a == k) for a in range(d))) for k in range(d)]
        W = coef[lin] / self.h[:, None]
        # fit of u - u_i: the centre weight is minus the sum of the others
        return (np.append(nb, i), np.concatenate([W, -W.sum(axis=1, keepdims=True)], axis=1))

    def _tree(self) -> cKDTree:
        if getattr(self, "_kdtree", None) is None:
            self._kdtree = cKDTree(self.points / self.h)
        return self._kdtree

    @_per_grid_cache
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
