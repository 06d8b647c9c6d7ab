"""Error vs wall time of a pinnkit training on Burgers (problems/burgers.py), one thread.

    python scripts/time_to_accuracy.py --seeds 0,1,2 --budget 300 [--set optimizer=ssbfgs ...]
    python scripts/time_to_accuracy.py --no-run --curves a.jsonl b.jsonl --plot curves.png

The error (relative L2 on the 256 x 100 grid of burgers_shock.npz, Raissi 2019) is evaluated
in the training callback every ``log_every`` steps; evaluation time is excluded from the clock,
compile time included. Prints one JSON line per run: the times at which 4.7e-3 (DeepXDE's
median), 1e-3 and 1e-4 were first reached, the final error and the trajectory.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
import typing
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
import pinnkit as pk                      # noqa: E402
from pinnkit.cli import _convert, load_problem_file  # noqa: E402
# Raissi's 256 x 100 grid, from scripts/bench.py (loaded by path: scripts/ is off sys.path)
burgers_grid = runpy.run_path(str(ROOT / "scripts" / "bench.py"))["burgers_grid"]

TARGETS = (4.7e-3, 1e-3, 1e-4)
CLOCK = [time.perf_counter]     # --clock cpu: time.process_time


def run(options: dict, seed: int, budget: float, stop_at: float | None,
        recipe: str | None = None) -> dict:
    X, T, ref = burgers_grid()
    problem, file_options = load_problem_file(ROOT / "problems" / "burgers.py", recipe)
    st = {"eval": 0.0, "t0": CLOCK[0](), "traj": [], "hits": {}}

    def cb(phase, step, sol):
        t0 = CLOCK[0]()
        err = float(np.linalg.norm(sol({"x": X, "t": T})["u"] - ref) / np.linalg.norm(ref))
        st["eval"] += CLOCK[0]() - t0
        elapsed = CLOCK[0]() - st["t0"] - st["eval"]
        st["traj"].append((round(elapsed, 2), phase, step, err))
        for tg in TARGETS:
            if err <= tg and tg not in st["hits"]:
                st["hits"][tg] = round(elapsed, 2)
        return elapsed > budget or (stop_at is not None and err <= stop_at)
    opts = {**file_options, **options, "quiet": True, "seed": seed}
    sol = pk.train(problem, callback=cb, **opts)
    ran = CLOCK[0]() - st["t0"] - st["eval"]
    err = float(np.linalg.norm(sol({"x": X, "t": T})["u"] - ref) / np.linalg.norm(ref))
    return {"seed": seed, "options": options, "ran_s": round(ran, 2), "final_error": err,
            "reached_s": {f"{k:g}": v for k, v in st["hits"].items()},
            "messages": sol.messages, "trajectory": st["traj"]}


def plot(results: list, path: str) -> None:
    """Error vs wall time, one line per run, one colour per configuration."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours: dict = {}
    for r in results:
        label = r.get("label", "?")
        first = label not in colours
        c = colours.setdefault(label, f"C{len(colours)}")
        tr = r["trajectory"]
        ax.semilogy([p[0] for p in tr], [p[3] for p in tr], color=c, lw=1,
                    label=label if first else None)
    for tg in TARGETS:
        ax.axhline(tg, color="0.6", lw=0.7, ls="--")
    ax.set_xlabel("wall time (s), one thread, compile time included")
    ax.set_ylabel("relative L2 error vs exact")
    ax.set_title("Burgers: error vs wall time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training per run")
    ap.add_argument("--stop-at", type=float, default=None, help="stop a run at this error")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--label", default=None, help="name of this configuration in the output")
    ap.add_argument("--plot", default=None, metavar="PNG",
                    help="draw error vs wall time of the runs (and of --curves) into PNG")
    ap.add_argument("--curves", nargs="*", default=[], help="JSON-lines outputs of earlier runs")
    ap.add_argument("--no-run", action="store_true", help="only plot --curves")
    ap.add_argument("--recipe", default=None, help="a recipe of problems/burgers.py (accurate)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or this process's CPU time (one thread; robust to other "
                         "jobs on the machine; Inductor then compiles in-process, on the clock)")
    a = ap.parse_args()
    if a.clock == "cpu":
        CLOCK[0] = time.process_time
        os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)
    from pinnkit.trainer import TrainOptions
    types = typing.get_type_hints(TrainOptions)
    options = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        options[k] = _convert(k, v, types)
    results = []
    for path in a.curves:
        results += [json.loads(line) for line in Path(path).read_text().splitlines()
                    if line.startswith("{")]
    for seed in ([] if a.no_run else [int(s) for s in a.seeds.split(",")]):
        r = run(options, seed, a.budget, a.stop_at, a.recipe)
        r["clock"] = a.clock
        r["label"] = a.label or " ".join(([f"--recipe {a.recipe}"] if a.recipe else []) + a.set) \
            or "file defaults"
        results.append(r)
        print(json.dumps(r), flush=True)
    if a.plot:
        plot(results, a.plot)


if __name__ == "__main__":
    main()
