"""``pk.train(problem, method="ode")``: a neural / hybrid ODE fitted to data with torchdiffeq.

The problem's first-order system (`ode_system`) is integrated from its initial conditions by
`torchdiffeq.odeint` (or `odeint_adjoint`, which back-propagates by solving the adjoint ODE
backwards in O(1) memory in the number of solver steps; Chen et al. 2018, "Neural Ordinary
Differential Equations"), and the networks and `pk.parameter`s are fitted to the Data
conditions: Adam, on the whole trajectory or on mini-batches of sub-trajectories
(torchdiffeq's ode_demo: ``batch_time`` consecutive observations from ``batch_size`` random
starts, drawn across every observed trajectory), then optionally L-BFGS on the whole
trajectory and/or every sub-trajectory (multiple shooting).

Every integration has a budget of right-hand-side evaluations (``max_nfe``): an explicit
solver on a stiff system stops with an error naming implicit alternatives instead of
running for hours.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import OptionsError, TrainingError
from ..options import KeywordOptions
from ..pinn.progress import Progress, record
from ..spec import Problem
from .modules import ODEFunc, _BudgetExceeded, build_networks
from .system import ODESystem, ode_system, trajectory_state

__all__ = ["ODEOptions", "ODESolution", "train_ode", "ODE_SOLVERS"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: torchdiffeq's methods; the fixed-grid ones take ``step_size``
ADAPTIVE_SOLVERS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_SOLVERS = ("euler", "midpoint", "heun3", "rk4", "explicit_adams", "implicit_adams")
#: pinnkit's own, for stiff systems (`pinnkit.ode.stiff`; its own adjoint)
STIFF_SOLVERS = ("rosenbrock23",)
ODE_SOLVERS = ADAPTIVE_SOLVERS + FIXED_SOLVERS + STIFF_SOLVERS
#: squared, absolute, or squared relative ((pred - obs) / |obs|: data of relative noise, or
#: components of very different scales, as Robertson's)
DATA_LOSSES = ("mse", "mae", "relative")
LBFGS_LOSSES = ("trajectory", "windows")


@dataclass
class ODEOptions(KeywordOptions):
    """Every option of ``train(problem, method="ode", ...)`` (also CLI flags, ``--set``)."""

    WHOSE = " for method='ode'"

    steps: int = 1000                 # Adam steps
    lbfgs_steps: int = 0              # L-BFGS iterations after Adam (whole trajectory)
    seed: int = 0
    device: str = "cpu"               # cpu | cuda | auto (small systems: the CPU is faster)
    dtype: str = "float32"            # float32 | float64 (networks, parameters, states)
    lr: float = 1e-2
    lr_decay: float = 1.0             # multiply lr by this ...
    lr_decay_steps: int = 1000        # ... every this many steps (smoothly)
    ode_solver: str = "dopri5"        # a torchdiffeq method, or rosenbrock23 (stiff; ODE_SOLVERS)
    rtol: float = 1e-6
    atol: float = 1e-8
    step_size: float = 0.0            # fixed-grid solvers: step (0 = torchdiffeq's: the output grid)
    adjoint: bool = False             # odeint_adjoint (O(1) memory in the solver steps)
    batch_time: int = 0               # sub-trajectory length in observations (0 = whole trajectory)
    batch_size: int = 20              # sub-trajectories per Adam step
    max_nfe: int = 50000              # right-hand-side evaluations allowed per integration
    data_loss: str = "mse"            # mse | mae (torchdiffeq's demo) | relative
    lbfgs_history: int = 50
    lbfgs_loss: str = "trajectory"    # L-BFGS objective: trajectory (the whole one) | windows
                                      # (every batch_time sub-trajectory from its observed start)
                                      # | stages, lbfgs_steps each: windows,trajectory
    log_every: int = 10               # history/progress interval (Adam steps)
    checkpoint: str | None = None
    checkpoint_every: int = 100
    resume: bool = False
    quiet: bool = False
    progress_seconds: float = 30.0    # not on a terminal: seconds between progress log lines

    def validate(self) -> None:
        """`OptionsError` naming the first bad option and its valid values."""
        from ..options import MAX_SEED, is_int, is_number
        for name in ("steps", "lbfgs_steps", "seed", "batch_time", "max_nfe", "checkpoint_every"):
            v = getattr(self, name)
            if not is_int(v) or v < 0:
                raise OptionsError(f"option {name} must be a non-negative integer, got {v!r}")
        if self.seed > MAX_SEED:
            raise OptionsError(f"option seed must be at most 2**63 - 1, got {self.seed!r}")
        for name in ("batch_size", "log_every", "lr_decay_steps", "lbfgs_history"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                raise OptionsError(f"option {name} must be a positive integer, got {v!r}")
        if self.batch_time == 1:
            raise OptionsError("option batch_time must be 0 (whole trajectory) or at least 2")
        for name in ("lr", "rtol", "atol", "lr_decay"):
            v = getattr(self, name)
            if not (is_number(v) and v > 0):
                raise OptionsError(f"option {name} must be a positive number, got {v!r}")
        if not (is_number(self.progress_seconds) and self.progress_seconds >= 0):
            raise OptionsError(f"option progress_seconds must be a number >= 0, got "
                               f"{self.progress_seconds!r}")
        if not (is_number(self.step_size) and self.step_size >= 0):
            raise OptionsError(f"option step_size must be a number >= 0, got {self.step_size!r}")
        for name in ("adjoint", "resume", "quiet"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise OptionsError(f"option {name} must be true or false, "
                                   f"got {getattr(self, name)!r}")
        choices = {"dtype": tuple(DTYPES), "ode_solver": ODE_SOLVERS, "data_loss": DATA_LOSSES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise OptionsError(f"option {name} must be one of {', '.join(allowed)}, "
                                   f"got {getattr(self, name)!r}")
        stages = self.lbfgs_loss.split(",") if isinstance(self.lbfgs_loss, str) else [None]
        if not all(st in LBFGS_LOSSES for st in stages):
            raise OptionsError(f"option lbfgs_loss must be one of {', '.join(LBFGS_LOSSES)}, or "
                               f"stages separated by commas (windows,trajectory), got "
                               f"{self.lbfgs_loss!r}")
        if self.device not in ("auto", "cpu", "cuda") and not (
                isinstance(self.device, str) and self.device.startswith("cuda:")):
            raise OptionsError(f"option device must be one of auto, cpu, cuda (or cuda:N), "
                               f"got {self.device!r}")
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise OptionsError(f"option checkpoint must be a file path or None, got {self.checkpoint!r}")

    def fingerprint(self) -> str:
        skip = {"steps", "lbfgs_steps", "checkpoint", "checkpoint_every", "resume", "quiet",
                "log_every", "device"}
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def solver_kwargs(self) -> dict:
        kw: dict = {"rtol": self.rtol, "atol": self.atol}
        if self.ode_solver in STIFF_SOLVERS:
            return kw
        kw["method"] = self.ode_solver
        if self.ode_solver in FIXED_SOLVERS and self.step_size:
            kw["options"] = {"step_size": float(self.step_size)}
        return kw


def _stiff_message(problem: Problem, opts: ODEOptions, t: float, span: tuple,
                   backward: bool = False, starts: tuple | None = None) -> str:
    """The budget message. ``span`` is the integration's time grid; with ``starts`` (the first
    and last start of a batch of sub-trajectory windows, which integrate from a common 0 with a
    time offset each) it and ``t`` are times into the windows."""
    if starts is None:
        where, into = f"[{span[0]:g}, {span[1]:g}]", ""
    else:
        where = (f"sub-trajectory windows of length {span[1] - span[0]:g} (batch_time; they "
                 f"start at t = {starts[0]:g} to {starts[1]:g})")
        into = " into them"
    if backward:   # the adjoint runs from the span's end back to its start
        back = (f"from t = {span[1]:g} to {span[0]:g}" if starts is None
                else f"over {where}")
        spent = (f"problem {problem.name!r}: the adjoint integration of the backward pass "
                 f"({opts.ode_solver}) and its forward integration together used more than "
                 f"{opts.max_nfe} right-hand-side evaluations (they share max_nfe); going "
                 f"back {back}, the adjoint got only to t = {t:.4g}{into}")
    else:
        spent = (f"problem {problem.name!r}: the {opts.ode_solver} solver used more than "
                 f"{opts.max_nfe} right-hand-side evaluations in one integration and reached "
                 f"only t = {t:.4g}{into} of {where}")
    if opts.ode_solver in STIFF_SOLVERS:
        return f"{spent}; raise max_nfe or loosen rtol/atol"
    return (f"{spent}: the system is probably stiff (explicit "
            "methods need tiny steps there). Use an implicit method: ode_solver='rosenbrock23' "
            "(pinnkit's, with gradients), ode_solver='implicit_adams' with a step_size "
            "(torchdiffeq), or SciPy's Radau/BDF/LSODA through pk.reference(problem); or raise "
            "max_nfe if the system is merely long")


class _Integrator:
    """odeint / odeint_adjoint with the options' solver, the evaluation budget and errors that
    say what went wrong."""

    def __init__(self, problem: Problem, func: ODEFunc, opts: ODEOptions, adjoint: bool) -> None:
        import torchdiffeq
        self.problem, self.func, self.opts = problem, func, opts
        self.kw = opts.solver_kwargs()
        self.odeint = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
        self.span, self.offset = (0.0, 0.0), None
        if opts.ode_solver in STIFF_SOLVERS:
            from .stiff import rosenbrock23, rosenbrock23_adjoint
            self.odeint = rosenbrock23_adjoint if adjoint else rosenbrock23
        elif adjoint:
            self.kw["adjoint_params"] = tuple(func.parameters())

    def __call__(self, y0: torch.Tensor, t: torch.Tensor, budget: bool = True) -> torch.Tensor:
        self.func.nfe = 0
        self.func.budget = self.opts.max_nfe if budget else 0
        self.span = (float(t[0]), float(t[-1]))
        self.offset = self.func.offset   # sub-trajectory windows: each one's start time
        with self.errors():
            return self.odeint(self.func, y0, t, **self.kw)

    def backward(self, total: torch.Tensor) -> None:
        """``total.backward()``: with ``adjoint=True`` that integrates the adjoint system
        (within the same evaluation budget), and its failures read like the forward's."""
        with self.errors(backward=True):
            total.backward()

    @contextlib.contextmanager
    def errors(self, backward: bool = False):
        """The solver's failures inside as `TrainingError`s (`translate`)."""
        try:
            yield
        except (_BudgetExceeded, RuntimeError, AssertionError) as exc:
            err = self.translate(exc, backward)
            if err is exc:
                raise
            raise err from None

    def translate(self, exc: Exception, backward: bool = False) -> Exception:
        """The solver's exception (in the backward pass: ``backward``) as a `TrainingError`
        that says what went wrong, or itself when it is not the solver's."""
        name, solver = self.problem.name, self.opts.ode_solver
        if isinstance(exc, _BudgetExceeded):
            off = self.offset
            starts = None if off is None else (float(off.min()), float(off.max()))
            return TrainingError(_stiff_message(self.problem, self.opts, exc.t, self.span,
                                                backward, starts))
        if isinstance(exc, AssertionError):   # torchdiffeq: "underflow in dt", bad inputs
            return TrainingError(f"problem {name!r}: torchdiffeq ({solver}) stopped: {exc}; the "
                                 "step size collapsed, which points to a stiff or diverging "
                                 "system (try an implicit solver, float64 or a lower lr)")
        if str(exc).startswith("rosenbrock23"):   # the step size underflowed, too many steps
            return TrainingError(f"problem {name!r}: {exc}; the system diverges or the "
                                 "tolerances are too tight for its dtype")
        return exc


class ODESolution:
    """A trained neural/hybrid ODE. ``sol({"t": ts})`` integrates from the initial conditions
    (past the data window it extrapolates); ``history``, ``parameters``, ``learned_terms()``."""

    def __init__(self, problem: Problem, system: ODESystem, func: ODEFunc, options: ODEOptions,
                 history: dict, seconds: float, messages: list) -> None:
        self.problem, self.system, self.func = problem, system, func
        self.options, self.history = options, history
        self.seconds, self.messages = seconds, messages
        self.fields = list(problem.fields)
        self.coord_names = [system.t.name]
        self.method = "ode"

    @property
    def parameters(self) -> dict[str, float]:
        return {k: float(v.detach().cpu()) for k, v in self.func.params.items()}

    @property
    def final_loss(self) -> float:
        return float(self.history["loss"][-1]) if self.history.get("loss") else float("nan")

    def _like(self) -> torch.Tensor:
        return next(iter(self.func.parameters()), torch.zeros(()))

    def initial_state(self, initial: dict | None = None) -> np.ndarray:
        """The initial state (n_state,) of the problem's trajectory, with the components given
        by ``initial`` ({field or its time derivative: number}, as `pk.Data`'s) replaced."""
        p = self._like()
        with torch.no_grad():
            y0 = self.func.y0(p.dtype, p.device).cpu().numpy().astype(np.float64)
        if initial is None:
            return y0
        given = self.problem.initial_values(initial, "initial")
        state = trajectory_state(self.problem, list(y0), self.system.fields,
                                 self.system.orders(), given, "initial")
        return np.asarray(state, dtype=np.float64)

    def trajectory(self, times: np.ndarray, initial: dict | None = None) -> np.ndarray:
        """State (len(times), n_state) at ``times`` (float64 array), from the problem's initial
        values or, with ``initial``, from those of another trajectory (`initial_state`)."""
        times = np.asarray(times, float).ravel()
        p = self._like()
        integ = _Integrator(self.problem, self.func, self.options, adjoint=False)
        t0 = self.system.t0
        out = np.empty((len(times), len(self.system.state)))
        with torch.no_grad():
            y0 = self.func.y0(p.dtype, p.device) if initial is None else \
                torch.as_tensor(self.initial_state(initial), dtype=p.dtype, device=p.device)
            for mask, order in ((times >= t0, 1), (times < t0, -1)):
                if not mask.any():
                    continue
                ts = np.unique(times[mask])[::order]
                grid = np.concatenate([[t0], ts]) if ts[0] != t0 else ts
                Y = integ(y0, torch.as_tensor(grid, dtype=p.dtype, device=p.device))
                Y = Y[len(grid) - len(ts):].cpu().numpy().astype(np.float64)
                idx = np.searchsorted(ts[::order], times[mask])
                out[mask] = Y[::order][idx]
        return out

    def __call__(self, points: dict, initial: dict | None = None) -> dict[str, np.ndarray]:
        """Fields at ``points`` = {"t": array of any shape} -> {field: array of that shape}, on
        the problem's trajectory or the one from ``initial`` (see `initial_state`)."""
        tname = self.coord_names[0]
        if tname not in points:
            raise KeyError(f"points lack coordinate {tname!r}")
        ts = np.asarray(points[tname], float)
        Y = self.trajectory(ts.ravel(), initial)
        return {f: Y[:, col].reshape(ts.shape) for f, col in self.system.fields.items()}

    def learned_terms(self) -> dict:
        """{network name: f(X (n, n_in) numpy) -> (n, n_out) numpy}, for `pk.reference(terms=)`
        and `pk.discover` (numpy in, numpy out: those modules import no torch)."""
        p = self._like()

        def wrap(module: torch.nn.Module):
            def f(X: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    x = torch.as_tensor(np.asarray(X, float), dtype=p.dtype, device=p.device)
                    return module(x).cpu().numpy().astype(np.float64)
            return f
        return {name: wrap(m) for name, m in self.func.networks.items()}

    def __repr__(self) -> str:
        return (f"ODESolution({self.problem.name!r}, solver={self.options.ode_solver}, "
                f"steps={self.options.steps}, final_loss={self.final_loss:.3e})")


@dataclass
class _Targets:
    """The Data conditions on one sorted time grid: ``grid`` = [t0] + data times;
    ``trajectories``: the observed trajectories (indices into ``ODESystem.trajectories``),
    integrated together in one batch, or None for the problem's own trajectory alone."""

    grid: np.ndarray
    sets: list   # (name, row indices into grid, state columns, values (n, k), batch position)
    trajectories: list | None = None


def _targets(problem: Problem, system: ODESystem) -> _Targets:
    if not system.data:
        raise TrainingError(f"problem {problem.name!r}: method='ode' fits observations, and the "
                            "problem has no pk.Data condition")
    times = np.unique(np.concatenate([d.times for d in system.data]))
    if times[0] < system.t0:
        raise TrainingError(f"problem {problem.name!r}: data at t = {times[0]:g}, before the "
                            f"initial time t0 = {system.t0:g}")
    grid = times if times[0] == system.t0 else np.concatenate([[system.t0], times])
    used = sorted({d.trajectory for d in system.data})
    trajectories = None if used == [0] else used
    sets = [(d.name, np.searchsorted(grid, d.times), d.columns, d.values, used.index(d.trajectory))
            for d in system.data]
    return _Targets(grid, sets, trajectories)


@dataclass
class _Windows:
    """The sub-trajectories of ``batch_time`` observations of every observed trajectory: the
    observations stacked trajectory after trajectory (``times`` (N,), ``values`` (N, n_state)
    tensor); window j starts at row ``start[j]`` (numbered trajectory by trajectory, start by
    start) and is integrated on the time grid ``taus[group[j]]`` (from 0; trajectories of equal
    spacing share one grid, hence one batched integration)."""

    start: np.ndarray
    group: np.ndarray
    times: np.ndarray
    values: torch.Tensor
    taus: list

    @property
    def count(self) -> int:
        return len(self.start)


class _ODETrainer:
    def __init__(self, problem: Problem, opts: ODEOptions, callback: Any = None) -> None:
        from ..distributed import current
        from ..trainer import resolve_device
        self.problem, self.opts, self.callback = problem, opts, callback
        self.shard = current()
        self.system = ode_system(problem, "method='ode'")
        self.device = resolve_device(opts.device)
        self.dtype = DTYPES[opts.dtype]
        self.targets = _targets(problem, self.system)
        networks = build_networks(self.system.networks, opts.seed)
        params = torch.nn.ParameterDict({p.name: torch.nn.Parameter(torch.tensor(float(p.init)))
                                         for p in self.system.parameters})
        self.func = ODEFunc(self.system, networks, params).to(self.device, self.dtype)
        if not list(self.func.parameters()):
            raise TrainingError(f"problem {problem.name!r} has nothing to train: no pk.network "
                                "and no pk.parameter")
        self.integrate = _Integrator(problem, self.func, opts, opts.adjoint)
        self.tensors = self._tensors()
        if opts.data_loss == "relative" and any(
                bool((vals == 0).any()) for *_, vals, _ in self.tensors["sets"]):
            raise OptionsError(f"problem {problem.name!r}: option data_loss='relative' divides "
                               "by the observed values, and some are 0; use 'mse' or drop them")
        self.batching = self._batching() if opts.batch_time else None
        if "windows" in opts.lbfgs_loss.split(",") and self.batching is None:
            raise OptionsError(f"problem {problem.name!r}: lbfgs_loss='windows' fits the "
                               "sub-trajectories of batch_time observations; set batch_time > 0")
        if self.shard.active:
            self._check_data_parallel()
        self.adam = torch.optim.Adam(self.func.parameters(), lr=opts.lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.adam, lambda s: opts.lr_decay ** (s / opts.lr_decay_steps))
        names = [name for name, *_ in self.targets.sets]
        self.history: dict = {k: [] for k in ["step", "phase", "loss", "time", "lr", "nfe"]
                              + [f"loss_{n}" for n in names]}
        self.messages: list = []
        self.step = self.lbfgs_iter = 0
        self.elapsed = 0.0

    def _tensors(self) -> dict:
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)  # noqa: E731
        return {"grid": as_t(self.targets.grid),
                "sets": [(name, torch.as_tensor(rows, device=self.device), cols, as_t(vals), b)
                         for name, rows, cols, vals, b in self.targets.sets]}

    def _batching(self) -> "_Windows":
        """torchdiffeq's ode_demo sub-trajectories, over every observed trajectory: each needs
        one Data condition that observes its whole state on an equally spaced grid (the
        spacing may differ between trajectories)."""
        sets, sys = self.targets.sets, self.system
        name, bt = self.problem.name, self.opts.batch_time
        by_trajectory: dict = {}
        for entry in sets:
            by_trajectory.setdefault(entry[4], []).append(entry)
        starts, groups, values, times, taus = [], [], [], [], []
        offset = 0
        for position in sorted(by_trajectory):
            entries = by_trajectory[position]
            if len(entries) != 1 or sorted(entries[0][2]) != list(range(len(sys.state))):
                names = ", ".join(repr(e[0]) for e in entries)
                raise OptionsError(f"problem {name!r}: batch_time needs one Data condition per "
                                   f"trajectory that observes every state component "
                                   f"({', '.join(sys.state)}); this trajectory has {names}; use "
                                   "batch_time=0")
            data_name, rows, cols, vals, _ = entries[0]
            t = self.targets.grid[rows]
            dt = np.diff(t)
            if len(dt) and not np.allclose(dt, dt[0], rtol=1e-6, atol=0):
                raise OptionsError(f"problem {name!r}: batch_time needs equally spaced data times "
                                   f"(those of {data_name!r} are irregular); use batch_time=0 "
                                   "(the whole trajectory)")
            n = len(t)
            if bt > n - 1:
                raise OptionsError(f"problem {name!r}: batch_time {bt} exceeds the {n} "
                                   f"observations of {data_name!r}")
            tau = t[:bt] - t[0]
            g = next((i for i, other in enumerate(taus) if np.allclose(other, tau, rtol=1e-12,
                                                                        atol=0)), len(taus))
            if g == len(taus):
                taus.append(tau)
            # the demo's starts 0 .. n - bt - 1 (its last full window is left out)
            starts.append(offset + np.arange(n - bt))
            groups.append(np.full(n - bt, g))
            values.append(vals[:, np.argsort(cols)])
            times.append(t)
            offset += n
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)  # noqa: E731
        return _Windows(start=np.concatenate(starts), group=np.concatenate(groups),
                        times=np.concatenate(times), values=as_t(np.concatenate(values)),
                        taus=[as_t(tau) for tau in taus])

    def _check_data_parallel(self) -> None:
        """Data parallel (torchrun): the ranks split each Adam step's sub-trajectories; the
        whole trajectory is one integration that cannot be split."""
        name, world = self.problem.name, self.shard.world
        if self.batching is None:
            raise OptionsError(f"problem {name!r}: data-parallel method='ode' training splits the "
                               "mini-batches of sub-trajectories between the ranks, and "
                               "batch_time=0 integrates one whole trajectory; set batch_time > 0 "
                               "or run one process")
        if min(self.opts.batch_size, self.batching.count) < world:
            raise OptionsError(f"problem {name!r}: {world} ranks need at least {world} "
                               f"sub-trajectories per step; raise batch_size (now "
                               f"{self.opts.batch_size}) or use fewer ranks")

    # -- losses
    def _misfit(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.mean(_pointwise_misfit(pred, target, self.opts.data_loss))

    def full_loss(self) -> tuple[torch.Tensor, dict]:
        several = self.targets.trajectories
        y0 = self.func.y0(self.dtype, self.device, several)
        Y = self.integrate(y0, self.tensors["grid"])     # (time, state) or (time, trajectory, state)
        terms = {name: self._misfit((Y[rows] if several is None else Y[rows, b])[:, cols], vals)
                 for name, rows, cols, vals, b in self.tensors["sets"]}
        return sum(terms.values()), terms

    def batch_loss(self) -> torch.Tensor:
        """One Adam step's mini-batch: ``batch_size`` sub-trajectories drawn without replacement
        from those of every observed trajectory (`_Windows`), seeded by (seed, step)."""
        w, o = self.batching, self.opts
        rng = np.random.default_rng([o.seed, self.step])
        s = rng.choice(w.count, size=min(o.batch_size, w.count), replace=False)
        return self._windows_loss(s, o.data_loss)

    def windows_loss(self) -> torch.Tensor:
        """The second phase's multiple-shooting objective (``lbfgs_loss="windows"``): the mean
        squared misfit of every sub-trajectory of ``batch_time`` observations of every observed
        trajectory, each integrated from its observed start; deterministic, smooth, and free of
        the whole trajectory's phase-shifted local minima."""
        loss = "relative" if self.opts.data_loss == "relative" else "mse"
        return self._windows_loss(np.arange(self.batching.count), loss)

    def _windows_loss(self, s: np.ndarray, data_loss: str) -> torch.Tensor:
        """Mean misfit of the sub-trajectories ``s`` (indices into `_Windows`), each integrated
        from its observed start; one batched integration per distinct time grid."""
        w, o = self.batching, self.opts
        n_global = len(s)
        s = self.shard.rows(s)     # data parallel: this rank's sub-trajectories of the batch
        errs = []
        for g, tau in enumerate(w.taus):
            rows = w.start[s[w.group[s] == g]]
            if not len(rows):
                continue
            idx = torch.as_tensor(rows, device=self.device)
            target = torch.stack([w.values[idx + i] for i in range(o.batch_time)])
            self.func.offset = torch.as_tensor(w.times[rows], dtype=self.dtype,
                                               device=self.device)[:, None]
            try:
                pred = self.integrate(w.values[idx], tau)
            finally:
                self.func.offset = None
            errs.append(_pointwise_misfit(pred, target, data_loss))
        err = torch.cat(errs, dim=1)          # (time, batch, state)
        if not self.shard.active:
            return torch.mean(err)
        # this rank's share of the global batch's mean: the sum over the ranks is that mean
        return err.sum() / (err.shape[0] * n_global * err.shape[-1])

    # -- history
    def _record(self, phase: int, step: int, total: torch.Tensor, terms: dict, t0: float) -> float:
        loss = float(total.detach())
        record(self.history, self.problem.name, phase, step, loss,
               {k: float(v.detach()) for k, v in terms.items()},
               self.elapsed + time.perf_counter() - t0,
               self.adam.param_groups[0]["lr"] if phase == 0 else 1.0,
               "lower lr, use float64 or check the spec")
        self.history["nfe"].append(self.func.nfe)
        return loss

    def solution(self, seconds: float) -> ODESolution:
        sol = ODESolution(self.problem, self.system, self.func, self.opts, self.history, seconds,
                          self.messages)
        sol.world_size, sol.backend = self.shard.world, self.shard.backend
        return sol

    def _ask_callback(self, phase: str, step: int, t0: float) -> bool:
        if self.callback is None:
            return False
        if self.callback(phase, step, self.solution(self.elapsed + time.perf_counter() - t0)):
            self.messages.append(f"stopped by the callback at {phase} step {step}")
            return True
        return False

    # -- checkpoints
    def state(self) -> dict:
        return {"problem": self.problem.name, "method": "ode", "fingerprint": self.opts.fingerprint(),
                "func": self.func.state_dict(), "adam": self.adam.state_dict(),
                "sched": self.sched.state_dict(), "step": self.step, "lbfgs_iter": self.lbfgs_iter,
                "elapsed": self.elapsed, "history": self.history, "messages": self.messages}

    def save(self, t0: float) -> None:
        if self.opts.checkpoint and self.shard.main:     # rank 0 writes; the ranks agree
            state = self.state()
            state["elapsed"] = self.elapsed + time.perf_counter() - t0
            save_checkpoint(self.opts.checkpoint, state)

    def restore(self, path: str) -> None:
        s = load_checkpoint(path, required=("problem",))
        if s.get("problem") != self.problem.name or s.get("method") != "ode":
            raise TrainingError(f"checkpoint {path} is not a method='ode' checkpoint of problem "
                                f"{self.problem.name!r}")
        if s.get("fingerprint") != self.opts.fingerprint():
            raise TrainingError(f"checkpoint {path} was written with different options; remove it "
                                "or rerun without --resume")
        self.func.load_state_dict(s["func"])
        self.adam.load_state_dict(s["adam"])
        self.sched.load_state_dict(s["sched"])
        self.step, self.lbfgs_iter, self.elapsed = s["step"], s["lbfgs_iter"], s["elapsed"]
        self.history, self.messages = s["history"], list(s["messages"])

    # -- phases
    def run(self) -> ODESolution:
        o = self.opts
        if o.resume and o.checkpoint and Path(o.checkpoint).is_file():
            self.restore(o.checkpoint)
        t0 = time.perf_counter()
        try:
            stopped = self._adam(t0)
            if not stopped:
                self._lbfgs(t0)
        except KeyboardInterrupt:
            self.save(t0)
            raise
        self.save(t0)
        self.elapsed += time.perf_counter() - t0
        return self.solution(self.elapsed)

    def _adam(self, t0: float) -> bool:
        o = self.opts
        bar = Progress(self.problem.name, "ode adam", "Adam step", "steps", self.step, o.steps,
                       o.quiet, self.shard.main, o.progress_seconds)
        while self.step < o.steps and self.lbfgs_iter == 0:
            self.adam.zero_grad(set_to_none=True)
            if self.batching is not None:
                total, terms = self.batch_loss(), None
            else:
                total, terms = self.full_loss()
            if self.shard.active:     # every rank sees the same verdict
                total_check = self.shard.all_reduce(total.detach().clone())
            else:
                total_check = total
            if not math.isfinite(float(total_check.detach())):
                self._record(0, self.step + 1, total_check, terms or {"batch": total_check}, t0)
            self.integrate.backward(total)
            if self.shard.active:     # the global batch's gradient on every rank
                self.shard.all_reduce_many([p.grad for p in self.func.parameters()
                                            if p.grad is not None])
            self.adam.step()
            self.sched.step()
            self.step += 1
            if self.step % o.log_every == 0 or self.step == o.steps:
                if terms is None:   # mini-batches: log the whole-trajectory loss
                    with torch.no_grad():
                        total, terms = self.full_loss()
                loss = self._record(0, self.step, total, terms, t0)
                bar.show(self.step, loss)
                bar.log(self.step, loss, {k: float(v.detach()) for k, v in terms.items()})
                if self._ask_callback("adam", self.step, t0):
                    bar.close()
                    return True
            if o.checkpoint and self.step % o.checkpoint_every == 0:
                self.save(t0)
        bar.close()
        return False

    def _lbfgs(self, t0: float) -> None:
        """L-BFGS in the stages of ``lbfgs_loss`` ("windows,trajectory": multiple shooting on
        the data, then the whole trajectory from there), ``lbfgs_steps`` iterations each; a
        stage that converges early hands over to the next (its budget counts as spent)."""
        o = self.opts
        stages = o.lbfgs_loss.split(",")
        while self.lbfgs_iter < o.lbfgs_steps * len(stages):
            k = self.lbfgs_iter // o.lbfgs_steps
            if self._lbfgs_stage(t0, stages[k] == "windows", (k + 1) * o.lbfgs_steps):
                return       # stopped by the callback or a non-finite loss
            self.lbfgs_iter = max(self.lbfgs_iter, (k + 1) * o.lbfgs_steps)

    def _lbfgs_stage(self, t0: float, windows: bool, end: int) -> bool:
        """L-BFGS on one objective until iteration ``end`` or convergence; True if training
        must stop (callback, non-finite loss)."""
        o = self.opts
        params = list(self.func.parameters())
        lbfgs = torch.optim.LBFGS(params, lr=1.0, max_iter=o.log_every, history_size=o.lbfgs_history,
                                  tolerance_grad=1e-12, tolerance_change=0.0,
                                  line_search_fn="strong_wolfe")
        name = "windows" if windows else "trajectory"

        def objective() -> torch.Tensor:
            # the whole trajectory is the same on every rank (nothing to reduce); the windows
            # are split between the ranks
            return self.windows_loss() if windows else self.full_loss()[0]

        def closure():
            lbfgs.zero_grad(set_to_none=True)
            total = objective()
            if windows and self.shard.active:   # this rank's windows: reduce loss and gradient
                self.integrate.backward(total)
                self.shard.all_reduce_many([p.grad for p in params if p.grad is not None])
                total = self.shard.all_reduce(total.detach().clone())
                if not math.isfinite(float(total)):
                    raise _NonFinite
                return total
            if not math.isfinite(float(total.detach())):
                raise _NonFinite
            self.integrate.backward(total)
            return total

        def value() -> float:
            with torch.no_grad():
                v = objective().detach()
            return float(self.shard.all_reduce(v.clone()) if windows and self.shard.active else v)

        best = value()
        best_state = copy.deepcopy(self.func.state_dict())
        stop = False
        bar = Progress(self.problem.name, f"ode lbfgs ({name})", f"L-BFGS ({name}) iteration",
                       "it", self.lbfgs_iter, end, o.quiet, self.shard.main, o.progress_seconds)
        while self.lbfgs_iter < end:
            chunk = min(o.log_every, end - self.lbfgs_iter)
            # torch's default evaluation cap (1.25 per iteration) ends a chunk early whenever
            # line searches need a second evaluation, which read as "converged" here
            lbfgs.param_groups[0].update(max_iter=chunk, max_eval=5 * chunk)
            before = lbfgs.state[params[0]].get("n_iter", 0)
            try:
                lbfgs.step(closure)
            except _NonFinite:
                self.func.load_state_dict(best_state)
                self.messages.append(f"L-BFGS ({name}) reached a non-finite loss at iteration "
                                     f"{self.lbfgs_iter}; kept the best state")
                stop = True
                break
            done = lbfgs.state[params[0]].get("n_iter", 0) - before
            self.lbfgs_iter += max(done, 1)
            current = value()
            if current < best:
                best, best_state = current, copy.deepcopy(self.func.state_dict())
                with torch.no_grad():     # the history shows the whole-trajectory misfit
                    total, terms = self.full_loss()
                loss = self._record(1, self.lbfgs_iter, total, terms, t0)
                bar.show(self.lbfgs_iter, loss)
                bar.log(self.lbfgs_iter, loss, {k: float(v.detach()) for k, v in terms.items()})
                if self._ask_callback("lbfgs", self.lbfgs_iter, t0):
                    stop = True
                    break
            if done < chunk:   # converged or no progress
                self.messages.append(f"L-BFGS ({name}) stopped at iteration {self.lbfgs_iter} (no "
                                     f"further decrease; loss {best:.3e})")
                break
        bar.close()
        self.func.load_state_dict(best_state)
        return stop


def _pointwise_misfit(pred: torch.Tensor, target: torch.Tensor, data_loss: str) -> torch.Tensor:
    """Squared (``mse``), absolute (``mae``) or squared relative (``relative``) differences,
    before the mean."""
    d = pred - target
    if data_loss == "relative":
        d = d / target.abs()
    return torch.abs(d) if data_loss == "mae" else d * d


class _NonFinite(Exception):
    pass


def train_ode(problem: Problem, callback: Any = None, **options: Any) -> ODESolution:
    """Fit the networks and parameters of a time-only problem to its Data by integrating it
    with torchdiffeq (options: `ODEOptions`). Raises `SpecError` for a problem that is not an
    ODE system, `TrainingError` for bad options, non-finite losses or a spent step budget."""
    if not isinstance(problem, Problem):
        raise TrainingError(f"train() needs a pinnkit Problem, got {type(problem).__name__}")
    opts = ODEOptions.from_kwargs(**options)
    return _ODETrainer(problem, opts, callback).run()
