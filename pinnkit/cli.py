"""``python scripts/solve.py PROBLEM.py [options]`` (also the ``pinnkit`` console script).

Loads the problem file, merges options (command line > file ``options`` > defaults), trains,
solves the reference, compares and exports (DESIGN.md §4). Bad input prints one line naming
the problem and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import runpy
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Any

from .errors import PinnkitError, SpecError, TrainingError

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C: reported in one line, exit status 130."""


def _options_class(method: str = "pinn") -> Any:
    """The options dataclass of a training method (``--method``)."""
    if method == "ode":
        from .ode.trainer import ODEOptions
        return ODEOptions
    from .trainer import TrainOptions
    return TrainOptions


def _option_types(method: str = "pinn") -> dict[str, Any]:
    cls = _options_class(method)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


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
    a("--method", choices=["pinn", "ode"], help="pinn (default) or ode: a neural/hybrid ODE "
                                                "integrated by torchdiffeq (time-only problems)")
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


def merge_options(args: argparse.Namespace, file_options: dict, problem_name: str,
                  method: str = "pinn") -> dict:
    types = _option_types(method)
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
    if method != "pinn":
        pinn_only = [k for k in _option_types("pinn") if k not in types and getattr(args, k, None) is not None]
        if pinn_only:
            raise UsageError(f"--{pinn_only[0].replace('_', '-')} is a PINN option; --method "
                             f"{method} takes: {', '.join(types)}")
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


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {out} is not writable ({exc.strerror or exc})") from None


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.no_reference and args.reference_only:
        raise UsageError("--no-reference and --reference-only exclude each other")
    problem, file_options = load_problem_file(args.problem_file)
    method = args.method or file_options.pop("method", "pinn")
    if method not in ("pinn", "ode"):
        raise UsageError(f"problem {problem.name!r}: unknown method {method!r} in the file's options; "
                         "choose pinn or ode")
    file_options.pop("method", None)
    if method == "ode":
        from .ode import ode_system
        try:
            ode_system(problem, "--method ode")
        except SpecError as exc:
            raise UsageError(str(exc)) from None
    try:
        opts = merge_options(args, file_options, problem.name, method)
    except UsageError as exc:
        msg = str(exc)
        raise UsageError(msg if msg.startswith("problem ") else f"problem {problem.name!r}: {msg}") from None
    quiet = bool(opts.get("quiet", False))
    out = Path(args.out or Path("runs") / problem.name)
    from .trainer import resolve_device
    try:
        train_opts = _options_class(method).from_kwargs(**opts)
        resolve_device(train_opts.device)
    except TrainingError as exc:
        msg = str(exc)
        raise UsageError(msg if msg.startswith("problem ") else f"problem {problem.name!r}: {msg}") from None
    _check_writable(out)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    sol = ref = None
    t0 = time.perf_counter()
    if not args.reference_only:
        import pinnkit as pk
        opts.setdefault("checkpoint", str(out / "checkpoint.pt"))
        say(f"[{problem.name}] training: {opts.get('steps', train_opts.steps)} Adam steps + "
            f"{opts.get('lbfgs_steps', train_opts.lbfgs_steps)} L-BFGS iterations")
        try:
            sol = pk.train(problem, method=method, **opts)
        except KeyboardInterrupt:
            ck = Path(opts["checkpoint"]) if opts.get("checkpoint") else None
            if ck is not None and ck.is_file():
                raise Interrupted(f"interrupted: checkpoint written to {ck}; rerun with --resume "
                                  "to continue") from None
            raise Interrupted("interrupted before any checkpoint was written") from None
    reason = "--no-reference" if args.no_reference else None
    if not args.no_reference:
        from .reference import reference
        say(f"[{problem.name}] finite-difference reference")
        try:
            ref = reference(problem, quiet=quiet,
                            terms=sol if sol is not None and (method == "ode" or problem.networks)
                            else None)
        except PinnkitError as exc:
            if args.reference_only:
                raise
            reason = f"unsupported: {exc}"
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
    xdmf = " fields.xdmf," if (Path(out) / "fields.xdmf").is_file() else ""
    lines.append(f"total {seconds:.1f} s; files in {out}/ (fields.h5,{xdmf} report.json, plots/)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except PinnkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
