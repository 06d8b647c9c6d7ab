"""Compile cost vs per-step saving of the Adam phase on Burgers (problems/burgers.py with
4 x 20 and 2540 interior points), one thread; the measurement behind compile="auto".

    python scripts/compile_cost.py eager 400
    TORCHINDUCTOR_CACHE_DIR=/tmp/fresh python scripts/compile_cost.py compiled 400   # cold cache
    TORCHINDUCTOR_CACHE_DIR=/tmp/fresh python scripts/compile_cost.py compiled 400   # warm cache

Prints the time to the 10th step (compile time included) and ms per step over the second half.
"""
import json
import sys
import time
from pathlib import Path

import torch

# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pinnkit as pk                          # noqa: E402
from pinnkit.cli import load_problem_file    # noqa: E402

torch.set_num_threads(1)
mode, steps = sys.argv[1], int(sys.argv[2])
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
problem, opts = load_problem_file(Path(__file__).resolve().parents[1] / "problems" / "burgers.py")
opts = {**opts, "width": 20, "depth": 4, "interior_points": 2540, "steps": steps, "lbfgs_steps": 0,
        "log_every": 10, "quiet": True, "compile": mode == "compiled", "optimizer": "lbfgs", **extra}
t0 = time.perf_counter()
sol = pk.train(problem, **opts)
wall = time.perf_counter() - t0
h = sol.history
t = dict(zip(h["step"], h["time"]))
first = t[10]
per = (t[steps] - t[steps // 2]) / (steps - steps // 2)
print(json.dumps({"mode": mode, "steps": steps, "wall": round(wall, 2), "t_first10": round(first, 3),
                  "ms_per_step": round(per * 1e3, 3), "loss": sol.final_loss, **extra}), flush=True)
