#!/usr/bin/env python3
"""Does the physics-informed loss help with few labeled samples? A 1-D steady flux problem
-(a u')' = 1 on (0, 1), u = 0 at both ends, a = exp(GRF) (Neumann modes, sigma 2, tau 3,
alpha 2), operator a -> u at 65 points. Trains the same FNO on ``--labeled`` solved samples
with physics_weight 0 and with each ``--weights`` value (plus ``--unlabeled`` sampled, unsolved
inputs for the residual), and prints the test relative L2 on 60 held-out samples.

    python scripts/operator_physics_study.py --labeled 10 --unlabeled 200 --weights 0.1,0.3
"""
import argparse
import sys
import time
from pathlib import Path

# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import pinnkit as pk  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labeled", type=int, default=10)
    ap.add_argument("--unlabeled", type=int, default=200)
    ap.add_argument("--weights", default="0.1,0.3")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default="runs/operator_physics_study")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = pk.coords("x")
    u, a = pk.field("u", x), pk.input_field("a", x)
    p = pk.Problem("flux_operator_1d", pk.Interval(x, 0, 1),
                   [pk.Eq(-pk.div([a * g for g in pk.grad(u)]), 1)], [pk.Dirichlet(u, 0)])
    grf = pk.GaussianRandomField(sigma=2.0, tau=3.0, alpha=2.0, boundary="neumann",
                                 transform=np.exp)
    n_test = 60
    ds = pk.dataset(p, {"a": grf}, n=args.labeled + n_test, resolution=65,
                    path=Path(args.out) / "data.h5", workers=0, quiet=True)
    xs = np.linspace(0, 1, 65)
    extra = {"a": np.stack([grf.sample({"x": xs}, {"x": (0, 1)}, 10_000 + i)
                            for i in range(args.unlabeled)])}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for w in [0.0] + [float(v) for v in args.weights.split(",")]:
            t0 = time.perf_counter()
            m = pk.train_operator(ds, modes=12, width=24, layers=3, epochs=args.epochs,
                                  batch_size=5, n_train=args.labeled, n_test=n_test, lr=3e-3,
                                  seed=seed, quiet=True, physics_weight=w, problem=p,
                                  physics_inputs=extra if w > 0 else None)
            print(f"seed {seed} physics_weight {w:g}: test l2re {m.info['test_l2re']['u']:.4e} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
