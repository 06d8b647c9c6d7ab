#!/usr/bin/env python3
"""Time each problem file's default run end to end, as a user runs it, and read its error.

    python scripts/time_defaults.py [name ...] [--recipe NAME] [--set KEY=VALUE ...]
                                    [--lock /work/heavy.lock] [--json runs.jsonl]

For each name (default: every file in problems/ except the operator files, which go through
scripts/operator.py): `python scripts/solve.py problems/NAME.py --out DIR --quiet` in a new
process with OMP_NUM_THREADS=1, timed by `/usr/bin/time -f "%e %U %S"` (wall, user and
system CPU seconds of the whole command: imports, training, reference, export, plots). The
error is report.json's relative L2 over the output grid, against the exact solution where
the problem has one, else against the finite-difference reference; with several fields the
largest is shown (every field's is in the JSON line). ``--lock`` runs each command under
`flock PATH` so that it never shares the core with another locked job.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_FILES = ("burgers_operator", "darcy_operator")   # scripts/operator.py, not solve.py


def time_one(name: str, extra: list[str], lock: str | None) -> dict:
    """Run solve.py on problems/NAME.py with `extra` arguments; wall/CPU seconds and errors."""
    with tempfile.TemporaryDirectory(prefix=f"default_{name}_") as tmp:
        out, timing = Path(tmp) / "run", Path(tmp) / "time.txt"
        cmd = [sys.executable, "scripts/solve.py", f"problems/{name}.py", "--out", str(out),
               "--quiet", *extra]
        timed = ["/usr/bin/time", "-f", "%e %U %S", "-o", str(timing), *cmd]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run((["flock", lock] if lock else []) + timed, cwd=ROOT, env=env,
                              capture_output=True, text=True)
        row = {"problem": name, "args": extra, "rc": proc.returncode}
        wall, user, system = (float(v) for v in timing.read_text().split()[-3:])
        row.update(wall_s=wall, cpu_s=round(user + system, 2))
        if proc.returncode != 0:
            row["stderr"] = proc.stderr[-2000:]
            return row
        report = json.loads((out / "report.json").read_text())
    metrics = report["metrics"]
    kind = "exact" if all("l2re_exact" in m for m in metrics.values()) else "reference"
    row.update(vs=kind, fields={f: m.get(f"l2re_{kind}") for f, m in metrics.items()},
               train_s=report.get("train", {}).get("seconds"),
               reference_s=report.get("reference", {}).get("seconds"),
               messages=report.get("train", {}).get("messages", []))
    row["error"] = max(row["fields"].values())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--recipe", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--lock", default=None)
    ap.add_argument("--json", default=None, help="append one JSON line per run")
    a = ap.parse_args()
    names = a.names or sorted(p.stem for p in (ROOT / "problems").glob("*.py")
                              if p.stem not in OPERATOR_FILES)
    extra = (["--recipe", a.recipe] if a.recipe else []) + [s for kv in a.set for s in ("--set", kv)]
    for name in names:
        row = time_one(name, extra, a.lock)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")
        err = f"{row['error']:.2e} vs {row['vs']}" if "error" in row else f"FAILED rc={row['rc']}"
        print(f"{name:22s} wall {row['wall_s']:7.1f} s  cpu {row['cpu_s']:7.1f} s  {err}", flush=True)


if __name__ == "__main__":
    main()
