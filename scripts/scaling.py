#!/usr/bin/env python3
"""Data-parallel scaling on this machine (gloo ranks on CPU cores, one thread each).

    python scripts/scaling.py [--problem problems/burgers.py] [--points 8000] [--steps 40]
                              [--rounds 3] [--compile]

Configurations, run interleaved for --rounds rounds (A B C, A B C, ...), median of each:
  A  1 rank,  N points           (the baseline)
  B  2 ranks, 2N points (N each) (weak scaling: efficiency = t_A / t_B, ideal 1)
  C  1 rank,  2N points          (strong scaling: speed-up = t_C / t_B, ideal 2)
Per-step time is the Adam phase's wall time between its first and last logged step (warm-up
and compilation excluded). The all-reduce of one step's gradients is timed separately in the
2-rank run (the same flat-buffer collective the trainer uses).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def _options(points: int, steps: int, compile_: bool) -> dict:
    return dict(steps=steps, lbfgs_steps=0, width=50, depth=4, interior_points=points,
                boundary_points=points // 20, initial_points=points // 20, log_every=10,
                quiet=True, compile=compile_, seed=0)


def _per_step(sol) -> float:
    h = sol.history
    return (h["time"][-1] - h["time"][0]) / (h["step"][-1] - h["step"][0])


def _worker(rank, world, port, problem_file, options, out, whole_step=True):
    torch.set_num_threads(1)
    import pinnkit as pk
    if not whole_step:   # A/B: compiled loss, eager all-reduce and fused Adam
        from pinnkit.trainer import Trainer
        Trainer._make_step = lambda self: None
    from pinnkit.cli import load_problem_file
    from pinnkit.distributed import current
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    problem, _ = load_problem_file(problem_file)
    sol = pk.train(problem, **options)
    allreduce = float("nan")
    if world > 1:
        grads = [torch.randn_like(p) for p in sol.model.parameters()]
        shard = current()
        for _ in range(10):
            shard.all_reduce_many(grads)
        t0 = time.perf_counter()
        for _ in range(200):
            shard.all_reduce_many(grads)
        allreduce = (time.perf_counter() - t0) / 200
        dist.destroy_process_group()
    if rank == 0:
        np.save(os.path.join(out, "result.npy"), np.array([_per_step(sol), allreduce]))


def _run(world, problem_file, options, whole_step=True) -> tuple[float, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, port, problem_file, options, out, whole_step), nprocs=world,
                 join=True)
        per_step, allreduce = np.load(os.path.join(out, "result.npy"))
    return float(per_step), float(allreduce)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problem", default=str(ROOT / "problems" / "burgers.py"))
    ap.add_argument("--points", type=int, default=8000, help="interior points per rank (N)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action="store_true",
                    help="compile the whole Adam step (Taylor mode; the all-reduce in its graph)")
    ap.add_argument("--ab", action="store_true", help="with --compile: add D, 2 ranks on 2N "
                    "with the compiled loss and an eager all-reduce instead of the whole step")
    a = ap.parse_args()
    configs = {"A: 1 rank, N": (1, a.points, True), "B: 2 ranks, 2N": (2, 2 * a.points, True),
               "C: 1 rank, 2N": (1, 2 * a.points, True)}
    if a.ab:
        configs["D: B, loss-only compile"] = (2, 2 * a.points, False)
    times: dict = {k: [] for k in configs}
    allreduce: list = []
    for r in range(a.rounds):
        for name, (world, points, whole) in configs.items():
            per_step, ar = _run(world, a.problem, _options(points, a.steps, a.compile), whole)
            times[name].append(per_step)
            if world > 1 and whole:
                allreduce.append(ar)
            print(f"round {r + 1} {name}: {1e3 * per_step:.2f} ms/step", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nproblem {Path(a.problem).name}, 4 x 50 tanh, N = {a.points} interior points, "
          f"{a.steps} Adam steps, compile={a.compile}, {a.rounds} interleaved rounds (median ms/step, "
          "min-max)")
    for k, v in times.items():
        print(f"  {k:<24} {1e3 * med[k]:8.2f}  ({1e3 * min(v):.2f}-{1e3 * max(v):.2f})")
    print(f"  weak scaling efficiency  t_A / t_B = {med['A: 1 rank, N'] / med['B: 2 ranks, 2N']:.2f}")
    print(f"  strong scaling speed-up  t_C / t_B = {med['C: 1 rank, 2N'] / med['B: 2 ranks, 2N']:.2f}")
    if a.ab:
        print(f"  whole step vs loss-only compile (2 ranks): "
              f"{med['D: B, loss-only compile'] / med['B: 2 ranks, 2N']:.2f}x")
    print(f"  all-reduce of one step's gradients (2 ranks, gloo): "
          f"{1e3 * statistics.median(allreduce):.3f} ms")


if __name__ == "__main__":
    main()
