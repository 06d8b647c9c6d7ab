#!/usr/bin/env python3
"""Train every problem in problems/ with its default options and report accuracy.

    python scripts/accuracy.py [name ...] [--seed S] [--out docs/problems.md]

For each problem: PINN L2RE against the exact solution (or, for Allen-Cahn, Raissi's public
data in ../shared/data when present, else the FD reference), the FD reference's own error,
and wall times. Prints a Markdown table and writes it to --out.
"""
from __future__ import annotations

import argparse
import math
import platform
import runpy
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import pinnkit as pk  # noqa: E402
from pinnkit.metrics import evaluate, metrics_of, reference_errors  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def run(name: str, seed: int) -> dict:
    ns = runpy.run_path(str(ROOT / "problems" / f"{name}.py"))
    problem, opts = ns["problem"], dict(ns.get("options", {}))
    t0 = time.perf_counter()
    sol = pk.train(problem, seed=seed, quiet=True, **opts)
    train_s = time.perf_counter() - t0
    row = {"problem": name, "train_s": train_s, "steps": f"{opts.get('steps')}+{opts.get('lbfgs_steps')}"}
    try:
        ref = pk.reference(problem)
        row["ref_s"] = ref.seconds
    except pk.PinnkitError as exc:
        ref, row["ref_note"] = None, str(exc).split(":")[0]
    ev = evaluate(problem, sol, ref)
    m = metrics_of(ev)["u"]
    row["pinn_exact"] = m.get("l2re_exact")
    row["pinn_ref"] = m.get("l2re_reference")
    row["ref_exact"] = reference_errors(ev).get("u") if ref is not None else None
    if name == "allen_cahn" and (DATA / "allen_cahn.npz").is_file():
        d = np.load(DATA / "allen_cahn.npz")
        X, T = np.meshgrid(d["x"], d["t"])
        u = sol({"x": X, "t": T})["u"]
        row["pinn_exact"] = float(np.linalg.norm(u - d["u"]) / np.linalg.norm(d["u"]))
        row["vs"] = "Raissi data"
    if sol.parameters:
        nu = math.exp(sol.parameters["log_nu"])
        true = 0.01 / math.pi
        row["param"] = f"nu = {nu:.5g} (true {true:.5g}, error {abs(nu - true) / true:.2%})"
    return row


def fmt(v):
    return "—" if v is None else f"{v:.2e}"


def fmt_s(v):
    return "—" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    names = a.names or sorted(p.stem for p in (ROOT / "problems").glob("*.py"))
    lines = [f"Machine: {platform.processor() or platform.machine()}, torch threads: "
             f"{__import__('torch').get_num_threads()}, seed {a.seed}", "",
             "| problem | Adam+L-BFGS | PINN L2RE vs exact | PINN L2RE vs FD | FD L2RE vs exact | train s | FD s | notes |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name in names:
        r = run(name, a.seed)
        note = "; ".join(x for x in (r.get("vs") and f"vs {r['vs']}", r.get("param"), r.get("ref_note")) if x)
        line = (f"| {name} | {r['steps']} | {fmt(r.get('pinn_exact'))} | {fmt(r.get('pinn_ref'))} | "
                f"{fmt(r.get('ref_exact'))} | {r['train_s']:.0f} | "
                f"{fmt_s(r.get('ref_s'))} | {note} |")
        print(line, flush=True)
        lines.append(line)
    if a.out:
        Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
