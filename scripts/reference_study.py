#!/usr/bin/env python3
"""Finite-difference reference: accuracy and time per problem, and a Burgers resolution study.

    python scripts/reference_study.py [--out docs/reference.md]

Burgers is scored on the standard 256 x 100 grid (x = linspace(-1, 1, 256),
t = linspace(0, 0.99, 100)) against the exact Cole-Hopf solution. Times are wall seconds of
`pk.reference` (median of 3 runs) on this machine.
"""
from __future__ import annotations

import argparse
import platform
import runpy
import statistics
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
from pinnkit.metrics import evaluate, reference_errors  # noqa: E402
from pinnkit.exact import burgers_sine  # noqa: E402


def timed(fn, repeat=3):
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, statistics.median(ts), (min(ts), max(ts))


def burgers_rows() -> list[str]:
    problem = runpy.run_path(str(ROOT / "problems" / "burgers.py"))["problem"]
    xs, ts = np.linspace(-1, 1, 256), np.linspace(0, 0.99, 100)
    X, T = np.meshgrid(xs, ts)
    exact = burgers_sine(X, T, 0.01 / np.pi)
    rows = ["| nx | order | L2RE vs exact (256x100) | seconds (median of 3) | nfev |", "|---|---|---|---|---|"]
    for order in (2, 4):
        for nx in (511, 1021, 2041, 4081):
            ref, med, _ = timed(lambda: pk.reference(problem, resolution={"x": nx}, order=order,
                                                       times=ts))
            u = ref({"x": X, "t": T})["u"]
            err = np.linalg.norm(u - exact) / np.linalg.norm(exact)
            rows.append(f"| {nx} | {order} | {err:.2e} | {med:.3f} | {ref.info['nfev']} |")
            print(rows[-1], flush=True)
    return rows


def problem_rows() -> list[str]:
    rows = ["| problem | grid | order | FD L2RE vs exact | seconds | notes |", "|---|---|---|---|---|---|"]
    for path in sorted((ROOT / "problems").glob("*.py")):
        problem = runpy.run_path(str(path))["problem"]
        try:
            ref, med, _ = timed(lambda: pk.reference(problem), repeat=1)
        except pk.PinnkitError as exc:
            rows.append(f"| {problem.name} | — | — | — | — | unsupported: {exc} |")
            print(rows[-1], flush=True)
            continue
        errs = reference_errors(evaluate(problem, None, ref))
        grid = " x ".join(f"{a}:{len(ref.coords[a])}" for a in ref.axes)
        err = ", ".join(f"{v:.2e}" for v in errs.values()) or "— (no exact solution)"
        rows.append(f"| {problem.name} | {grid} | {ref.info['order']} | {err} | {med:.2f} | "
                    f"{ref.info['method']} |")
        print(rows[-1], flush=True)
    return rows


def ns2d_c_rows() -> list[str]:
    """NS2d-C (lid-driven cavity): FD reference vs PINNacle's COMSOL nodes, and vs 257²."""
    problem = runpy.run_path(str(ROOT / "problems" / "ns2d_c.py"))["problem"]
    d = np.load(ROOT.parent / "shared" / "data" / "pinnacle_ns2d_c.npz")
    pts = {"x": d["x"], "y": d["y"]}
    # the lid corners (0, 1), (1, 1), where the pressure gradient is steepest
    away = (np.hypot(d["x"], d["y"] - 1) > 0.1) & (np.hypot(d["x"] - 1, d["y"] - 1) > 0.1)
    ns = (65, 129, 257)
    refs = {n: timed(lambda: pk.reference(problem, resolution=n), repeat=1)[:2] for n in ns}
    finest = refs[ns[-1]][0](pts)
    rel = lambda a, b, m=slice(None): np.linalg.norm((a - b)[m]) / np.linalg.norm(b[m])  # noqa: E731
    rows = ["| n × n | u vs COMSOL | v | p | p away from the lid corners | u, v, p vs 257² | "
            "gauge multiplier | seconds |", "|---|---|---|---|---|---|---|---|"]
    for n in ns:
        ref, sec = refs[n]
        got = ref(pts)
        self_err = ", ".join(f"{rel(got[f], finest[f]):.1e}" for f in "uvp") if n != ns[-1] else "—"
        rows.append(f"| {n} | {rel(got['u'], d['u']):.2e} | {rel(got['v'], d['v']):.2e} | "
                    f"{rel(got['p'], d['p']):.2e} | {rel(got['p'], d['p'], away):.2e} | {self_err} | "
                    f"{ref.info['gauge_multiplier']:.1e} | {sec:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--ns2d-c", action="store_true",
                    help="only the NS2d-C cross-check against PINNacle's COMSOL solution")
    a = ap.parse_args()
    if a.ns2d_c:
        ns2d_c_rows()
        return
    head = [f"Machine: {platform.machine()}, Python {platform.python_version()}", ""]
    text = head + ["## Problem library", ""] + problem_rows() + ["", "## Burgers resolution study", ""] + burgers_rows()
    if a.out:
        Path(a.out).write_text("# Finite-difference reference: accuracy and time\n\n"
                               "Command: `python scripts/reference_study.py --out docs/reference.md`\n\n"
                               + "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
