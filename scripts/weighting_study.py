#!/usr/bin/env python3
"""Loss-weighting schemes side by side: relative L2 error vs the exact solution after the same
Adam budget, per problem and seed (soft boundary/initial terms, so the weights matter).

    python scripts/weighting_study.py [--problems wave1d_c,helmholtz2d] [--schemes fixed,relobralo]
                                      [--seeds 0,1,2] [--steps 3000] [--threads 1]

Schemes run interleaved per seed (fixed, relobralo, ..., next seed); the table gives each
error and the median over seeds. Options are each problem file's, without hard constraints
and L-BFGS, with ``--set``-style overrides from --set KEY=VALUE.
"""
from __future__ import annotations

import argparse
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
from pinnkit.cli import parse_set  # noqa: E402


def _error(problem, sol, n: int = 101) -> float:
    axes = [np.linspace(*b, n) for b in zip(*problem.domain.bbox)]
    grids = np.meshgrid(*axes, indexing="ij")
    pts = {c.name: g for c, g in zip(problem.coords, grids)}
    errs = []
    for f in problem.fields:
        exact = problem.exact_function(f)(**pts)
        errs.append(np.linalg.norm(sol(pts)[f] - exact) / np.linalg.norm(exact))
    return float(np.mean(errs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="wave1d_c,helmholtz2d")
    ap.add_argument("--schemes", default="fixed,relobralo")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    schemes = a.schemes.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for name in a.problems.split(","):
        ns = runpy.run_path(str(ROOT / "problems" / f"{name}.py"))
        problem = ns["problem"]
        opts = {**ns.get("options", {}), "steps": a.steps, "lbfgs_steps": 0,
                "hard_constraints": False, "quiet": True, "threads": a.threads,
                "compile": True, "weight_every": 10, **parse_set(a.set)}
        errors = {s: [] for s in schemes}
        for seed in seeds:
            for scheme in schemes:
                t0 = time.perf_counter()
                sol = pk.train(problem, seed=seed, loss_weighting=scheme, **opts)
                err = _error(problem, sol)
                errors[scheme].append(err)
                print(f"{name} seed {seed} {scheme:<10} L2RE {err:.3e} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for scheme in schemes:
            rows.append((name, scheme, errors[scheme]))
    print(f"\n{a.steps} Adam steps, soft constraints, weight_every 10, seeds {a.seeds}")
    print("| problem | scheme | " + " | ".join(f"seed {s}" for s in seeds) + " | median |")
    print("|---|---|" + "---:|" * (len(seeds) + 1))
    for name, scheme, errs in rows:
        print(f"| {name} | {scheme} | " + " | ".join(f"{e:.2e}" for e in errs)
              + f" | {statistics.median(errs):.2e} |")


if __name__ == "__main__":
    main()
