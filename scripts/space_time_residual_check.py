#!/usr/bin/env python3
"""How small is the space-time physics loss on the true Burgers solutions, and where does it
pull? problems/burgers_operator.py, 4 samples solved at ``nx`` points and ``nt`` slices
t = s^p: prints √loss of `SpaceTimeResidual` on the reference solutions, the mean per-step
defect, and (with ``iters`` > 0) the physics-only minimiser found by L-BFGS from the truth
(and from u = 0), compared with the truth at t = 1 (docs/operators.md).

    python scripts/space_time_residual_check.py 128 33 2 300
"""
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import runpy  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import pinnkit as pk  # noqa: E402
from pinnkit.operator.physics import SpaceTimeResidual  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    nx, nt, pw, iters = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                         int(sys.argv[4]))
    ns = runpy.run_path(str(ROOT / "problems" / "burgers_operator.py"))
    p, smp = ns["problem"], ns["samplers"]
    times = np.linspace(0, 1, nt) ** pw
    ds = pk.dataset(p, smp, n=4, resolution=nx, path=Path(tempfile.mkdtemp()) / "d.h5",
                    workers=0, quiet=True, times=times)
    U = torch.tensor(np.asarray(ds.outputs["u"]), dtype=torch.float32)
    U0 = torch.tensor(np.asarray(ds.inputs["u0"]), dtype=torch.float32)
    R = SpaceTimeResidual(p, U.shape[1:], times)

    def root_loss(V):
        return np.sqrt(R.relative({"u": V}, {"u0": U0}).detach().numpy()).round(7)

    def final(V):
        return ((V[:, -1] - U[:, -1]).flatten(1).norm(dim=1)
                / U[:, -1].flatten(1).norm(dim=1)).numpy().round(6)

    print(f"nx {nx} nt {nt} p {pw}: truth sqrt(relative residual) per sample", root_loss(U))
    d = R.defects({"u": U}, {"u0": U0})
    dn = d.flatten(2).norm(dim=2) / U[:, 1:].flatten(2).norm(dim=2)
    print(" per-step defect / |u(t_n+1)|, mean over samples:",
          " ".join(f"{v:.1e}" for v in dn.mean(0)[::4].tolist()))
    if not iters:
        return
    for label, start in (("the truth", U.clone()), ("u=0", torch.zeros_like(U))):
        start[:, 0] = U0
        V = start.requires_grad_(True)
        opt = torch.optim.LBFGS([V], lr=1, max_iter=iters, history_size=50, tolerance_grad=1e-12,
                                tolerance_change=1e-14, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = R.relative({"u": V}, {"u0": U0}).sum()
            loss.backward()
            return loss
        t0 = time.perf_counter()
        opt.step(closure)
        print(f" physics-only minimiser from {label}: residual {root_loss(V)}, final-time rel "
              f"L2 to truth {final(V.detach())} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
