"""Metrics: PINN vs reference vs exact on the reference grid (DESIGN.md §5).

``l2re`` is ‖a − b‖₂ / ‖b‖₂ over the grid nodes inside the domain; ``linf`` is max |a − b|.
Without a reference the evaluation grid is the tensor grid the reference would use; on a
mesh it is the mesh's vertices (times the output times for time-dependent problems).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .mesh import Mesh
from .fd import GridSolution, TensorGridMixin, default_resolution
from .spec import Problem

__all__ = ["compare", "evaluate", "evaluation_grid", "l2re", "reference_errors", "Evaluation",
           "MeshEvaluation"]


def l2re(a: np.ndarray, b: np.ndarray) -> float:
    """Relative L2 error ‖a − b‖ / ‖b‖ (inf when b is zero and a is not)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    nb = float(np.linalg.norm(b))
    diff = float(np.linalg.norm(a - b))
    return diff / nb if nb > 0 else (0.0 if diff == 0 else float("inf"))


class Evaluation(TensorGridMixin):
    """Every field of the PINN, the reference and the exact solution on one tensor grid."""

    def __init__(self, problem: Problem, axes: list, coords: dict, mask: np.ndarray) -> None:
        self.problem, self.axes, self.coords, self.mask = problem, axes, coords, mask
        self.pinn: dict = {}
        self.reference: dict = {}
        self.exact: dict = {}

    def error(self) -> dict:
        """pinn − reference, or pinn − exact without a reference (NaN outside the domain)."""
        base = self.reference or self.exact
        return {f: self.pinn[f] - base[f] for f in self.pinn if f in base}


class MeshEvaluation(Evaluation):
    """Every field at the vertices of a mesh: arrays (vertices,) or (times, vertices).

    ``axes`` is [time,] "vertex"; ``mask`` marks the vertices used by cells (files may carry
    unused geometry points, which get NaN)."""

    def __init__(self, problem: Problem, mesh: Mesh, times: np.ndarray | None) -> None:
        nv = len(mesh.points)
        time = problem.time.name if problem.time is not None else None
        axes = ([time] if time else []) + ["vertex"]
        coords = {"vertex": np.arange(nv)}
        if time:
            coords[time] = np.asarray(times, float)
        mask = np.zeros(nv, dtype=bool)
        for c in mesh.cells.values():
            mask[c.ravel()] = True
        super().__init__(problem, axes, coords, mask)
        self.mesh = mesh

    def points(self) -> dict:
        pts = {n: self.mesh.points[:, i] for i, n in enumerate(self.mesh.names)}
        if self.problem.time is None:
            return pts
        t = self.coords[self.problem.time.name][:, None]
        out = {n: np.broadcast_to(v, (len(t), len(v))) for n, v in pts.items()}
        out[self.problem.time.name] = np.broadcast_to(t, (len(t), len(self.mesh.points)))
        return out


def _resolution(problem: Problem) -> dict:
    res = default_resolution(problem)
    given = problem.reference_options.get("resolution")
    res.update(given if isinstance(given, dict) else {})
    return res


def evaluation_grid(problem: Problem, ref: GridSolution | None = None) -> Evaluation:
    """The reference's grid, or (no reference) the default tensor grid masked by the domain,
    or the mesh's vertices for a problem on a `Mesh`."""
    if ref is not None:
        return Evaluation(problem, ref.axes, ref.coords, ref.mask)
    res = _resolution(problem)
    domain = problem.domain
    space = problem.space
    if isinstance(space, Mesh):
        times = np.linspace(domain.t0, domain.t1, res[problem.time.name]) if problem.time else None
        return MeshEvaluation(problem, space, times)
    lo, hi = domain.bbox
    names = problem.coord_names
    coords = {n: np.linspace(lo[i], hi[i], res[n]) for i, n in enumerate(names)}
    space = problem.space_names
    axes = ([problem.time.name] if problem.time is not None else []) + space
    grids = np.meshgrid(*[coords[n] for n in space], indexing="ij")
    pts = dict(zip(space, grids))
    if problem.time is not None:
        pts[problem.time.name] = np.full(grids[0].shape, domain.t0)
    mask = domain.contains(pts).reshape(grids[0].shape)
    return Evaluation(problem, axes, coords, mask)


def evaluate(problem: Problem, sol: Any | None, ref: GridSolution | None) -> Evaluation:
    """Fill an `Evaluation` with PINN values, reference values and exact values."""
    ev = evaluation_grid(problem, ref)
    pts = ev.points()
    m = ev.full_mask()
    if sol is not None:
        ev.pinn = {f: np.where(m, v, np.nan) for f, v in sol(pts).items()}
    if ref is not None:
        ev.reference = dict(ref.fields)
    for f in problem.fields:
        fn = problem.exact_function(f)
        if fn is not None:
            ev.exact[f] = np.where(m, fn(**{k: np.where(m, v, v[m].flat[0]) for k, v in pts.items()}),
                                   np.nan)
    return ev


def compare(sol: Any | None, ref: GridSolution | None, problem: Problem | None = None) -> dict:
    """Metrics per field: l2re/linf of the PINN vs reference and vs exact (keys where known).

    Returns ``{field: {"l2re_reference", "l2re_exact", "linf_reference", "linf_exact"}}``
    exactly as report.json's ``metrics``.
    """
    problem = problem or getattr(sol, "problem", None)
    if problem is None:
        raise ValueError("compare() needs the problem when there is no trained solution")
    return metrics_of(evaluate(problem, sol, ref))


def metrics_of(ev: Evaluation) -> dict:
    m = ev.full_mask()
    out: dict = {}
    for f in ev.problem.fields:
        entry = {}
        if f in ev.pinn:
            for label, base in (("reference", ev.reference), ("exact", ev.exact)):
                if f in base:
                    a, b = ev.pinn[f][m], base[f][m]
                    entry[f"l2re_{label}"] = l2re(a, b)
                    entry[f"linf_{label}"] = float(np.max(np.abs(a - b)))
        out[f] = entry
    return out


def reference_errors(ev: Evaluation) -> dict:
    """l2re of the reference against the exact solution, per field where both exist."""
    m = ev.full_mask()
    return {f: l2re(ev.reference[f][m], ev.exact[f][m]) for f in ev.reference if f in ev.exact}
