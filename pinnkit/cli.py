"""``python scripts/solve.py PROBLEM.py [options]`` (also the ``pinnkit`` console script).

Loads the problem file, merges options (command line > file ``options`` > defaults), trains,
solves the reference, compares and exports (DESIGN.md §4). Bad input prints one line naming
the problem and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import runpy
import shlex
import signal
import sys
import tempfile
import threading
import time
import typing
from pathlib import Path
from typing import Any

from .errors import PinnkitError, TrainingError, TrainingInterrupted, UnsupportedSpecError

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: reported in one line, exit status 128 + signal (130, 143)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside training (raised by the CLI's handler, treated like Ctrl-C)."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    raise _Terminated()


def _signum(exc: BaseException) -> int:
    return int(getattr(exc, "signum", signal.SIGINT))


def _option_types() -> dict[str, Any]:
    from .trainer import TrainOptions
    hints = typing.get_type_hints(TrainOptions)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainOptions)}


def _convert(key: str, value: str, types: dict) -> Any:
    if key not in types:
        raise UsageError(f"unknown option {key!r}; valid options: {', '.join(types)}")
    tp = types[key]
    origin = typing.get_origin(tp)
    members = [tp]
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) < len(typing.get_args(tp)) and value.lower() in ("none", "null", ""):
            return None
    for member in members:      # the first member type the text converts to (bool | str: bool first)
        try:
            return _convert_one(value, member)
        except ValueError:
            pass
    name = " or ".join(getattr(m, "__name__", str(m)) for m in members)
    raise UsageError(f"option {key}: {value!r} is not a valid {name}")


def _convert_one(value: str, tp: Any) -> Any:
    """``value`` as type ``tp``; ValueError when it is not one."""
    if tp is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError
    if tp is int:
        return int(value)
    if tp is float:
        return float(value)
    if tp is dict or typing.get_origin(tp) is dict:
        v = json.loads(value)
        if not isinstance(v, dict):
            raise ValueError
        return v
    return str(value)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, via main()
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="solve.py", description="Solve a pinnkit problem file with "
                                "a PINN and a finite-difference reference, compare, export.")
    p.add_argument("problem_file", help="Python file defining `problem` (and optional `options`)")
    a = p.add_argument
    a("--steps", type=int)
    a("--lbfgs-steps", type=int)
    a("--seed", type=int)
    a("--device", choices=["auto", "cpu", "cuda"])
    a("--dtype", choices=["float32", "float64"])
    a("--out", help="output folder (default runs/<problem name>)")
    a("--resume", action="store_true", default=None, help="continue from OUT/checkpoint.pt")
    a("--no-reference", action="store_true", help="skip the finite-difference reference")
    a("--reference-only", action="store_true", help="skip training")
    a("--width", type=int)
    a("--depth", type=int, help="hidden layers")
    a("--interior-points", type=int)
    a("--boundary-points", type=int)
    a("--initial-points", type=int)
    a("--lr", type=float)
    a("--engine", choices=["auto", "taylor", "autograd"], help="derivative engine (default auto)")
    a("--compile", action="store_true", default=None, help="torch.compile the loss (taylor engine; a mode: "
                                                                  "--set compile=max-autotune-no-cudagraphs)")
    a("--set", action="append", default=[], metavar="KEY=VALUE", help="any training option")
    a("--quiet", action="store_true", default=None)
    return p


def load_problem_file(path: str) -> tuple[Any, dict]:
    """(problem, options) from a problem file; `UsageError` with a one-line reason."""
    from .spec import Problem
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{path}: no such problem file")
    try:
        ns = runpy.run_path(str(file), run_name="__pinnkit_problem__")
    except SyntaxError as exc:
        raise UsageError(f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    except SystemExit as exc:   # sys.exit() in a problem file must not end the run as a success
        raise UsageError(f"{path}: the problem file called sys.exit({exc.code!r}) instead of "
                         "defining `problem`") from None
    except PinnkitError as exc:
        raise UsageError(f"{path}: invalid problem: {exc}") from None
    except Exception as exc:  # the user's file raised: report where
        tb = exc.__traceback__
        line = None
        while tb is not None:
            if Path(tb.tb_frame.f_code.co_filename).resolve() == file.resolve():
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f"{path}:{line}" if line else path
        raise UsageError(f"{where}: {type(exc).__name__}: {exc}") from None
    problem = ns.get("problem")
    if problem is None:
        raise UsageError(f"{path}: defines no `problem` (assign problem = pk.Problem(...))")
    if not isinstance(problem, Problem):
        raise UsageError(f"{path}: `problem` is a {type(problem).__name__}, not a pk.Problem")
    options = ns.get("options", {}) or {}
    if not isinstance(options, dict):
        raise UsageError(f"{path}: `options` must be a dict")
    return problem, dict(options)


def merge_options(args: argparse.Namespace, file_options: dict, problem_name: str) -> dict:
    types = _option_types()
    opts: dict = {}
    for k, v in file_options.items():
        if k not in types:
            raise UsageError(f"problem {problem_name!r}: unknown option {k!r} in the file's "
                             f"options; valid options: {', '.join(types)}")
        opts[k] = v
    for k in types:
        v = getattr(args, k, None)
        if v is not None:
            opts[k] = v
    opts.update(parse_set(args.set, types))
    return opts


def parse_set(items: list, types: dict | None = None) -> dict:
    """``--set KEY=VALUE`` items as {option: value}, each value converted to the option's
    type (`TrainOptions`); UsageError names a malformed item, unknown key or bad value."""
    types = _option_types() if types is None else types
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        k = k.strip().replace("-", "_")
        out[k] = _convert(k, v.strip(), types)
    return out


OUTPUT_FILES = ("fields.h5", "fields.xdmf", "report.json", "checkpoint.pt")


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {out} is not writable ({exc.strerror or exc})") from None
    # found now, not after training: a directory where an output file goes
    for name in OUTPUT_FILES:
        if (out / name).is_dir():
            raise UsageError(f"output folder {out}: {out / name} is a directory, where pinnkit "
                             "writes a file; move it or choose another --out")
    if (out / "plots").exists() and not (out / "plots").is_dir():
        raise UsageError(f"output folder {out}: {out / 'plots'} is a file, where pinnkit writes "
                         "the plots folder; move it or choose another --out")


def _default_out(name: str) -> Path:
    """runs/<name>; a name that would leave runs/ (``../x``, ``/abs``, ``a/b``) is refused."""
    if name in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")) or \
            (os.altsep and os.altsep in name):
        raise UsageError(f"problem name {name!r} is not a plain name (it would write outside "
                         "runs/); rename the problem or give --out")
    return Path("runs") / name


def _lock(out: Path):
    """An exclusive lock on OUT/.pinnkit.lock for the whole run: a second run into the same
    folder is refused instead of both overwriting each other's files."""
    import fcntl
    fh = open(out / ".pinnkit.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise UsageError(f"output folder {out} is in use by another pinnkit run; wait for it "
                         "to finish or choose another --out") from None
    return fh


def _resume_command(argv: list[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--resume" not in args:
        args.append("--resume")
    return "python scripts/solve.py " + shlex.join(args)


def run(argv: list[str] | None = None) -> int:
    held: list = []     # the output folder's lock, released when the run ends
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGTERM) if main_thread else signal.SIG_IGN
    if old is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run(argv, held)
    finally:
        for fh in held:
            fh.close()
        if old is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def _run(argv: list[str] | None, held: list) -> int:
    args = build_parser().parse_args(argv)
    if args.no_reference and args.reference_only:
        raise UsageError("--no-reference and --reference-only exclude each other")
    problem, file_options = load_problem_file(args.problem_file)
    try:
        opts = merge_options(args, file_options, problem.name)
    except UsageError as exc:
        msg = str(exc)
        raise UsageError(msg if msg.startswith("problem ") else f"problem {problem.name!r}: {msg}") from None
    quiet = bool(opts.get("quiet", False))
    out = Path(args.out) if args.out else _default_out(problem.name)
    from .trainer import TrainOptions, resolve_device
    try:
        train_opts = TrainOptions.from_kwargs(**opts)
        resolve_device(train_opts.device)
    except TrainingError as exc:
        raise UsageError(f"problem {problem.name!r}: {exc}") from None
    _check_writable(out)
    held.append(_lock(out))
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    sol = ref = None
    t0 = time.perf_counter()
    if not args.reference_only:
        import pinnkit as pk
        opts.setdefault("checkpoint", str(out / "checkpoint.pt"))
        say(f"[{problem.name}] training: {opts.get('steps', train_opts.steps)} Adam steps + "
            f"{opts.get('lbfgs_steps', train_opts.lbfgs_steps)} L-BFGS iterations")
        try:
            sol = pk.train(problem, **opts)
        except TrainingInterrupted as exc:
            saved = _export_partial(out, problem, exc.solution, opts, args, say,
                                    "training interrupted")
            how = f"resume with: {_resume_command(argv)}" if exc.checkpoint else \
                "no checkpoint (option checkpoint is none): a rerun starts afresh"
            raise Interrupted(f"{exc}; {saved}; {how}", exc.signum) from None
        except KeyboardInterrupt as exc:   # before training started, or a second signal
            ck = Path(opts["checkpoint"]) if opts.get("checkpoint") else None
            if ck is not None and ck.is_file():
                raise Interrupted(f"interrupted; the last checkpoint {ck} is kept; resume with: "
                                  f"{_resume_command(argv)}", _signum(exc)) from None
            raise Interrupted("interrupted before any checkpoint was written",
                              _signum(exc)) from None
    reason = "--no-reference" if args.no_reference else None
    if not args.no_reference:
        from .reference import reference
        say(f"[{problem.name}] finite-difference reference")
        try:
            ref = reference(problem, quiet=quiet)
        except KeyboardInterrupt as exc:
            if sol is None:
                raise Interrupted("interrupted during the reference", _signum(exc)) from None
            saved = _export_partial(out, problem, sol, opts, args, say,
                                    "interrupted during the reference")
            raise Interrupted(f"interrupted during the reference; training was complete: {saved}; "
                              "to get the reference too rerun with --resume (training is "
                              "skipped): "
                              f"{_resume_command(argv)}", _signum(exc)) from None
        except MemoryError:
            if args.reference_only:
                raise UsageError(f"problem {problem.name!r}: the reference ran out of memory; "
                                 "use a smaller resolution") from None
            reason = "out of memory (use a smaller resolution)"
            say(f"[{problem.name}] reference unavailable: {reason}")
        except PinnkitError as exc:
            if args.reference_only:
                raise
            kind = "unsupported" if isinstance(exc, UnsupportedSpecError) else "failed"
            reason = f"{kind}: {exc}"
            has_exact = any(problem.exact_function(f) is not None for f in problem.fields)
            say(f"[{problem.name}] reference unavailable: {exc}")
            say(f"[{problem.name}] comparing the PINN with "
                f"{'the exact solution' if has_exact else 'nothing (no exact solution either)'}")
    from .compare import compare
    from .io import export
    metrics = compare(sol, ref, problem)
    config = dict(opts)
    config.update({"no_reference": bool(args.no_reference), "reference_only": bool(args.reference_only)})
    report = export(out, problem, sol, ref, metrics, config=config, reference_reason=reason)
    if not quiet:
        print(summary(problem, report, out, time.perf_counter() - t0))
    return 0


def _export_partial(out: Path, problem, sol, opts: dict, args, say, why: str) -> str:
    """Export a trained (or partly trained) solution without a reference; says what was kept."""
    from .compare import compare
    from .io import export
    config = dict(opts)
    config.update({"no_reference": True, "reference_only": False, "interrupted": why})
    try:
        export(out, problem, sol, None, compare(sol, None, problem), config=config,
               reference_reason=why)
    except PinnkitError as exc:
        return f"partial results not exported ({exc})"
    except KeyboardInterrupt:
        return "the export of partial results was interrupted (earlier files unchanged)"
    return f"results so far exported to {out}/"


def summary(problem, report: dict, out: Path, seconds: float) -> str:
    lines = [f"pinnkit — {problem.name}"]
    head = f"{'field':<8} {'L2RE vs reference':>18} {'L2RE vs exact':>14} {'FD vs exact':>12}"
    lines.append(head)
    ref_exact = report.get("reference", {}).get("l2re_exact", {})
    fmt = lambda v: f"{v:.3e}" if isinstance(v, float) else "—"  # noqa: E731
    for f, m in report["metrics"].items():
        lines.append(f"{f:<8} {fmt(m.get('l2re_reference')):>18} {fmt(m.get('l2re_exact')):>14} "
                     f"{fmt(ref_exact.get(f)):>12}")
    if "train" in report:
        tr = report["train"]
        lines.append(f"training: {tr['seconds']:.1f} s, final loss {tr['final_loss']:.3e}")
        for msg in tr.get("messages", []):
            lines.append(f"  note: {msg}")
    if "parameters" in report:
        lines.append("parameters: " + ", ".join(f"{k} = {v:.6g}" for k, v in report["parameters"].items()))
    if "seconds" in report.get("reference", {}):
        lines.append(f"reference: {report['reference']['seconds']:.2f} s")
    lines.append(f"total {seconds:.1f} s; files in {out}/ (fields.h5, fields.xdmf, report.json, plots/)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return 128 + _signum(exc)
    except PinnkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
