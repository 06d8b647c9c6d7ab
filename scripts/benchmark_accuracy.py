#!/usr/bin/env python3
"""The PINNacle problems with each file's recipe, next to the published errors.

    python scripts/benchmark_accuracy.py [name ...] [--seed S] [--threads N] [--out docs/accuracy.md]
                                         [--recipe NAME] [--set KEY=VALUE ...]

Each problem trains with its file's `recipes["accurate"]` over its `options` (the recipe of
docs/accuracy.md's figures; `--recipe default` takes the file's short default `options`) and is scored by
relative L2 error: against the exact solution where there is one, else against our
finite-difference reference; Poisson2d-C and NS2d-C are also scored against PINNacle's COMSOL
solutions (../shared/data/pinnacle_*.npz) and the FD reference is cross-checked against them.
Problems with several fields are scored on all fields stacked, and per field.
Allen-Cahn and Burgers are scored on the published data grids (../shared/data).
``--set KEY=VALUE`` overrides an option of every recipe (converted as by solve.py's --set), e.g.
``--set loss_weighting=ntk --set steps=2000`` to compare a toolbox option across the library.
"""
from __future__ import annotations

import argparse
import json
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
from pinnkit.cli import UsageError, parse_set  # noqa: E402
from pinnkit.metrics import evaluate, l2re, metrics_of, reference_errors  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# PINNacle (NeurIPS 2024) published L2RE: vanilla PINN, best method (../shared/BENCHMARKS.md)
PUBLISHED = {
    "poisson2d_c": ("6.94e-1", "1.23e-2 (NTK)", 1e-2),
    "wave1d_c": ("5.88e-1", "9.79e-2 (NTK)", 1e-2),
    "heat2d_ms": ("see paper", "see paper", 1e-2),
    "burgers": ("1.45e-2", "1.33e-2", 5e-4),
    "allen_cahn": ("—", "5.37e-5 (JAX-PI, GPU, 1e5+ steps)", 1e-3),
    "ns2d_c": ("4.70e-2", "3.60e-2 (LAAF)", 1e-2),
}
COMSOL = {"poisson2d_c": "pinnacle_poisson2d_c.npz", "ns2d_c": "pinnacle_ns2d_c.npz"}


def finite_l2re(a, b) -> float:
    """`l2re` over the points where both are defined (the FD reference is NaN off its grid)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return l2re(a[ok], b[ok])


def run(name: str, seed: int, smoke: bool = False, overrides: dict | None = None,
        recipe: str = "accurate") -> dict:
    ns = runpy.run_path(str(ROOT / "problems" / f"{name}.py"))
    recipes = ns.get("recipes", {})
    if recipe != "default" and recipe not in recipes:
        raise pk.OptionsError(f"problems/{name}.py has no recipe {recipe!r}; it has "
                              + ", ".join(["default", *recipes]))
    chosen = recipes.get(recipe, {}) if recipe != "default" else {}
    problem, opts = ns["problem"], {**ns.get("options", {}), **chosen, **(overrides or {})}
    if smoke:   # check the scoring path end to end in seconds
        opts.update(steps=20, lbfgs_steps=2)
    t0 = time.perf_counter()
    sol = pk.train(problem, seed=seed, quiet=True, **opts)
    row = {"problem": name, "train_s": time.perf_counter() - t0,
           "steps": f"{opts.get('steps')} Adam + {opts.get('lbfgs_steps')} L-BFGS", "options": opts,
           "messages": sol.messages}
    ref = None
    try:
        ref = pk.reference(problem)
    except pk.PinnkitError as exc:
        row["ref_note"] = str(exc)
    ev = evaluate(problem, sol, ref)
    metrics = metrics_of(ev)
    m = metrics[list(problem.fields)[0]]
    row["l2re"], row["against"] = (m["l2re_exact"], "exact") if "l2re_exact" in m else \
        (m.get("l2re_reference"), "FD reference")
    if len(problem.fields) > 1 and ref is not None:
        # every field, and all fields stacked (PINNacle's score of a multi-output problem)
        pts = ref.points()
        pinn, fd = sol(pts), ref.fields
        row["fields"] = {f: finite_l2re(pinn[f], fd[f]) for f in problem.fields}
        row["l2re"] = finite_l2re(np.stack([pinn[f] for f in problem.fields]),
                                  np.stack([fd[f] for f in problem.fields]))
    if ref is not None and reference_errors(ev):
        row["fd_vs_exact"] = reference_errors(ev)[list(problem.fields)[0]]
    if name in ("burgers", "allen_cahn"):
        d = np.load(DATA / ("burgers_shock.npz" if name == "burgers" else "allen_cahn.npz"))
        T, X = np.meshgrid(d["t"], d["x"], indexing="ij")
        row["l2re"] = finite_l2re(sol({"x": X, "t": T})["u"], d["u"])
        row["against"] = "exact (data grid)" if name == "burgers" else "Raissi data (spectral)"
    if name in COMSOL:
        d = np.load(DATA / COMSOL[name])
        pts = {"x": d["x"], "y": d["y"]}
        pinn, fd = sol(pts), ref(pts)
        stack = lambda v: np.stack([v[f] for f in problem.fields])  # noqa: E731
        row["l2re_comsol"] = finite_l2re(stack(pinn), stack(d))
        row["fd_vs_comsol"] = finite_l2re(stack(fd), stack(d))
        if len(problem.fields) > 1:
            row["fields_comsol"] = {f: finite_l2re(pinn[f], d[f]) for f in problem.fields}
            row["fd_vs_comsol_fields"] = {f: finite_l2re(fd[f], d[f]) for f in problem.fields}
    return row


def table(rows: list) -> list[str]:
    out = ["| problem | PINNacle vanilla | PINNacle best | target | ours (L2RE) | against | time (s) | steps |",
           "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        van, best, target = PUBLISHED[r["problem"]]
        extra = f"; vs COMSOL {r['l2re_comsol']:.2e}" if "l2re_comsol" in r else ""
        if "fields" in r:
            extra += " (" + ", ".join(f"{f} {e:.1e}" for f, e in r["fields"].items()) + ")"
        ok = "" if r["l2re"] <= target else " (miss)"
        out.append(f"| {r['problem']} | {van} | {best} | ≤ {target:g} | {r['l2re']:.2e}{ok}{extra} | "
                   f"{r['against']} | {r['train_s']:.0f} | {r['steps']} |")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(PUBLISHED))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out")
    p.add_argument("--smoke", action="store_true", help="20 Adam + 2 L-BFGS steps (test the script)")
    p.add_argument("--recipe", default="accurate",
                   help="the files' recipe over their options (default: accurate; `default`: the options)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe option in every problem (as solve.py's --set)")
    args = p.parse_args()
    try:
        overrides = parse_set(args.set)
    except UsageError as exc:
        p.error(str(exc))
    unknown = [n for n in args.names if n not in PUBLISHED]
    if unknown:
        p.error(f"unknown problem(s) {', '.join(unknown)}; choose from {', '.join(PUBLISHED)}")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.names:
        try:
            rows.append(run(name, args.seed, args.smoke, overrides, args.recipe))
        except pk.PinnkitError as exc:     # e.g. a bad --set value: one line, status 2
            p.exit(2, f"benchmark_accuracy.py: {name}: {exc}\n")
        print(json.dumps(rows[-1], default=str), file=sys.stderr, flush=True)
    text = "\n".join(table(rows))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
