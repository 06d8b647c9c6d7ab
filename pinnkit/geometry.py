"""Domains: shapes, CSG, space-time products, named boundaries, normals and sampling.

Every domain follows one small protocol (DESIGN.md §1):
``coords``, ``boundary_names``, ``contains(points)``, ``sample_interior(n, method, seed)``,
``sample_boundary(n, on, seed) -> (points, normals)`` and, for space-time domains,
``sample_initial(n, seed)``. Points and normals are dicts keyed by coordinate name.

Shapes carry a signed distance function (negative inside). CSG boundaries are sampled by
rejection from the children's boundaries, which keeps sampling uniform in arc length/area
and the normals exact (flipped on the boundary a difference cuts out).

CSG operations are *regularized* (Requicha 1980, "Representations for rigid solids", ACM
Comput. Surv. 12(4)): the result is the closure of the interior of the plain set operation,
so faces a difference removes, faces glued by a union and touching contacts of an
intersection are neither inside nor boundary. Points where the min/max signed distance is
zero are classified by probing a tiny sphere around them (`_CSG.classify`).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import sympy
from scipy.stats import qmc

from .errors import GeometryError

__all__ = ["Domain", "Shape", "Interval", "Rectangle", "Box", "Disk", "Polygon",
           "TimeInterval", "SpaceTime", "sample_unit_cube", "SAMPLERS"]

Points = dict  # coordinate name -> 1-D float array


def _check_coords(coords: Sequence, n: int | None, what: str) -> tuple:
    coords = tuple(coords) if isinstance(coords, (tuple, list)) else (coords,)
    for c in coords:
        if not isinstance(c, sympy.Symbol):
            raise GeometryError(f"{what}: {c!r} is not a coordinate symbol (use pk.coords)")
    if n is not None and len(coords) != n:
        raise GeometryError(f"{what} needs {n} coordinates, got {len(coords)}")
    if len({c.name for c in coords}) != len(coords):
        raise GeometryError(f"{what}: repeated coordinate in {coords}")
    return coords


# --------------------------------------------------------------------------- sampling

def _sobol(d: int, seed: int):
    return qmc.Sobol(d, scramble=True, seed=seed)


SAMPLERS: dict[str, Callable] = {
    "sobol": _sobol,
    "halton": lambda d, seed: qmc.Halton(d, scramble=True, seed=seed),
    "lhs": lambda d, seed: qmc.LatinHypercube(d, seed=seed),
}


class _UniformEngine:
    def __init__(self, d: int, seed: int) -> None:
        self.d, self.rng = d, np.random.default_rng(seed)

    def random(self, n: int) -> np.ndarray:
        return self.rng.random((n, self.d))


SAMPLERS["uniform"] = _UniformEngine


def _engine(method: str, d: int, seed: int):
    try:
        make = SAMPLERS[method]
    except KeyError:
        raise GeometryError(f"unknown sampling method {method!r}; choose from "
                            f"{', '.join(SAMPLERS)}") from None
    return make(d, seed)


def sample_unit_cube(n: int, d: int, method: str = "sobol", seed: int = 0) -> np.ndarray:
    """n points in [0, 1)^d from a QMC sequence (scrambled) or uniform random."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Sobol balance warning for n != 2^m
        return _engine(method, d, seed).random(n)


def _rejection(n: int, d: int, lo: np.ndarray, hi: np.ndarray, keep: Callable,
               method: str, seed: int, what: str) -> np.ndarray:
    """n points of the box [lo, hi] that satisfy ``keep`` (QMC sequence continued as needed)."""
    engine = _engine(method, d, seed)
    out, have, batch = [], 0, max(2 * n, 64)
    for _ in range(60):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            P = lo + (hi - lo) * engine.random(batch)
        P = P[keep(P)]
        out.append(P)
        have += len(P)
        if have >= n:
            return np.concatenate(out)[:n]
        rate = max(have / max(batch, 1), 1e-3)
        batch = int(min(4e6, max(64, 1.3 * (n - have) / rate)))
    raise GeometryError(f"{what}: could not sample {n} points (the region is empty or tiny)")


# --------------------------------------------------------------------------- domains

class Domain:
    """Base of every domain. Subclasses set ``coords`` and implement the protocol."""

    coords: tuple = ()
    time = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.coords]

    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    def boundary_names(self) -> list[str]:
        raise NotImplementedError

    def _to_array(self, points: Points) -> np.ndarray:
        missing = [n for n in self.names if n not in points]
        if missing:
            raise GeometryError(f"points lack coordinate(s) {', '.join(missing)}")
        return np.stack([np.asarray(points[n], dtype=float).ravel() for n in self.names], axis=1)

    def _to_dict(self, P: np.ndarray, names: Sequence[str] | None = None) -> Points:
        return {n: np.ascontiguousarray(P[:, i]) for i, n in enumerate(names or self.names)}

    def check_on(self, on: str | Sequence[str]) -> list[str]:
        """The boundary names in ``on`` (a name or a list), or an error listing valid names."""
        names = [on] if isinstance(on, str) else list(on)
        valid = self.boundary_names
        for n in names:
            if n != "boundary" and n not in valid:
                raise GeometryError(f"unknown boundary {n!r}; boundaries of this domain: "
                                    f"{', '.join(['boundary'] + valid)}")
        ambiguous = self.ambiguous_names() if set(names) != {"boundary"} else {}
        for n in names:
            if n in ambiguous:
                raise GeometryError(ambiguous[n])
        return names

    def ambiguous_names(self) -> dict[str, str]:
        """{boundary name: message} for automatic names that cover faces of different shapes
        (only CSG can make them); using such a name in ``on=`` is an error."""
        return {}

    def __mul__(self, other: "TimeInterval") -> "SpaceTime":
        if not isinstance(other, TimeInterval):
            return NotImplemented
        return SpaceTime(self, other)


@dataclass
class _Piece:
    """A primitive boundary part; samples (points, normals) before CSG rejection."""

    name: str
    measure: float
    sampler: Callable  # (rng, m) -> (P, N)
    keeps: tuple = ()  # (keep(P, N) -> bool mask, flip of N as that CSG node sees it)
    flip: bool = False
    face: tuple = ()   # what the face is (plane/shape), to tell faces of different shapes apart
    auto: bool = False  # the name was made up by pinnkit (no name= given)

    def derived(self, keep: Callable, flip: bool = False) -> "_Piece":
        return _Piece(self.name, self.measure, self.sampler, self.keeps + ((keep, self.flip),),
                      self.flip ^ flip, self.face, self.auto)

    def accept(self, P: np.ndarray, N: np.ndarray) -> np.ndarray:
        mask = np.ones(len(P), dtype=bool)
        for k, flip in self.keeps:
            mask &= k(P, -N if flip else N)
        return mask

    def describe(self) -> str:
        """The face in words, with its outward normal after CSG flips."""
        kind, *rest = self.face
        if kind == "plane":
            axis_name, side, value, shape = rest
            sign = ("+" if side else "-") if not self.flip else ("-" if side else "+")
            return f"{axis_name} = {value:g} with normal {sign}{axis_name} (of {shape})"
        return f"{rest[-1]}{' (its normal flipped: cut out)' if self.flip else ''}"


class Shape(Domain):
    """A spatial domain with a signed distance function (negative inside) and boundary pieces."""

    def sdf(self, P: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def pieces(self) -> list[_Piece]:
        raise NotImplementedError

    @property
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def scale(self) -> float:
        lo, hi = self.bbox
        return float(np.max(hi - lo))

    @property
    def boundary_names(self) -> list[str]:
        return list(dict.fromkeys(p.name for p in self.pieces()))

    def classify(self, P: np.ndarray, tol: float) -> np.ndarray:
        """-1 inside, 0 on the boundary (within ``tol``), +1 outside, per row of P (n, d)."""
        d = self.sdf(P)
        return np.where(np.abs(d) <= tol, 0, np.sign(d)).astype(np.int8)

    def contains(self, points: Points, tol: float | None = None) -> np.ndarray:
        """True where a point lies in the closed domain (within ``tol``, default 1e-9·size)."""
        tol = 1e-9 * self.scale if tol is None else tol
        return self.classify(self._to_array(points), tol) <= 0

    def sample_interior(self, n: int, method: str = "sobol", seed: int = 0) -> Points:
        """n points in the interior: QMC/uniform in the bounding box, rejected outside."""
        lo, hi = self.bbox
        P = _rejection(n, self.dim, lo, hi, lambda P: self.sdf(P) < 0, method, seed,
                       f"interior of {self!r}")
        return self._to_dict(P)

    def sample_boundary(self, n: int, on: str | Sequence[str] = "boundary",
                        seed: int = 0) -> tuple[Points, Points]:
        """n points uniform in length/area on the named boundary parts, with outward normals."""
        names = self.check_on(on)
        pieces = [p for p in self.pieces() if "boundary" in names or p.name in names]
        P, N = _sample_pieces(pieces, n, self.dim, np.random.default_rng(seed), f"{names}")
        return self._to_dict(P), self._to_dict(N)

    def __or__(self, other: "Shape") -> "Shape":
        return _CSG("union", self, other)

    def __and__(self, other: "Shape") -> "Shape":
        return _CSG("intersection", self, other)

    def __sub__(self, other: "Shape") -> "Shape":
        return _CSG("difference", self, other)


def _sample_pieces(pieces: list[_Piece], n: int, d: int, rng: np.random.Generator,
                   what: str) -> tuple[np.ndarray, np.ndarray]:
    if not pieces:
        raise GeometryError(f"no boundary part named {what}")
    weights = np.array([p.measure for p in pieces], dtype=float)
    weights = weights / weights.sum()
    Ps, Ns, have, batch = [], [], 0, max(2 * n, 32)
    for _ in range(60):
        counts = rng.multinomial(batch, weights)
        for p, m in zip(pieces, counts):
            if m == 0:
                continue
            P, N = p.sampler(rng, int(m))
            keep = p.accept(P, N)
            Ps.append(P[keep])
            Ns.append(-N[keep] if p.flip else N[keep])
            have += int(keep.sum())
        if have >= n:
            P, N = np.concatenate(Ps), np.concatenate(Ns)
            order = rng.permutation(len(P))[:n]  # mix the pieces, then keep n
            return P[order], N[order]
        rate = max(have / batch, 1e-3)
        batch = int(min(4e6, max(32, 1.3 * (n - have) / rate)))
    raise GeometryError(f"boundary {what} is empty after CSG (it lies inside another shape)")


class _AxisBox(Shape):
    def __init__(self, coords: Sequence, lo: Sequence[float], hi: Sequence[float],
                 name: str | None, what: str) -> None:
        self.coords = _check_coords(coords, None, what)
        self.lo = np.atleast_1d(np.asarray(lo, dtype=float))
        self.hi = np.atleast_1d(np.asarray(hi, dtype=float))
        if not (len(self.lo) == len(self.hi) == len(self.coords)):
            raise GeometryError(f"{what}: corners must have {len(self.coords)} components")
        if np.any(~np.isfinite(self.lo)) or np.any(self.hi <= self.lo):
            raise GeometryError(f"{what}: need lo < hi in every coordinate, got lo={self.lo.tolist()}"
                                f", hi={self.hi.tolist()}")
        self.name = name

    @property
    def bbox(self):
        return self.lo.copy(), self.hi.copy()

    def sdf(self, P: np.ndarray) -> np.ndarray:
        c, h = (self.lo + self.hi) / 2, (self.hi - self.lo) / 2
        q = np.abs(P - c) - h
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        return outside + np.minimum(q.max(axis=1), 0.0)

    def face_name(self, axis: int, side: int) -> str:
        return self.name or f"{self.coords[axis].name}_{'min' if side == 0 else 'max'}"

    def pieces(self) -> list[_Piece]:
        d, out = self.dim, []
        for axis in range(d):
            others = [i for i in range(d) if i != axis]
            area = float(np.prod(self.hi[others] - self.lo[others])) if others else 1.0
            for side, value in ((0, self.lo[axis]), (1, self.hi[axis])):
                def sampler(rng, m, axis=axis, side=side, value=value, others=others):
                    P = np.empty((m, d))
                    for i in others:
                        P[:, i] = rng.uniform(self.lo[i], self.hi[i], m)
                    P[:, axis] = value
                    N = np.zeros((m, d))
                    N[:, axis] = -1.0 if side == 0 else 1.0
                    return P, N
                out.append(_Piece(self.face_name(axis, side), area, sampler,
                                  face=("plane", self.coords[axis].name, side, float(value),
                                        repr(self)), auto=self.name is None))
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({', '.join(self.names)}: "
                f"{self.lo.tolist()}..{self.hi.tolist()})")


class Interval(_AxisBox):
    """[a, b] in one coordinate; boundary points ``<x>_min`` (normal -1) and ``<x>_max``."""

    def __init__(self, x: sympy.Symbol, a: float, b: float, name: str | None = None) -> None:
        super().__init__((x,), (a,), (b,), name, "Interval")


class Rectangle(_AxisBox):
    """Axis-aligned rectangle; faces ``x_min``, ``x_max``, ``y_min``, ``y_max``."""

    def __init__(self, coords: Sequence, lo: Sequence[float], hi: Sequence[float],
                 name: str | None = None) -> None:
        _check_coords(coords, 2, "Rectangle")
        super().__init__(coords, lo, hi, name, "Rectangle")


class Box(_AxisBox):
    """Axis-aligned box in any dimension (usually 3); faces ``<coord>_min``/``_max``."""

    def __init__(self, coords: Sequence, lo: Sequence[float], hi: Sequence[float],
                 name: str | None = None) -> None:
        super().__init__(coords, lo, hi, name, "Box")


class Disk(Shape):
    """Disk ``|p - center| <= radius`` in 2D; its boundary is named ``name`` (default "disk")."""

    def __init__(self, coords: Sequence, center: Sequence[float], radius: float,
                 name: str | None = None) -> None:
        self.coords = _check_coords(coords, 2, "Disk")
        self.center = np.asarray(center, dtype=float)
        self.radius = float(radius)
        if self.center.shape != (2,) or not self.radius > 0:
            raise GeometryError(f"Disk needs a 2-D center and radius > 0, got {center}, {radius}")
        self.name = name or "disk"
        self.auto_name = name is None

    @property
    def bbox(self):
        return self.center - self.radius, self.center + self.radius

    def sdf(self, P: np.ndarray) -> np.ndarray:
        return np.linalg.norm(P - self.center, axis=1) - self.radius

    def pieces(self) -> list[_Piece]:
        def sampler(rng, m):
            th = rng.uniform(0.0, 2 * np.pi, m)
            N = np.stack([np.cos(th), np.sin(th)], axis=1)
            return self.center + self.radius * N, N
        return [_Piece(self.name, 2 * np.pi * self.radius, sampler, face=("shape", repr(self)),
                       auto=self.auto_name)]

    def __repr__(self) -> str:
        return f"Disk(center={self.center.tolist()}, radius={self.radius})"


class Polygon(Shape):
    """Simple polygon from its vertices (either orientation); boundary named ``name``."""

    def __init__(self, coords: Sequence, vertices: Sequence[Sequence[float]],
                 name: str | None = None) -> None:
        self.coords = _check_coords(coords, 2, "Polygon")
        V = np.asarray(vertices, dtype=float)
        if V.ndim != 2 or V.shape[1] != 2 or len(V) < 3:
            raise GeometryError(f"Polygon needs at least 3 vertices (x, y), got shape {V.shape}")
        area2 = np.sum(V[:, 0] * np.roll(V[:, 1], -1) - np.roll(V[:, 0], -1) * V[:, 1])
        if abs(area2) < 1e-14:
            raise GeometryError("Polygon has zero area")
        self.vertices = V if area2 > 0 else V[::-1].copy()  # counter-clockwise
        self.name = name or "polygon"
        self.auto_name = name is None

    @property
    def bbox(self):
        return self.vertices.min(axis=0), self.vertices.max(axis=0)

    def _edges(self):
        A = self.vertices
        return A, np.roll(A, -1, axis=0)

    def sdf(self, P: np.ndarray) -> np.ndarray:
        A, B = self._edges()
        AB = B - A
        AP = P[:, None, :] - A[None]
        s = np.clip(np.einsum("mkd,kd->mk", AP, AB) / np.einsum("kd,kd->k", AB, AB), 0.0, 1.0)
        dist = np.linalg.norm(AP - s[..., None] * AB[None], axis=2).min(axis=1)
        # even-odd ray casting for inside/outside
        y, x = P[:, 1:2], P[:, 0:1]
        cond = (A[None, :, 1] > y) != (B[None, :, 1] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = A[None, :, 0] + (y - A[None, :, 1]) * (B[None, :, 0] - A[None, :, 0]) / (
                B[None, :, 1] - A[None, :, 1])
        inside = (np.count_nonzero(cond & (x < xint), axis=1) % 2) == 1
        return np.where(inside, -dist, dist)

    def pieces(self) -> list[_Piece]:
        A, B = self._edges()
        out = []
        for a, b in zip(A, B):
            t = b - a
            length = float(np.linalg.norm(t))
            n = np.array([t[1], -t[0]]) / length  # outward for counter-clockwise order

            def sampler(rng, m, a=a, t=t, n=n):
                s = rng.random(m)[:, None]
                return a + s * t, np.repeat(n[None], m, axis=0)
            out.append(_Piece(self.name, length, sampler,
                              face=("shape", f"Polygon({self.vertices.tolist()})"),
                              auto=self.auto_name))
        return out

    def __repr__(self) -> str:
        return f"Polygon({len(self.vertices)} vertices)"


class _CSG(Shape):
    def __init__(self, op: str, a: Shape, b: Shape) -> None:
        if not isinstance(b, Shape):
            raise GeometryError(f"cannot combine a shape with {b!r}")
        if [c.name for c in a.coords] != [c.name for c in b.coords]:
            raise GeometryError(f"CSG of shapes over different coordinates: {a.names} vs {b.names}")
        self.op, self.a, self.b = op, a, b
        self.coords = a.coords

    @property
    def bbox(self):
        (alo, ahi), (blo, bhi) = self.a.bbox, self.b.bbox
        if self.op == "union":
            return np.minimum(alo, blo), np.maximum(ahi, bhi)
        if self.op == "intersection":
            return np.maximum(alo, blo), np.minimum(ahi, bhi)
        return alo, ahi

    def sdf(self, P: np.ndarray) -> np.ndarray:
        da, db = self.a.sdf(P), self.b.sdf(P)
        if self.op == "union":
            return np.minimum(da, db)
        if self.op == "intersection":
            return np.maximum(da, db)
        return np.maximum(da, -db)

    # -- regularization: probes on a tiny sphere (radius `_probe_radius`) around a point
    _INSIDE = 0.25   # a probe is strictly inside where sdf < -_INSIDE·radius (outside: > +)

    def _probe_radius(self, tol: float = 0.0) -> float:
        return max(1e-6 * self.scale, 100.0 * tol)

    def classify(self, P: np.ndarray, tol: float) -> np.ndarray:
        """-1 inside, 0 on the boundary, +1 outside the regularized set, per row of P.

        Where the min/max signed distance is within ``tol`` of zero, the point belongs to
        the set iff some probe around it is strictly inside, and is an interior point (a
        face glued by a union) iff no probe is clearly outside."""
        raw = self.sdf(P)
        state = np.where(np.abs(raw) <= tol, 0, np.sign(raw)).astype(np.int8)
        on = np.flatnonzero(state == 0)
        if len(on):
            r = self._probe_radius(tol)
            V = _probe_directions(self.dim)
            Q = (P[on, None, :] + r * V[None]).reshape(-1, self.dim)
            q = self.sdf(Q).reshape(len(on), len(V))
            member = np.any(q < -self._INSIDE * r, axis=1)
            interior = np.all(q <= self._INSIDE * r, axis=1)
            state[on] = np.where(~member, 1, np.where(interior, -1, 0))
        return state

    def face_is_boundary(self, P: np.ndarray, N: np.ndarray) -> np.ndarray:
        """For points P on a child's face with outward normal N (rows): is that face part of
        this shape's boundary there? Some probe behind the face (against N) is inside while
        its mirror image in front of the face is outside."""
        r = self._probe_radius()
        V = _probe_directions(self.dim)
        keep = np.zeros(len(P), dtype=bool)
        for v in V:
            vn = N @ v
            behind = vn < -0.05
            if not np.any(behind):
                continue
            mirror = v[None] - 2 * vn[:, None] * N
            ins = self.sdf(P + r * v[None]) < -self._INSIDE * r
            out = self.sdf(P + r * mirror) > self._INSIDE * r
            keep |= behind & ins & out
        return keep

    def pieces(self) -> list[_Piece]:
        eps = 1e-10 * self.scale
        r = self._probe_radius()
        a, b = self.a, self.b

        def beyond_face(shape: Shape, sign: float):
            # on the other shape's boundary with the side beyond ours (sign +1: in front of
            # the face, along N; -1: behind it) outside that shape: a coincident face that
            # belongs to the result (same normal for +1, touching from outside for -1)
            return lambda P, N: (np.abs(shape.sdf(P)) <= eps) & (
                shape.sdf(P + sign * r * N) > self._INSIDE * r)

        outside_b = lambda P, N: b.sdf(P) > eps   # noqa: E731
        outside_a = lambda P, N: a.sdf(P) > eps   # noqa: E731
        inside_b = lambda P, N: b.sdf(P) < -eps   # noqa: E731
        inside_a = lambda P, N: a.sdf(P) < -eps   # noqa: E731
        front_b, back_b = beyond_face(b, 1.0), beyond_face(b, -1.0)
        if self.op == "union":     # a coincident face with equal normals is sampled from a only
            return ([p.derived(lambda P, N: outside_b(P, N) | front_b(P, N)) for p in a.pieces()]
                    + [p.derived(outside_a) for p in b.pieces()])
        if self.op == "intersection":
            return ([p.derived(lambda P, N: inside_b(P, N) | front_b(P, N)) for p in a.pieces()]
                    + [p.derived(inside_a) for p in b.pieces()])
        return ([p.derived(lambda P, N: outside_b(P, N) | back_b(P, N)) for p in a.pieces()]
                + [p.derived(inside_a, flip=True) for p in b.pieces()])

    def ambiguous_names(self) -> dict[str, str]:
        """Automatic names (``x_min``, default ``disk``/``polygon``) whose surviving faces
        belong to different shapes, e.g. an L made by subtracting a rectangle: its
        ``x_min`` would be both the outer face and the re-entrant face of the notch."""
        if getattr(self, "_ambiguous", None) is None:   # shapes are immutable: once
            self._ambiguous = self._find_ambiguous()
        return dict(self._ambiguous)

    def _find_ambiguous(self) -> dict[str, str]:
        rng = np.random.default_rng(12345)
        faces: dict[str, dict] = {}
        for p in self.pieces():
            if not p.auto:
                continue
            P, N = p.sampler(rng, 256)
            if np.any(p.accept(P, N)):
                # coplanar box faces with the same normal are one face, whichever box
                key = (p.face[:2] + ((p.face[2] == 1) ^ p.flip, p.face[3])
                       if p.face[0] == "plane" else (p.face, p.flip))
                faces.setdefault(p.name, {})[key] = p.describe()
        out = {}
        for name, found in faces.items():
            if len(found) > 1:
                out[name] = (f"boundary {name!r} is ambiguous in this CSG domain: it covers faces "
                             f"of different shapes ({'; '.join(found.values())}); give the shapes "
                             f"their own boundary names with name=... (e.g. "
                             f"pk.Rectangle(..., name=\"notch\")) and use those in on=")
        return out

    def __repr__(self) -> str:
        sym = {"union": "|", "intersection": "&", "difference": "-"}[self.op]
        return f"({self.a!r} {sym} {self.b!r})"


def _probe_directions(d: int) -> np.ndarray:
    """Unit probe directions: 16 angles in 2-D, the 3^d - 1 neighbour directions otherwise."""
    if d == 2:
        th = np.arange(16) * np.pi / 8
        return np.stack([np.cos(th), np.sin(th)], axis=1)
    V = np.array([v for v in itertools.product((-1.0, 0.0, 1.0), repeat=d) if any(v)])
    return V / np.linalg.norm(V, axis=1, keepdims=True)


# --------------------------------------------------------------------------- time

@dataclass(frozen=True)
class TimeInterval:
    """[t0, t1] in the time coordinate; ``space * TimeInterval(t, t0, t1)`` is space-time."""

    t: sympy.Symbol
    t0: float
    t1: float

    def __post_init__(self) -> None:
        _check_coords((self.t,), 1, "TimeInterval")
        if not float(self.t1) > float(self.t0):
            raise GeometryError(f"TimeInterval needs t0 < t1, got {self.t0}, {self.t1}")

    # Alone, a time interval is the domain of an ODE system (DESIGN.md §7): the domain
    # protocol with time as the only coordinate and no spatial boundary.
    @property
    def coords(self) -> tuple:
        return (self.t,)

    @property
    def time(self) -> sympy.Symbol:
        return self.t

    @property
    def names(self) -> list[str]:
        return [self.t.name]

    @property
    def dim(self) -> int:
        return 1

    @property
    def boundary_names(self) -> list[str]:
        return []

    @property
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([float(self.t0)]), np.array([float(self.t1)])

    def contains(self, points: Points, tol: float | None = None) -> np.ndarray:
        t = np.asarray(points[self.t.name], dtype=float).ravel()
        t0, t1 = float(self.t0), float(self.t1)
        eps = 1e-9 * (t1 - t0) if tol is None else tol
        return (t >= t0 - eps) & (t <= t1 + eps)

    def sample_interior(self, n: int, method: str = "sobol", seed: int = 0) -> Points:
        """n times in (t0, t1)."""
        u = sample_unit_cube(n, 1, method, seed)[:, 0]
        return {self.t.name: float(self.t0) + (float(self.t1) - float(self.t0)) * u}

    def sample_boundary(self, n: int, on: str | Sequence[str] = "boundary",
                        seed: int = 0) -> tuple[Points, Points]:
        raise GeometryError(f"a time interval alone ({self!r}) has no spatial boundary "
                            f"(boundary {on!r}); conditions on it are Initial and Data")

    def sample_initial(self, n: int, seed: int = 0, method: str = "sobol") -> Points:
        """n copies of t = t0 (an ODE's initial point)."""
        return {self.t.name: np.full(n, float(self.t0))}

    def __repr__(self) -> str:
        return f"TimeInterval({self.t}, {self.t0}, {self.t1})"


class SpaceTime(Domain):
    """A spatial domain times a time interval. Boundary names are the spatial ones."""

    def __init__(self, space: Domain, interval: TimeInterval) -> None:
        if interval.t.name in space.names:
            raise GeometryError(f"time coordinate {interval.t} is also a spatial coordinate")
        self.space = space
        self.interval = interval
        self.time = interval.t
        self.t0, self.t1 = float(interval.t0), float(interval.t1)
        self.coords = tuple(space.coords) + (interval.t,)

    @property
    def boundary_names(self) -> list[str]:
        return self.space.boundary_names

    def ambiguous_names(self) -> dict[str, str]:
        return self.space.ambiguous_names() if hasattr(self.space, "ambiguous_names") else {}

    @property
    def bbox(self):
        lo, hi = self.space.bbox
        return np.append(lo, self.t0), np.append(hi, self.t1)

    def contains(self, points: Points, tol: float | None = None) -> np.ndarray:
        t = np.asarray(points[self.time.name], dtype=float).ravel()
        span = self.t1 - self.t0
        in_t = (t >= self.t0 - 1e-9 * span) & (t <= self.t1 + 1e-9 * span)
        return self.space.contains(points, tol) & in_t

    def sample_interior(self, n: int, method: str = "sobol", seed: int = 0) -> Points:
        """n points in space x (t0, t1), jointly low-discrepancy for QMC methods."""
        lo, hi = self.bbox
        space = self.space
        if hasattr(space, "sdf"):
            P = _rejection(n, self.dim, lo, hi, lambda P: space.sdf(P[:, :-1]) < 0, method, seed,
                           f"interior of {self!r}")
            return self._to_dict(P)
        pts = space.sample_interior(n, method=method, seed=seed)
        pts[self.time.name] = self.t0 + (self.t1 - self.t0) * sample_unit_cube(
            n, 1, "uniform", seed + 7919)[:, 0]
        return pts

    def sample_boundary(self, n: int, on: str | Sequence[str] = "boundary",
                        seed: int = 0) -> tuple[Points, Points]:
        pts, normals = self.space.sample_boundary(n, on=on, seed=seed)
        rng = np.random.default_rng(seed + 104729)
        pts[self.time.name] = rng.uniform(self.t0, self.t1, n)
        normals[self.time.name] = np.zeros(n)
        return pts, normals

    def sample_initial(self, n: int, seed: int = 0, method: str = "sobol") -> Points:
        """n points of the spatial interior at t = t0."""
        pts = self.space.sample_interior(n, method=method, seed=seed)
        pts[self.time.name] = np.full(n, self.t0)
        return pts

    def __repr__(self) -> str:
        return f"{self.space!r} x [{self.t0}, {self.t1}]"


# --------------------------------------------------------------------------- boundary lookup

def boundary_info(shape: Shape, P: np.ndarray, tol: float) -> list[list[tuple[str, np.ndarray]]]:
    """For each point on the boundary of ``shape``: every (boundary name, outward normal) there.

    Used by grid discretizations, whose boundary nodes are found by the signed distance.
    Faces of boxes give their face names and exact normals; disks and polygons their own.
    """
    out: list[list] = [[] for _ in range(len(P))]
    for leaf, flip in _leaves(shape, False):
        for name, mask, normals in _leaf_boundary(leaf, P, tol):
            idx = np.flatnonzero(mask)
            if not len(idx):
                continue
            N = -normals[idx] if flip else normals[idx]
            # CSG: drop faces the operation removed (a notch face at the outer boundary)
            valid = shape.face_is_boundary(P[idx], N) if isinstance(shape, _CSG) else \
                np.ones(len(idx), dtype=bool)
            for i, n, ok in zip(idx, N, valid):
                out[i].append((name, n, ok))
    # keep every candidate where the probes reject all (a degenerate point: better some
    # normal than none)
    return [[(nm, n) for nm, n, ok in entries if ok] or [(nm, n) for nm, n, _ in entries]
            for entries in out]


def _leaves(shape: Shape, flip: bool):
    if isinstance(shape, _CSG):
        yield from _leaves(shape.a, flip)
        yield from _leaves(shape.b, flip ^ (shape.op == "difference"))
    else:
        yield shape, flip


def _leaf_boundary(leaf: Shape, P: np.ndarray, tol: float):
    near = np.abs(leaf.sdf(P)) <= tol
    if isinstance(leaf, _AxisBox):
        for axis in range(leaf.dim):
            for side, value in ((0, leaf.lo[axis]), (1, leaf.hi[axis])):
                mask = near & (np.abs(P[:, axis] - value) <= tol)
                N = np.zeros_like(P)
                N[:, axis] = -1.0 if side == 0 else 1.0
                yield leaf.face_name(axis, side), mask, N
    elif isinstance(leaf, Disk):
        r = P - leaf.center
        N = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-300)
        yield leaf.name, near, N
    elif isinstance(leaf, Polygon):
        A, B = leaf._edges()
        for a, b in zip(A, B):
            t = b - a
            L2 = float(t @ t)
            s = np.clip((P - a) @ t / L2, 0, 1)
            d = np.linalg.norm(P - a - s[:, None] * t, axis=1)
            n = np.array([t[1], -t[0]]) / np.sqrt(L2)
            yield leaf.name, near & (d <= tol), np.repeat(n[None], len(P), axis=0)
    else:
        raise GeometryError(f"no boundary lookup for {leaf!r}")
