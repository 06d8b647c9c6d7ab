"""The finite-difference reference: the same `Problem`, discretized on a (masked) tensor grid.

``reference(problem, resolution=...)`` returns a `GridSolution`. Steady problems are solved
by sparse Newton (`steady`), time-dependent ones by the method of lines (`mol`). Specs it
cannot discretize raise `UnsupportedSpecError` saying why — never a silent wrong answer.
"""

from __future__ import annotations

import sys
import time as _time
from typing import Any

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from tqdm.auto import tqdm

from ..errors import ReferenceSolverError, UnsupportedSpecError
from ..geometry import Shape
from ..spec import Problem
from .discretize import Discretization, default_resolution
from .guard import check_size, default_memory_limit, nonfinite_message, peclet_hint
from .mol import solve_mol
from .steady import solve_steady

__all__ = ["reference", "GridSolution", "default_resolution"]


class TensorGridMixin:
    """Node coordinates and mask of a tensor grid with ``axes``, ``coords``, ``mask``."""

    @property
    def shape(self) -> tuple:
        return tuple(len(self.coords[a]) for a in self.axes)

    def points(self) -> dict:
        """Coordinate arrays of every grid node, each shaped like the fields."""
        grids = np.meshgrid(*[self.coords[a] for a in self.axes], indexing="ij")
        return dict(zip(self.axes, grids))

    def full_mask(self) -> np.ndarray:
        """Spatial mask broadcast to the fields' shape (time axis included)."""
        return np.broadcast_to(self.mask, self.shape)


class GridSolution(TensorGridMixin):
    """Fields on a tensor grid. ``coords``: name -> 1-D array; ``fields``: name -> array with
    axes ``axes`` (time first); ``mask``: spatial bool array (False outside the domain, where
    fields are NaN); ``seconds``; ``info`` (solver details); ``notes``."""

    def __init__(self, problem_name: str, axes: list, coords: dict, fields: dict, mask: np.ndarray,
                 seconds: float, info: dict, notes: list | None = None) -> None:
        self.problem = problem_name
        self.axes, self.coords, self.fields = list(axes), coords, fields
        self.mask, self.seconds, self.info = mask, seconds, info
        self.notes = list(notes or [])

    def __call__(self, points: dict, method: str = "linear") -> dict:
        """Interpolate every field at ``points`` (coordinate name -> arrays of equal shape)."""
        arrays = np.broadcast_arrays(*[np.asarray(points[a], float) for a in self.axes])
        X = np.stack([a.ravel() for a in arrays], axis=1)
        out = {}
        for f, v in self.fields.items():
            interp = RegularGridInterpolator([self.coords[a] for a in self.axes], v, method=method,
                                             bounds_error=False, fill_value=np.nan)
            out[f] = interp(X).reshape(arrays[0].shape)
        return out

    def __repr__(self) -> str:
        dims = " x ".join(f"{a}:{len(self.coords[a])}" for a in self.axes)
        return f"GridSolution({self.problem!r}, {dims}, fields={list(self.fields)})"


def reference(problem: Problem, resolution: int | dict | None = None, quiet: bool = True,
              **options: Any) -> GridSolution:
    """Solve ``problem`` by finite differences on a tensor grid.

    resolution: points per axis (int), or {coordinate name: points} (time: output times);
    omitted = the problem's ``resolution`` or `default_resolution`. order: 2 or 4 (spatial
    accuracy). times: output times (overrides the time resolution). method/rtol/atol:
    `solve_ivp` settings. advection: "central" or "upwind" (first order, for coarse grids
    where central differences oscillate). stabilize (steady problems): {"equation": name,
    "field": "p", "coefficient": c} subtracts c·Σ_k h_k² ∂²p/∂x_k² (discrete, compact) from
    that equation's residual — the pressure-Laplacian stabilisation of a collocated grid for
    incompressible flow (Brezzi & Pitkäranta 1984), O(h²) like the scheme. memory_limit_gb:
    the solve is refused (`ReferenceSizeError`, with the estimate and a resolution that fits)
    when its estimated memory exceeds this many GB ("auto": half the machine's memory; None:
    no limit). Defaults come from the problem's ``reference=`` options. Raises
    `UnsupportedSpecError` / `ReferenceSolverError`; a solve that fails or yields a
    non-finite value is an error with the reason, never zeros.
    """
    if not isinstance(problem, Problem):
        raise UnsupportedSpecError(f"reference() needs a pinnkit Problem, got {type(problem).__name__}")
    space = getattr(problem.domain, "space", problem.domain)
    if not isinstance(space, Shape):
        raise UnsupportedSpecError(
            f"problem {problem.name!r}: the finite-difference reference needs a shape domain "
            f"(Interval, Rectangle, Box, Disk, Polygon or their CSG), not {space!r}; on meshes the "
            "comparison uses the exact solution when the problem gives one")
    opts = {"order": 2, "times": None, "method": "BDF", "rtol": 1e-8, "atol": 1e-10,
            "advection": "central", "stabilize": None, "memory_limit_gb": "auto"}
    defaults = dict(problem.reference_options)
    if resolution is None:
        resolution = defaults.pop("resolution", None)
    else:
        defaults.pop("resolution", None)
    for source in (defaults, options):
        unknown = sorted(set(source) - set(opts))
        if unknown:
            raise UnsupportedSpecError(f"unknown reference option(s) {', '.join(unknown)}; "
                                       f"valid: resolution, {', '.join(opts)}")
        opts.update(source)
    res = default_resolution(problem)
    if isinstance(resolution, int):
        res = {k: resolution for k in res}
    elif isinstance(resolution, dict):
        unknown = sorted(set(resolution) - set(res))
        if unknown:
            raise UnsupportedSpecError(f"resolution for unknown coordinate(s) {', '.join(unknown)}; "
                                       f"coordinates: {', '.join(res)}")
        res.update({k: int(v) for k, v in resolution.items()})
    elif resolution is not None:
        raise UnsupportedSpecError(f"resolution must be an int or a dict, got {resolution!r}")
    for k, v in res.items():
        if v < 3:
            raise UnsupportedSpecError(f"resolution of {k} must be at least 3, got {v}")
    limit = opts["memory_limit_gb"]
    if limit == "auto":
        limit = default_memory_limit()
    elif limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise UnsupportedSpecError(f"reference option memory_limit_gb must be a positive "
                                       f"number, 'auto' or None, got {limit!r}")
        limit = float(limit) * 2.0 ** 30
    est = check_size(problem, res, limit)
    if not quiet and est["seconds"] > 30:
        print(f"[{problem.name}] reference: {est['unknowns']:.3g} unknowns, estimated "
              f"{est['bytes'] / 2.0 ** 30:.3g} GB and ~{est['seconds']:.3g} s per LU factorization",
              file=sys.stderr)
    try:
        return _solve(problem, res, opts, quiet, est)
    except MemoryError:
        raise ReferenceSolverError(
            f"problem {problem.name!r}: the reference ran out of memory at resolution {res} "
            f"(estimated {est['bytes'] / 2.0 ** 30:.3g} GB); use a smaller resolution") from None


def _solve(problem: Problem, res: dict, opts: dict, quiet: bool, est: dict) -> GridSolution:
    order, times, method = opts["order"], opts["times"], opts["method"]
    rtol, atol, advection = opts["rtol"], opts["atol"], opts["advection"]
    t0 = _time.perf_counter()
    disc = Discretization(problem, res, order=order)
    grid = disc.grid
    space_names = grid.names
    coords = {n: grid.axes[i] for i, n in enumerate(space_names)}
    mask = grid.to_tensor(np.ones(grid.n_points)) == 1
    if problem.time is None:
        bar = tqdm(desc=f"{problem.name} reference (newton)", disable=True if quiet else None,
                   leave=False)
        u, info = solve_steady(disc, progress=lambda it, r: bar.update(1),
                               stabilize=opts["stabilize"])
        bar.close()
        fields = {f: grid.to_tensor(u[i * disc.P:(i + 1) * disc.P]) for i, f in enumerate(disc.fields)}
        axes = space_names
    else:
        if opts["stabilize"] is not None:
            raise UnsupportedSpecError("the stabilize option applies to steady problems only")
        d = problem.domain
        tname = problem.time.name
        tt = np.linspace(d.t0, d.t1, res[tname]) if times is None else np.asarray(times, float)
        span = d.t1 - d.t0
        bar = tqdm(total=100, desc=f"{problem.name} reference (MOL)", disable=True if quiet else None,
                   leave=False)
        step = lambda t: bar.update(int(100 * (t - d.t0) / span) - bar.n)  # noqa: E731
        try:
            values, info = solve_mol(disc, tt, method=method, rtol=rtol, atol=atol,
                                     advection=advection, progress=step)
        except ReferenceSolverError as exc:
            hint = peclet_hint(problem, res) if advection == "central" else None
            if hint is None:
                raise
            raise ReferenceSolverError(f"{str(exc).rstrip('.')}; {hint}") from None
        finally:
            bar.close()
        fields = {f: np.stack([grid.to_tensor(v) for v in values[f]]) for f in disc.fields}
        coords = {tname: tt, **coords}
        axes = [tname] + space_names
    for f, v in fields.items():
        inside = v[..., mask] if v.ndim > mask.ndim else v[mask]
        if not np.all(np.isfinite(inside)):
            raise ReferenceSolverError(nonfinite_message(
                f"problem {problem.name!r}: the reference solution is not finite",
                [(f"field {f}", inside.size)], inside.ravel())
                + " (the discrete problem has no finite solution on this grid)")
    info.update({"order": order, "resolution": res, "points": int(grid.n_points),
                 "estimate": {"bytes": est["bytes"], "seconds_per_factorization": est["seconds"]}})
    return GridSolution(problem.name, axes, coords, fields, mask, _time.perf_counter() - t0, info,
                        disc.notes)
