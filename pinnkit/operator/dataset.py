"""Operator-learning data made by the reference solver of the same spec.

``dataset(problem, samplers, n, resolution, path, seed)`` draws each input field of each sample
from its sampler, solves the instance with `pinnkit.reference` in a process pool, and stores
inputs and outputs in HDF5. Samples are written as they finish (into ``PATH.partial``, renamed
to ``PATH`` when complete), so an interrupted run resumes where it stopped; sample i depends on
(seed, i) only, so a resumed or extended dataset equals one made in one go.

File layout: ``/inputs/<name>`` (n, *grid), ``/outputs/<field>`` (n, *grid) — the solution at
the final time for time-dependent problems, or (n, len(times), *grid) with ``times`` —,
``/coords/<name>``, ``/done`` (n,) bool, ``/seconds`` (n,) solve time per sample; root attrs
``problem``, ``spec``, ``samplers``, ``seed``, ``resolution``, ``reference`` (solver settings,
JSON), ``fingerprint``, ``versions``, ``created``.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import hashlib
import json
import multiprocessing
import os
import time as _time
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Callable, Mapping

import h5py
import numpy as np
from tqdm.auto import tqdm

from ..errors import PinnkitError
from ..grf import SamplerError
from ..spec import Problem

__all__ = ["dataset", "Dataset", "DatasetError", "spec_text", "grid_axes"]


class DatasetError(PinnkitError, ValueError):
    """A dataset file is unreadable, holds another spec's data, or the request is invalid."""


@dataclass
class Dataset:
    """Inputs and outputs of solved samples. ``inputs``/``outputs``: name -> array (sample
    axis first); ``coords``: name -> 1-D grid; ``attrs``: provenance; ``info``: run details
    (``computed``: samples solved by this call, ``seconds``)."""

    path: str
    inputs: dict
    outputs: dict
    coords: dict
    attrs: dict
    info: dict = dc_field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(next(iter(self.inputs.values())))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dataset":
        """Read a complete dataset file; `DatasetError` names what is wrong with it."""
        path = str(path)
        if not os.path.exists(path):
            raise DatasetError(f"{path}: no such dataset file")
        try:
            with h5py.File(path, "r") as h5:
                for g in ("inputs", "outputs", "coords", "done"):
                    if g not in h5:
                        raise DatasetError(f"{path}: not a pinnkit dataset (no /{g})")
                done = h5["done"][()]
                if not np.all(done):
                    raise DatasetError(f"{path}: incomplete dataset ({int(done.sum())} of "
                                       f"{len(done)} samples); rerun pk.dataset to finish it")
                attrs = {k: _attr(v) for k, v in h5.attrs.items()}
                return cls(path, {k: v[()] for k, v in h5["inputs"].items()},
                           {k: v[()] for k, v in h5["outputs"].items()},
                           {k: v[()] for k, v in h5["coords"].items()}, attrs)
        except (OSError, KeyError) as exc:
            raise DatasetError(f"{path}: not a readable pinnkit dataset ({exc})") from None

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{v.shape[1:]}" for k, v in {**self.inputs, **self.outputs}.items())
        return f"Dataset({self.attrs.get('problem')!r}, n={self.n}, {shapes}, path={self.path!r})"


def _attr(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else (v.item() if isinstance(v, np.generic) else v)


def spec_text(problem: Problem) -> str:
    """A text form of the spec (domain, equations, conditions) that identifies its data."""
    lines = [f"problem {problem.name}", f"domain {problem.domain!r}"]
    lines += [f"{t.kind} {t.name} {t.on or ''} {t.coord or ''}: {'; '.join(map(str, t.exprs))}"
              for t in problem.terms]
    return "\n".join(lines)


def grid_axes(problem: Problem, resolution: int | Mapping | None) -> tuple[dict, dict]:
    """({spatial coordinate: 1-D nodes}, {coordinate: (lo, hi)}) of the reference grid at
    ``resolution`` (periodic axes without their right end, as `pinnkit.reference` makes)."""
    from ..fd import resolution_per_axis
    given = problem.reference_options.get("resolution") if resolution is None else resolution
    res = resolution_per_axis(problem, dict(given) if isinstance(given, Mapping) else given,
                              DatasetError)
    space = problem.space
    lo, hi = space.bbox
    periodic = {t.coord for t in problem.terms if t.kind == "periodic"}
    axes, box = {}, {}
    for k, c in enumerate(problem.spatial_coords):
        n = res[c.name]
        if n < 3:
            raise DatasetError(f"resolution of {c.name} must be at least 3, got {n}")
        pts = np.linspace(lo[k], hi[k], n + 1)[:-1] if c.name in periodic else \
            np.linspace(lo[k], hi[k], n)
        axes[c.name], box[c.name] = pts, (float(lo[k]), float(hi[k]))
    return axes, box


def _sample_inputs(problem: Problem, samplers: Mapping, axes: dict, box: dict, seed: int,
                   i: int) -> dict:
    out = {}
    for j, (name, sampler) in enumerate(samplers.items()):
        args = [a.name for a in problem.inputs[name].args]
        rng = np.random.default_rng([int(seed), i, j])
        sub, subbox = {a: axes[a] for a in args}, {a: box[a] for a in args}
        fn = sampler.sample if hasattr(sampler, "sample") else sampler
        v = np.asarray(fn(sub, subbox, rng), dtype=float)
        shape = tuple(len(axes[a]) for a in args)
        if v.shape != shape:
            raise SamplerError(f"sampler for {name!r} returned shape {v.shape}, expected {shape} "
                               f"(the grid over {', '.join(args)})")
        out[name] = v
    return out


# -- worker side: the problem reaches forked workers through the initializer, not by pickling
_WORK: dict = {}


def _init_worker(problem: Problem, resolution: Any, options: dict) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORK.update(problem=problem, resolution=resolution, options=options)


def _solve(i: int, inputs: dict) -> tuple[int, dict, float]:
    from ..fd import reference
    t0 = _time.perf_counter()
    opts = {k: v for k, v in _WORK["options"].items() if not k.startswith("_")}
    ref = reference(_WORK["problem"], resolution=_WORK["resolution"], inputs=inputs, quiet=True,
                    **opts)
    out = {}
    keep_times = _WORK["options"].get("_keep_times", False)
    for f, v in ref.fields.items():
        out[f] = v if (keep_times or _WORK["problem"].time is None) else v[-1]
    return i, out, _time.perf_counter() - t0


def _versions() -> dict:
    import scipy
    import sympy
    from .. import __version__
    return {"numpy": np.__version__, "scipy": scipy.__version__, "sympy": sympy.__version__,
            "h5py": h5py.__version__, "pinnkit": __version__}


def dataset(problem: Problem, samplers: Mapping[str, Any], n: int,
            resolution: int | Mapping | None = None, path: str | os.PathLike = "dataset.h5",
            seed: int = 0, workers: int | None = None, times: Any = None, quiet: bool = False,
            callback: Callable[[int], Any] | None = None, **reference_options: Any) -> Dataset:
    """Make (or resume, or extend) a dataset of ``n`` solved samples of ``problem``.

    samplers: {input field name: sampler}, a sampler being a `GaussianRandomField` or any
    ``f(coords, box, rng) -> array`` on the grid of the input's coordinates. resolution: as
    in `pinnkit.reference`. workers: processes (default min(2, CPUs); 0 or 1 solves in this
    process). times: output times of a time-dependent problem (default: the final time only).
    callback(i): called after sample i is written. Further keywords go to `pinnkit.reference`.

    Returns a `Dataset`. Raises `DatasetError` (bad request, a path holding another spec's
    data, an unreadable file), `SamplerError`, or the reference's errors.
    """
    if not isinstance(problem, Problem):
        raise DatasetError(f"dataset() needs a pinnkit Problem, got {type(problem).__name__}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DatasetError(f"n must be a positive int, got {n!r}")
    samplers = dict(samplers)
    unknown = sorted(set(samplers) - set(problem.inputs))
    if unknown:
        raise DatasetError(f"sampler for {', '.join(map(repr, unknown))}, which problem "
                           f"{problem.name!r} does not declare (input fields: "
                           f"{', '.join(problem.inputs) or 'none'})")
    missing = [k for k in problem.inputs if k not in samplers]
    if missing:
        raise DatasetError(f"no sampler for input field(s) {', '.join(missing)} of problem "
                           f"{problem.name!r}")
    for k, s in samplers.items():
        if not (hasattr(s, "sample") or callable(s)):
            raise DatasetError(f"sampler for {k!r} must be a GaussianRandomField or a callable")
    axes, box = grid_axes(problem, resolution)
    ref_opts = {k: v for k, v in problem.reference_options.items() if k != "resolution"}
    ref_opts.update(reference_options)
    ref_opts.pop("resolution", None)
    if problem.time is not None:
        d = problem.domain
        ref_opts["times"] = [d.t0, d.t1] if times is None else [float(v) for v in times]
        if times is not None:
            ref_opts["_keep_times"] = True
    res = {c: len(v) for c, v in axes.items()}
    if problem.time is not None:
        res[problem.time.name] = len(ref_opts["times"])
    settings = {k: v for k, v in ref_opts.items() if not k.startswith("_")}
    provenance = {"problem": problem.name, "spec": spec_text(problem),
                  "samplers": json.dumps({k: repr(v) for k, v in samplers.items()}),
                  "seed": int(seed), "resolution": json.dumps(res),
                  "reference": json.dumps(settings, default=str, sort_keys=True)}
    provenance["fingerprint"] = hashlib.sha256(
        json.dumps(provenance, sort_keys=True).encode()).hexdigest()
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    t_start = _time.perf_counter()

    # sample 0 first: a sampler that cannot make this grid fails before any work
    first = _sample_inputs(problem, samplers, axes, box, seed, 0)
    new = not partial.exists() and not path.exists()
    h5 = _open(path, partial, provenance, int(n))
    computed = 0
    try:
        done = h5["done"][()]
        todo = [i for i in range(int(n)) if not done[i]]
        bar = tqdm(total=int(n), initial=int(n) - len(todo), disable=True if quiet else None,
                   desc=f"{problem.name} dataset", unit="sample")
        nw = min(2, os.cpu_count() or 1) if workers is None else int(workers)

        def inputs_of(i):
            return first if i == 0 else _sample_inputs(problem, samplers, axes, box, seed, i)

        def write(i, inputs, outputs, seconds):
            nonlocal computed
            if "coords" not in h5:
                _create(h5, axes, box, problem, ref_opts, inputs, outputs, int(n))
            for k, v in inputs.items():
                h5["inputs"][k][i] = v
            for k, v in outputs.items():
                h5["outputs"][k][i] = v
            h5["seconds"][i] = seconds
            h5["done"][i] = True
            h5.flush()
            computed += 1
            bar.update(1)
            if callback is not None:
                callback(i)

        _init_worker(problem, _res_arg(problem, res), ref_opts)
        if nw <= 1 or len(todo) <= 1:
            for i in todo:
                inputs = inputs_of(i)
                _, out, sec = _solve(i, inputs)
                write(i, inputs, out, sec)
        else:
            _run_pool(nw, todo, inputs_of, write)
        bar.close()
    except BaseException:
        h5.close()
        if new and computed == 0:   # nothing finished: leave no file that claims the path
            partial.unlink(missing_ok=True)
        raise
    h5.close()
    os.replace(partial, path)
    ds = Dataset.load(path)
    if ds.n > n:   # a larger dataset at this path: its first n samples are this request
        ds.inputs = {k: v[:n] for k, v in ds.inputs.items()}
        ds.outputs = {k: v[:n] for k, v in ds.outputs.items()}
    ds.info = {"computed": computed, "seconds": _time.perf_counter() - t_start, "workers": nw}
    return ds


def _res_arg(problem: Problem, res: dict) -> dict:
    return {k: v for k, v in res.items() if problem.time is None or k != problem.time.name}


def _run_pool(nw: int, todo: list, inputs_of: Callable, write: Callable) -> None:
    # fork: the workers inherit the problem (sympy functions made at run time do not pickle)
    ctx = multiprocessing.get_context("fork")
    pool = cf.ProcessPoolExecutor(max_workers=nw, mp_context=ctx, initializer=_init_worker,
                                  initargs=(_WORK["problem"], _WORK["resolution"],
                                            _WORK["options"]))
    pending: dict = {}
    queue = iter(todo)
    try:
        def submit():
            i = next(queue, None)
            if i is not None:
                inp = inputs_of(i)
                pending[pool.submit(_solve, i, inp)] = inp
        for _ in range(2 * nw):
            submit()
        while pending:
            finished, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                inp = pending.pop(fut)
                i, out, sec = fut.result()
                write(i, inp, out, sec)
                submit()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _open(path: Path, partial: Path, provenance: dict, n: int) -> h5py.File:
    """The partial file to write into: resumed, made from a complete file (to extend it), or new."""
    for p in (partial, path):
        if not p.exists():
            continue
        try:
            h5 = h5py.File(p, "r")
        except OSError as exc:
            raise DatasetError(f"{p}: not a readable HDF5 file ({exc}); move it away or choose "
                               "another path") from None
        with h5:
            if "fingerprint" not in h5.attrs:
                raise DatasetError(f"{p} is an HDF5 file but not a pinnkit dataset; move it away "
                                   "or choose another path")
            fp = _attr(h5.attrs.get("fingerprint", ""))
            stored = _attr(h5.attrs.get("problem", "?"))
            if fp != provenance["fingerprint"]:
                raise DatasetError(
                    f"{p} holds a dataset of another spec (problem {stored!r}; the spec, samplers, "
                    "seed, resolution or solver settings differ); choose another path")
        if p == path:
            os.replace(path, partial)
        h5 = h5py.File(partial, "a")
        if "done" not in h5:
            h5.close()
            raise DatasetError(f"{partial}: not a pinnkit dataset (no /done)")
        old = len(h5["done"])
        if n > old:
            for name in ("done", "seconds"):
                h5[name].resize((n,))
                h5[name][old:] = 0
            for g in ("inputs", "outputs"):
                if g in h5:
                    for d in h5[g].values():
                        d.resize((n,) + d.shape[1:])
        h5.attrs["n"] = max(n, old)
        return h5
    partial.parent.mkdir(parents=True, exist_ok=True)
    h5 = h5py.File(partial, "w")
    for k, v in provenance.items():
        h5.attrs[k] = v
    h5.attrs["n"] = n
    h5.attrs["versions"] = json.dumps(_versions())
    h5.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    h5.create_dataset("done", shape=(n,), maxshape=(None,), dtype=bool)
    h5.create_dataset("seconds", shape=(n,), maxshape=(None,), dtype=float)
    return h5


def _create(h5: h5py.File, axes: dict, box: dict, problem: Problem, ref_opts: dict, inputs: dict,
            outputs: dict, n: int) -> None:
    """Groups and resizable per-sample datasets, shaped by the first finished sample."""
    g = h5.create_group("coords")
    for k, v in axes.items():
        g[k] = v
    if problem.time is not None and ref_opts.get("_keep_times"):
        g[problem.time.name] = np.asarray(ref_opts["times"], float)
    for group, arrays in (("inputs", inputs), ("outputs", outputs)):
        grp = h5.create_group(group)
        for k, v in arrays.items():
            grp.create_dataset(k, shape=(n,) + v.shape, maxshape=(None,) + v.shape, dtype=float,
                               chunks=(1,) + v.shape)
    periodic = {t.coord for t in problem.terms if t.kind == "periodic"}
    h5.attrs["box"] = json.dumps(box)
    h5.attrs["periodic"] = json.dumps({k: k in periodic for k in axes})
    h5.attrs["input_axes"] = json.dumps({k: [a.name for a in problem.inputs[k].args]
                                         for k in inputs})
    h5.attrs["output_axes"] = json.dumps(
        ([problem.time.name] if problem.time is not None and ref_opts.get("_keep_times") else [])
        + problem.space_names)
