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

from ..errors import PinnkitError, ReferenceSolverError, UnsupportedSpecError
from ..geometry import Shape
from ..spec import Problem
from .discretize import Discretization, default_resolution
from .guard import check_size, default_memory_limit, nonfinite_message, peclet_hint
from .mol import solve_mol
from .steady import solve_steady

__all__ = ["reference", "GridSolution", "default_resolution", "richardson_estimate"]


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
    fields are NaN); ``seconds``; ``info`` (solver details); ``notes``; ``error_estimate``:
    {field: estimated l2re of the field vs the exact solution} (`richardson_estimate`) or
    None when not requested."""

    def __init__(self, problem_name: str, axes: list, coords: dict, fields: dict, mask: np.ndarray,
                 seconds: float, info: dict, notes: list | None = None) -> None:
        self.problem = problem_name
        self.axes, self.coords, self.fields = list(axes), coords, fields
        self.mask, self.seconds, self.info = mask, seconds, info
        self.notes = list(notes or [])
        self.error_estimate: dict | None = None

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



def resolution_per_axis(problem: Problem, resolution: Any, error: type = UnsupportedSpecError) -> dict:
    """{coordinate: points} from ``resolution`` (an int for every axis, a dict for some, or
    None: the defaults); ``error`` names a bad value or an unknown coordinate."""
    res = default_resolution(problem)
    if isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool):
        return {k: int(resolution) for k in res}
    if isinstance(resolution, dict):
        unknown = sorted(set(resolution) - set(res))
        if unknown:
            raise error(f"resolution for unknown coordinate(s) {', '.join(unknown)}; "
                        f"coordinates: {', '.join(res)}")
        res.update({k: int(v) for k, v in resolution.items()})
    elif resolution is not None:
        raise error(f"resolution must be an int or a dict, got {resolution!r}")
    return res


def reference(problem: Problem, resolution: int | dict | None = None, quiet: bool = True,
              inputs: dict | None = None, terms: Any = None, **options: Any) -> GridSolution:
    """Solve ``problem`` by finite differences on a tensor grid.

    resolution: points per axis (int), or {coordinate name: points} (time: output times);
    omitted = the problem's ``resolution`` or `default_resolution`. order: 2 or 4 (spatial
    accuracy). times: output times (overrides the time resolution). method/rtol/atol:
    `solve_ivp` settings. advection: "central" or "upwind" (first order, for coarse grids
    where central differences oscillate). error_estimate: also solve on a 2x coarser spatial
    grid and set ``.error_estimate`` (`richardson_estimate`). stabilize (steady problems): {"equation": name,
    "field": "p", "coefficient": c} subtracts c·Σ_k h_k² ∂²p/∂x_k² (discrete, compact) from
    that equation's residual — the pressure-Laplacian stabilisation of a collocated grid for
    incompressible flow (Brezzi & Pitkäranta 1984), O(h²) like the scheme. memory_limit_gb:
    the solve is refused (`ReferenceSizeError`, with the estimate and a resolution that fits)
    when its estimated memory exceeds this many GB ("auto": half the machine's memory; None:
    no limit). Defaults come from the problem's ``reference=`` options. Raises
    `UnsupportedSpecError` / `ReferenceSolverError`; a solve that fails or yields a
    non-finite value is an error with the reason, never zeros.
    inputs: {input field name: grid array (the tensor grid over the input's coordinates;
    periodic axes without their right end), callable of those coordinates, or number} for a
    problem with `pinnkit.input_field`s. error_estimate: also solve on a 2x coarser grid and
    estimate the error (Richardson; `GridSolution.error_estimate`).

    A problem whose only coordinate is time is an ODE system, integrated by `solve_ivp`
    (`pinnkit.fd.ode`); its learned terms come from ``terms`` (a trained solution).
    """
    if not isinstance(problem, Problem):
        raise UnsupportedSpecError(f"reference() needs a pinnkit Problem, got {type(problem).__name__}")
    if problem.time is not None and not problem.spatial_coords:
        from .ode import solve_ode_reference
        return solve_ode_reference(problem, resolution, quiet, terms, **options)
    if problem.networks:
        raise UnsupportedSpecError(
            f"problem {problem.name!r}: the finite-difference reference cannot evaluate the learned "
            f"term(s) {', '.join(problem.networks)} of a PDE; replace them first "
            "(problem.substitute({output: expression}))")
    space = problem.space
    if not isinstance(space, Shape):
        raise UnsupportedSpecError(
            f"problem {problem.name!r}: the finite-difference reference needs a shape domain "
            f"(Interval, Rectangle, Box, Disk, Polygon or their CSG), not {space!r}; on meshes the "
            "comparison uses the exact solution when the problem gives one")
    opts = {"order": 2, "times": None, "method": "BDF", "rtol": 1e-8, "atol": 1e-10,
            "advection": "central", "stabilize": None, "error_estimate": False,
            "memory_limit_gb": "auto"}
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
    res = resolution_per_axis(problem, resolution)
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
        return _solve(problem, res, opts, quiet, est, inputs)
    except MemoryError:
        raise ReferenceSolverError(
            f"problem {problem.name!r}: the reference ran out of memory at resolution {res} "
            f"(estimated {est['bytes'] / 2.0 ** 30:.3g} GB); use a smaller resolution") from None


def _solve(problem: Problem, res: dict, opts: dict, quiet: bool, est: dict,
           inputs: dict | None = None) -> GridSolution:
    order, times, method = opts["order"], opts["times"], opts["method"]
    rtol, atol, advection = opts["rtol"], opts["atol"], opts["advection"]
    t0 = _time.perf_counter()
    disc = Discretization(problem, res, order=order, inputs=inputs)
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
    sol = GridSolution(problem.name, axes, coords, fields, mask, _time.perf_counter() - t0, info,
                       disc.notes)
    if opts["error_estimate"]:
        rest = dict(opts, error_estimate=False)
        if problem.time is not None:
            rest["times"] = coords[problem.time.name]
        richardson_estimate(problem, sol, disc.grid.periodic, rest)
        sol.seconds = _time.perf_counter() - t0
    return sol


def richardson_estimate(problem: Problem, sol: GridSolution, periodic: list, opts: dict) -> None:
    """Estimate the discretization error of ``sol`` from a solve on a 2x coarser spatial grid
    (same output times) whose nodes are every other node of ``sol``'s grid (Richardson
    1911): with an error C·h^p, u_h − u_2h ≈ (1 − 2^p)·e_h, so the estimated l2re is
    ‖u_h − u_2h‖ / ((2^p − 1)·‖u_h‖) over the shared nodes, p the scheme's order. Sets
    ``sol.error_estimate`` and ``sol.info["error_estimate"]``; when the grid does not
    halve (an even number of intervals is needed) it adds a note instead. Time-integration
    error (controlled by rtol/atol) is assumed smaller than the spatial error."""
    space = problem.space_names
    coarse, slices = {}, []
    for name, per in zip(space, periodic):
        n = len(sol.coords[name])
        intervals = n if per else n - 1
        if intervals % 2 or intervals // 2 < (3 if per else 2):
            sol.notes.append(f"no error estimate: the {name} grid ({n} points) does not halve "
                             "(use an even number of intervals)")
            return
        coarse[name] = intervals // 2 + (0 if per else 1)
        slices.append(slice(None, None, 2))
    if problem.time is not None:
        coarse[problem.time.name] = len(sol.coords[problem.time.name])
        slices.insert(0, slice(None))
    try:
        ref2 = reference(problem, resolution=coarse, **opts)
    except PinnkitError as exc:
        sol.notes.append(f"no error estimate: the coarse solve failed ({exc})")
        return
    p = int(opts.get("order", 2))
    m = np.broadcast_to(sol.mask[tuple(slices[-len(space):])] & ref2.mask, ref2.shape)
    est = {}
    for f, v in sol.fields.items():
        fine = v[tuple(slices)][m]
        norm = float(np.linalg.norm(fine))
        diff = float(np.linalg.norm(fine - ref2.fields[f][m]))
        est[f] = diff / ((2 ** p - 1) * norm) if norm > 0 else float("nan")
    sol.error_estimate = est
    sol.info["error_estimate"] = {"method": "richardson", "order": p, "coarse_resolution": coarse,
                                  "l2re": est}
