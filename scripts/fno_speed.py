"""Time one FNO training step (forward + backward + Adam) and a forward pass, this checkout's
`pinnkit.operator.fno` against another version of that file, interleaved and repeated.

    OMP_NUM_THREADS=1 python scripts/fno_speed.py --baseline OLD_FNO.py [--repeats 5]

OLD_FNO.py: e.g. ``git show REV:pinnkit/operator/fno.py > /tmp/fno_old.py``. Cases: the Darcy
FNO (modes 12, width 32, 4 layers, padding 4 / 8) at 43 x 43 and 85 x 85, and the Burgers FNO
(modes 16, width 64, 4 layers) at 1024, batch 20. Prints the median seconds of each and the
ratio baseline / this checkout.
"""
import argparse
import importlib.util
import statistics
import time

import torch

from pinnkit.operator import fno as current

CASES = {  # name: (FNO keyword arguments, grid points per axis, padding)
    "darcy 43x43": (dict(modes=12, width=32, layers=4, dim=2), 43, 4),
    "darcy 85x85": (dict(modes=12, width=32, layers=4, dim=2), 85, 8),
    "burgers 1024": (dict(modes=16, width=64, layers=4, dim=1), 1024, 0),
}


def load(path):
    spec = importlib.util.spec_from_file_location("fno_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def step_timer(mod, kw, n, pad, batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = mod.FNO(1, 1, padding=pad, **kw)
    grid = [torch.linspace(0, 1, n)] * kw["dim"]
    a = torch.randn(batch, 1, *(n,) * kw["dim"], generator=gen)
    u = torch.randn(batch, 1, *(n,) * kw["dim"], generator=gen)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def train_step():
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = ((net(a, grid) - u) ** 2).mean()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    def forward():
        t0 = time.perf_counter()
        with torch.no_grad():
            net(a, grid)
        return time.perf_counter() - t0
    return train_step, forward


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="another version of pinnkit/operator/fno.py")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args()
    mods = {"baseline": load(args.baseline), "this": current}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}")
    print("| case | baseline step s | this step s | ratio | baseline fwd s | this fwd s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.cases.split(","):
        kw, n, pad = CASES[name]
        timers = {k: step_timer(m, kw, n, pad, args.batch) for k, m in mods.items()}
        for t in timers.values():     # warm-up (allocations, cached DFT matrices)
            t[0](), t[1]()
        res = {k: ([], []) for k in mods}
        for _ in range(args.repeats):  # interleaved: a drift of the machine hits both alike
            for k, (step, fwd) in timers.items():
                res[k][0].append(step())
                res[k][1].append(fwd())
        med = {k: [statistics.median(v) for v in r] for k, r in res.items()}
        b, c = med["baseline"], med["this"]
        print(f"| {name} | {b[0]:.3f} | {c[0]:.3f} | {b[0] / c[0]:.1f}x | {b[1]:.3f} | "
              f"{c[1]:.3f} | {b[1] / c[1]:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
