"""Meshes read with meshio as domains (DESIGN.md §1): ``pk.Mesh.read("meshes/plate_with_hole.msh")``.

A `Mesh` is a domain like any other: named boundaries (the file's physical groups / cell
sets of facets, plus "boundary" = every boundary facet), interior samples uniform in space
(cells picked by area/volume), boundary samples uniform along the facets with outward unit
normals, ``contains`` and the mesh vertices as an optional fixed collocation set.
``mesh * pk.TimeInterval(t, 0, 1)`` is a space-time domain.

Cells of every supported type (triangles, quads, tetrahedra, hexahedra, wedges, pyramids,
higher-order variants by their corner nodes) are split into simplices for sampling and
point location; boundary facets are found on the original cells (a face that belongs to a
single cell) and oriented away from that cell, so the file's node ordering does not matter.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import sympy

from .errors import GeometryError
from .geometry import Domain, Points, _check_coords, sample_unit_cube

__all__ = ["Mesh"]

# cell type -> (dimension, corner count, simplices over corners, faces over corners)
_TRI_FACES = ((0, 1), (1, 2), (2, 0))
_QUAD_FACES = ((0, 1), (1, 2), (2, 3), (3, 0))
_CELLS: dict[str, tuple] = {
    "triangle": (2, 3, ((0, 1, 2),), _TRI_FACES),
    "quad": (2, 4, ((0, 1, 2), (0, 2, 3)), _QUAD_FACES),
    "tetra": (3, 4, ((0, 1, 2, 3),), ((0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3))),
    "hexahedron": (3, 8, ((0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6),
                          (0, 5, 1, 6)),
                   ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))),
    "wedge": (3, 6, ((0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5)),
              ((0, 1, 2), (3, 4, 5), (0, 1, 4, 3), (1, 2, 5, 4), (2, 0, 3, 5))),
    "pyramid": (3, 5, ((0, 1, 2, 4), (0, 2, 3, 4)),
                ((0, 1, 2, 3), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4))),
}
# higher-order cells: their first nodes are the corners
_ALIASES = {"triangle6": "triangle", "triangle7": "triangle", "quad8": "quad", "quad9": "quad",
            "tetra10": "tetra", "hexahedron20": "hexahedron", "hexahedron27": "hexahedron",
            "wedge15": "wedge", "wedge18": "wedge", "pyramid13": "pyramid", "pyramid14": "pyramid"}
# facet cell types as they appear in files (boundary groups): type -> corner count
_FACETS = {1: {"line": 2, "line3": 2}, 2: {"triangle": 3, "triangle6": 3, "quad": 4, "quad8": 4, "quad9": 4}}


def _base(ctype: str) -> str | None:
    ctype = _ALIASES.get(ctype, ctype)
    return ctype if ctype in _CELLS else None


def _dimension(cells: dict) -> int | None:
    """The highest dimension among supported cell types, or None when there are none."""
    dims = [_CELLS[_base(t)][0] for t in cells if _base(t)]
    return max(dims) if dims else None


def _simplex_measure(V: np.ndarray) -> np.ndarray:
    """Signed measure of simplices V (n, d+1, d) (area in 2-D, volume in 3-D)."""
    E = V[:, 1:] - V[:, :1]
    d = V.shape[2]
    return np.linalg.det(E) / (2.0 if d == 2 else 6.0)


def _facet_measure(V: np.ndarray) -> np.ndarray:
    """Length of segments (n, 2, 2) or area of triangles (n, 3, 3)."""
    if V.shape[1] == 2:
        return np.linalg.norm(V[:, 1] - V[:, 0], axis=1)
    return 0.5 * np.linalg.norm(np.cross(V[:, 1] - V[:, 0], V[:, 2] - V[:, 0]), axis=1)


def _facet_normal(V: np.ndarray) -> np.ndarray:
    """Unit normals (either orientation) of segments (n, 2, 2) or triangles (n, 3, 3)."""
    if V.shape[1] == 2:
        t = V[:, 1] - V[:, 0]
        n = np.stack([t[:, 1], -t[:, 0]], axis=1)
    else:
        n = np.cross(V[:, 1] - V[:, 0], V[:, 2] - V[:, 0])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _in_simplex(U: np.ndarray) -> np.ndarray:
    """Barycentric weights (n, d+1) uniform on the simplex from uniforms U (n, d): the
    spacings of the sorted coordinates."""
    S = np.sort(U, axis=1)
    S = np.concatenate([np.zeros((len(S), 1)), S, np.ones((len(S), 1))], axis=1)
    return np.diff(S, axis=1)


class Mesh(Domain):
    """An unstructured mesh as a domain. Build it with `Mesh.read` (any format meshio reads) or
    from arrays: ``Mesh(points, cells, coords=..., facet_groups={name: facets})``.

    points: (N, 2 or 3) vertex coordinates; cells: {meshio cell type: (M, k) vertex indices}
    (cells of the mesh's dimension); facet_groups: {name: (F, 2|3|4) vertex indices} boundary
    facets by name. coords: the coordinate symbols (default x, y[, z]).
    """

    def __init__(self, points: np.ndarray, cells: dict, coords: Sequence | None = None,
                 facet_groups: dict | None = None, name: str = "mesh") -> None:
        P = np.asarray(points, dtype=float)
        if P.ndim != 2 or P.shape[1] not in (2, 3) or len(P) == 0:
            raise GeometryError(f"{name}: mesh points must be an (N, 2) or (N, 3) array, got shape "
                                f"{P.shape}")
        bad = np.flatnonzero(~np.isfinite(P).all(axis=1))
        if len(bad):
            raise GeometryError(f"{name}: mesh vertex {bad[0]} has a non-finite coordinate "
                                f"({', '.join(map(str, P[bad[0]]))})"
                                f"{f' ({len(bad)} such vertices)' if len(bad) > 1 else ''}")
        dim = _dimension(cells)
        if dim is None:
            raise GeometryError(f"{name}: no cells of a supported type (triangle, quad, tetra, hexahedron, "
                                f"wedge, pyramid); found {', '.join(cells) or 'none'}")
        if dim == 2 and P.shape[1] == 3:
            if np.ptp(P[:, 2]) > 1e-12 * max(np.ptp(P[:, :2]), 1.0):
                raise GeometryError(f"{name}: a surface mesh in 3-D (triangles/quads not in a plane "
                                    "z = const) is not a domain; pinnkit needs 2-D cells in the plane or "
                                    "3-D cells")
            P = P[:, :2]
        if P.shape[1] < dim:
            raise GeometryError(f"{name}: {dim}-D cells but {P.shape[1]}-D points")
        if coords is None:
            coords = sympy.symbols("x y z"[: 2 * dim - 1], real=True)
        self.coords = _check_coords(tuple(coords), dim, "Mesh")
        self.name = name
        self.points = np.ascontiguousarray(P)
        self.cells = {}
        for t, c in cells.items():
            base = _base(t)
            if base is None or _CELLS[base][0] != dim:
                continue
            c = np.asarray(c, dtype=np.int64)
            if c.ndim != 2 or len(c) == 0:
                continue
            if c.min() < 0 or c.max() >= len(P):
                raise GeometryError(f"{name}: {t} cells refer to vertices outside 0..{len(P) - 1}")
            self.cells[t] = c
        if not self.cells:
            raise GeometryError(f"{name}: no {dim}-D cells")
        self._build_simplices()
        self._build_boundary(facet_groups or {})

    # ------------------------------------------------------------------ construction

    @classmethod
    def read(cls, path: str | os.PathLike, coords: Sequence | None = None) -> "Mesh":
        """Read a mesh file with meshio (gmsh .msh v2/v4, .vtu, .xdmf, ...).

        Boundary names come from gmsh physical groups of facets (``field_data``) or from
        ``cell_sets`` of facets; the whole boundary is always "boundary".
        """
        path = Path(path)
        if not path.is_file():
            raise GeometryError(f"mesh file {path} does not exist")
        m = _meshio_read(path)
        cells: dict = {}
        for block in m.cells:
            if len(block.data):
                cells[block.type] = np.concatenate([cells[block.type], block.data]) \
                    if block.type in cells else block.data
        dim = _dimension(cells)
        if dim is None:
            found = ", ".join(sorted(cells)) or "no cells"
            raise GeometryError(f"mesh {path}: no 2-D or 3-D cells (found {found}); pinnkit needs "
                                "triangles/quads or tetrahedra/hexahedra")
        return cls(m.points, cells, coords=coords, facet_groups=_facet_groups(m, dim), name=path.name)

    def _build_simplices(self) -> None:
        d = self.dim
        simp, owner = [], []
        self._cell_offsets = {}
        offset = 0
        for t, c in self.cells.items():
            _, k, splits, _ = _CELLS[_base(t)]
            corners = c[:, :k]
            for s in splits:
                simp.append(corners[:, s])
                owner.append(np.arange(offset, offset + len(c)))
            self._cell_offsets[t] = offset
            offset += len(c)
        S = np.concatenate(simp)
        V = self.points[S]
        vol = _simplex_measure(V)
        scale = float(np.max(np.ptp(self.points, axis=0)))
        tiny = 1e-12 * scale ** d
        cell_vol = np.zeros(offset)
        np.add.at(cell_vol, np.concatenate(owner), np.abs(vol))
        bad = np.flatnonzero(cell_vol <= tiny)
        if len(bad):
            raise GeometryError(f"{self.name}: {len(bad)} degenerate cell(s) with zero "
                                f"{'area' if d == 2 else 'volume'} (first: cell {bad[0]} of "
                                f"{offset}); fix the mesh")
        keep = np.abs(vol) > tiny   # a degenerate sub-simplex of a good hex/quad carries no volume
        S, V, vol = S[keep], V[keep], vol[keep]
        flip = vol < 0               # orient positively (files differ)
        S[flip, :2] = S[flip, 1::-1]
        self.simplices = S
        self.volumes = np.abs(vol)
        self.volume = float(self.volumes.sum())
        self._cum = np.cumsum(self.volumes) / self.volume
        V = self.points[S]
        self.centroids = V.mean(axis=1)
        self._radius = np.max(np.linalg.norm(V - self.centroids[:, None], axis=2), axis=1)
        self._T_inv = np.linalg.inv(np.transpose(V[:, 1:] - V[:, :1], (0, 2, 1)))
        self.scale = scale

    def _build_boundary(self, facet_groups: dict) -> None:
        """Boundary facets (faces of exactly one cell), their outward normals and names."""
        d = self.dim
        faces, owners = [], []
        for t, c in self.cells.items():
            _, k, _, fdefs = _CELLS[_base(t)]
            off = self._cell_offsets[t]
            for f in fdefs:
                faces.append(c[:, list(f)] if len(f) == 4 else np.pad(c[:, list(f)], ((0, 0), (0, 4 - len(f))),
                                                                      constant_values=-1))
                owners.append(np.arange(off, off + len(c)))
        F = np.concatenate(faces)
        own = np.concatenate(owners)
        key = np.sort(np.where(F < 0, np.iinfo(np.int64).max, F), axis=1)
        _, inv, count = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        once = count[inv.ravel()] == 1
        BF, bown = F[once], own[once]
        # cell centroids (corner average) of the owning cells, to orient normals outwards
        centers = np.zeros((sum(len(c) for c in self.cells.values()), d))
        for t, c in self.cells.items():
            k = _CELLS[_base(t)][1]
            off = self._cell_offsets[t]
            centers[off:off + len(c)] = self.points[c[:, :k]].mean(axis=1)
        # sampling pieces: segments in 2-D, triangles in 3-D (quad facets split in two)
        if d == 2:
            pieces = BF[:, :2]
            piece_facet = np.arange(len(BF))
        else:
            tri = BF[:, 3] < 0
            pieces = np.concatenate([BF[tri, :3], BF[~tri][:, [0, 1, 2]], BF[~tri][:, [0, 2, 3]]])
            idx = np.arange(len(BF))
            piece_facet = np.concatenate([idx[tri], idx[~tri], idx[~tri]])
        V = self.points[pieces]
        meas = _facet_measure(V)
        normals = _facet_normal(V)
        out = V.mean(axis=1) - centers[bown[piece_facet]]
        normals *= np.where(np.sum(normals * out, axis=1) < 0, -1.0, 1.0)[:, None]
        keep = meas > 1e-12 * self.scale ** (d - 1)
        self.facets = pieces[keep]
        self.facet_measure = meas[keep]
        self.facet_normals = normals[keep]
        piece_facet = piece_facet[keep]
        # names: the file's facet groups, matched to boundary facets by their vertex set
        bkey = {tuple(sorted(int(v) for v in f if v >= 0)): i for i, f in enumerate(BF)}
        self.facet_names: dict[str, np.ndarray] = {}
        self.notes: list[str] = []
        for name, group in facet_groups.items():
            on = set()
            interior = 0
            for f in np.asarray(group, dtype=np.int64).reshape(len(group), -1):
                i = bkey.get(tuple(sorted(int(v) for v in f if v >= 0)))
                if i is None:
                    interior += 1
                else:
                    on.add(i)
            if interior:
                self.notes.append(f"group {name!r}: {interior} facet(s) are not on the boundary "
                                  "(interfaces) and are ignored")
            if on:
                self.facet_names[name] = np.flatnonzero(np.isin(piece_facet, sorted(on)))
        self.boundary_vertices = np.unique(BF[BF >= 0])

    # ------------------------------------------------------------------ protocol

    @property
    def boundary_names(self) -> list[str]:
        return list(self.facet_names)

    @property
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.points.min(axis=0), self.points.max(axis=0)

    def contains(self, points: Points, tol: float | None = None) -> np.ndarray:
        """True for points inside a cell or on the boundary (within ``tol``, relative)."""
        return self.locate(self._to_array(points), tol)[0] >= 0

    def locate(self, P: np.ndarray, tol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(simplex index or -1, barycentric weights (n, d+1)) of points P (n, d)."""
        P = np.asarray(P, dtype=float).reshape(-1, self.dim)
        tol = 1e-9 if tol is None else tol
        found = np.full(len(P), -1)
        bary = np.zeros((len(P), self.dim + 1))
        tree = self._tree

        def test(rows: np.ndarray, cand: np.ndarray) -> None:
            lam = np.einsum("nij,nj->ni", self._T_inv[cand], P[rows] - self.points[self.simplices[cand, 0]])
            lam = np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)
            ok = np.all(lam >= -tol, axis=1) & (found[rows] < 0)
            found[rows[ok]] = cand[ok]
            bary[rows[ok]] = lam[ok]

        k = min(8, len(self.simplices))
        _, near = tree.query(P, k=k)
        near = near.reshape(len(P), k)
        for j in range(k):
            rows = np.flatnonzero(found < 0)
            if not len(rows):
                break
            test(rows, near[rows, j])
        rmax = float(self._radius.max()) * (1 + 1e-9) + tol * self.scale
        for r in np.flatnonzero(found < 0):
            cand = np.asarray(tree.query_ball_point(P[r], rmax), dtype=np.int64)
            if len(cand):
                test(np.full(len(cand), r), cand)
        return found, bary

    @cached_property
    def _tree(self):
        from scipy.spatial import cKDTree
        return cKDTree(self.centroids)

    def sample_interior(self, n: int, method: str = "sobol", seed: int = 0) -> Points:
        """n points uniform in space: a cell chosen with probability ∝ its area/volume, then a
        uniform point in it (joint low-discrepancy coordinates for QMC methods)."""
        U = sample_unit_cube(n, self.dim + 1, method, seed)
        cell = np.minimum(np.searchsorted(self._cum, U[:, 0], side="right"), len(self._cum) - 1)
        lam = _in_simplex(U[:, 1:])
        X = np.einsum("ni,nij->nj", lam, self.points[self.simplices[cell]])
        return self._to_dict(X)

    def sample_boundary(self, n: int, on: str | Sequence[str] = "boundary",
                        seed: int = 0) -> tuple[Points, Points]:
        """n points uniform along the named boundary facets (∝ length/area), with the outward
        unit normal of their facet."""
        names = self.check_on(on)
        if "boundary" in names:
            idx = np.arange(len(self.facets))
        else:
            idx = np.unique(np.concatenate([self.facet_names[nm] for nm in names]))
        rng = np.random.default_rng(seed)
        w = self.facet_measure[idx]
        pick = idx[np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n), side="right"),
                              len(idx) - 1)]
        lam = _in_simplex(rng.random((n, self.dim - 1)))
        X = np.einsum("ni,nij->nj", lam, self.points[self.facets[pick]])
        return self._to_dict(X), self._to_dict(self.facet_normals[pick])

    def vertices(self, which: str = "all") -> Points:
        """Mesh vertices used by cells ("all"), off the boundary ("interior") or on it ("boundary")."""
        used = np.unique(np.concatenate([c[:, :_CELLS[_base(t)][1]].ravel() for t, c in self.cells.items()]))
        if which == "interior":
            used = np.setdiff1d(used, self.boundary_vertices)
        elif which == "boundary":
            used = np.intersect1d(used, self.boundary_vertices)
        elif which != "all":
            raise GeometryError(f"vertices(which={which!r}): use 'all', 'interior' or 'boundary'")
        return self._to_dict(self.points[used])

    def __repr__(self) -> str:
        kinds = ", ".join(f"{len(c)} {t}" for t, c in self.cells.items())
        return f"Mesh({self.name!r}, {len(self.points)} vertices, {kinds})"


def _meshio_read(path: Path):
    """meshio.read, with every failure (meshio prints and calls sys.exit on some) turned
    into one GeometryError that says which formats were tried and why they failed."""
    import contextlib
    import io

    import meshio
    try:
        from meshio._helpers import _filetypes_from_path, reader_map
    except ImportError:  # another meshio layout: plain read
        try:
            return meshio.read(path)
        except (Exception, SystemExit) as exc:
            raise GeometryError(f"cannot read mesh {path}: {type(exc).__name__}: {exc}") from None
    try:
        formats = _filetypes_from_path(path)
    except meshio.ReadError:
        raise GeometryError(f"cannot read mesh {path}: unknown mesh format {path.suffix!r} (pinnkit reads "
                            "what meshio reads: .msh, .vtu, .vtk, .xdmf, .med, ...)") from None
    errors = []
    for fmt in formats:
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                return reader_map[fmt](str(path))
        except (Exception, SystemExit) as exc:
            said = sink.getvalue().split()
            why = str(exc) or (" ".join(said[-12:]) if said else f"not a valid {fmt} file")
            errors.append(f"as {fmt}: {why}")
    raise GeometryError(f"cannot read mesh {path}: " + "; ".join(errors))


def _facet_groups(m, dim: int) -> dict:
    """{name: (F, k) facet vertex indices} from gmsh physical groups or meshio cell_sets."""
    facet_types = _FACETS[dim - 1]
    groups: dict[str, list] = {}
    names_by_tag = {int(v[0]): k for k, v in (m.field_data or {}).items()
                    if len(np.atleast_1d(v)) >= 2 and int(v[1]) == dim - 1}
    phys = (m.cell_data or {}).get("gmsh:physical")
    if phys is not None:
        for block, tags in zip(m.cells, phys):
            if block.type not in facet_types:
                continue
            k = facet_types[block.type]
            for tag in np.unique(tags):
                name = names_by_tag.get(int(tag), f"group{int(tag)}" if names_by_tag else None)
                if name is None:
                    continue
                groups.setdefault(name, []).append(block.data[np.asarray(tags) == tag, :k])
    if not groups:
        for name, per_block in (m.cell_sets or {}).items():
            if name.startswith("gmsh:"):
                continue
            for block, sel in zip(m.cells, per_block):
                if block.type in facet_types and sel is not None and len(sel):
                    groups.setdefault(name, []).append(block.data[np.asarray(sel), :facet_types[block.type]])
    out = {}
    for name, parts in groups.items():
        k = max(p.shape[1] for p in parts)
        out[name] = np.concatenate([np.pad(p, ((0, 0), (0, k - p.shape[1])), constant_values=-1)
                                    for p in parts])
    return out
