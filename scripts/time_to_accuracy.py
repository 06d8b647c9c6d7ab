"""Error vs wall time of a training on Burgers (problems/burgers.py), one thread: pinnkit,
DeepXDE's Burgers example or the same PINN as pinnkit's default written in JAX.

    python scripts/time_to_accuracy.py --seeds 0,1,2 --budget 300 [--set optimizer=ssbfgs ...]
    python scripts/time_to_accuracy.py --solver deepxde --seeds 0 --budget 250 --clock cpu
    python scripts/time_to_accuracy.py --solver jax --seeds 0 --budget 250 --clock cpu
    python scripts/time_to_accuracy.py --no-run --curves a.jsonl b.jsonl --plot curves.png

The error (relative L2 on the 256 x 100 grid of burgers_shock.npz, Raissi 2019) is evaluated
every ``log_every`` steps (pinnkit), every 100 Adam steps and after each L-BFGS chunk of 100
iterations (DeepXDE), every 100 Adam steps and after each BFGS chunk (JAX); evaluation time
is excluded from the clock, compile time included. Prints one JSON line per run, the same
for every solver: the times at which 4.7e-3 (DeepXDE's median), 1e-3 and 1e-4 were first
reached, the final error and the trajectory of (time, phase, step, error).
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
# Raissi's 256 x 100 grid, DeepXDE's example data and the JAX Adam update, from
# scripts/bench.py (loaded by path: scripts/ is off sys.path)
BENCH = runpy.run_path(str(ROOT / "scripts" / "bench.py"))
burgers_grid = BENCH["burgers_grid"]

TARGETS = (4.7e-3, 1e-3, 1e-4)
CLOCK = [time.perf_counter]     # --clock cpu: time.process_time
BURGERS = ROOT / "problems" / "burgers.py"
SOLVERS = ("pinnkit", "deepxde", "jax")


class Tracker:
    """One run's clock (evaluation time excluded), its error trajectory and the first time
    each target of `TARGETS` was reached. ``record`` says whether the run should stop (the
    budget is spent, or ``stop_at`` reached)."""

    def __init__(self, budget: float, stop_at: float | None) -> None:
        self.X, self.T, self.ref = burgers_grid()
        self.budget, self.stop_at = budget, stop_at
        self.eval, self.traj, self.hits = 0.0, [], {}
        self.t0 = CLOCK[0]()

    def elapsed(self) -> float:
        return CLOCK[0]() - self.t0 - self.eval

    def error(self, predict) -> float:
        """Relative L2 error of ``predict(X, T)`` (arrays (100, 256)) on the grid."""
        u = np.asarray(predict(self.X, self.T)).reshape(self.ref.shape)
        return float(np.linalg.norm(u - self.ref) / np.linalg.norm(self.ref))

    def record(self, phase: str, step: int, predict) -> bool:
        t0 = CLOCK[0]()
        err = self.error(predict)
        self.eval += CLOCK[0]() - t0
        elapsed = self.elapsed()
        self.traj.append((round(elapsed, 2), phase, int(step), err))
        for tg in TARGETS:
            if err <= tg and tg not in self.hits:
                self.hits[tg] = round(elapsed, 2)
        return elapsed > self.budget or (self.stop_at is not None and err <= self.stop_at)

    def result(self, solver: str, seed: int, options: dict, predict, messages: list) -> dict:
        """The run's record (one JSON line); the final error is evaluated off the clock."""
        ran = self.elapsed()
        return {"solver": solver, "seed": seed, "options": options, "ran_s": round(ran, 2),
                "final_error": self.error(predict),
                "reached_s": {f"{k:g}": v for k, v in self.hits.items()},
                "messages": messages, "trajectory": self.traj}


def first_hit(record: dict, target: float) -> tuple | None:
    """(time, phase, step) of the first trajectory point at or below ``target``, or None."""
    return next((tuple(p[:3]) for p in record["trajectory"] if p[3] <= target), None)


# --------------------------------------------------------------------------- pinnkit

def run(options: dict, seed: int, budget: float, stop_at: float | None,
        recipe: str | None = None) -> dict:
    """pinnkit on problems/burgers.py (its options, a recipe's, then ``options``)."""
    problem, file_options = load_problem_file(BURGERS, recipe)
    tr = Tracker(budget, stop_at)

    def cb(phase, step, sol):
        return tr.record(phase, step, lambda X, T: sol({"x": X, "t": T})["u"])
    opts = {**file_options, **options, "quiet": True, "seed": seed}
    sol = pk.train(problem, callback=cb, **opts)
    return tr.result("pinnkit", seed, options, lambda X, T: sol({"x": X, "t": T})["u"],
                     sol.messages)


# --------------------------------------------------------------------------- DeepXDE

def run_deepxde(seed: int, budget: float, stop_at: float | None) -> dict:
    """DeepXDE's Burgers example (examples/pinn_forward/Burgers.py: 3 x 20 tanh, 2540 + 80 +
    160 points, 15,000 Adam steps at lr 1e-3, then L-BFGS), the error checked every 100 Adam
    steps and after each L-BFGS chunk of 100 iterations."""
    import deepxde as dde
    tr = Tracker(budget, stop_at)
    XT = np.stack([tr.X.ravel(), tr.T.ravel()], axis=1)
    dde.config.set_random_seed(seed)
    data = BENCH["_dde_burgers"](dde, 2540, 80, 160)
    model = dde.Model(data, dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal"))
    predict = lambda X, T: model.predict(XT)          # noqa: E731 (the grid, in XT's order)
    state = {"phase": "adam", "start": 0, "stopped": False}

    class Record(dde.callbacks.Callback):
        def __init__(self, every: int) -> None:
            super().__init__()
            self.every, self.count = every, 0

        def on_epoch_end(self) -> None:
            self.count += 1
            if self.count % self.every:
                return
            if tr.record(state["phase"], model.train_state.step - state["start"], predict):
                self.model.stop_training = state["stopped"] = True

    model.compile("adam", lr=1e-3)
    model.train(iterations=15000, display_every=10**9, verbose=0, callbacks=[Record(100)])
    if not state["stopped"]:
        state.update(phase="lbfgs", start=model.train_state.step)
        dde.optimizers.config.set_LBFGS_options(maxiter=15000)
        # DeepXDE runs its L-BFGS in chunks (one "epoch" each): 100 iterations a chunk
        dde.optimizers.config.LBFGS_options.update(iter_per_step=100, fun_per_step=125)
        model.compile("L-BFGS")
        model.train(display_every=10**9, verbose=0, callbacks=[Record(1)])
    return tr.result("deepxde", seed, {"example": "Burgers.py", "layers": "3x20",
                                       "adam_steps": 15000, "lbfgs_maxiter": 15000},
                     predict, [])


# --------------------------------------------------------------------------- JAX

def jax_pinn(seed: int):
    """The PINN of problems/burgers.py's default options in JAX, written as JAX users write
    it (the network on one point, per-point ``jax.grad``, ``vmap`` over points).

    The same as pinnkit's: inputs scaled to [-1, 1] on the domain's box, a ``depth`` x
    ``width`` tanh MLP, the hard-constraint output of pinnkit.losses.hard_constraint for this
    problem, u = A + D N with A = -sin(pi x) (the initial value; the boundary value 0) and
    D = (x + 1)(1 - x) t, the same initial weights (pinnkit's Glorot-normal draw for
    ``seed``, copied from its network) and the same ``interior_points`` Sobol points
    (``sample_interior(n, "sobol", seed)``, as pinnkit's trainer draws them). The loss is
    the mean squared PDE residual (boundary and initial values are exact).
    Returns (u(params, x, t), loss(params, X), initial params as numpy float64 (W, b) pairs,
    points (N, 2), options).
    """
    import jax
    import jax.numpy as jnp
    import torch
    from pinnkit.losses import stack_points
    from pinnkit.nn import build_model
    problem, opts = load_problem_file(BURGERS)
    width, depth, n = opts["width"], opts["depth"], opts["interior_points"]
    # Python floats: numpy scalars would promote JAX's float32 arithmetic to float64
    (x0, t0), (x1, t1) = [[float(c) for c in corner] for corner in problem.domain.bbox]
    with torch.random.fork_rng():     # the initial network of pinnkit's Trainer for this seed
        torch.manual_seed(seed)
        core = build_model(2, 1, (x0, t0), (x1, t1), width=width, depth=depth, seed=seed).core
    layers = list(core.hidden) + [core.out]
    init = [(lay.weight.detach().double().numpy().T.copy(), lay.bias.detach().double().numpy().copy())
            for lay in layers]
    points = stack_points(problem.domain.sample_interior(n, "sobol", seed), problem.coord_names)
    nu = 0.01 / np.pi

    def u(p, x, t):
        h = jnp.stack([2 * (x - x0) / (x1 - x0) - 1, 2 * (t - t0) / (t1 - t0) - 1])
        for W, b in p[:-1]:
            h = jnp.tanh(h @ W + b)
        W, b = p[-1]
        return -jnp.sin(np.pi * x) + (x - x0) * (x1 - x) * (t - t0) / (t1 - t0) * (h @ W + b)[0]
    u_x, u_t = jax.grad(u, 1), jax.grad(u, 2)
    u_xx = jax.grad(u_x, 1)

    def residual(p, x, t):
        return u_t(p, x, t) + u(p, x, t) * u_x(p, x, t) - nu * u_xx(p, x, t)

    def loss(p, X):
        r = jax.vmap(residual, (None, 0, 0))(p, X[:, 0], X[:, 1])
        return jnp.mean(r * r)
    return u, loss, init, points, {"width": width, "depth": depth, "interior_points": n}


def run_jax(seed: int, budget: float, stop_at: float | None, adam_steps: int = 1000,
            chunk: int = 100, bfgs_steps: int = 100000) -> dict:
    """`jax_pinn` trained by ``adam_steps`` Adam steps at lr 1e-3 in float32 (the whole step,
    with torch's Adam formulas, under one ``jax.jit``, as bench.py's ``jax_step``), then
    ``jax.scipy.optimize.minimize(method="BFGS")`` in float64, in chunks of ``chunk``
    iterations with the error checked after each.

    The chunks continue one BFGS run: each chunk minimises z -> loss(w + L z) from z = 0
    with L Lᵀ = H, the inverse-Hessian approximation the previous chunk returned, which is
    BFGS on w started from H (BFGS is invariant under this change of variables). A chunk
    whose line search fails restarts from H = I once; a second failure in a row ends the
    run."""
    import jax
    jax.config.update("jax_enable_x64", True)      # float64 for BFGS; Adam's arrays are float32
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from jax.scipy.optimize import minimize
    u, loss, init, points, net = jax_pinn(seed)
    tr = Tracker(budget, stop_at)
    grid = (jnp.asarray(tr.X.ravel()), jnp.asarray(tr.T.ravel()))
    field = jax.jit(lambda p, x, t: jax.vmap(u, (None, 0, 0))(p, x, t))
    state = {"p": None}

    def predict(X, T):
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), state["p"])
        return np.asarray(field(p, *grid))
    messages: list = []
    p = [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32)) for W, b in init]
    X32 = jnp.asarray(points, jnp.float32)
    adam = BENCH["jax_adam"]

    @jax.jit
    def step(p, m, v, k, X):
        return adam(p, m, v, k, jax.grad(loss)(p, X), 1e-3)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, p)
    m, v, k = zeros, zeros, jnp.float32(0)
    stop = False
    for i in range(1, adam_steps + 1):
        p, m, v, k = step(p, m, v, k, X32)
        if i % 100 == 0 or i == adam_steps:
            jax.block_until_ready(p)
            state["p"] = p
            if tr.record("adam", i, predict):
                stop = True
                break
    state["p"] = p
    options = {**net, "adam_steps": adam_steps, "adam_dtype": "float32", "lr": 1e-3,
               "second": "jax.scipy.optimize.minimize BFGS, float64", "chunk": chunk}
    if stop or not bfgs_steps:
        return tr.result("jax", seed, options, predict, messages)
    w, unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), p))
    X64 = jnp.asarray(points, jnp.float64)

    @jax.jit
    def bfgs_chunk(w, L):
        r = minimize(lambda z: loss(unravel(w + L @ z), X64), jnp.zeros_like(w), method="BFGS",
                     options={"maxiter": chunk, "gtol": 1e-12})
        return w + L @ r.x, L @ r.hess_inv @ L.T, r.fun, r.nit, r.status
    eye = jnp.eye(w.size, dtype=jnp.float64)
    L, done, f_prev, failed = eye, 0, float(loss(unravel(w), X64)), False
    while done < bfgs_steps:
        w_new, H, f, nit, status = bfgs_chunk(w, L)
        f, nit, status = float(f), int(nit), int(status)
        if np.isfinite(f) and f <= f_prev:
            w, f_prev = w_new, f
            done += nit
        if status >= 2 or not np.isfinite(f):      # line search failed
            if failed:
                messages.append(f"BFGS: line search failed twice in a row at iteration {done}")
                break
            failed, L = True, eye
            messages.append(f"BFGS: line search failed at iteration {done}; restarted from H = I")
        else:
            failed = False
            H = (H + H.T) / 2
            L = jnp.linalg.cholesky(H)
            if not bool(jnp.all(jnp.isfinite(L))):
                messages.append(f"BFGS: H not positive definite at iteration {done}; H = I")
                L = eye
        state["p"] = unravel(w)
        if tr.record("bfgs", done, predict) or status == 0:
            if status == 0:
                messages.append(f"BFGS: converged (gradient below 1e-12) at iteration {done}")
            break
    return tr.result("jax", seed, options, predict, messages)


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
    clocks = {r.get("clock", "wall") for r in results}
    what = {"cpu": "CPU time of the process", "wall": "wall time"}
    ax.set_xlabel(f"{' / '.join(what[c] for c in sorted(clocks)) or 'time'} (s), one thread, "
                  "compile time included, evaluation excluded")
    ax.set_ylabel("relative L2 error vs exact")
    ax.set_title("Burgers: error vs time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solver", choices=SOLVERS, default="pinnkit",
                    help="pinnkit (problems/burgers.py), deepxde (its Burgers example) or jax "
                         "(pinnkit's default PINN in JAX: Adam, then jax.scipy BFGS)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training per run")
    ap.add_argument("--stop-at", type=float, default=None, help="stop a run at this error")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a pinnkit training option (--solver pinnkit)")
    ap.add_argument("--recipe", default=None,
                    help="a recipe of problems/burgers.py, e.g. accurate (--solver pinnkit)")
    ap.add_argument("--adam-steps", type=int, default=1000,
                    help="--solver jax: Adam steps before BFGS (default 1000)")
    ap.add_argument("--bfgs-chunk", type=int, default=100,
                    help="--solver jax: BFGS iterations between error checks (default 100)")
    ap.add_argument("--label", default=None, help="name of this configuration in the output")
    ap.add_argument("--plot", default=None, metavar="PNG",
                    help="draw error vs wall time of the runs (and of --curves) into PNG")
    ap.add_argument("--curves", nargs="*", default=[], help="JSON-lines outputs of earlier runs")
    ap.add_argument("--no-run", action="store_true", help="only plot --curves")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or this process's CPU time (one thread; robust to other "
                         "jobs on the machine; Inductor then compiles in-process, on the clock)")
    a = ap.parse_args()
    if a.solver != "pinnkit" and (a.set or a.recipe):
        ap.error(f"--set and --recipe are pinnkit's options, not {a.solver}'s")
    if a.adam_steps < 0 or a.bfgs_chunk < 1:
        ap.error("--adam-steps must be >= 0 and --bfgs-chunk >= 1")
    if a.clock == "cpu":
        CLOCK[0] = time.process_time
        os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
    BENCH["xla_one_thread"]()           # before JAX is imported
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
        results += read_curves(path)
    for seed in ([] if a.no_run else [int(s) for s in a.seeds.split(",")]):
        if a.solver == "deepxde":
            r = run_deepxde(seed, a.budget, a.stop_at)
        elif a.solver == "jax":
            r = run_jax(seed, a.budget, a.stop_at, a.adam_steps, a.bfgs_chunk)
        else:
            r = run(options, seed, a.budget, a.stop_at, a.recipe)
        r["clock"] = a.clock
        r["label"] = a.label or default_label(a.solver, r["options"], a.recipe, a.set)
        results.append(r)
        print(json.dumps(r), flush=True)
    if a.plot:
        plot(results, a.plot)


def default_label(solver: str, options: dict, recipe: str | None = None,
                  settings: list | tuple = ()) -> str:
    """The legend's name of a configuration."""
    if solver == "deepxde":
        import deepxde
        return f"DeepXDE {deepxde.__version__} (its Burgers example)"
    if solver == "jax":
        import jax
        return (f"JAX {jax.__version__}: {options['adam_steps']} Adam (f32, jit) + "
                f"jax.scipy BFGS (f64)")
    return "pinnkit " + (" ".join(([f"--recipe {recipe}"] if recipe else []) + list(settings))
                         or "default")


def read_curves(path: str) -> list:
    """The records of a JSON-lines file (lines that are not records are skipped)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()
            if line.startswith("{")]


if __name__ == "__main__":
    main()
