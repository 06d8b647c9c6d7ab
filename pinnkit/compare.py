"""Metrics: PINN vs reference vs exact on the reference grid (DESIGN.md §5).

``l2re`` is ‖a − b‖₂ / ‖b‖₂ over the grid nodes inside the domain; ``linf`` is max |a − b|.
Without a reference the evaluation grid is the tensor grid the reference would use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .reference import GridSolution, TensorGridMixin, default_resolution
from .spec import Problem

__all__ = ["compare", "evaluate", "evaluation_grid", "l2re", "reference_errors", "Evaluation"]


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


def evaluation_grid(problem: Problem, ref: GridSolution | None = None) -> Evaluation:
    """The reference's grid, or (no reference) the default tensor grid masked by the domain."""
    if ref is not None:
        return Evaluation(problem, ref.axes, ref.coords, ref.mask)
    res = default_resolution(problem)
    res.update((problem.reference_options.get("resolution") or {})
               if isinstance(problem.reference_options.get("resolution"), dict) else {})
    domain = problem.domain
    lo, hi = domain.bbox
    names = [c.name for c in problem.coords]
    coords = {n: np.linspace(lo[i], hi[i], res[n]) for i, n in enumerate(names)}
    space = [c.name for c in problem.spatial_coords]
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
