"""``python scripts/operator.py PROBLEM.py [options]``: the operator-learning pipeline.

The problem file defines ``problem`` (with `pinnkit.input_field`s), ``samplers`` ({input name:
sampler}) and optionally ``options``. The pipeline makes a training set (n_train + n_val
samples at ``resolution``) and an independent test set at the finest test resolution with
`pinnkit.dataset`, trains a neural operator, evaluates it on the test set subsampled to each
test resolution (zero-shot where it differs from the training grid), times it against the
reference, and writes ``fields.h5``, ``report.json``, ``model.pt`` and ``plots/`` into
``--out``. Command-line options override the file's ``options``. Bad input prints one line
and exits with status 2.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time as _time
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text
from ..errors import PinnkitError

__all__ = ["main", "DEFAULTS"]

DEFAULTS: dict = {"n_train": 1000, "n_val": None, "n_test": 200, "resolution": None,
                  "test_resolutions": None, "model": "fno", "modes": 16, "width": 64, "layers": 4,
                  "epochs": 500, "batch_size": 20, "lr": 1e-3, "subsample": 1, "padding": 0,
                  "normalize": "scalar", "seed": 0, "workers": None, "device": "cpu",
                  "out": None, "resume": False, "quiet": False, "speed_samples": None,
                  "plot_samples": 3, "physics_weight": 0.0, "physics_samples": 0,
                  "time_slices": 0, "time_grading": 2.0}


class UsageError(Exception):
    """Bad command-line input or problem file: one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="operator.py", description="Learn the solution operator "
                                "of a pinnkit problem file with input fields (DESIGN.md §8).")
    p.add_argument("problem_file")
    a = p.add_argument
    a("--n-train", type=int)
    a("--n-val", type=int, help="validation samples made with the training set "
      "(default n_train // 10)")
    a("--n-test", type=int)
    a("--resolution", type=int, help="training grid points per axis")
    a("--test-resolutions", type=lambda s: [int(v) for v in s.split(",")],
      help="comma-separated; the test set is made at the largest and subsampled")
    a("--model")
    a("--modes", type=int)
    a("--width", type=int)
    a("--layers", type=int)
    a("--epochs", type=int)
    a("--batch-size", type=int)
    a("--lr", type=float)
    a("--subsample", type=int, help="train on every k-th grid point")
    a("--padding", type=int)
    a("--normalize", help="input/output normalisation: scalar (per channel) or pointwise "
      "(per channel and grid point)")
    a("--seed", type=int)
    a("--workers", type=int, help="dataset processes (default min(2, CPUs))")
    a("--device")
    a("--physics-weight", type=float, help="weight of the spec's residual on the predicted "
      "grid (time-dependent problems: with --time-slices)")
    a("--physics-samples", type=int, help="unlabeled inputs (sampled, not solved) for the "
      "physics loss")
    a("--time-slices", type=int, help="time-dependent problems: predict this many time "
      "slices t0 + (t1 - t0) s^grading, s uniform (a (t, x) FNO; needed by the physics loss); "
      "0: the final time only")
    a("--time-grading", type=float, help="grading power of the time slices (default 2)")
    a("--speed-samples", type=int, help="test inputs timed with the reference (default n_test)")
    a("--out", help="output folder (default runs/<problem name>)")
    a("--resume", action="store_true", default=None)
    a("--quiet", action="store_true", default=None)
    return p


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:   # one line, exit 2 (argparse prints usage too)
        raise UsageError(message)


def load(path: str) -> tuple:
    """(problem, samplers, options) from a problem file; `UsageError` with a one-line reason."""
    from .. import cli
    try:    # the same reading and one-line errors as solve.py (sys.exit, syntax, ...)
        ns, problem = cli.read_problem_file(path)
    except cli.UsageError as exc:
        raise UsageError(str(exc)) from None
    samplers = ns.get("samplers")
    if not problem.inputs:
        raise UsageError(f"{path}: problem {problem.name!r} has no input fields "
                         "(pk.input_field); there is no operator to learn")
    if not isinstance(samplers, dict):
        raise UsageError(f"{path}: defines no `samplers` dict ({{input name: sampler}} for "
                         f"{', '.join(problem.inputs)})")
    options = ns.get("options", {}) or {}
    if not isinstance(options, dict):
        raise UsageError(f"{path}: `options` must be a dict")
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"{path}: unknown option(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(DEFAULTS)}")
    return problem, samplers, options


def _subgrid(n_fine: int, n: int, periodic: bool) -> int:
    """Stride that takes an n_fine-point grid to an n-point grid of the same box."""
    cf, c = (n_fine, n) if periodic else (n_fine - 1, n - 1)
    if c < 1 or cf % c:
        raise UsageError(f"test resolution {n} is not a subgrid of the test set's {n_fine} "
                         f"points ({'periodic' if periodic else 'closed'} axis: the number of "
                         "cells must divide)")
    return cf // c


def run(argv: list[str] | None = None) -> int:
    """The pipeline: datasets, training, evaluation at every test resolution, outputs. Under
    ``torchrun --nproc_per_node=N`` the training is data parallel (`pk.train_operator`); rank 0
    makes the datasets and writes every output."""
    from .dataset import grid_axes
    args = _Parser(parents=[_parser()], add_help=False).parse_args(argv)
    problem, samplers, file_opts = load(args.problem_file)
    opts = {**DEFAULTS, **file_opts}
    opts.update({k: v for k, v in vars(args).items() if k != "problem_file" and v is not None})
    from ..options import check_operator_options
    try:    # every option, before any dataset is made
        check_operator_options(opts)
    except PinnkitError as exc:
        raise UsageError(f"problem {problem.name!r}: {exc}") from None
    axes, _ = grid_axes(problem, opts["resolution"])
    res = len(next(iter(axes.values())))
    if any(len(v) != res for v in axes.values()):
        raise UsageError("the operator pipeline takes one resolution for every axis")
    tests = sorted(set(opts["test_resolutions"] or [res]))
    periodic = {t.coord for t in problem.terms if t.kind == "periodic"}
    per = [a in periodic for a in axes]
    if len(set(per)) != 1:
        raise UsageError("mixed periodic and closed axes are not supported by the pipeline")
    fine = max(tests)
    strides = {r: _subgrid(fine, r, per[0]) for r in tests}
    from ..distributed import current, init_from_env
    started = init_from_env(opts["device"])   # torchrun with several ranks: data parallel
    from ..cli import _progress_log
    try:
        with _progress_log(bool(opts["quiet"]) or not current().main):
            return _pipeline(problem, samplers, opts, axes, res, tests, fine, strides)
    finally:
        if started:
            import torch.distributed as dist
            dist.destroy_process_group()


def _times(problem, opts: dict):
    """The output times of a space-time operator (None: the final time only)."""
    k = int(opts.get("time_slices") or 0)
    if not k:
        return None
    if problem.time is None:
        raise UsageError(f"time_slices is for time-dependent problems; {problem.name!r} is steady")
    d = problem.domain
    return d.t0 + (d.t1 - d.t0) * np.linspace(0.0, 1.0, k) ** float(opts["time_grading"])


def _datasets(problem, samplers, opts: dict, res: int, fine: int, n_val: int, out: Path,
              quiet: bool) -> tuple:
    """(train, test, seconds of each): made by rank 0 (a process pool of its own); under
    torchrun the other ranks wait for it (as long as it takes) and then read the same files."""
    import pinnkit as pk
    from ..distributed import current
    shard, seed = current(), int(opts["seed"])
    waiting = None
    if shard.active:    # a gloo group without the collectives' timeout: solving takes minutes
        import datetime
        import torch.distributed as dist
        waiting = dist.new_group(backend="gloo", timeout=datetime.timedelta(days=1))
        if not shard.main:
            dist.barrier(group=waiting)
    t0 = _time.perf_counter()
    times = _times(problem, opts)
    train = pk.dataset(problem, samplers, n=opts["n_train"] + n_val, resolution=res,
                       path=out / "data" / f"train_{res}.h5", seed=seed, workers=opts["workers"],
                       quiet=quiet, times=times)
    t1 = _time.perf_counter()
    test = pk.dataset(problem, samplers, n=opts["n_test"], resolution=fine,
                      path=out / "data" / f"test_{fine}.h5", seed=seed + 1,
                      workers=opts["workers"], quiet=quiet, times=times)
    t2 = _time.perf_counter()
    if waiting is not None and shard.main:
        import torch.distributed as dist
        dist.barrier(group=waiting)
    return train, test, t1 - t0, t2 - t1


def _pipeline(problem, samplers, opts: dict, axes: dict, res: int, tests: list, fine: int,
              strides: dict) -> int:
    import pinnkit as pk
    from ..distributed import current
    from .dataset import grid_axes
    from .train import relative_l2
    shard = current()
    out = Path(opts["out"] or Path("runs") / problem.name)
    n_val = opts["n_val"] if opts["n_val"] is not None else max(1, opts["n_train"] // 10)
    quiet, seed = bool(opts["quiet"]) or not shard.main, int(opts["seed"])
    say = (lambda *a: None) if quiet else print  # noqa: E731

    train, test, t_train_data, t_test_data = _datasets(problem, samplers, opts, res, fine,
                                                       n_val, out, quiet)
    say(f"data: {train.n} training samples at {res} ({train.info['computed']} solved, "
        f"{t_train_data:.1f} s), {test.n} test samples at {fine} ({t_test_data:.1f} s)")

    physics_inputs = None
    if opts["physics_samples"]:
        from .dataset import _sample_inputs
        _, box = grid_axes(problem, res)
        samples = [_sample_inputs(problem, samplers, axes, box, seed + 2, i)
                   for i in range(int(opts["physics_samples"]))]
        physics_inputs = {k: np.stack([s[k] for s in samples]) for k in problem.inputs}
    model = pk.train_operator(train, model=opts["model"], modes=opts["modes"],
                              width=opts["width"], layers=opts["layers"], epochs=opts["epochs"],
                              batch_size=opts["batch_size"], lr=opts["lr"], n_test=n_val,
                              subsample=opts["subsample"], padding=opts["padding"],
                              normalize=opts["normalize"], seed=seed,
                              device=opts["device"], checkpoint=out / "checkpoint.pt",
                              resume=bool(opts["resume"]) and (out / "checkpoint.pt").exists(),
                              physics_weight=float(opts["physics_weight"]), problem=problem,
                              physics_inputs=physics_inputs, quiet=quiet)
    if not shard.main:     # rank 0 alone evaluates and writes the outputs
        return 0
    model.save(out / "model.pt")
    say(f"trained {model.info['epochs']} epochs in {model.info['seconds']:.1f} s; validation "
        f"l2re {model.info['test_l2re']}")

    results, arrays = {}, {}
    for r in tests:
        s = strides[r]
        cut = (slice(None),) + (slice(None, None, s),) * len(axes)
        # a space-time operator is evaluated (and its outputs written) at the final time
        last = ((lambda v: v[:, -1]) if model.layout.times is not None  # noqa: E731
                else (lambda v: v))
        ins = {k: v[cut] for k, v in test.inputs.items()}
        truth = {k: last(v[cut[:1] + (slice(None),) + cut[1:]] if model.layout.times is not None
                         else v[cut]) for k, v in test.outputs.items()}
        ts = _time.perf_counter()
        pred = model(ins, batch_size=len(next(iter(ins.values()))))
        seconds = _time.perf_counter() - ts
        pred = {f: last(v) for f, v in pred.items()}
        errs = {f: relative_l2(pred[f], truth[f]) for f in pred}
        results[str(r)] = {f: {"l2re_mean": float(np.mean(e)), "l2re_median": float(np.median(e)),
                               "l2re_max": float(np.max(e))} for f, e in errs.items()}
        results[str(r)]["forward_seconds"] = seconds
        arrays[r] = (ins, truth, pred, {k: test.coords[k][::s] for k in axes})
        say(f"resolution {r}: " + ", ".join(f"{f} l2re {v['l2re_mean']:.3e}"
                                              for f, v in results[str(r)].items()
                                              if isinstance(v, dict)))
    speed = _speed(problem, model, arrays.get(res), opts, say)
    report = {"problem": problem.name, "metrics": results, "speed": speed,
              "data": {"train": str(train.path), "test": str(test.path), "n_train": opts["n_train"],
                       "n_val": n_val, "n_test": test.n, "resolution": res, "test_resolution": fine,
                       "train_seconds": t_train_data, "test_seconds": t_test_data},
              "train": {"seconds": model.info["seconds"], "epochs": model.info["epochs"],
                        "final_loss": (model.history["train"] or [None])[-1],
                        "validation_l2re": model.info["test_l2re"],
                        "parameters": model.info["parameters"],
                        "world_size": shard.world, "backend": shard.backend},
              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.items()}}
    _write_report(out / "report.json", report)
    _write_h5(out / "fields.h5", problem, arrays, model, report)
    from .plots import plot_all
    plot_all(out / "plots", arrays, model, results, int(opts["plot_samples"]),
             res if res in arrays else None)
    say(f"wrote {out}/fields.h5, report.json, model.pt, plots/")
    return 0


def _speed(problem, model, arrays, opts, say) -> dict:
    """FNO forward on the test inputs at the training resolution vs the reference on them."""
    if arrays is None:
        return {}
    import pinnkit as pk
    from .train import relative_l2
    ins = arrays[0]
    n = min(int(opts["speed_samples"] or len(next(iter(ins.values())))),
            len(next(iter(ins.values()))))
    batch = {k: v[:n] for k, v in ins.items()}
    model(batch, batch_size=n)   # warm-up
    ts = _time.perf_counter()
    model(batch, batch_size=n)
    fno = _time.perf_counter() - ts
    ref_opts = dict(problem.reference_options)
    ref_opts.pop("resolution", None)
    if problem.time is not None:
        ref_opts["times"] = [problem.domain.t0, problem.domain.t1]
    res = {a: next(iter(ins.values())).shape[1 + k]
           for k, a in enumerate(model.layout.input_axes)}
    truth = arrays[1]
    ref, diffs = 0.0, {f: [] for f in truth}
    for i in range(n):
        ts = _time.perf_counter()
        sol = pk.reference(problem, resolution=res, inputs={k: v[i] for k, v in batch.items()},
                           **ref_opts)
        ref += _time.perf_counter() - ts
        for f in truth:   # this solve vs the finer test-set solve on the same input
            v = sol.fields[f][-1] if problem.time is not None else sol.fields[f]
            diffs[f].append(float(relative_l2(v[None], truth[f][i][None])[0]))
    say(f"speed: FNO forward on {n} inputs {fno:.3f} s, reference {ref:.1f} s "
        f"({ref / fno:.0f}x); reference at this resolution vs the test set's finer solve: "
        + ", ".join(f"{f} l2re max {max(d):.2e}" for f, d in diffs.items()))
    return {"samples": n, "fno_seconds": fno, "reference_seconds": ref, "speedup": ref / fno,
            "reference_vs_finer_l2re_max": {f: max(d) for f, d in diffs.items()},
            "reference_vs_finer_l2re_mean": {f: float(np.mean(d)) for f, d in diffs.items()}}


def _write_report(path: Path, report: dict) -> None:
    write_text(path, json.dumps(report, indent=2, default=str))


def _write_h5(path: Path, problem, arrays: dict, model, report: dict) -> None:
    import h5py
    from .dataset import _versions, spec_text
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["problem"] = problem.name
        h5.attrs["spec"] = spec_text(problem)
        h5.attrs["axes"] = json.dumps(model.layout.axes)
        h5.attrs["config"] = json.dumps(report["config"], default=str)
        h5.attrs["metrics"] = json.dumps(report["metrics"])
        h5.attrs["versions"] = json.dumps(_versions())
        h5.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        for r, (ins, truth, pred, coords) in arrays.items():
            g = h5.create_group(f"test/{r}")
            for k, v in coords.items():
                g[f"coords/{k}"] = v
            for k, v in ins.items():
                g[f"inputs/{k}"] = v
            for f in pred:
                g[f"truth/{f}"] = truth[f]
                g[f"prediction/{f}"] = pred[f]
                g[f"error/{f}"] = pred[f] - truth[f]
        for k, v in model.history.items():
            h5[f"history/{k}"] = np.asarray(v, dtype=float)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (finished dataset samples and the last checkpoint are kept; rerun "
              "with --resume)", file=sys.stderr)
        return 130
    except PinnkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
