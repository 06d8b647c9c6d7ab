#!/usr/bin/env python3
"""Hostile-input sweep of ``scripts/solve.py`` (issue 16): run each case in a fresh process
and record (case, exit status, last line of stderr, traceback?, outputs intact?).

    python scripts/hostile_sweep.py [--out docs/reliability_sweep.md] [--only SUBSTRING]

Each case gets its own temporary folder. A case passes when there is no traceback and no
crash (negative status), the exit status is the expected one, and, where a good run's files
were there before, they are byte-identical afterwards (unless the case is meant to replace
them). The Markdown table is printed (and written with --out).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLVE = [sys.executable, str(ROOT / "scripts" / "solve.py")]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
FAST = ["--steps", "5", "--lbfgs-steps", "0", "--width", "8", "--depth", "2",
        "--interior-points", "16", "--boundary-points", "4", "--initial-points", "4", "--quiet"]

HEAD = "import math\nimport sys\nimport numpy as np\nimport pinnkit as pk\n"
X1 = HEAD + "x = pk.coords('x')\nu = pk.field('u', x)\n"
GOOD = X1 + ("problem = pk.Problem(name='good', domain=pk.Interval(x, 0, 1), "
             "equations=[u.diff(x, 2) + 1], conditions=[pk.Dirichlet(u, 0, on='boundary')])\n")


def problem(body: str, name: str = "case", head: str = X1) -> str:
    return head + body.replace("NAME", repr(name))


P1 = ("problem = pk.Problem(name=NAME, domain=pk.Interval(x, 0, 1), equations=[{eq}], "
      "conditions=[{bc}]{extra})\n")


def p1(eq="u.diff(x, 2) + 1", bc="pk.Dirichlet(u, 0, on='boundary')", extra="", name="case"):
    return problem(P1.format(eq=eq, bc=bc, extra=extra), name)


XT = HEAD + "x, t = pk.coords('x t')\nu = pk.field('u', x, t)\n"
XY = HEAD + "x, y = pk.coords('x y')\nu = pk.field('u', x, y)\n"

# (case, problem file text or None for GOOD, extra args, expected exit, setup, keeps previous)
# setup(folder) prepares the output folder; "previous" runs GOOD into it first and checks
# the files are unchanged after the case.
CASES: list[tuple] = [
    # --- the command line
    ("missing problem file", None, ["nofile.py"], 2, None, False),
    ("unknown option", None, ["--bogus"], 2, None, False),
    ("--steps -1", None, ["--steps", "-1"], 2, None, True),
    ("--steps abc", None, ["--steps", "abc"], 2, None, True),
    ("--lr inf", None, ["--lr", "inf"], 2, None, True),
    ("--lr nan", None, ["--lr", "nan"], 2, None, True),
    ("--lr 0", None, ["--lr", "0"], 2, None, True),
    ("--lr -1", None, ["--lr", "-1"], 2, None, True),
    ("--interior-points 0", None, ["--interior-points", "0"], 2, None, True),
    ("--boundary-points 0", None, ["--boundary-points", "0"], 2, None, True),
    ("--width 0", None, ["--width", "0"], 2, None, True),
    ("--set fourier_scale=nan", None, ["--set", "fourier_scale=nan", "--set", "fourier_features=8"],
     2, None, True),
    ("--set lr_decay=inf", None, ["--set", "lr_decay=inf"], 2, None, True),
    ("--set weights={pde: NaN}", None, ["--set", 'weights={"pde": NaN}'], 2, None, True),
    ("--set weights={nope: 1}", None, ["--set", 'weights={"nope": 1}'], 2, None, True),
    ("--set unknown=1", None, ["--set", "unknown=1"], 2, None, True),
    ("--set steps (no =)", None, ["--set", "steps"], 2, None, True),
    ("--set dtype=float16", None, ["--set", "dtype=float16"], 2, None, True),
    ("--device cuda (no GPU)", None, ["--device", "cuda"], 2, None, True),
    ("--no-reference --reference-only", None, ["--no-reference", "--reference-only"], 2, None, True),
    ("--resume without checkpoint", None, ["--resume"], 2, None, False),
    # --- problem files
    ("syntax error", HEAD + "problem = (\n", [], 2, None, False),
    ("file raises", HEAD + "raise RuntimeError('boom')\n", [], 2, None, False),
    ("file calls sys.exit(0)", HEAD + "sys.exit(0)\n", [], 2, None, False),
    ("file calls sys.exit(3)", HEAD + "sys.exit(3)\n", [], 2, None, False),
    ("no problem defined", HEAD + "x = 1\n", [], 2, None, False),
    ("problem is not a Problem", HEAD + "problem = 3\n", [], 2, None, False),
    ("options not a dict", GOOD + "options = [1]\n", [], 2, None, False),
    ("unknown option in file", GOOD + "options = {'bogus': 1}\n", [], 2, None, False),
    ("unknown boundary name", p1(bc="pk.Dirichlet(u, 0, on='top')"), [], 2, None, False),
    ("free symbol", p1(eq="u.diff(x, 2) + pk.coords('k')"), [], 2, None, False),
    ("lhs == rhs instead of Eq", p1(eq="u.diff(x, 2) == 1"), [], 2, None, False),
    ("name ../escape", p1(name="../escape"), [], 2, None, False),
    ("name /abs/path", p1(name="/tmp/abs_escape"), [], 2, None, False),
    ("name with slash", p1(name="a/b"), [], 2, None, False),
    ("time-dependent, no initial condition",
     problem("problem = pk.Problem(name='noinit', domain=pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1), "
             "equations=[u.diff(t) - u.diff(x, 2)], conditions=[pk.Dirichlet(u, 0, on='boundary')])\n",
             head=XT), [], 2, None, False),
    ("Data with NaN values", p1(extra="") .replace("conditions=[", "conditions=[pk.Data(u, points={'x': [0.5]}, "
                                                   "values=[float('nan')]), "), [], 2, None, False),
    ("mesh with a NaN vertex",
     HEAD + "problem = pk.Problem(name='m', domain=pk.Mesh(np.array([[0, 0], [1, 0], [0, np.nan], [1, 1.]]),"
            " {'triangle': np.array([[0, 1, 2], [1, 3, 2]])}), equations=[pk.field('u', *pk.coords('x y')).diff("
            "pk.coords('x'), 2)])\n", [], 2, None, False),
    ("interval with a > b", p1().replace("pk.Interval(x, 0, 1)", "pk.Interval(x, 1, 0)"), [], 2, None, False),
    ("interval with NaN end", p1().replace("pk.Interval(x, 0, 1)", "pk.Interval(x, 0, float('nan'))"),
     [], 2, None, False),
    # --- the reference
    ("reference: u'' = 1/x, x = 0 on the grid (reference-only)", p1(eq="u.diff(x, 2) - 1 / x")
     .replace("Interval(x, 0, 1)", "Interval(x, -1, 1)"), ["--reference-only"], 2, None, False),
    ("reference: u'' = 1/x in a full run", p1(eq="u.diff(x, 2) - 1 / x")
     .replace("Interval(x, 0, 1)", "Interval(x, -1, 1)"), [], 0, None, False),
    ("reference: log(u) boundary equation", p1(bc="pk.BoundaryEquation(pk.log(u) - 1, on='x_min'), "
                                              "pk.Dirichlet(u, 1, on='x_max')"), ["--reference-only"], 2, None, False),
    ("reference: u**2 - 1 on a 2-D boundary (BLAS spam)",
     problem("problem = pk.Problem(name='nlbc', domain=pk.Rectangle((x, y), (0, 0), (1, 1)), "
             "equations=[u.diff(x, 2) + u.diff(y, 2) - 1], conditions=[pk.BoundaryEquation(u**2 - 1, "
             "on='x_min'), pk.Dirichlet(u, 1, on=['x_max', 'y_min', 'y_max'])], reference={'resolution': 33})\n",
             head=XY), ["--reference-only"], 2, None, False),
    ("reference: resolution 100000 (2-D)",
     problem("problem = pk.Problem(name='big', domain=pk.Rectangle((x, y), (0, 0), (1, 1)), "
             "equations=[u.diff(x, 2) + u.diff(y, 2) + 1], conditions=[pk.Dirichlet(u, 0, on='boundary')], "
             "reference={'resolution': 100000})\n", head=XY), ["--reference-only"], 2, None, False),
    ("reference: resolution 100000 in a full run (training kept)",
     problem("problem = pk.Problem(name='big', domain=pk.Rectangle((x, y), (0, 0), (1, 1)), "
             "equations=[u.diff(x, 2) + u.diff(y, 2) + 1], conditions=[pk.Dirichlet(u, 0, on='boundary')], "
             "reference={'resolution': 100000})\n", head=XY), [], 0, None, False),
    ("reference: 4-D box at the default resolution",
     HEAD + "x, y, z, w = pk.coords('x y z w')\nu = pk.field('u', x, y, z, w)\nproblem = pk.Problem("
            "name='box4', domain=pk.Box((x, y, z, w), (0, 0, 0, 0), (1, 1, 1, 1)), equations=[u.diff(x, 2) + "
            "u.diff(y, 2) + u.diff(z, 2) + u.diff(w, 2) + 1], conditions=[pk.Dirichlet(u, 0, on='boundary')])\n",
     ["--reference-only"], 2, None, False),
    ("reference: resolution 2", p1(extra=", reference={'resolution': 2}"), ["--reference-only"], 2, None, False),
    ("reference: unknown option", p1(extra=", reference={'bogus': 1}"), ["--reference-only"], 2, None, False),
    ("reference: coarse Burgers (x: 128)",
     problem("problem = pk.Problem(name='burg', domain=pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 1), "
             "equations=[u.diff(t) + u * u.diff(x) - 0.01 / math.pi * u.diff(x, 2)], conditions=["
             "pk.Dirichlet(u, 0, on='boundary'), pk.Initial(u, -pk.sin(pk.pi * x))], "
             "reference={'resolution': {'x': 128, 't': 11}})\n", head=XT), ["--reference-only"], 2, None, False),
    # --- the output folder
    ("--out is a file", None, ["--out", "FILE"], 2, "file", False),
    ("directory named fields.h5", None, [], 2, "dir:fields.h5", False),
    ("directory named checkpoint.pt", None, [], 2, "dir:checkpoint.pt", False),
    ("directory named report.json", None, [], 2, "dir:report.json", False),
    ("file named plots", None, [], 2, "file:plots", False),
    ("read-only output folder", None, [], 2, "readonly", True),
    ("folder locked by another run", None, [], 2, "locked", True),
    # --- checkpoints
    ("empty checkpoint", None, ["--resume"], 2, "ck:empty", False),
    ("truncated checkpoint", None, ["--resume"], 2, "ck:truncated", False),
    ("random bytes as checkpoint", None, ["--resume"], 2, "ck:garbage", False),
    ("checkpoint missing keys", None, ["--resume"], 2, "ck:keys", False),
    ("checkpoint with a pickled class", None, ["--resume"], 2, "ck:pickle", False),
    ("checkpoint of other options (--width 9)", None, ["--resume", "--width", "9"], 2, "previous", True),
    ("checkpoint of an edited problem", p1(eq="u.diff(x, 2) + 2", name="good"), ["--resume"], 2,
     "previous", True),
    # --- writes
    ("file-size limit 20 kB (as a full disk)", None, [], 2, "fsize", False),
    # --- signals
    ("SIGTERM during training", None, ["--steps", "1000000"], 143, "signal:TERM", False),
    ("SIGINT during training", None, ["--steps", "1000000"], 130, "signal:INT", False),
]


def setup(kind: str | None, folder: Path, out: Path) -> dict:
    """Prepare ``out`` for a case; returns Popen keyword arguments."""
    kw: dict = {}
    if kind is None:
        return kw
    import torch
    if kind == "file":
        (folder / "FILE").write_text("x")
    elif kind.startswith("dir:"):
        (out / kind[4:]).mkdir(parents=True)
    elif kind.startswith("file:"):
        out.mkdir(parents=True, exist_ok=True)
        (out / kind[5:]).write_text("x")
    elif kind == "readonly":
        os.chmod(out, 0o555)
    elif kind.startswith("ck:"):
        ck = out / "checkpoint.pt"
        out.mkdir(parents=True, exist_ok=True)
        what = kind[3:]
        if what == "empty":
            ck.write_bytes(b"")
        elif what == "truncated":
            torch.save({"model": {"w": torch.ones(1000)}}, ck)
            ck.write_bytes(ck.read_bytes()[:1500])
        elif what == "garbage":
            ck.write_bytes(os.urandom(4096))
        elif what == "keys":
            torch.save({"problem": "good", "step": 3}, ck)
        elif what == "pickle":
            torch.save({"problem": "good", "cls": Path}, ck)
    elif kind == "fsize":
        import resource

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        kw["preexec_fn"] = limit
    return kw


def run_case(case: tuple) -> dict:
    name, text, args, expected, kind, keeps = case
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        folder = Path(tmp)
        out = folder / "out"
        file = folder / "problem.py"
        file.write_text(text if text is not None else GOOD)
        before = None
        if keeps or kind in ("previous", "readonly", "locked"):     # a good run's files first
            r = subprocess.run([*SOLVE, _good(folder), "--out", str(out), *FAST],
                               env=ENV, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr
            before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()
                      and p.name != ".pinnkit.lock"}
        popen_kw = setup(kind, folder, out)
        argv = [a if a != "FILE" else str(folder / "FILE") for a in args]
        cmd = [*SOLVE, str(file), "--out", str(out), *FAST, *argv] if argv[:1] != ["nofile.py"] \
            else [*SOLVE, str(folder / "nofile.py")]
        lock = None
        if kind == "locked":
            import fcntl
            lock = open(out / ".pinnkit.lock", "a+")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        t0 = time.perf_counter()
        if kind and kind.startswith("signal:"):
            proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            while not (out / ".pinnkit.lock").exists() and proc.poll() is None:
                time.sleep(0.2)
            time.sleep(4)
            proc.send_signal(getattr(signal, "SIG" + kind.split(":")[1]))
            stdout, stderr = proc.communicate(timeout=300)
            code = proc.returncode
        else:
            r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900, **popen_kw)
            code, stdout, stderr = r.returncode, r.stdout, r.stderr
        seconds = time.perf_counter() - t0
        if lock is not None:
            lock.close()
        if kind == "readonly":
            os.chmod(out, 0o755)
        intact = None
        if before is not None:
            after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()
                     and p.name != ".pinnkit.lock"}
            intact = after == before
        temps = [str(p.name) for p in folder.rglob("*.tmp")]
        lines = [ln for ln in stderr.splitlines() if ln.strip() and "Warning" not in ln
                 and not ln.startswith("  ")]
        message = lines[-1] if lines else (stdout.splitlines()[-1] if stdout.strip() else "")
        if code == 0:
            import json
            rep = out / "report.json"
            if rep.is_file():
                report = json.loads(rep.read_text())
                reason = report.get("reference", {}).get("reason")
                message = f"exit 0; report.json reference reason: {reason}" if reason else "exit 0"
        message = message.replace(str(folder), "TMP")
        tb = "Traceback" in stderr or "Traceback" in stdout
        illegal = "illegal value" in stdout + stderr
        ok = (code == expected and not tb and not illegal and code >= 0 and not temps
              and intact in (None, True))
        return {"case": name, "exit": code, "expected": expected, "message": message, "traceback": tb,
                "intact": intact, "temps": temps, "ok": ok, "seconds": seconds}


def _good(folder: Path) -> str:
    f = folder / "good.py"
    f.write_text(GOOD)
    return str(f)


def table(rows: list[dict]) -> str:
    out = ["| # | case | exit | message (last line of stderr) | previous files | ok |",
           "|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        msg = r["message"].replace("|", "\\|")
        if len(msg) > 260:
            msg = msg[:257] + "..."
        intact = {None: "—", True: "unchanged", False: "**changed**"}[r["intact"]]
        out.append(f"| {i} | {r['case']} | {r['exit']} | {msg} | {intact} | "
                   f"{'yes' if r['ok'] else '**NO**'} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--only", help="run only cases whose name contains this")
    a = ap.parse_args()
    rows = []
    for case in CASES:
        if a.only and a.only not in case[0]:
            continue
        r = run_case(case)
        rows.append(r)
        print(f"{'ok ' if r['ok'] else 'BAD'} {r['exit']:>4} {r['seconds']:6.1f}s {r['case']}: {r['message'][:150]}",
              file=sys.stderr, flush=True)
    text = table(rows)
    bad = sum(not r["ok"] for r in rows)
    text += (f"\n\n{len(rows)} cases: {len(rows) - bad} as expected, {bad} not; "
             f"{sum(r['traceback'] for r in rows)} tracebacks.\n")
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
