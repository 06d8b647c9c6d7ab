#!/usr/bin/env python3
"""Acceptance 3 of issue 19: does the physics-informed loss lower the Burgers test error with
100 labeled samples? problems/burgers_operator.py with space-time outputs: ``--slices`` time
slices t = s^grading (s uniform on [0, 1], graded towards t = 0 where the input's high modes
decay), ``--resolution`` points in x. Trains the same 2-D (t, x) FNO on ``--labeled`` solved
samples with physics_weight 0 and with each ``--weights`` value (the latter also on
``--unlabeled`` sampled, unsolved inputs) and prints the test relative L2 of u(., 1) on
``--test`` held-out samples. First prints the physics residual of the reference solutions.

    python scripts/burgers_physics_study.py --labeled 100 --unlabeled 400 --weights 1 --epochs 100
"""
import argparse
import runpy
import sys
import time
from pathlib import Path

# the checkout on the path instead of scripts/ (scripts/operator.py shadows the standard
# library's `operator`; see scripts/operator_physics_study.py)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import pinnkit as pk  # noqa: E402
from pinnkit.operator.physics import SpaceTimeResidual  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labeled", type=int, default=100)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--unlabeled", type=int, default=400)
    ap.add_argument("--weights", default="1")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--slices", type=int, default=33)
    ap.add_argument("--grading", type=float, default=2.0)
    ap.add_argument("--modes", type=int, default=12)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--padding", type=int, default=8)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default="runs/burgers_physics_study")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ns = runpy.run_path(str(ROOT / "problems" / "burgers_operator.py"))
    p, grf = ns["problem"], ns["samplers"]["u0"]
    times = np.linspace(0, 1, args.slices) ** args.grading
    t0 = time.perf_counter()
    ds = pk.dataset(p, {"u0": grf}, n=args.labeled + args.test, resolution=args.resolution,
                    path=Path(args.out) / f"data_{args.resolution}_{args.slices}.h5", times=times,
                    workers=0, quiet=True)
    print(f"dataset: {ds.n} samples, outputs {ds.outputs['u'].shape} "
          f"({time.perf_counter() - t0:.1f} s)")
    R = SpaceTimeResidual(p, ds.outputs["u"].shape[1:], times)
    U = torch.tensor(np.asarray(ds.outputs["u"][-args.test:]), dtype=torch.float32)
    U0 = torch.tensor(np.asarray(ds.inputs["u0"][-args.test:]), dtype=torch.float32)
    rel = np.sqrt(R.relative({"u": U}, {"u0": U0}).numpy())
    print(f"physics residual sqrt(relative) of the reference solutions: median "
          f"{np.median(rel):.2e}, max {rel.max():.2e}")
    xs = np.arange(args.resolution) / args.resolution
    extra = {"u0": np.stack([grf.sample({"x": xs}, {"x": (0, 1)}, 10_000 + i)
                             for i in range(args.unlabeled)])} if args.unlabeled else None
    for seed in [int(s) for s in args.seeds.split(",")]:
        for w in [0.0] + [float(v) for v in args.weights.split(",")]:
            t0 = time.perf_counter()
            m = pk.train_operator(ds, modes=args.modes, width=args.width, layers=4,
                                  epochs=args.epochs, batch_size=10, n_train=args.labeled,
                                  n_test=args.test, lr=1e-3, padding=args.padding, seed=seed,
                                  quiet=True, physics_weight=w, problem=p,
                                  physics_inputs=extra if w > 0 else None)
            pred = m({"u0": ds.inputs["u0"][-args.test:]})["u"]
            res = np.sqrt(R.relative({"u": torch.tensor(pred, dtype=torch.float32)},
                                     {"u0": U0}).numpy())
            print(f"seed {seed} physics_weight {w:g}: test l2re u(., 1) "
                  f"{m.info['test_l2re']['u']:.4e}, space-time "
                  f"{m.info['test_l2re_space_time']['u']:.4e}, residual of the prediction "
                  f"median {np.median(res):.2e} ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
