#!/usr/bin/env python3
"""Speed benchmarks: pinnkit's derivative engines vs nested autograd vs DeepXDE, and the FD reference.

    pip install -e ".[bench]"                       # deepxde 1.15 (optional)
    python scripts/bench.py [--parts a,b,c,d] [--rounds 5] [--out docs/benchmarks.md]

(a)+(b) per-step training time (Adam step: loss, backward, update), float32, on identical
    networks and point counts, for Burgers (2 inputs, 3 x 20 tanh, 2540 interior + 80 boundary
    + 160 initial points), a 2-D Poisson/Laplacian problem (4 x 50 tanh, 20,000 points) and a
    3-D one (4 x 50 tanh, 20,000 points): pinnkit with nested autograd, with Taylor mode
    (eager), with Taylor mode compiled (``compile=True``), and DeepXDE (torch backend) when
    installed. All configurations are built first, warmed up, then timed interleaved
    (A B C D, A B C D, ...) for ``--rounds`` rounds; the table gives the median ms/step and
    the min-max spread, and ratios are of medians from the same run. Peak memory of a step
    (resident-set growth over the level after a warm-up step, in a fresh subprocess per
    configuration) is reported too.
(c) time to reach a Burgers error (default 4.7e-3, DeepXDE's reported median) on the
    256 x 100 grid of burgers_shock.npz: pinnkit with problems/burgers.py's options (with
    --accurate its recipe "accurate", with --fast-burgers FAST_BURGERS eager and compiled;
    compile time included), DeepXDE with its example's settings (15,000 Adam steps at lr 1e-3,
    then L-BFGS) and pinnkit's default PINN in JAX when installed. Evaluation time is excluded
    from every clock. Each run is capped (--budget). The runs are scripts/time_to_accuracy.py's
    (one implementation); --plot PNG runs them to the budget and draws error vs time.
(d) finite-difference reference time vs resolution for Burgers (order 4) with its error.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")
if "--clock=cpu" in sys.argv or any(a == "--clock" and b == "cpu" for a, b in zip(sys.argv, sys.argv[1:])):
    # Inductor compiles in this process, so that --clock cpu counts the compile time
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import pinnkit as pk  # noqa: E402

CASES = {
    "burgers": dict(width=20, depth=3, interior_points=2540, boundary_points=80, initial_points=160),
    "poisson2d": dict(width=50, depth=4, interior_points=20000, boundary_points=500),
    "laplace3d": dict(width=50, depth=4, interior_points=20000, boundary_points=500),
}
# pinnkit's Burgers recipe for time-to-accuracy: problems/burgers.py (hard constraints) on
# DeepXDE's point count with a 4 x 20 network, a short Adam phase, then L-BFGS in float32 (about
# half the time per iteration of float64 here; seed 2 reached 4.7e-3 at 15.7 s this way, 34.1 s
# with 2000 Adam steps and float64 L-BFGS)
FAST_BURGERS = {"interior_points": 2540, "width": 20, "depth": 4, "steps": 1000, "lbfgs_steps": 10000,
                "lbfgs_dtype": "float32", "log_every": 50}
PINNKIT = {"nested autograd": dict(engine="autograd", compile=False),
           "taylor": dict(engine="taylor", compile=False),
           "taylor + compile": dict(engine="auto", compile=True)}
AUTOTUNE = {"taylor + compile (max-autotune)": dict(engine="auto", compile="max-autotune-no-cudagraphs")}


def shared_data(name: str) -> Path:
    return ROOT.parent / "shared" / "data" / name


# --------------------------------------------------------------------------- problems

def problem_of(case: str):
    if case == "burgers":
        x, t = pk.coords("x t")
        u = pk.field("u", x, t)
        return pk.Problem(
            "burgers", pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 0.99),
            [u.diff(t) + u * u.diff(x) - 0.01 / pk.pi * u.diff(x, 2)],
            [pk.Dirichlet(u, 0, on="boundary"), pk.Initial(u, -pk.sin(pk.pi * x))])
    if case == "poisson2d":
        x, y = pk.coords("x y")
        u = pk.field("u", x, y)
        return pk.Problem("poisson2d", pk.Rectangle((x, y), (0, 0), (1, 1)),
                          [-pk.laplacian(u) - 2 * pk.pi**2 * pk.sin(pk.pi * x) * pk.sin(pk.pi * y)],
                          [pk.Dirichlet(u, 0, on="boundary")])
    x, y, z = pk.coords("x y z")
    u = pk.field("u", x, y, z)
    return pk.Problem("laplace3d", pk.Box((x, y, z), (0, 0, 0), (1, 1, 1)), [pk.laplacian(u)],
                      [pk.Dirichlet(u, x * y + z, on="boundary")])


def pinnkit_step(case: str, options: dict):
    from pinnkit.trainer import TrainOptions, Trainer
    # no log, checkpoint or end inside a timing: the steps run as the training loop runs them
    # (several per compiled call where it can, `Trainer.adam_steps`)
    opts = TrainOptions.from_kwargs(**CASES[case], **options, quiet=True, seed=0,
                                    steps=10**9, log_every=10**9)
    tr = Trainer(problem_of(case), opts)

    def run(n: int) -> None:
        tr.adam_steps(n)
    return run


def _dde_burgers(dde, n_domain: int, n_boundary: int, n_initial: int):
    """DeepXDE's Burgers example data (its examples/pinn_forward/Burgers.py)."""
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 0.99))

    def pde(x, y):
        return (dde.grad.jacobian(y, x, i=0, j=1) + y * dde.grad.jacobian(y, x, i=0, j=0)
                - 0.01 / np.pi * dde.grad.hessian(y, x, i=0, j=0))
    bcs = [dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on: on),
           dde.icbc.IC(geom, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on: on)]
    return dde.data.TimePDE(geom, pde, bcs, num_domain=n_domain, num_boundary=n_boundary,
                            num_initial=n_initial)


def deepxde_step(case: str):
    import deepxde as dde
    dde.config.set_random_seed(0)
    c = CASES[case]
    layers = [c["width"]] * c["depth"]
    if case == "burgers":
        data = _dde_burgers(dde, c["interior_points"], c["boundary_points"], c["initial_points"])
        n_in = 2
    else:
        d = 2 if case == "poisson2d" else 3
        geom = dde.geometry.Rectangle([0, 0], [1, 1]) if d == 2 else dde.geometry.Cuboid([0, 0, 0], [1, 1, 1])

        def pde(x, y):
            lap = sum(dde.grad.hessian(y, x, i=i, j=i) for i in range(d))
            if d == 2:
                return -lap - 2 * np.pi**2 * torch.sin(np.pi * x[:, 0:1]) * torch.sin(np.pi * x[:, 1:2])
            return lap
        g = (lambda x: 0) if d == 2 else (lambda x: x[:, 0:1] * x[:, 1:2] + x[:, 2:3])
        data = dde.data.PDE(geom, pde, [dde.icbc.DirichletBC(geom, g, lambda _, on: on)],
                            num_domain=c["interior_points"], num_boundary=c["boundary_points"])
        n_in = d
    net = dde.nn.FNN([n_in] + layers + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    model.train(iterations=1, display_every=10**9, verbose=0)

    def run(n: int) -> None:   # DeepXDE's own loop, n iterations per call
        model.train(iterations=n, display_every=10**9, verbose=0)
    return run


def jax_step(case: str):
    """The same Burgers PINN in JAX, written as its users write it: the network on one point,
    derivatives by per-point ``jax.grad``, ``vmap`` over the points, and the whole Adam step
    (loss, gradients, update; torch's Adam formulas) under one ``jax.jit``. Same widths,
    point counts, soft boundary/initial terms and float32 as the pinnkit configurations."""
    if case != "burgers":
        raise ValueError("the JAX comparison covers Burgers only")
    import jax
    import jax.numpy as jnp
    c = CASES[case]
    sizes = [2] + [c["width"]] * c["depth"] + [1]
    key = jax.random.PRNGKey(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):       # Glorot normal, zero biases
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (a, b), jnp.float32) * np.sqrt(2.0 / (a + b)),
                       jnp.zeros((b,), jnp.float32)))
    rng = np.random.default_rng(0)

    def pts(n, x=None, t=None):
        xs = rng.uniform(-1, 1, n) if x is None else x
        ts = rng.uniform(0, 0.99, n) if t is None else t
        return jnp.asarray(xs, jnp.float32), jnp.asarray(ts, jnp.float32)
    nb = c["boundary_points"]
    X, T = pts(c["interior_points"])
    XB, TB = pts(nb, x=np.where(np.arange(nb) % 2 == 0, -1.0, 1.0))
    XI, TI = pts(c["initial_points"], t=np.zeros(c["initial_points"]))

    def u(p, x, t):
        h = jnp.stack([x, t])
        for W, b in p[:-1]:
            h = jnp.tanh(h @ W + b)
        W, b = p[-1]
        return (h @ W + b)[0]
    u_x = jax.grad(u, 1)
    u_t = jax.grad(u, 2)
    u_xx = jax.grad(u_x, 1)

    def residual(p, x, t):
        return u_t(p, x, t) + u(p, x, t) * u_x(p, x, t) - 0.01 / np.pi * u_xx(p, x, t)

    def loss(p, X, T, XB, TB, XI, TI):
        r = jax.vmap(residual, (None, 0, 0))(p, X, T)
        ub = jax.vmap(u, (None, 0, 0))(p, XB, TB)
        ui = jax.vmap(u, (None, 0, 0))(p, XI, TI) + jnp.sin(np.pi * XI)
        return jnp.mean(r * r) + jnp.mean(ub * ub) + jnp.mean(ui * ui)

    @jax.jit
    def step(p, m, v, k, X, T, XB, TB, XI, TI):
        return jax_adam(p, m, v, k, jax.grad(loss)(p, X, T, XB, TB, XI, TI), 1e-3)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]

    def run(n: int) -> None:
        p, m, v, k = state
        for _ in range(n):
            p, m, v, k = step(p, m, v, k, X, T, XB, TB, XI, TI)
        jax.block_until_ready(p)
        state[:] = [p, m, v, k]
    return run


def jax_adam(p, m, v, k, g, lr: float):
    """One Adam update of the pytree ``p`` (torch's Adam formulas; m, v the moments, k the
    step count): (p, m, v, k) after it. Traced inside the caller's ``jax.jit``."""
    import jax
    import jax.numpy as jnp
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
    v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
    k = k + 1
    p = jax.tree_util.tree_map(
        lambda p_, m_, v_: p_ - lr / (1 - b1 ** k) * m_ / (jnp.sqrt(v_) / jnp.sqrt(1 - b2 ** k) + eps),
        p, m, v)
    return p, m, v, k


def xla_one_thread() -> None:
    """JAX (XLA's CPU client) on one thread; only effective before JAX is imported."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()


def have_jax() -> bool:
    try:
        import jax  # noqa: F401
        return True
    except Exception:
        return False


def have_deepxde() -> bool:
    try:
        import deepxde  # noqa: F401
        return True
    except Exception:
        return False


# --------------------------------------------------------------------------- (a) + (b)

def per_step(cases: list, rounds: int, steps: dict, with_dde: bool, clock=time.perf_counter) -> list:
    rows = []
    for case in cases:
        configs = {}
        for label, o in PINNKIT.items():
            configs[f"pinnkit {label}"] = pinnkit_step(case, o)
        if with_dde:
            configs["DeepXDE 1.15"] = deepxde_step(case)
        if case == "burgers" and have_jax():
            import jax
            configs[f"JAX {jax.__version__} (jit, vmap of per-point grad)"] = jax_step(case)
        n = steps[case]
        for label, fn in configs.items():      # warm-up (compilation happens here)
            t0 = time.perf_counter()
            fn(max(3, n // 5))
            print(f"  [{case}] {label}: warm-up {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        times: dict = {k: [] for k in configs}
        for r in range(rounds):
            for label, fn in configs.items():
                t0 = clock()
                fn(n)
                times[label].append((clock() - t0) / n * 1e3)
            print(f"  [{case}] round {r + 1}/{rounds}: " +
                  ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items()), file=sys.stderr)
        for label, v in times.items():
            rows.append({"case": case, "config": label, "median_ms": statistics.median(v),
                         "min_ms": min(v), "max_ms": max(v),
                         "peak_mb": peak_memory(case, label)})
    return rows


def peak_memory(case: str, label: str) -> float | None:
    """Peak resident-set growth (MB) of 3 steps over the resident set after one warm-up step,
    in a fresh subprocess (Linux: VmHWM reset through /proc/self/clear_refs)."""
    cmd = [sys.executable, __file__, "--memory", case, label]
    try:
        # a fixed mmap threshold makes glibc return every large tensor's memory on free, so
        # the resident set follows live memory
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        return float(r.stdout.strip().splitlines()[-1])
    except Exception:
        return None


def memory_child(case: str, label: str) -> None:
    if label == "DeepXDE 1.15":
        fn = deepxde_step(case)
    else:
        fn = pinnkit_step(case, {**PINNKIT, **AUTOTUNE}[label.removeprefix("pinnkit ")])
    fn(1)                                       # warm-up (compilation, caches)
    base = _status_kb("VmRSS")
    try:                                        # reset the peak to the current resident set
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    fn(3)
    print((_status_kb("VmHWM") - base) / 1024)


def _status_kb(key: str) -> int:
    """VmRSS / VmHWM of this process from /proc (ru_maxrss would include the parent's peak,
    which Linux carries across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def per_step_table(rows: list) -> list[str]:
    out = ["| case | configuration | ms/step (median) | min–max | vs DeepXDE | vs nested autograd | peak RSS growth (MB) |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        sub = {r["config"]: r for r in rows if r["case"] == case}
        dde = sub.get("DeepXDE 1.15", {}).get("median_ms")
        nested = sub["pinnkit nested autograd"]["median_ms"]
        for label, r in sub.items():
            vs_d = f"{dde / r['median_ms']:.2f}×" if dde else "—"
            mem = f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "—"
            out.append(f"| {case} | {label} | {r['median_ms']:.2f} | {r['min_ms']:.2f}–{r['max_ms']:.2f} | "
                       f"{vs_d} | {nested / r['median_ms']:.2f}× | {mem} |")
    return out


# --------------------------------------------------------------------------- (c)

# the clock of part c: wall time, or the process's CPU time (--clock cpu)
CLOCK = [time.perf_counter]


def burgers_grid():
    d = np.load(shared_data("burgers_shock.npz"))
    T, X = np.meshgrid(d["t"].ravel(), d["x"].ravel(), indexing="ij")
    return X, T, d["u"]


def time_to_accuracy_runs(seeds: list, budget: float, stop_at: float | None, fast: bool,
                         accurate: bool, with_dde: bool) -> list:
    """Part c's runs, per seed: pinnkit's default (and with ``fast`` FAST_BURGERS eager and
    compiled, with ``accurate`` the file's recipe "accurate"), DeepXDE's example and the JAX
    PINN when installed. The runners and their records (trajectory of (time, phase, step,
    error), first hits, final error) are scripts/time_to_accuracy.py's, on this clock."""
    tta = runpy.run_path(str(ROOT / "scripts" / "time_to_accuracy.py"))
    tta["CLOCK"][0] = CLOCK[0]
    results = []
    for seed in seeds:
        runs = [("pinnkit default", lambda: tta["run"]({}, seed, budget, stop_at))]
        for c in ((False, True) if fast else ()):
            runs.append((f"pinnkit FAST_BURGERS, compile={c}",
                         lambda c=c: tta["run"]({**FAST_BURGERS, "compile": c}, seed, budget, stop_at)))
        if accurate:
            runs.append(("pinnkit --recipe accurate",
                         lambda: tta["run"]({}, seed, budget, stop_at, "accurate")))
        if with_dde:
            runs.append((None, lambda: tta["run_deepxde"](seed, budget, stop_at)))
        if have_jax():
            runs.append((None, lambda: tta["run_jax"](seed, budget, stop_at)))
        for label, fn in runs:
            r = fn()
            r["clock"] = "cpu" if CLOCK[0] is time.process_time else "wall"
            r["label"] = label or tta["default_label"](r["solver"], r["options"])
            results.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    return results


def time_to_accuracy_table(results: list, target: float) -> list[str]:
    first_hit = runpy.run_path(str(ROOT / "scripts" / "time_to_accuracy.py"))["first_hit"]
    lines = ["| solver | seed | reached at (s) | phase, step | last error |", "|---|---:|---:|---|---:|"]
    hits = {}
    for r in results:
        hit = hits[r["label"], r["seed"]] = first_hit(r, target)
        lines.append(f"| {r['label']} | {r['seed']} | {hit[0]:.1f} | {hit[1]} {hit[2]} | {r['final_error']:.2e} |"
                     if hit else f"| {r['label']} | {r['seed']} | not reached (stopped after {r['ran_s']:.0f} s)"
                     f" | — | {r['final_error']:.2e} |")
    med = {}
    for label in dict.fromkeys(r["label"] for r in results):
        med[label] = statistics.median([h[0] if h else float("inf")
                                        for (lb, _), h in hits.items() if lb == label])
    lines += ["", "Median time to target over the seeds (not reached = ∞): " +
              "; ".join(f"{k}: {v:.1f} s" for k, v in med.items())]
    dde = next((r["label"] for r in results if r["solver"] == "deepxde"), None)
    for (label, seed), h in hits.items():
        d = hits.get((dde, seed))
        if label != dde and d and h:
            lines.append(f"- seed {seed}: DeepXDE / {label} = {d[0] / h[0]:.1f}×")
    return lines


# --------------------------------------------------------------------------- (d)

def reference_rows() -> list[str]:
    from pinnkit.exact import burgers_sine
    problem = runpy.run_path(str(ROOT / "problems" / "burgers.py"))["problem"]
    X, T, _ = burgers_grid()
    exact = burgers_sine(X, T, 0.01 / np.pi)
    out = ["| nx (order 4) | seconds (median of 3) | L2RE vs exact on 256 x 100 |", "|---:|---:|---:|"]
    for nx in (256, 511, 1021, 2041, 4081):
        ts = []
        try:
            for _ in range(3):
                t0 = time.perf_counter()
                ref = pk.reference(problem, resolution={"x": nx}, order=4)
                ts.append(time.perf_counter() - t0)
        except pk.ReferenceSolverError as exc:
            out.append(f"| {nx} | fails: {str(exc)[:90]} | — |")
            continue
        u = ref({"x": X, "t": T})["u"]
        out.append(f"| {nx} | {statistics.median(ts):.2f} | {np.linalg.norm(u - exact) / np.linalg.norm(exact):.2e} |")
    return out


# --------------------------------------------------------------------------- main

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="a,c,d", help="comma list of a (per step, with b), c, d")
    p.add_argument("--cases", default="burgers,poisson2d,laplace3d")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    p.add_argument("--target", type=float, default=4.7e-3)
    p.add_argument("--budget", type=float, default=1200.0, help="seconds per time-to-accuracy run")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the time-to-accuracy runs")
    p.add_argument("--fast-burgers", action="store_true",
                   help="part c: also the FAST_BURGERS options, eager and compiled")
    p.add_argument("--accurate", action="store_true",
                   help="part c: also problems/burgers.py's recipe 'accurate'")
    p.add_argument("--plot", metavar="PNG",
                   help="part c: run to the budget and draw error vs time of every run into PNG")
    p.add_argument("--out", help="write the Markdown here (else stdout)")
    p.add_argument("--autotune", action="store_true",
                   help="also time compile='max-autotune-no-cudagraphs' (part a)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="parts a and c: wall time, or this process's CPU time (time.process_time: "
                        "far less sensitive to other jobs on the machine; needs --threads 1)")
    p.add_argument("--memory", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.autotune:
        PINNKIT.update(AUTOTUNE)
    if args.threads:
        torch.set_num_threads(args.threads)
        if args.threads == 1:      # JAX (XLA's CPU client): one thread too, set before its import
            xla_one_thread()
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    if args.memory:
        memory_child(*args.memory)
        return
    parts = set(args.parts.split(","))
    lines = ["# pinnkit benchmarks", "", f"Machine: {machine()}.", "",
             f"Command: `python scripts/bench.py {' '.join(sys.argv[1:])}`", ""]
    with_dde = have_deepxde()
    if "a" in parts:
        cases = args.cases.split(",")
        steps = {"burgers": 100, "poisson2d": 5, "laplace3d": 5}
        rows = per_step(cases, args.rounds, steps, with_dde, CLOCK[0])
        lines += ["## Per-step training time (float32, Adam)", "",
                  f"Clock: {'CPU time of the process' if args.clock == 'cpu' else 'wall time'}.", ""]
        if not with_dde:
            lines += ["DeepXDE is not installed (`pip install -e \".[bench]\"`); its rows are missing.", ""]
        lines += per_step_table(rows) + [""]
        print(json.dumps(rows), file=sys.stderr)
    if "c" in parts:
        lines += [f"## Time to reach L2RE ≤ {args.target:g} on Burgers (evaluation time excluded)", "",
                  f"Clock: {'CPU time of the process' if args.clock == 'cpu' else 'wall time'}. "
                  f"pinnkit: problems/burgers.py's defaults (`default`), with `--accurate` its recipe "
                  f"`accurate`, with `--fast-burgers` its options with {FAST_BURGERS}; DeepXDE: its "
                  "Burgers example (3 x 20, 2540 + 80 + 160 points, 15,000 Adam steps at lr 1e-3, then "
                  "L-BFGS); JAX (when installed): pinnkit's default PINN in JAX, 1000 Adam steps, then "
                  "jax.scipy BFGS in float64 (scripts/time_to_accuracy.py). Runs stop at the target "
                  f"(with `--plot`: at the budget) or after {args.budget:.0f} s.", ""]
        results = time_to_accuracy_runs([int(s) for s in args.seeds.split(",")], args.budget,
                                        None if args.plot else args.target, args.fast_burgers,
                                        args.accurate, with_dde)
        lines += time_to_accuracy_table(results, args.target) + [""]
        if args.plot:
            runpy.run_path(str(ROOT / "scripts" / "time_to_accuracy.py"))["plot"](results, args.plot)
            lines += [f"Error vs time of these runs: {args.plot}.", ""]
    if "d" in parts:
        lines += ["## Finite-difference reference (Burgers, method of lines, BDF)", ""] + reference_rows() + [""]
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
