#!/usr/bin/env python3
"""Second-phase optimizers side by side at equal compute: Adam, then L-BFGS or a dense
quasi-Newton method (pinnkit.optim), on the same network and points, until a CPU-time budget.

    python scripts/optimizer_study.py [--problems burgers,poisson2d_c,wave1d_c]
        [--optimizers lbfgs,ssbfgs] [--seeds 0,1,2] [--budget 120] [--adam-steps 1000]
        [--set width=30 --set depth=3 ...] [--json runs.jsonl]

Each run starts from the problem file's options with the overrides; the budget is the
process's CPU time (`time.process_time`, one torch thread and Inductor compiling in-process),
which a second job on the machine inflates far less than wall time does, and it includes
compiling. Runs are interleaved (every optimizer for seed 0, then seed 1, ...). The error is
report.json's: relative L2 over the reference grid against the exact solution where the
problem has one, else against the finite-difference reference (solved once per problem,
outside the clock).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")   # compile time on this clock
ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import pinnkit as pk  # noqa: E402
from pinnkit.cli import load_problem_file, parse_set  # noqa: E402

# networks small enough for a dense inverse Hessian (pinnkit.optim.MAX_DENSE_PARAMETERS)
DEFAULT_SETS = {"poisson2d_c": {"width": 30, "depth": 3}, "wave1d_c": {"width": 30, "depth": 3}}


def _error(problem, sol, ref) -> tuple[float, str]:
    metrics = pk.compare(sol, ref, problem)
    key = "l2re_exact" if all("l2re_exact" in m for m in metrics.values()) else "l2re_reference"
    return float(statistics.mean(m[key] for m in metrics.values())), key.split("_")[1]


def run(problem, options: dict, seed: int, optimizer: str, budget: float) -> dict:
    start = time.process_time()
    wall = time.perf_counter()
    seen = {"second": None}

    def stop(phase, step, sol):
        if phase == "lbfgs" and seen["second"] is None:
            seen["second"] = time.process_time() - start
        return time.process_time() - start > budget
    sol = pk.train(problem, **{**options, "seed": seed, "optimizer": optimizer,
                                "callback": stop, "quiet": True})
    return {"cpu_s": round(time.process_time() - start, 1),
            "wall_s": round(time.perf_counter() - wall, 1),
            "second_phase_from_s": seen["second"],
            "iterations": max([s for s, p in zip(sol.history["step"], sol.history["phase"])
                               if p == 1], default=0), "final_loss": sol.final_loss,
            "messages": sol.messages, "sol": sol}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="burgers,poisson2d_c,wave1d_c")
    ap.add_argument("--optimizers", default="lbfgs,ssbfgs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", type=float, default=120.0, help="CPU seconds per run")
    ap.add_argument("--adam-steps", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for every problem")
    ap.add_argument("--json", help="append one JSON line per run to this file")
    a = ap.parse_args()
    optimizers = a.optimizers.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for name in a.problems.split(","):
        problem, file_options = load_problem_file(ROOT / "problems" / f"{name}.py")
        ref = pk.reference(problem)
        options = {**file_options, **DEFAULT_SETS.get(name, {}), "steps": a.adam_steps,
                   "lbfgs_steps": 10 ** 6, "log_every": 50, "threads": 1,
                   **parse_set(a.set)}
        errors = {o: [] for o in optimizers}
        for seed in seeds:
            for opt in optimizers:
                r = run(problem, options, seed, opt, a.budget)
                err, against = _error(problem, r.pop("sol"), ref)
                errors[opt].append(err)
                line = {"problem": name, "seed": seed, "optimizer": opt, "l2re": err,
                        "against": against, **r}
                print(f"{name} seed {seed} {opt:<9} L2RE {err:.3e} (vs {against}), "
                      f"{r['cpu_s']:.0f} CPU s, {r['wall_s']:.0f} s wall, "
                      f"{r['iterations']} iterations, loss {r['final_loss']:.2e}",
                      flush=True)
                if a.json:
                    with open(a.json, "a") as fh:
                        fh.write(json.dumps(line) + "\n")
        shown = {k: v for k, v in options.items() if k in ("width", "depth", "interior_points",
                                                            "boundary_points", "loss_weighting")}
        for opt in optimizers:
            rows.append((name, opt, errors[opt], shown))
    print(f"\n{a.adam_steps} Adam steps, then the optimizer until {a.budget:.0f} CPU s; seeds {a.seeds}")
    print("| problem | network, points | second phase | " + " | ".join(f"seed {s}" for s in seeds)
          + " | median |")
    print("|---|---|---|" + "---:|" * (len(seeds) + 1))
    for name, opt, errs, shown in rows:
        print(f"| {name} | {shown} | {opt} | " + " | ".join(f"{e:.2e}" for e in errs)
              + f" | {statistics.median(errs):.2e} |")


if __name__ == "__main__":
    main()
