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
import runpy
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Any, Iterator

from .errors import PinnkitError, TrainingError

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C: reported in one line, exit status 130."""


def _option_types() -> dict[str, Any]:
    from .trainer import TrainOptions
    hints = typing.get_type_hints(TrainOptions)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainOptions)}


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
_SECOND_PHASE = {"lbfgs": "L-BFGS", "bfgs": "BFGS", "ssbfgs": "SSBFGS", "ssbroyden": "SSBroyden"}
_CHOICES = {"device": ["auto", "cpu", "cuda"], "dtype": ["float32", "float64"],
            "engine": ["auto", "taylor", "autograd"]}


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
    for name in _FLAGS:
        tp = {"int": int, "float": float}.get(schema[name].type, str)
        a("--" + name.replace("_", "-"), type=None if name in _CHOICES else tp,
          choices=_CHOICES.get(name), help=help_of(name),
          metavar=None if name in _CHOICES else name.split("_")[-1].upper())
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


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {out} is not writable ({exc.strerror or exc})") from None


def run(argv: list[str] | None = None, prog: str | None = "pinnkit") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.list_options:
        print(list_options())
        return 0
    if args.problem_file is None:
        parser.error("the following arguments are required: problem_file")
    if args.no_reference and args.reference_only:
        raise UsageError("--no-reference and --reference-only exclude each other")
    problem, file_options = load_problem_file(args.problem_file)
    try:
        opts = merge_options(args, file_options, problem.name)
    except UsageError as exc:
        msg = str(exc)
        raise UsageError(msg if msg.startswith("problem ") else f"problem {problem.name!r}: {msg}") from None
    quiet = bool(opts.get("quiet", False))
    out = Path(args.out or Path("runs") / problem.name)
    from .trainer import TrainOptions, resolve_device
    try:
        train_opts = TrainOptions.from_kwargs(**opts)
        resolve_device(train_opts.device)
    except TrainingError as exc:
        raise UsageError(f"problem {problem.name!r}: {exc}") from None
    _check_writable(out)
    from .distributed import current, init_from_env
    init_from_env(train_opts.device)          # torchrun with several ranks: data parallel
    with _progress_log(quiet or not current().main):
        return _solve(args, problem, opts, train_opts, out, quiet)


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
           quiet: bool) -> int:
    from .distributed import current
    shard = current()
    say = (lambda *a: None) if quiet or not shard.main else (lambda *a: print(*a, file=sys.stderr))
    sol = ref = None
    t0 = time.perf_counter()
    if not args.reference_only:
        import pinnkit as pk
        opts.setdefault("checkpoint", str(out / "checkpoint.pt"))
        say(f"[{problem.name}] training: {opts.get('steps', train_opts.steps)} Adam steps + "
            f"{opts.get('lbfgs_steps', train_opts.lbfgs_steps)} "
            f"{_SECOND_PHASE.get(opts.get('optimizer', train_opts.optimizer), 'L-BFGS')} iterations")
        try:
            sol = pk.train(problem, **opts)
        except KeyboardInterrupt:
            ck = Path(opts["checkpoint"]) if opts.get("checkpoint") else None
            if ck is not None and ck.is_file():
                raise Interrupted(f"interrupted: checkpoint written to {ck}; rerun with --resume "
                                  "to continue") from None
            raise Interrupted("interrupted before any checkpoint was written") from None
    if not shard.main:   # rank 0 alone solves the reference and writes the outputs
        return 0
    reason = "--no-reference" if args.no_reference else None
    if not args.no_reference:
        from .reference import reference
        say(f"[{problem.name}] finite-difference reference")
        try:
            ref = reference(problem, quiet=quiet)
        except PinnkitError as exc:
            if args.reference_only:
                raise
            reason = f"unsupported: {exc}"
            has_exact = any(problem.exact_function(f) is not None for f in problem.fields)
            say(f"[{problem.name}] reference unavailable: {exc}")
            say(f"[{problem.name}] comparing the PINN with "
                f"{'the exact solution' if has_exact else 'nothing (no exact solution either)'}")
    from .compare import evaluate, metrics_of
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
        n = tr.get("threads")
        threads = f" on {n} thread{'s' if n != 1 else ''}" if n is not None else ""
        lines.append(f"training: {tr['seconds']:.1f} s{threads}, final loss {tr['final_loss']:.3e}")
        for msg in tr.get("messages", []):
            lines.append(f"  note: {msg}")
    if "parameters" in report:
        lines.append("parameters: " + ", ".join(f"{k} = {v:.6g}" for k, v in report["parameters"].items()))
    if "seconds" in report.get("reference", {}):
        lines.append(f"reference: {report['reference']['seconds']:.2f} s")
    lines.append(f"total {seconds:.1f} s; files in {out}/ (fields.h5, fields.xdmf, report.json, plots/)")
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
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except PinnkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
