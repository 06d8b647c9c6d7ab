"""``python scripts/solve.py PROBLEM.py [options]`` (also the ``pinnkit`` console script).

Loads the problem file, merges options (command line > file ``options`` > defaults), trains,
solves the reference, compares and exports (docs/cli.md). Bad input prints one line naming
the problem and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
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
from typing import Any, Iterator

from .errors import (PinnkitError, SpecError, TrainingError, TrainingInterrupted,
                     UnsupportedSpecError)

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


class OptionInfo(typing.NamedTuple):
    """One training option as `--list-options` and ``--help`` show it."""
    name: str
    type: str
    default: Any
    meaning: str


def option_schema() -> list[OptionInfo]:
    """Every option of `pinnkit.TrainOptions`: name, type, default and its one-line meaning
    (the comment beside the field in the dataclass, so that the schema is the only source)."""
    from .trainer import TrainOptions
    defaults = TrainOptions()
    meanings = _field_comments(TrainOptions)
    return [OptionInfo(name, _type_name(tp), getattr(defaults, name), meanings.get(name, ""))
            for name, tp in _option_types().items()]


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return " | ".join("None" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _field_comments(cls: type) -> dict[str, str]:
    """{field: comment} of a dataclass's source: the comment at the end of the field's line,
    continued by comment-only lines indented under it, or else the comment-only lines just
    above the field."""
    import ast
    import inspect
    import io
    import tokenize
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):     # no source (frozen application): no meanings
        return {}
    comments = {}                   # line -> (column, text, code before it on the line)
    code_lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip(),
                                      tok.line[:tok.start[1]].strip() != "")
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    body = ast.parse(src).body[0].body
    fields = [(n.target.id, n.lineno, n.end_lineno, n.col_offset) for n in body
              if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    out = {}
    for name, first, last, col in fields:
        parts = []
        if last in comments and comments[last][2]:
            parts.append(comments[last][1])
            line = last + 1
            while line in comments and not comments[line][2] and comments[line][0] > col:
                parts.append(comments[line][1])
                line += 1
        else:
            line = first - 1
            while line in comments and not comments[line][2] and line not in code_lines:
                parts.insert(0, comments[line][1])
                line -= 1
        out[name] = " ".join(parts)
    return out


def list_options() -> str:
    """The `--list-options` table."""
    rows = [(o.name, o.type, repr(o.default) if isinstance(o.default, str) else str(o.default),
             o.meaning) for o in option_schema()]
    w = [max(len(r[i]) for r in rows + [("option", "type", "default", "")]) for i in range(3)]
    head = f"{'option':<{w[0]}}  {'type':<{w[1]}}  {'default':<{w[2]}}  meaning"
    lines = [head] + [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d}" for a, b, c, d in rows]
    lines.append("Set any option with --set KEY=VALUE, in a problem file's `options` or as a "
                 "keyword of pk.train (command line > file > defaults).")
    return "\n".join(lines)


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


# options with a flag of their own (every option also takes --set KEY=VALUE)
_FLAGS = ("steps", "lbfgs_steps", "seed", "device", "dtype", "width", "depth", "interior_points",
          "boundary_points", "initial_points", "lr", "engine", "threads")


def _choices() -> dict[str, tuple[str, ...]]:
    """The flags' choices, from the registries (`pinnkit.options.option_choices`)."""
    from .options import option_choices
    return {k: v for k, v in option_choices().items() if k in _FLAGS}


def build_parser(prog: str | None = "pinnkit") -> argparse.ArgumentParser:
    schema = {o.name: o for o in option_schema()}

    def help_of(name: str) -> str:
        o = schema[name]
        return o.meaning if "default" in o.meaning else f"{o.meaning} (default: {o.default})"
    p = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Solve a pinnkit problem file with a PINN and a finite-difference "
                            "reference, compare them, export fields.h5, fields.xdmf, report.json "
                            "and plots/.",
                epilog="Every training option (--list-options shows all, with types and defaults) "
                       "is also --set KEY=VALUE,\na key of the problem file's `options` and a "
                       "keyword of pk.train; command line > file > defaults.")
    p.add_argument("problem_file", nargs="?",
                   help="Python file defining `problem` (and optional `options`)")
    a = p.add_argument
    choices = _choices()
    for name in _FLAGS:
        tp = {"int": int, "float": float}.get(schema[name].type, str)
        a("--" + name.replace("_", "-"), type=None if name in choices else tp,
          choices=choices.get(name), help=help_of(name),
          metavar=None if name in choices else name.split("_")[-1].upper())
    a("--compile", action="store_true", default=None,
      help="torch.compile the training steps always (default: auto, when the run is long enough "
           "to pay for compiling; --set compile=false: never; --set compile=MODE: a torch.compile mode)")
    a("--out", help="output folder (default: runs/<problem name>)")
    a("--resume", action="store_true", default=None,
      help="continue from OUT/checkpoint.pt when it exists")
    a("--no-reference", action="store_true", help="skip the finite-difference reference")
    a("--reference-only", action="store_true",
      help="skip training; solve and export the reference only")
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="any training option, e.g. --set hard_constraints=true (repeatable; see --list-options)")
    a("--quiet", action="store_true", default=None, help="print nothing but errors")
    a("--list-options", action="store_true", help="list every training option (name, type, "
                                                  "default, meaning) and exit")
    from .trainer import METHODS
    a("--method", choices=list(METHODS), help="pinn (default) or ode: a neural/hybrid ODE "
                                                "integrated by torchdiffeq (time-only problems)")
    a("--recipe", metavar="NAME", help="a named option set of the problem file's `recipes` "
                                       "(e.g. accurate), applied over its `options`")
    return p


def load_problem_file(path: str, recipe: str | None = None) -> tuple[Any, dict]:
    """(problem, options) from a problem file, with the options of its ``recipes[recipe]``
    over its ``options`` when a recipe is named; `UsageError` with a one-line reason."""
    ns, problem = read_problem_file(path)
    options = ns.get("options", {}) or {}
    if not isinstance(options, dict):
        raise UsageError(f"{path}: `options` must be a dict")
    options = dict(options)
    if recipe is not None:
        recipes = ns.get("recipes", {}) or {}
        if not (isinstance(recipes, dict) and all(isinstance(v, dict) for v in recipes.values())):
            raise UsageError(f"{path}: `recipes` must be a dict of name -> options dict")
        if recipe not in recipes:
            raise UsageError(f"{path}: no recipe {recipe!r}; the file has "
                             + (", ".join(sorted(recipes)) if recipes else "no `recipes`"))
        options.update(recipes[recipe])
    return problem, options


def read_problem_file(path: str) -> tuple[dict, Any]:
    """(namespace, problem) of a problem file, run once; `UsageError` with a one-line reason
    for a missing file, a syntax error, sys.exit, an error raised by the file, or no
    `problem`. Shared by solve.py and operator.py (which also reads ``samplers``)."""
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
    return ns, problem


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


def run(argv: list[str] | None = None, prog: str | None = "pinnkit") -> int:
    held: list = []     # the output folder's lock, released when the run ends
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGTERM) if main_thread else signal.SIG_IGN
    if old is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run(argv, held, prog)
    finally:
        for fh in held:
            fh.close()
        if old is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def _run(argv: list[str] | None, held: list, prog: str | None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.list_options:
        print(list_options())
        return 0
    if args.problem_file is None:
        parser.error("the following arguments are required: problem_file")
    if args.no_reference and args.reference_only:
        raise UsageError("--no-reference and --reference-only exclude each other")
    problem, file_options = load_problem_file(args.problem_file, args.recipe)
    method = args.method or file_options.pop("method", "pinn")
    from .trainer import METHODS
    if method not in METHODS:
        raise UsageError(f"problem {problem.name!r}: unknown method {method!r} in the file's options; "
                         f"choose {' or '.join(METHODS)}")
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
    out = Path(args.out) if args.out else _default_out(problem.name)
    from .trainer import resolve_device
    try:
        train_opts = _options_class(method).from_kwargs(**opts)
        resolve_device(train_opts.device)
        if method == "pinn":    # the options that depend on the problem, before any output
            train_opts.check_problem(problem)
    except TrainingError as exc:
        msg = str(exc)
        raise UsageError(msg if msg.startswith("problem ") else f"problem {problem.name!r}: {msg}") from None
    _check_writable(out)
    from .distributed import current, init_from_env
    started = init_from_env(train_opts.device)    # torchrun with several ranks: data parallel
    try:
        with _progress_log(quiet or not current().main):
            return _solve(args, problem, opts, train_opts, out, quiet, method, argv, held)
    finally:
        if started:     # a clean shutdown of the process group before the interpreter's
            import torch.distributed as dist
            dist.destroy_process_group()


@contextlib.contextmanager
def _progress_log(quiet: bool) -> Iterator[None]:
    """Training's progress lines (logger "pinnkit", written when stderr is not a terminal)
    go to stderr for the length of a run, unless quiet."""
    logger = logging.getLogger("pinnkit")
    if quiet or logger.handlers:         # quiet, or the caller configured pinnkit's logging
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _solve(args: argparse.Namespace, problem, opts: dict, train_opts, out: Path,
           quiet: bool, method: str, argv: list[str] | None, held: list) -> int:
    from .distributed import current
    shard = current()
    if shard.main:          # one run per output folder (rank 0 alone writes there)
        held.append(_lock(out))
    say = (lambda *a: None) if quiet or not shard.main else (lambda *a: print(*a, file=sys.stderr))
    sol = ref = None
    t0 = time.perf_counter()
    if not args.reference_only:
        import pinnkit as pk
        opts.setdefault("checkpoint", str(out / "checkpoint.pt"))
        from .pinn.second_phase import SECOND_PHASES
        second = opts.get("optimizer", getattr(train_opts, "optimizer", "lbfgs"))  # ode: none
        say(f"[{problem.name}] training: {opts.get('steps', train_opts.steps)} Adam steps + "
            f"{opts.get('lbfgs_steps', train_opts.lbfgs_steps)} "
            f"{SECOND_PHASES.get(second, SECOND_PHASES['lbfgs']).label} iterations")
        try:
            sol = pk.train(problem, method=method, **opts)
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
    if not shard.main:   # rank 0 alone solves the reference and writes the outputs
        return 0
    reason = "--no-reference" if args.no_reference else None
    if not args.no_reference:
        from .fd import reference
        say(f"[{problem.name}] finite-difference reference")
        try:
            extra = ({"error_estimate": problem.reference_options.get("error_estimate", True)}
                     if problem.spatial_coords else {})     # Richardson: grids in space
            ref = reference(problem, quiet=quiet, **extra,
                            terms=sol if sol is not None and (method == "ode" or problem.networks)
                            else None)
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
    from .metrics import evaluate, metrics_of
    from .io import export
    ev = evaluate(problem, sol, ref)      # once: the metrics and the files share it
    metrics = metrics_of(ev)
    config = dict(opts)
    config.update({"no_reference": bool(args.no_reference), "reference_only": bool(args.reference_only)})
    report = export(out, problem, sol, ref, metrics, config=config, reference_reason=reason,
                    evaluation=ev)
    if not quiet:
        print(summary(problem, report, out, time.perf_counter() - t0))
    return 0


def _export_partial(out: Path, problem, sol, opts: dict, args, say, why: str) -> str:
    """Export a trained (or partly trained) solution without a reference; says what was kept."""
    from .metrics import compare
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
    ref_exact = report.get("reference", {}).get("l2re_exact", {})
    ref_est = report.get("reference", {}).get("error_estimate", {})
    fmt = lambda v: f"{v:.3e}" if isinstance(v, float) else "—"  # noqa: E731
    # the headline column is the error vs the exact solution when there is one
    columns = [("L2RE vs exact", lambda f, m: m.get("l2re_exact")),
               ("L2RE vs reference", lambda f, m: m.get("l2re_reference")),
               ("FD vs exact", lambda f, m: ref_exact.get(f)),
               ("FD est. error", lambda f, m: ref_est.get(f))]
    if not any("l2re_exact" in m for m in report["metrics"].values()):
        columns = [columns[1], columns[0], columns[2], columns[3]]
    lines.append(f"{'field':<8} " + " ".join(f"{c:>18}" for c, _ in columns))
    for f, m in report["metrics"].items():
        lines.append(f"{f:<8} " + " ".join(f"{fmt(get(f, m)):>18}" for _, get in columns))
        pinn_ref, est = m.get("l2re_reference"), ref_est.get(f)
        if isinstance(pinn_ref, float) and isinstance(est, float) and est > 0.3 * pinn_ref:
            lines.append(f"  note: {f}: the reference's estimated error ({est:.1e}) is comparable "
                         f"to the PINN-reference difference ({pinn_ref:.1e}); refine the "
                         "reference (reference={'resolution': ...}) to judge the PINN")
    if "train" in report:
        tr = report["train"]
        n = tr.get("threads")
        threads = f" on {n} thread{'s' if n != 1 else ''}" if n is not None else ""
        lines.append(f"training: {tr['seconds']:.1f} s{threads}, final loss {tr['final_loss']:.3e}")
        for msg in tr.get("messages", []):
            lines.append(f"  note: {msg}")
    if "parameters" in report:
        lines.append("parameters: " + ", ".join(f"{k} = {v:.6g}" for k, v in report["parameters"].items()))
    if "seconds" in report.get("reference", {}):
        lines.append(f"reference: {report['reference']['seconds']:.2f} s")
    xdmf = " fields.xdmf," if (Path(out) / "fields.xdmf").is_file() else ""
    lines.append(f"total {seconds:.1f} s; files in {out}/ (fields.h5,{xdmf} report.json, plots/)")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = "pinnkit") -> int:
    """The command line (``pinnkit``, ``python -m pinnkit``, ``scripts/solve.py``); returns
    the exit status. ``prog`` is the name ``--help`` and usage lines show."""
    try:
        return run(argv, prog)
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
