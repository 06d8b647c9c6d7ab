"""Neural-ODE measurements for docs/ode.md (run under the CPU lock, single-threaded).

    python scripts/ode_bench.py spiral [--iters N]     pinnkit vs torchdiffeq's ode_demo loop
    python scripts/ode_bench.py adjoint                 peak memory, odeint vs odeint_adjoint
    python scripts/ode_bench.py lv [--steps N --lbfgs-steps M]   hybrid UDE + SINDy + pure NODE
        [--noise-seed S] [--skip-pure]     another draw of the 5 % noise; no pure neural ODE
    python scripts/ode_bench.py lv_limit [--draws N]     what the data determine: the true
        model (x*y only) refit to each noise draw, integrated on [0, 10]
    python scripts/ode_bench.py robertson               reference at t = 40, explicit-solver guard
    python scripts/ode_bench.py hybrid_pde              Fisher-KPP with a learned reaction (PINN)
        [--noise SIGMA --noise-seed S]    Gaussian noise of std SIGMA on the sensor values
        [--weights JSON]                  loss weights per term, e.g. '{"fisher": 100}'
        [--discover --degree N]           then pk.discover(select="bic") on polynomials of u
    python scripts/ode_bench.py hybrid_limit [--draws N --noise SIGMA]   what 100 noisy sensor
        values determine: the true structure (a u + b u^2) refit to each draw

Each prints the numbers docs/ode.md quotes.
"""
from __future__ import annotations

import argparse
import json
import math
import runpy
import sys
import time
from pathlib import Path

import numpy as np
import sympy
import torch

ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
import pinnkit as pk  # noqa: E402


def l2re(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def load(name: str) -> dict:
    return runpy.run_path(str(ROOT / "problems" / f"{name}.py"))


def demo_loop(true_y: torch.Tensor, t: torch.Tensor, iters: int, batch_time: int = 10,
              batch_size: int = 20, seed: int = 0) -> tuple[float, torch.nn.Module]:
    """torchdiffeq's examples/ode_demo.py training loop, verbatim in substance (no plotting)."""
    from torchdiffeq import odeint
    torch.manual_seed(seed)
    np.random.seed(seed)

    class ODEFunc(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(2, 50), torch.nn.Tanh(),
                                           torch.nn.Linear(50, 2))
            for m in self.net.modules():
                if isinstance(m, torch.nn.Linear):
                    torch.nn.init.normal_(m.weight, mean=0, std=0.1)
                    torch.nn.init.constant_(m.bias, val=0)

        def forward(self, t, y):
            return self.net(y ** 3)

    data_size = len(t)

    def get_batch():
        s = torch.from_numpy(np.random.choice(np.arange(data_size - batch_time, dtype=np.int64),
                                              batch_size, replace=False))
        batch_y0 = true_y[s]
        batch_t = t[:batch_time]
        batch_y = torch.stack([true_y[s + i] for i in range(batch_time)], dim=0)
        return batch_y0, batch_t, batch_y

    func = ODEFunc()
    optimizer = torch.optim.RMSprop(func.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(iters):
        optimizer.zero_grad()
        batch_y0, batch_t, batch_y = get_batch()
        pred_y = odeint(func, batch_y0, batch_t).to(true_y.device)
        loss = torch.mean(torch.abs(pred_y - batch_y))
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start, func


def spiral(args) -> None:
    ns = load("spiral_node")
    problem, opts = ns["problem"], dict(ns["options"])
    if args.recipe:
        opts.update(ns["recipes"][args.recipe])
    opts.pop("method")
    ts = ns["ts"]
    t_ex = np.linspace(25.0, 35.0, 401)
    true_in, true_ex = ns["TRUE"].sol(ts), ns["TRUE"].sol(t_ex)

    def errors(sol) -> tuple:
        Yin, Yex = sol({"t": ts}), sol({"t": t_ex})
        return (l2re(np.stack([Yin["x"], Yin["y"]]), true_in),
                l2re(np.stack([Yex["x"], Yex["y"]]), true_ex))

    # 1. time per iteration: same network, solver (dopri5 at torchdiffeq's default tolerances),
    #    loss (mean absolute error), batches and iterations as torchdiffeq's ode_demo
    iters = args.iters
    if args.skip_demo:
        sec_demo = float("inf")
    else:
        sec_demo = _spiral_speed(ns, problem, ts, true_in, iters)
    # 2. the problem file's recipe; its error when it has used the demo loop's wall time
    run = dict(opts, quiet=True)
    at_demo_time: list = []
    start = time.perf_counter()

    def watch(phase, step, sol):
        if not at_demo_time and time.perf_counter() - start >= sec_demo:
            at_demo_time.append((phase, step, time.perf_counter() - start) + errors(sol))
        return time.perf_counter() - start > args.max_seconds
    sol = pk.train(problem, method="ode", callback=watch, **run)
    sec = time.perf_counter() - start
    e_in, e_ex = errors(sol)
    print(f"pinnkit spiral_node recipe {run}: {sec:.1f} s, final loss {sol.final_loss:.3e}; "
          f"{sol.messages}")
    if at_demo_time:
        ph, st, s_, a, b = at_demo_time[0]
        print(f"  after {s_:.1f} s (the demo loop's time; {ph} step {st}): L2RE [0, 25] {a:.3e}, [25, 35] {b:.3e}")
    print(f"  final trajectory relative L2 on [0, 25]: {e_in:.3e}; extrapolated on [25, 35]: {e_ex:.3e}",
          flush=True)


def _spiral_speed(ns, problem, ts, true_in, iters: int) -> float:
    """Time per iteration against torchdiffeq's demo loop; returns the demo loop's seconds."""
    obs = torch.tensor(ns["observations"], dtype=torch.float32)
    sec_demo, demo_func = demo_loop(obs[:, None, :], torch.tensor(ts, dtype=torch.float32), iters)
    same = dict(steps=iters, batch_time=10, batch_size=20, lr=1e-3, data_loss="mae", rtol=1e-7,
                atol=1e-9, log_every=10 ** 9, quiet=True)
    t0 = time.perf_counter()
    sol = pk.train(problem, method="ode", **same)
    sec_pk = time.perf_counter() - t0
    Y = sol({"t": ts})
    e_pk = l2re(np.stack([Y["x"], Y["y"]]), true_in)
    from torchdiffeq import odeint
    with torch.no_grad():
        y_demo = odeint(demo_func, torch.tensor([[2.0, 0.0]]), torch.tensor(ts, dtype=torch.float32))
    e_demo = l2re(y_demo[:, 0].numpy().T, true_in)
    print(f"spiral, {iters} iterations each (batch_time 10, batch_size 20, dopri5 rtol 1e-7 atol 1e-9, MAE):")
    print(f"  torchdiffeq ode_demo loop (RMSprop): {1e3 * sec_demo / iters:.2f} ms/iteration, "
          f"{sec_demo:.1f} s, trajectory L2RE on [0, 25] {e_demo:.3e}")
    print(f"  pinnkit method='ode' (Adam):         {1e3 * sec_pk / iters:.2f} ms/iteration "
          f"(ratio {sec_pk / sec_demo:.3f}), {sec_pk:.1f} s, trajectory L2RE on [0, 25] {e_pk:.3e}",
          flush=True)
    return sec_demo


def adjoint(args) -> None:
    """Peak memory of one forward+backward over a long integration, direct back-propagation
    vs the adjoint, each case in a fresh subprocess: the growth of the process's peak RSS over
    the warmed-up process (Linux: VmHWM after resetting it through /proc/self/clear_refs;
    torch's CPU tensors live in malloc/mmap memory, which tracemalloc does not see), checked
    against the bytes autograd saves for the backward pass (saved_tensors_hooks, distinct
    storages), and the solver steps counted. torchdiffeq: fixed-step rk4 with 250 to 4,000
    steps, odeint vs odeint_adjoint (steps = evaluations / 4). pinnkit's rosenbrock23 on a
    stiff variant (a −50·(y − cos t) relaxation added; tolerances for ~250 to ~2,500 steps):
    back-propagation through its steps vs `rosenbrock23_adjoint` (forward steps = Jacobians
    taken; the adjoint's backward work as evaluations of f, two per forward step for its
    interpolated Jacobians, then matrix products only)."""
    import subprocess
    code = r'''
import sys, torch
torch.set_num_threads(1)
from torchdiffeq import odeint, odeint_adjoint
from pinnkit.ode import stiff
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024      # MiB
solver, adj, n = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
torch.manual_seed(0)
width, batch = (16, 32) if solver == "rk4" else (4, 8)
class F(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(width, 128), torch.nn.Tanh(),
                                       torch.nn.Linear(128, width))
        self.nfe = 0
    def forward(self, t, y):
        self.nfe += 1
        out = self.net(y)
        return out if solver == "rk4" else out - 50.0 * (y - torch.cos(t))
f = F().double()
y0 = torch.randn(batch, width, dtype=torch.float64)
t = torch.linspace(0, 1, 2, dtype=torch.float64)
steps = [0]
if solver == "rk4":
    solve = odeint_adjoint if adj else odeint
    kw = {"adjoint_params": tuple(f.parameters())} if adj else {}
    run = lambda m: solve(f, y0, t, method="rk4", options={"step_size": 1.0 / m}, **kw)
else:
    jac = stiff._jacobian
    def counted(*a):
        steps[0] += 1
        return jac(*a)
    stiff._jacobian = counted
    solve = stiff.rosenbrock23_adjoint if adj else stiff.rosenbrock23
    run = lambda rtol: solve(f, y0, t, rtol=rtol, atol=rtol * 1e-2)
run(2 if solver == "rk4" else 1e-2)[-1].sum().backward()  # warm up
saved = {}
def pack(x):      # distinct storages only (a tensor saved by two operations counts once)
    try:
        st = x.untyped_storage()
        saved[st.data_ptr()] = st.nbytes()
    except RuntimeError:    # a functorch wrapper inside jacfwd/jvp (rosenbrock23's Jacobian)
        pass
    return x
open("/proc/self/clear_refs", "w").write("5")      # reset the peak (VmHWM) to the current RSS
base = status("VmRSS")
f.nfe, steps[0] = 0, 0
with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
    y = run(int(n) if solver == "rk4" else n)
fwd = f.nfe / 4 if solver == "rk4" else steps[0]
f.nfe, steps[0] = 0, 0
y[-1].pow(2).sum().backward()
print(status("VmHWM") - base, sum(saved.values()) / 2 ** 20, fwd,
      f.nfe / 4 if solver == "rk4" else f.nfe)
'''
    cases = {"rk4": ("MLP 16-128-16, batch 32, float64, rk4", (250, 1000, 4000)),
             "rosenbrock23": ("MLP 4-128-4 - 50 (y - cos t), batch 8, float64, rosenbrock23 "
                              "with rtol = 100 atol", (1e-5, 1e-7, 1e-8))}
    for solver, (what, sizes) in cases.items():
        print(f"peak memory growth of one forward+backward ({what}; a fresh process per case):")
        print(f"  {'size':>6} | {'direct: peak MiB':>16} {'saved MiB':>9} {'fwd steps':>9} | "
              f"{'adjoint: peak MiB':>17} {'saved MiB':>9} {'bwd work':>9}")
        print("  (bwd work: rk4 steps; rosenbrock23: evaluations of f)")
        for n in sizes:
            row = []
            for adj in ("0", "1"):
                out = subprocess.run([sys.executable, "-c", code, solver, adj, str(n)],
                                     capture_output=True, text=True, check=True)
                peak, saved, fwd, bwd = map(float, out.stdout.split())
                row += [peak, saved, fwd, bwd]
            print(f"  {n:>6g} | {row[0]:>16.1f} {row[1]:>9.1f} {row[2]:>9.0f} | "
                  f"{row[4]:>17.1f} {row[5]:>9.1f} {row[7]:>9.0f}", flush=True)


def lv_times(ns: dict, points: int | None) -> np.ndarray:
    """The file's observation times, or ``points`` equally spaced ones on [0, 3]."""
    return ns["ts"] if points is None else np.linspace(0.0, ns["T_DATA"], points)


def lv_problem(ns: dict, noise_seed: int | None, points: int | None = None):
    """The file's problem, or the same with another draw of its 5 % noise (the file's model:
    Gaussian, 5 % of each component's mean) and, with ``points``, that many equally spaced
    observation times on [0, 3] in place of the file's (the noise draw then differs too)."""
    problem = ns["problem"]
    if noise_seed is None and points is None:
        return problem
    x, y = problem.fields["x"], problem.fields["y"]
    ts = lv_times(ns, points)
    clean = ns["TRUE"].sol(ts).T
    rng = np.random.default_rng(1234 if noise_seed is None else noise_seed)
    obs = clean + 0.05 * clean.mean(axis=0) * rng.standard_normal(clean.shape)
    conditions = [c for c in problem.conditions if not isinstance(c, pk.Data)]
    conditions.append(pk.Data([x, y], points={"t": ts}, values=obs))
    return pk.Problem(problem.name, problem.domain, problem.equations, conditions,
                      exact=problem.exact)


def lv(args) -> None:
    ns = load("lotka_volterra_ude")
    problem, opts = lv_problem(ns, args.noise_seed, args.points), dict(ns["options"])
    if args.noise_seed is not None or args.points is not None:
        print(f"noise draw: seed {1234 if args.noise_seed is None else args.noise_seed} (the "
              f"file's is 1234), {args.points or len(ns['ts'])} observation times on [0, 3] (the "
              f"file's: {len(ns['ts'])})")
    opts.pop("method")
    for key, value in (("steps", args.steps), ("lbfgs_steps", args.lbfgs_steps)):
        if value is not None:
            opts[key] = value
    opts["quiet"] = True
    t_fit, t_ex = np.linspace(0, 3, 301), np.linspace(3, 10, 701)
    true_fit, true_ex = ns["TRUE"].sol(t_fit), ns["TRUE"].sol(t_ex)
    t0 = time.perf_counter()
    cap = lambda phase, step, sol: time.perf_counter() - t0 > args.max_seconds  # noqa: E731
    sol = pk.train(problem, method="ode", callback=cap, **opts)
    print(f"hybrid UDE {opts}: {time.perf_counter() - t0:.1f} s, final loss {sol.final_loss:.3e}, "
          f"{sol.history['step'][-1]} steps/iterations of the last phase; {sol.messages}", flush=True)
    Y = sol({"t": t_fit})
    print(f"  trained hybrid vs true on [0, 3]: {l2re(np.stack([Y['x'], Y['y']]), true_fit):.3e}")
    for select in (None, "bic"):
        t1 = time.perf_counter()
        found = pk.discover(sol, pk.polynomials(degree=2), threshold=args.threshold, select=select)
        print(f"  pk.discover(select={select!r}, threshold={args.threshold}): "
              f"{time.perf_counter() - t1:.1f} s")
        _lv_substituted(ns, problem, found)
    Y = sol({"t": t_ex})
    print(f"  trained hybrid (network) extrapolated on [3, 10]: "
          f"{l2re(np.stack([Y['x'], Y['y']]), true_ex):.3e}")
    if args.skip_pure:
        return
    # a pure neural ODE on the same data: x' = N_0(x, y), y' = N_1(x, y)
    t = problem.time
    x, y = problem.fields["x"], problem.fields["y"]
    N0, N1 = pk.network("N", inputs=(x, y), outputs=2, width=32, depth=2, activation="tanh")
    pure = pk.Problem("lotka_volterra_node", problem.domain, {"x": x.diff(t) - N0, "y": y.diff(t) - N1},
                      problem.conditions)
    t0 = time.perf_counter()
    psol = pk.train(pure, method="ode", callback=cap, **opts)
    Yf, Ye = psol({"t": t_fit}), psol({"t": t_ex})
    print(f"pure neural ODE (32x2 tanh), same options: {time.perf_counter() - t0:.1f} s, "
          f"final loss {psol.final_loss:.3e}")
    print(f"  on [0, 3]: {l2re(np.stack([Yf['x'], Yf['y']]), true_fit):.3e}; "
          f"extrapolated on [3, 10]: {l2re(np.stack([Ye['x'], Ye['y']]), true_ex):.3e}")


def lv_limit(args) -> None:
    """How well the data (the file's times, or ``--points``) with 5 % noise on [0, 3]
    determine the system on [0, 10], whatever learns from them: for each noise draw, the
    *true* model (x*y alone in each equation, the known alpha, delta and initial state) with
    its two coefficients refit to the data by the maximum likelihood that
    `pk.discover(select="bic")` uses (pinnkit.sindy.rank_models, one noise variance per
    component), then integrated by the reference on [0, 10]."""
    from types import SimpleNamespace

    from pinnkit.sindy import rank_models
    ns = load("lotka_volterra_ude")
    x, y = ns["problem"].fields["x"], ns["problem"].fields["y"]
    outs = [c.func.__name__ for c in ns["problem"].networks["U"].outputs]
    xy = np.prod(ns["TRUE"].sol(lv_times(ns, args.points)).T, axis=1)[:, None]  # x*y, true
    true_coef = (-ns["BETA"], ns["GAMMA"])
    fits = {o: ([x * y], xy, c * xy[:, 0], None) for o, c in zip(outs, true_coef)}
    tt = np.linspace(0, 10, 1001)
    true = ns["TRUE"].sol(tt)
    seeds = [1234] + list(range(args.draws - 1))
    errors = []
    print("| noise seed | beta | gamma | substituted vs true on [0, 10] |")
    print("|---:|---:|---:|---:|")
    for seed in seeds:
        problem = lv_problem(ns, seed, args.points)
        found = rank_models(SimpleNamespace(problem=problem, parameters={}), fits)[0]["found"]
        coef = [float(found[o].as_coefficients_dict()[x * y]) for o in outs]
        ref = pk.reference(problem.substitute(found), times=tt)
        err = l2re(np.stack([ref.fields["x"], ref.fields["y"]]), true)
        errors.append(err)
        print(f"| {seed} | {-coef[0]:.4f} ({-coef[0] / ns['BETA'] - 1:+.1%}) | "
              f"{coef[1]:.4f} ({coef[1] / ns['GAMMA'] - 1:+.1%}) | {err:.3e} |", flush=True)
    e = np.array(errors)
    print(f"{len(e)} draws: median {np.median(e):.3e}, min {e.min():.3e}, max {e.max():.3e}; "
          f"within 5 %: {int((e <= 0.05).sum())} of {len(e)}")


def _lv_substituted(ns: dict, problem, found: dict) -> None:
    """The discovered terms, their x*y coefficients against -beta and +gamma, and the
    substituted problem integrated by the reference on [0, 10] against the true system."""
    import sympy
    x, y = problem.fields["x"], problem.fields["y"]
    for (k, v), true in zip(found.items(), (-ns["BETA"], ns["GAMMA"])):
        c = float(sympy.expand(v).as_coefficients_dict().get(x * y, 0.0))
        print(f"    discovered {k} = {v}   (x*y coefficient {c:.4f}, true {true}: "
              f"{abs(c / true - 1):.1%} off)")
    tt = np.linspace(0, 10, 1001)
    true = ns["TRUE"].sol(tt)
    try:
        ref = pk.reference(problem.substitute(found), times=tt)
        ex = tt >= 3
        print(f"    substituted problem (SciPy Radau) vs true on [0, 10]: "
              f"{l2re(np.stack([ref.fields['x'], ref.fields['y']]), true):.3e}; of which [3, 10]: "
              f"{l2re(np.stack([ref.fields['x'][ex], ref.fields['y'][ex]]), true[:, ex]):.3e}",
              flush=True)
    except pk.ReferenceSolverError as exc:
        print(f"    substituted problem: {exc}", flush=True)


def reaction_range(ns: dict) -> tuple:
    """201 values of u over the range of the observed field, and the true reaction k u (1 - u)
    there: acceptance 5's reaction error is the relative L2 over these."""
    u_obs = ns["observations"]
    us = np.linspace(u_obs.min(), u_obs.max(), 201)
    return us, ns["K"] * us * (1 - us)


def hybrid_errors(ns: dict, sol, ref=None) -> dict:
    """Acceptance 5 of issue 18 for problems/reaction_diffusion_hybrid.py: the learned reaction
    against the true one (relative L2 over the range of the observed u), the PINN field against
    the exact wave and against the finite-difference reference of the true equation."""
    us, true = reaction_range(ns)
    learned = sol.learned_terms()["R"](us[:, None])[:, 0]
    out = {"reaction": l2re(learned, true), "u_range": (float(us[0]), float(us[-1]))}
    xs, ts = np.linspace(ns["X0"], ns["X1"], 201), np.linspace(0, ns["T1"], 81)
    TT, XX = np.meshgrid(ts, xs, indexing="ij")
    out["field_exact"] = l2re(sol({"x": XX, "t": TT})["u"], ns["exact_np"](XX, TT))
    if ref is not None:
        grids = np.meshgrid(*(ref.coords[a] for a in ref.axes), indexing="ij")
        pts = dict(zip(ref.axes, grids))
        out["field_reference"] = l2re(sol(pts)["u"], ref.fields["u"])
        out["reference_exact"] = l2re(ref.fields["u"], ns["exact_np"](pts["x"], pts["t"]))
    return out


def hybrid_problem(ns: dict, sigma: float, noise_seed: int | None):
    """The file's problem, or the same with Gaussian noise of std ``sigma`` added to its
    100 sensor values (the wave's amplitude is 1, so sigma is also the noise relative to it)."""
    problem = ns["problem"]
    if not sigma:
        return problem
    rng = np.random.default_rng(0 if noise_seed is None else noise_seed)
    obs = ns["observations"] + sigma * rng.standard_normal(ns["observations"].shape)
    conditions = [c for c in problem.conditions if not isinstance(c, pk.Data)]
    conditions.append(pk.Data(ns["u"], points={"x": ns["XS"], "t": ns["TS"]}, values=obs,
                              name="sensors"))
    return pk.Problem(problem.name, problem.domain, problem.equations, conditions,
                      exact=problem.exact)


def hybrid_pde(args) -> None:
    ns = load("reaction_diffusion_hybrid")
    problem, opts = hybrid_problem(ns, args.noise, args.noise_seed), dict(ns["options"])
    if args.noise:
        print(f"sensor values with Gaussian noise, std {args.noise:g} (seed "
              f"{0 if args.noise_seed is None else args.noise_seed})")
    if args.steps_pinn is not None:
        opts["steps"] = args.steps_pinn
    if args.lbfgs_steps_pinn is not None:
        opts["lbfgs_steps"] = args.lbfgs_steps_pinn
    if args.weights:
        opts["weights"] = {**opts.get("weights", {}), **args.weights}
    t0 = time.perf_counter()
    ref = pk.reference(problem.substitute({"R": ns["TRUE_REACTION"]}))
    print(f"reference of Fisher's equation (the true reaction substituted): "
          f"{time.perf_counter() - t0:.1f} s, grid {dict((a, len(ref.coords[a])) for a in ref.axes)}")
    t0 = time.perf_counter()
    cap = lambda phase, step, sol: time.perf_counter() - t0 > args.max_seconds  # noqa: E731
    sol = pk.train(problem, callback=cap, quiet=True, threads=1, **opts)
    sec = time.perf_counter() - t0
    e = hybrid_errors(ns, sol, ref)
    print(f"hybrid PINN {opts}: {sec:.1f} s, final loss {sol.final_loss:.3e}")
    print(f"  learned reaction vs k u (1 - u), relative L2 over u in "
          f"[{e['u_range'][0]:.3f}, {e['u_range'][1]:.3f}]: {e['reaction']:.3e}")
    print(f"  field vs reference: {e['field_reference']:.3e}; vs exact: {e['field_exact']:.3e} "
          f"(reference vs exact: {e['reference_exact']:.3e})", flush=True)
    if args.discover:
        discover_reaction(ns, problem, sol, ref, args.degree)


def hybrid_limit(args) -> None:
    """How well 100 sensor values with noise of std ``--noise`` determine the reaction and the
    field, whatever learns from them: for each noise draw, the *true* structure R = a u + b u²
    refit to the data by the maximum likelihood `pk.discover(select="bic")` uses
    (pinnkit.sindy's refit through the finite-difference reference), then that problem's
    reference against the true one."""
    from types import SimpleNamespace

    from scipy.optimize import least_squares

    from pinnkit.sindy import _FieldDataModel
    ns = load("reaction_diffusion_hybrid")
    sigma = args.noise or 0.05
    u = ns["u"]
    us, true_r = reaction_range(ns)
    truth = pk.reference(ns["problem"].substitute({"R": ns["TRUE_REACTION"]}))
    rows = []
    print(f"noise std {sigma:g}; R = a u + b u^2 refit to the 100 sensor values")
    print("| noise seed | a | b | R vs k u (1 - u) | field vs the true reference |")
    print("|---:|---:|---:|---:|---:|")
    for seed in range(args.draws):
        problem = hybrid_problem(ns, sigma, seed)
        model = _FieldDataModel(SimpleNamespace(problem=problem), {"R": [u, u**2]})
        coefs, _, _ = model.refit({"R": (0, 1)}, np.array([1.0, -1.0]), least_squares)
        a, b = (float(c) for c in coefs)
        e_r = l2re(a * us + b * us**2, true_r)
        ref = pk.reference(problem.substitute({"R": a * u + b * u**2}))
        e_f = l2re(ref.fields["u"], truth.fields["u"])
        rows.append((e_r, e_f))
        print(f"| {seed} | {a:.4f} | {b:.4f} | {e_r:.3e} | {e_f:.3e} |", flush=True)
    e = np.array(rows)
    print(f"{len(e)} draws: R within 5e-2 on {int((e[:, 0] <= 5e-2).sum())}, field within 1e-2 "
          f"on {int((e[:, 1] <= 1e-2).sum())}, both on {int(((e[:, 0] <= 5e-2) & (e[:, 1] <= 1e-2)).sum())}; "
          f"median R {np.median(e[:, 0]):.3e}, field {np.median(e[:, 1]):.3e}")


def discover_reaction(ns: dict, problem, sol, ref, degree: int) -> None:
    """pk.discover(select="bic") of the trained reaction on polynomials of u (candidates refit
    to the sensor data through the finite-difference reference), then the substituted
    problem's reference: its reaction and field against the truth."""
    from pinnkit.sindy import _regressions, rank_models
    t0 = time.perf_counter()
    ranked = rank_models(sol, _regressions(sol, pk.polynomials(degree=degree), 0.1, 200, 0))
    sec = time.perf_counter() - t0
    for r in ranked[:3]:
        print(f"  candidate R = {r['found']['R']}: BIC {r['bic']:.2f}, {r['terms']} terms")
    found = ranked[0]["found"]
    u = ns["u"]
    us, true_r = reaction_range(ns)
    R = sympy.lambdify(u, found["R"], "numpy")
    learned = np.broadcast_to(np.asarray(R(us), float), us.shape)
    disc = pk.reference(problem.substitute(found))
    print(f"discover(select='bic', polynomials of degree {degree}): {sec:.1f} s for "
          f"{len(ranked)} refit candidates; kept R = {found['R']}")
    print(f"  its reaction vs k u (1 - u): {l2re(learned, true_r):.3e}; "
          f"its reference field vs the true reference: "
          f"{l2re(disc.fields['u'], ref.fields['u']):.3e}", flush=True)


def robertson(args) -> None:
    ns = load("robertson")
    problem = ns["problem"]
    t0 = time.perf_counter()
    for method in ("Radau", "BDF", "LSODA"):
        t0 = time.perf_counter()
        ref = pk.reference(problem, method=method)
        sec = time.perf_counter() - t0
        errs = {f: abs(ref.fields[f][-1] / v - 1) for f, v in ns["PUBLISHED_T40"].items()}
        print(f"Robertson {method} (rtol 1e-10, atol 1e-14, sympy Jacobian): {sec:.3f} s, "
              f"{ref.info['nfev']} f-evals, {ref.info['njev']} Jacobians; relative error at t = 40: "
              + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    t0 = time.perf_counter()
    try:
        pk.train(problem, method="ode", steps=1, quiet=True, dtype="float64")
        print("dopri5 finished (unexpected)")
    except pk.TrainingError as exc:
        print(f"method='ode' with dopri5 (default max_nfe): stopped after {time.perf_counter() - t0:.1f} s: {exc}")
    # rate recovery with the stiff solver, from rates started off by these factors
    true = {p.name: math.exp(p.init) for p in problem.parameters}
    for factors in ((2.0, 0.5, 3.0), (10.0, 0.1, 10.0)):
        fresh = load("robertson")["problem"]
        for p, f in zip(fresh.parameters, factors):
            p.init += math.log(f)
        t0 = time.perf_counter()
        try:
            sol = pk.train(fresh, method="ode", ode_solver="rosenbrock23", data_loss="relative",
                           dtype="float64", steps=0, lbfgs_steps=30, rtol=1e-6, atol=1e-10,
                           quiet=True)
        except pk.TrainingError as exc:
            print(f"rates started x{factors}: failed after {time.perf_counter() - t0:.1f} s: {exc}")
            continue
        got = {n: math.exp(v) for n, v in sol.parameters.items()}
        print(f"rates started x{factors}, rosenbrock23 + L-BFGS on the relative misfit: "
              f"{time.perf_counter() - t0:.1f} s, loss {sol.final_loss:.3e}; "
              + ", ".join(f"{n[4:]} {got[n]:.5g} ({(got[n] / true[n] - 1) * 100:+.2f} %)"
                          for n in true) + f"; {sol.messages[-1] if sol.messages else ''}",
              flush=True)


def main() -> None:
    torch.set_num_threads(1)
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["spiral", "adjoint", "lv", "lv_limit", "robertson", "hybrid_pde",
                                    "hybrid_limit", "all"])
    p.add_argument("--iters", type=int, default=2000, help="spiral: demo-loop iterations")
    p.add_argument("--steps", type=int, default=None, help="lv: Adam steps (default: the file's)")
    p.add_argument("--lbfgs-steps", type=int, default=None,
                   help="lv: L-BFGS iterations (default: the file's)")
    p.add_argument("--threshold", type=float, default=0.1)
    p.add_argument("--noise-seed", type=int, default=None,
                   help="lv: another draw of the noise; hybrid_pde: the draw of --noise")
    p.add_argument("--noise", type=float, default=0.0,
                   help="hybrid_pde: std of Gaussian noise added to the sensor values")
    p.add_argument("--points", type=int, default=None,
                   help="lv, lv_limit: observation times on [0, 3] (default: the file's, 301)")
    p.add_argument("--skip-pure", action="store_true", help="lv: no pure neural ODE")
    p.add_argument("--draws", type=int, default=20,
                   help="lv_limit: noise draws (the file's first); hybrid_limit: seeds 0..N-1")
    p.add_argument("--steps-pinn", type=int, default=None, help="hybrid_pde: Adam steps")
    p.add_argument("--lbfgs-steps-pinn", type=int, default=None, help="hybrid_pde: L-BFGS iterations")
    p.add_argument("--discover", action="store_true",
                   help="hybrid_pde: then pk.discover(select='bic') and the substituted reference")
    p.add_argument("--degree", type=int, default=2, help="hybrid_pde --discover: library degree")
    p.add_argument("--weights", type=json.loads, default=None,
                   help="hybrid_pde: loss weights per term (JSON), over the file's")
    p.add_argument("--max-seconds", type=float, default=180.0, help="cap per training run")
    p.add_argument("--recipe", default=None, help="spiral: a recipe of the problem file (accurate)")
    p.add_argument("--skip-demo", action="store_true", help="spiral: no demo-loop speed comparison")
    args = p.parse_args()
    runs = {"robertson": robertson, "adjoint": adjoint, "spiral": spiral, "lv": lv,
            "lv_limit": lv_limit, "hybrid_pde": hybrid_pde, "hybrid_limit": hybrid_limit}
    for name, fn in runs.items():
        if args.what in (name, "all"):
            t0 = time.perf_counter()
            fn(args)
            print(f"[{name}: {time.perf_counter() - t0:.1f} s]", flush=True)


if __name__ == "__main__":
    main()
