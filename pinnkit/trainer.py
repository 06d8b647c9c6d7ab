"""The trainer: Adam (with a learning-rate schedule) then L-BFGS, history, checkpoints.

L-BFGS runs in float64 by default and is restarted whenever torch's strong-Wolfe line
search stalls (a zero step makes torch's L-BFGS quit silently after a few iterations,
DeepXDE issue #1819): it stops only when its budget is spent or when several restarts in
a row make no progress, and it says which.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import types
from dataclasses import dataclass, field as dc_field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, mismatch, problem_fingerprint, save_checkpoint
from .errors import OptionsError, SpecError, TrainingError, TrainingInterrupted
from .derivatives import resolve_engine
from .distributed import current as current_shard
from .losses import CompiledProblem, hard_constraint, sample_batches, stack_points
from .nn import build_model
from .spec import Problem

__all__ = ["TrainOptions", "Solution", "train", "resolve_device", "resolve_threads", "DTYPES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
# threads=0 (auto) runs networks up to this width on one CPU thread: a PINN's tensors are small,
# and more threads measured slower (README's Burgers run, docs/cli.md); wider ones keep torch's
AUTO_ONE_THREAD_WIDTH = 256
_log = logging.getLogger("pinnkit.train")
# torch.compile modes the option ``compile`` may name ("reduce-overhead": CUDA graphs on a GPU)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainOptions:
    """Every option of `train` (also keys of a problem file's ``options`` and CLI flags)."""

    steps: int = 2000                 # Adam steps
    lbfgs_steps: int = 500            # L-BFGS iterations after Adam
    seed: int = 0                     # seed of the network's weights and the collocation points
    device: str = "auto"              # auto (CUDA when available) | cpu | cuda
    dtype: str = "float32"            # Adam phase dtype
    lbfgs_dtype: str = "float64"      # L-BFGS phase dtype (float64 avoids the zero-step stall)
    network: str = "mlp"              # mlp | modified_mlp | pirate
    width: int = 50                   # neurons per hidden layer
    depth: int = 4                    # hidden layers
    activation: str = "tanh"          # activation function of the hidden layers
    fourier_features: int = 0         # Fourier feature embedding size (0 = none)
    fourier_scale: float = 1.0        # σ of the Fourier feature frequencies
    fourier_scales: dict = dc_field(default_factory=dict)  # per-coordinate σ overriding fourier_scale
    periodic_embedding: bool = False  # exact periodicity for Periodic conditions (cos/sin inputs)
    weight_factorization: bool = False  # random weight factorization of the linear layers
    interior_points: int = 2000       # collocation points inside the domain (PDE residuals)
    boundary_points: int = 200        # points per boundary/periodic condition
    initial_points: int = 200         # points per initial condition
    sampling: str = "sobol"           # sobol | halton | lhs | uniform
    mesh_vertices: bool = False       # also collocate at the mesh's interior vertices (meshes)
    resample_every: int = 0           # resample collocation points every K Adam steps (0 = never)
    time_windows: int = 0             # time marching: Adam steps in K expanding windows [t0, t0 + iT/K]
    lr: float = 1e-3                  # Adam learning rate at step 0
    lr_decay: float = 0.9             # multiply lr by this ...
    lr_decay_steps: int = 1000        # ... every this many steps (smoothly)
    lbfgs_history: int = 50           # L-BFGS memory (pairs of past steps)
    weights: dict = dc_field(default_factory=dict)   # term name -> fixed loss weight
    hard_constraints: bool = False    # enforce Dirichlet/Initial exactly on boxes
    # derivative engine: auto | taylor | autograd (default: $PINNKIT_ENGINE, else auto)
    engine: str = dc_field(default_factory=lambda: os.environ.get("PINNKIT_ENGINE", "auto"))
    compile: bool | str = "auto"      # torch.compile the training step: auto (when the run is long
                                      # enough to pay for compiling) | true | false | a mode (COMPILE_MODES)
    optimizer: str = "lbfgs"          # second phase: lbfgs | bfgs | ssbfgs | ssbroyden (pinnkit.optim)
    causal_eps: float = 0.0           # causal training of time-dependent PDE terms (0 = off)
    causal_bins: int = 32             # time slabs for causal training
    loss_weighting: str = "fixed"     # fixed | gradnorm | ntk | relobralo (Adam phase; L-BFGS keeps the last weights)
    weight_every: int = 100           # loss-weight update interval (steps)
    weight_momentum: float = 0.9      # gradnorm/ntk moving average
    relobralo_alpha: float = 0.999    # ReLoBRaLo: weight of the history term
    relobralo_temperature: float = 0.1  # ReLoBRaLo: softmax temperature
    relobralo_saudade: float = 0.999  # ReLoBRaLo: probability of looking back to the first losses
    ntk_points: int = 32              # ntk: points per term for the kernel trace estimate
    point_weighting: str = "none"     # none | rba (residual-based attention on PDE points)
    rba_gamma: float = 0.999          # RBA: λ_i <- γ λ_i + η |r_i| / max|r|
    rba_eta: float = 0.01             # RBA: step η of the multipliers
    rba_every: int = 10               # RBA update interval (steps)
    adaptive: str = "none"            # none | rar | rad (residual-based adaptive sampling)
    adaptive_every: int = 1000        # steps between adaptive updates
    adaptive_points: int = 100        # RAR: points added per update
    adaptive_candidates: int = 0      # candidates per update (0 = 10 x interior_points)
    rad_k: float = 1.0                # RAD: p ∝ |r|^k / mean + c
    rad_c: float = 1.0                # RAD: the constant c above
    log_every: int = 100              # history/progress/NaN check interval (steps)
    checkpoint: str | None = None     # path of checkpoint.pt (None = no checkpoints)
    checkpoint_every: int = 1000      # steps between checkpoints
    resume: bool = False              # continue from the checkpoint when it exists
    quiet: bool = False               # no progress bar, progress lines or messages
    threads: int = 0                  # torch CPU threads in training (0 = auto: 1 up to width 256)
    progress_seconds: float = 30.0    # not on a terminal: seconds between progress log lines

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "TrainOptions":
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise OptionsError(f"unknown option(s) {', '.join(unknown)}; valid options: "
                               f"{', '.join(cls.names())}")
        opts = cls(**kwargs)
        opts.validate()
        return opts

    def validate(self) -> None:
        """Check every option on its own (`pinnkit.options.check_options`); `OptionsError`
        names the option and lists the valid values."""
        from .options import check_options
        check_options(self)

    def check_problem(self, problem: Problem) -> None:
        """Check the options that depend on ``problem`` (`pinnkit.options.check_problem_options`):
        `OptionsError` before any work."""
        from .options import check_problem_options
        check_problem_options(self, problem)

    def result_options(self) -> dict:
        """The options that change the result (resume refuses a checkpoint whose differ), as
        plain JSON values. The budgets (steps, lbfgs_steps) may grow on resume."""
        skip = {"steps", "lbfgs_steps", "checkpoint", "checkpoint_every", "resume", "quiet",
                "log_every", "device", "threads", "progress_seconds"}
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        return json.loads(json.dumps(d, sort_keys=True, default=str))

    def fingerprint(self) -> str:
        """Hash of `result_options`."""
        return hashlib.sha256(json.dumps(self.result_options(), sort_keys=True).encode()).hexdigest()[:16]


def _adam(params: list, lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where torch supports it (fewer launches per step)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


# Inductor options of the whole-step compile on a CPU (compile=True): a C++ wrapper instead of
# the Python one that calls the step's ~50 kernels (a Burgers step 1.67 vs 1.83 ms here).
# The nn.Module guards stay: without them (skip_guard_on_all_nn_modules_unsafe, 1.47 vs
# 1.53 ms) a second pk.train in the same process reused the first run's graph, with the
# first trainer's loss (its weighting, weights, causal settings) on the new parameters.
STEP_COMPILE_OPTIONS = {"cpp_wrapper": True}
# compile="auto" compiles when steps + SECOND_PHASE_WEIGHT x lbfgs_steps reaches this.
# Measured on problems/burgers.py (4 x 20, 2780 points, one thread, other jobs on the machine;
# docs/benchmarks.md; measured with the nn.Module guards off): compiling took 29-30 s with an empty Inductor cache and 3.2-3.4 s with a
# warm one, and saved 3.5-6.5 ms per step (eager 8.2-11.7 ms, compiled 4.7-5.2 ms): it pays
# after ~700 steps warm and ~6500 cold. 5000 keeps short runs eager (never slower, cold or
# warm), costs a first, cold run of 5000 steps at most ~7 s, and wins on every later run;
# larger problems save more per step, so compiling pays for them sooner still.
AUTO_COMPILE_MIN_STEPS = 5000
# a second-phase iteration saves ~2.5x what an Adam step saves: 1.3 loss + gradient
# evaluations (line search) in float64; measured on Burgers with 6000 points, SSBFGS: 49 ms
# per iteration eager vs ~22 ms compiled, against 18 vs ~8-11 ms per Adam step
SECOND_PHASE_WEIGHT = 2.5


def _traced_all_reduce(grads: dict) -> dict:
    """Data parallel: the sum over the ranks of each gradient, as one flat functional
    collective that torch.compile traces into the whole-step graph (gloo and NCCL)."""
    import torch.distributed as dist
    import torch.distributed._functional_collectives as funcol
    names = list(grads)
    flat = funcol.all_reduce(torch.cat([grads[n].reshape(-1) for n in names]), "sum",
                             dist.group.WORLD)
    out, i = {}, 0
    for n in names:
        k = grads[n].numel()
        out[n] = flat[i:i + k].view_as(grads[n])
        i += k
    return out


def _own_code(fn):
    """``fn`` with a copy of its code object: a function dynamo caches on its own."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                              fn.__defaults__, fn.__closure__)


class _LossModule(torch.nn.Module):
    """The network and the problem's unknown parameters under one module whose forward is the
    weighted loss, so that torch.func.functional_call can swap in the tensors it
    differentiates (the whole-step compile, `_Trainer._make_step`)."""

    def __init__(self, trainer: "_Trainer") -> None:
        super().__init__()
        self.model, self.params = trainer.model, trainer.params
        self.networks = trainer.networks
        self.__dict__["trainer"] = trainer      # a back reference, not a submodule

    def forward(self, batches: dict, lam: torch.Tensor) -> tuple:
        # the trainer's loss sees the swapped tensors: they are this module's own submodules
        total, terms = self.trainer._loss_eager(batches, lam)
        return total, {k: v.detach() for k, v in terms.items()}


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):     # no isatty, or a closed stream
        return False


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise OptionsError(f"option device: {device!r} requested but CUDA is not available "
                           "(use --device cpu or auto)")
    return torch.device(device)


class Solution:
    """A trained PINN. ``sol(points)`` evaluates every field; ``history``, ``parameters``."""

    world_size: int = 1         # data-parallel ranks that trained it (pinnkit.distributed)
    backend: str = "none"       # their torch.distributed backend

    def __init__(self, problem: Problem, model: torch.nn.Module, params: dict,
                 options: TrainOptions, history: dict, seconds: float, messages: list,
                 networks: Any = None) -> None:
        self.problem = problem
        self.networks = networks if networks is not None else torch.nn.ModuleDict()
        self.model = model
        self._params = params
        self.options = options
        self.history = history
        self.seconds = seconds
        self.messages = messages
        self.threads: int | None = None     # torch CPU threads it was trained with
        self.fields = list(problem.fields)
        self.coord_names = [c.name for c in problem.coords]

    @property
    def parameters(self) -> dict[str, float]:
        """Trained values of the problem's unknown parameters."""
        return {k: float(v.detach().cpu()) for k, v in self._params.items()}

    @property
    def final_loss(self) -> float:
        return float(self.history["loss"][-1]) if self.history.get("loss") else float("nan")

    def learned_terms(self) -> dict:
        """{network name: f(X (n, n_in) numpy) -> (n, n_out) numpy} of the learned terms."""
        def wrap(module: torch.nn.Module):
            def f(X: np.ndarray) -> np.ndarray:
                p = next(module.parameters())
                with torch.no_grad():
                    x = torch.as_tensor(np.asarray(X, float), dtype=p.dtype, device=p.device)
                    return module(x).cpu().numpy().astype(np.float64)
            return f
        return {name: wrap(m) for name, m in self.networks.items()}

    def __call__(self, points: dict, batch_size: int = 65536) -> dict[str, np.ndarray]:
        """Fields at ``points`` (coordinate name -> arrays of equal shape) -> name -> array."""
        missing = [n for n in self.coord_names if n not in points]
        if missing:
            raise KeyError(f"points lack coordinate(s) {', '.join(missing)}; need "
                           f"{', '.join(self.coord_names)}")
        arrays = np.broadcast_arrays(*[np.asarray(points[n], dtype=float) for n in self.coord_names])
        shape = arrays[0].shape
        X = np.stack([a.ravel() for a in arrays], axis=1)
        p = next(self.model.parameters())
        outs = []
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                xb = torch.as_tensor(X[i:i + batch_size], dtype=p.dtype, device=p.device)
                outs.append(self.model(xb).cpu().numpy().astype(np.float64))
        Y = np.concatenate(outs) if outs else np.zeros((0, len(self.fields)))
        return {f: Y[:, i].reshape(shape) for i, f in enumerate(self.fields)}

    def __repr__(self) -> str:
        return (f"Solution({self.problem.name!r}, steps={self.options.steps}, "
                f"lbfgs_steps={self.options.lbfgs_steps}, final_loss={self.final_loss:.3e})")


class _Abort(Exception):
    """Raised inside the L-BFGS closure once a signal has arrived (the chunk is undone)."""


class _SignalFlag:
    """While training: SIGINT and SIGTERM only record that they arrived, so the trainer can
    stop at the next consistent point (after a whole Adam step, or back at the start of the
    L-BFGS chunk) and checkpoint there. A second signal stops at once (KeyboardInterrupt,
    no new checkpoint). Installed only in the main thread, not over an ignored signal (a
    background job started with SIGINT ignored keeps ignoring it); the previous handlers
    come back afterwards."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        self.signum = signum

    def __enter__(self) -> "_SignalFlag":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                try:
                    if signal.getsignal(s) is not signal.SIG_IGN:
                        self._old[s] = signal.signal(s, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


class _Trainer:
    def __init__(self, problem: Problem, opts: TrainOptions, callback: Any = None) -> None:
        opts.check_problem(problem)         # every option checked before any work
        self.problem, self.opts = problem, opts
        self.callback = callback
        self.stopped = False
        self.device = resolve_device(opts.device)
        self.dtype = DTYPES[opts.dtype]
        # data parallel (torchrun): this rank's shard of every point set (pinnkit.distributed)
        self.shard = current_shard()
        try:
            problem.check_initial()
        except SpecError as exc:
            raise TrainingError(str(exc)) from None
        torch.manual_seed(opts.seed)
        constraint, enforced = (hard_constraint(problem) if opts.hard_constraints else (None, ()))
        periodic_cols: list = []
        if opts.periodic_embedding:
            names = [c.name for c in problem.coords]
            periodic = [t for t in problem.terms if t.kind == "periodic"]
            periodic_cols = sorted({names.index(t.coord) for t in periodic})
            enforced = tuple(enforced) + tuple(t.name for t in periodic)
        self.compiled = CompiledProblem(problem, engine=opts.engine, skip=enforced)
        self.compiled.shard = self.shard
        self.term_names = [t.name for t in self.compiled.terms]
        lo, hi = problem.domain.bbox
        self.model = build_model(len(problem.coords), len(problem.fields), lo, hi,
                                 network=opts.network, width=opts.width, depth=opts.depth,
                                 activation=opts.activation, fourier_features=opts.fourier_features,
                                 fourier_scale=self._fourier_scale(), seed=opts.seed,
                                 constraint=constraint, periodic=periodic_cols,
                                 factorized=opts.weight_factorization).to(self.device, self.dtype)
        self.params = torch.nn.ParameterDict({
            p.name: torch.nn.Parameter(torch.tensor(p.init, dtype=self.dtype, device=self.device))
            for p in problem.parameters})
        from .ode.modules import build_networks   # learned terms (pk.network)
        self.networks = build_networks(problem.networks, opts.seed).to(self.device, self.dtype)
        self.compiled.networks = self.networks
        self.history: dict = {k: [] for k in ["step", "phase", "loss", "time", "lr"]
                              + [f"loss_{n}" for n in self.term_names]
                              + ([f"weight_{n}" for n in self.term_names]
                                 if opts.loss_weighting != "fixed" else [])}
        # adaptive loss weights (gradnorm, ntk), a tensor so that compiled losses do not recompile
        self.lam = torch.ones(len(self.term_names), dtype=torch.float64)
        from .weighting import WEIGHTINGS
        self.weighting = (WEIGHTINGS[opts.loss_weighting](self.term_names, opts)
                          if opts.loss_weighting != "fixed" else None)
        self.point_lam: torch.Tensor | None = None   # RBA multipliers of the interior points
        self.window = 1.0          # fraction of the time interval the current points cover
        if opts.causal_eps > 0:
            d = problem.domain
            self.compiled.causal = (float(opts.causal_eps), int(opts.causal_bins),
                                    len(problem.coords) - 1, d.t0, d.t1)
        self.messages: list[str] = []
        self.step = 0            # Adam steps done
        self.lbfgs_iter = 0      # L-BFGS iterations done
        self.elapsed = 0.0
        self.lbfgs: torch.optim.LBFGS | None = None
        self.lbfgs_best: tuple | None = None    # (best loss, its parameters, restarts without progress)
        self.lbfgs_done: int | None = None      # L-BFGS budget at which L-BFGS finished
        self.saved_at: str | None = None        # where the last checkpoint was taken
        self._signals = _SignalFlag()           # inactive until run()
        self._set_batches(seed=opts.seed)
        # everything that determines the run; a checkpoint with a different one is refused
        self.fingerprint = problem_fingerprint(problem, self.np_batches)
        self.result_options = opts.result_options()
        self.compile = self._resolve_compile()
        self.engine = self.compiled.engine = resolve_engine(opts.engine, self.model, bool(self.compile))
        self.adam = _adam(self._trainable(), opts.lr)
        self._compiled_loss = self._make_compiled() if self.compile else None
        self._grad_fn = None     # the second phase's compiled loss and gradient (_enter_lbfgs)
        self._step_fn = self._make_step() if self._compiled_loss is not None else None
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.adam, lambda s: opts.lr_decay ** (s / opts.lr_decay_steps))

    def _fourier_scale(self):
        """σ of the Fourier features: one number, or per input (``fourier_scales`` by name)."""
        o = self.opts
        if not o.fourier_scales:
            return o.fourier_scale
        names = [c.name for c in self.problem.coords]
        return [float(o.fourier_scales.get(n, o.fourier_scale)) for n in names]

    # -- data
    def _trainable(self) -> list:
        return (list(self.model.parameters()) + list(self.params.values())
                + list(self.networks.parameters()))

    def _window_fraction(self) -> float:
        """Time marching: the Adam steps run in ``time_windows`` stages; stage i trains on
        [t0, t0 + (i+1)/K·(t1 − t0)]; L-BFGS on the whole interval."""
        K = self.opts.time_windows
        if not K or self.lbfgs is not None or self.step >= self.opts.steps:
            return 1.0
        return (min(K - 1, self.step * K // self.opts.steps) + 1) / K

    def _set_batches(self, seed: int) -> None:
        o = self.opts
        self.np_batches = sample_batches(self.problem, self.compiled.terms, o.interior_points,
                                         o.boundary_points, o.initial_points, seed, o.sampling,
                                         o.mesh_vertices)
        self.window = self._window_fraction()
        if self.window < 1.0:   # squeeze the sampled times into the window (still uniform)
            col, t0 = len(self.problem.coords) - 1, self.problem.domain.t0
            kinds = {t.name: t.kind for t in self.compiled.terms}
            for name, b in self.np_batches.items():
                if kinds.get(name, "pde") in ("pde", "boundary", "periodic"):
                    for key in ("X", "X2"):
                        if key in b:
                            b[key][:, col] = t0 + (b[key][:, col] - t0) * self.window
        self.point_lam = None      # new points: RBA multipliers start again from 1
        self._to_tensors()

    def _to_tensors(self) -> None:
        dt = DTYPES[self.opts.lbfgs_dtype] if self.lbfgs is not None else self.dtype
        rows = self.shard.rows
        self.batches = {k: {n: torch.as_tensor(rows(a), dtype=dt, device=self.device)
                            for n, a in b.items()} for k, b in self.np_batches.items()}
        if self.shard.active:   # each term's share of its global mean (losses multiply by it)
            for k, b in self.batches.items():
                n_global = len(self.np_batches[k]["X"])
                b["S"] = torch.tensor(len(b["X"]) / n_global, dtype=dt, device=self.device)
        if self.opts.point_weighting == "rba":
            n = len(self.batches["__interior__"]["X"])
            old = self.point_lam
            lam = torch.ones(n, dtype=dt, device=self.device)
            if old is not None:     # RAR appended points: keep the old points' multipliers
                lam[:min(n, len(old))] = old[:n].to(dt)
            self.point_lam = lam
            self.batches["__interior__"]["W"] = lam

    # -- loss
    def _loss_eager(self, batches: dict | None = None,
                    lam: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """(weighted total, {term: loss}) on ``batches`` (default: the current points)."""
        terms = self.compiled.losses(self.model, dict(self.params),
                                     self.batches if batches is None else batches)
        return self._total(terms, lam), terms

    def _total(self, terms: dict, lam: torch.Tensor | None = None) -> torch.Tensor:
        """Σ weight · term; with an adaptive scheme also times its weight λ (``lam``, default
        the current one; kept out of the fixed-weight hot path: indexing λ costs kernels)."""
        w = self.opts.weights
        if self.opts.loss_weighting == "fixed":
            return sum(w.get(k, 1.0) * v for k, v in terms.items())
        lam = self.lam if lam is None else lam
        return sum(w.get(k, 1.0) * lam[i].to(v.dtype) * v for i, (k, v) in enumerate(terms.items()))

    def _update_weights(self, terms: dict) -> torch.Tensor:
        """New loss weights from this step's terms (`pinnkit.weighting`); returns the
        reweighted total."""
        from .weighting import WeightingInputs
        old = {k: float(self.lam[i]) for i, k in enumerate(self.term_names)} if self.step else None
        new = self.weighting.update(WeightingInputs(
            terms, self._trainable(), self._subset_residuals,
            self.shard.all_reduce_many if self.shard.active else None, self.step, old))
        # a new tensor, not an in-place copy: this step's loss graph may have saved the old
        # one (in float64 the weight factors are views of it) for its backward; compiled
        # losses and steps take λ as an argument, so they see the new one
        self.lam = torch.tensor([new[k] for k in self.term_names], dtype=torch.float64)
        return self._total(terms)

    def _subset_residuals(self) -> dict:
        """{term: (n,) residual} on at most ``ntk_points`` random points of each term (all
        expressions of a term concatenated), with a graph to the parameters."""
        g = torch.Generator().manual_seed(self.opts.seed * 9973 + self.step)
        sub = {}
        # the same subset of the global points on every rank: identical weights, no collective
        batches = (self.batches if not self.shard.active else
                   {k: {n: torch.as_tensor(a, dtype=self.dtype, device=self.device)
                        for n, a in b.items()} for k, b in self.np_batches.items()})
        for k, b in batches.items():
            n = len(next(iter(b.values())))
            idx = torch.randperm(n, generator=g)[:self.opts.ntk_points].to(self.device)
            sub[k] = {name: (a[idx] if a.ndim and len(a) == n else a) for name, a in b.items()}
            sub[k].pop("W", None)
            sub[k].pop("S", None)
        res = self.compiled.residuals(self.model, dict(self.params), sub, create_graph=True)
        return {k: torch.cat(res[k]) for k in self.term_names}

    def _update_point_weights(self) -> None:
        """RBA: λ_i ← γ λ_i + η |r_i| / max |r| at the interior points."""
        from .recipes import rba_update
        X = self.batches["__interior__"]["X"]
        r = self.compiled.pde_residual(self.model, dict(self.params), X) ** 0.5
        reduce_max = ((lambda a: self.shard.all_reduce(a, "max")) if self.shard.active else None)
        rba_update(self.point_lam, r, self.opts.rba_gamma, self.opts.rba_eta, reduce_max)

    def _adapt(self) -> None:
        """RAR (add the worst candidates) or RAD (redraw by residual) of the interior points."""
        from .recipes import rad_select, rar_select
        o = self.opts
        n_cand = o.adaptive_candidates or 10 * o.interior_points
        pts = self.problem.domain.sample_interior(n_cand, "uniform", seed=o.seed * 7919 + self.step)
        C = stack_points(pts, [c.name for c in self.problem.coords])
        X = torch.as_tensor(C, dtype=self.dtype, device=self.device)
        r = self.compiled.pde_residual(self.model, dict(self.params), X).cpu().numpy() ** 0.5
        cur = self.np_batches["__interior__"]["X"]
        if o.adaptive == "rar":
            new = np.concatenate([cur, C[rar_select(r, o.adaptive_points)]])
        else:
            rng = np.random.default_rng(o.seed * 104729 + self.step)
            new = C[rad_select(r, len(cur), o.rad_k, o.rad_c, rng)]
            self.point_lam = None
        self.np_batches["__interior__"]["X"] = new
        self._to_tensors()

    def _loss(self) -> tuple[torch.Tensor, dict]:
        if self._compiled_loss is None:
            return self._loss_eager()
        try:
            # λ passed in, not read from self: a compiled graph must see each update
            return self._compiled_loss(self.batches, self.lam)
        except Exception as exc:  # compilation failed (no compiler, unsupported op, ...)
            self._compiled_loss = None
            self._compile_failed("torch.compile", exc, "continuing eagerly")
            return self._loss_eager()

    def _compile_failed(self, what: str, exc: Exception, then: str) -> None:
        """Record (and unless quiet, print) that a compilation failed and what happens instead."""
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        self.messages.append(f"{what} failed ({type(exc).__name__}: {first}); {then}")
        if not self.opts.quiet and self.shard.main:
            print(f"pinnkit: {self.messages[-1]}", file=sys.stderr)

    def _make_compiled(self):
        """torch.compile of the loss. Nested autograd cannot be compiled (torch.compile does
        not support double backward), so compile needs the Taylor engine."""
        if not self._compilable():
            self.messages.append("compile=True needs the taylor engine (nested autograd's double "
                                 "backward cannot be compiled; this network or engine has no Taylor "
                                 "mode); running eagerly")
            return None
        mode = self.compile if isinstance(self.compile, str) else None
        # this trainer's own code object (see _compile): with the shared one, the ninth
        # pk.train of a process hit dynamo's recompile limit and ran its loss eagerly
        return torch.compile(types.MethodType(_own_code(self._loss_eager.__func__), self), mode=mode)

    def _make_step(self):
        """The whole Adam step as one compiled graph: loss, gradients (torch.func) and the
        Adam update, with no autograd engine, no .grad tensors and no separate optimizer
        kernels in between (on this 2-core CPU about 1.4x faster per step than a compiled
        loss with autograd and fused Adam, scripts/bench.py). It updates the parameters and
        ``self.adam``'s own state tensors in place, so the eager path (loss-weight updates),
        checkpoints and L-BFGS see exactly what torch's Adam would have left."""
        group = self.adam.param_groups[0]
        if group["amsgrad"] or group["weight_decay"] or group["maximize"]:
            return None
        b1, b2 = group["betas"]
        eps = group["eps"]
        module = _LossModule(self)
        self._step_params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._lr = torch.zeros((), dtype=self.dtype, device=self.device)

        def loss(ps: dict, batches: dict, lam: torch.Tensor) -> tuple:
            return torch.func.functional_call(module, ps, (batches, lam))
        grad_and_loss = torch.func.grad_and_value(loss, has_aux=True)
        reduce = _traced_all_reduce if self.shard.active else None

        def step(ps: dict, states: list, lr: torch.Tensor, batches: dict,
                 lam: torch.Tensor) -> tuple:
            grads, (total, terms) = grad_and_loss(ps, batches, lam)
            if reduce is not None:   # data parallel: the global gradient, inside the graph
                grads = reduce(grads)
            for (name, p), (t, m, v) in zip(ps.items(), states):
                g = grads[name]
                t.add_(1)
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                # torch.optim.Adam's update, term for term (bias corrections in p's precision:
                # the step counter is float32)
                k = t.to(p.dtype)
                denom = v.sqrt() / (1 - b2 ** k).sqrt() + eps
                p.sub_((lr / (1 - b1 ** k)) * m / denom)
            return total.detach(), terms
        return self._compile(step)

    def _compile(self, fn):
        """torch.compile of a whole-step function with this run's mode or CPU options.

        The function gets a code object of this trainer's own: dynamo keeps its compiled
        graphs per code object, so each run gets its own cache (and recompile budget) instead
        of piling guarded variants onto one shared entry until the recompile limit turns it
        eager."""
        fn = _own_code(fn)
        if isinstance(self.compile, str):
            return torch.compile(fn, mode=self.compile)
        options = dict(STEP_COMPILE_OPTIONS) if self.device.type == "cpu" else {}
        return torch.compile(fn, options=options)

    def _resolve_compile(self) -> bool | str:
        """``compile="auto"``: compile when the run is long enough to pay for compiling
        (`AUTO_COMPILE_MIN_STEPS`) and the network has a Taylor mode (nested autograd's
        double backward cannot be compiled); otherwise the option as given."""
        o = self.opts
        if o.compile != "auto":
            return o.compile
        return (self._compilable()
                and o.steps + SECOND_PHASE_WEIGHT * o.lbfgs_steps >= AUTO_COMPILE_MIN_STEPS)

    def _compilable(self) -> bool:
        """Whether the loss can be compiled: the derivatives in Taylor mode (torch.compile does
        not support nested autograd's double backward), which this network must have."""
        from .taylor import supports
        return self.opts.engine != "autograd" and supports(self.model)

    def _adam_state(self, p: torch.Tensor) -> tuple:
        """(step, exp_avg, exp_avg_sq) of ``p`` in ``self.adam``, created as torch's Adam
        would on its first step."""
        st = self.adam.state[p]
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return st["step"], st["exp_avg"], st["exp_avg_sq"]

    def _fast_step(self) -> tuple | None:
        """One compiled whole step (`_make_step`); None when it cannot run (the loop then
        takes the loss-only compiled path, and keeps it)."""
        ps = {n: p.detach() for n, p in self._step_params}
        states = [self._adam_state(p) for _, p in self._step_params]
        self._lr.fill_(self.adam.param_groups[0]["lr"])
        try:
            with torch.no_grad():
                # λ (loss weights) as an argument: the graph must see every update
                out = self._step_fn(ps, states, self._lr, self.batches, self.lam)
            # the lr scheduler checks that the optimizer stepped (else it warns, once)
            self.adam._opt_called = True
            return out
        except Exception as exc:  # compilation failed: eager from here on
            # dynamo leaves the failed frames marked "skip", so the compiled loss (the same
            # frames) would run eagerly anyway; resetting dynamo's caches would do that to
            # every other compiled function of the caller's process, which is not ours to do
            self._step_fn = self._compiled_loss = None
            self._compile_failed("torch.compile of the whole step", exc, "running eagerly")
            return None

    def _record(self, phase: int, step: int, total: torch.Tensor, terms: dict, t0: float) -> float:
        if self.shard.active and phase == 0:   # L-BFGS losses come reduced already
            total, terms = self._reduce_losses(total, terms)
        values = {k: float(v.detach()) for k, v in terms.items()}
        loss = float(total.detach())
        if not math.isfinite(loss):
            bad = [k for k, v in values.items() if not math.isfinite(v)] or ["total"]
            raise TrainingError(f"problem {self.problem.name!r}: loss became non-finite at "
                                f"{'L-BFGS iteration' if phase else 'step'} {step} "
                                f"(term(s) {', '.join(bad)}); lower --lr or check the spec"
                                f"{self._kept()}")
        h = self.history
        h["step"].append(step)
        h["phase"].append(phase)
        h["loss"].append(loss)
        h["time"].append(self.elapsed + time.perf_counter() - t0)
        h["lr"].append(self.adam.param_groups[0]["lr"] if phase == 0 else 1.0)
        for k in self.term_names:
            h[f"loss_{k}"].append(values[k])
        if self.opts.loss_weighting != "fixed":
            for i, k in enumerate(self.term_names):
                h[f"weight_{k}"].append(float(self.lam[i]))
        self._progress(phase, step, loss, values)
        return loss

    def _reduce_losses(self, total: torch.Tensor, terms: dict) -> tuple:
        """(total, terms) summed over the ranks (detached): the global loss values."""
        v = self.shard.all_reduce(torch.stack([total.detach()] + [t.detach() for t in
                                                                  terms.values()]).double())
        return v[0], dict(zip(terms, v[1:]))

    def _global_loss(self) -> tuple:
        """The loss on every rank's points (one process: the loss)."""
        total, terms = self._loss()
        return self._reduce_losses(total, terms) if self.shard.active else (total, terms)

    def _start_progress(self, step: int) -> None:
        """A phase starts at ``step``: its rate and ETA count from here. Progress lines go to
        `logging` (logger "pinnkit.train") only when stderr is not a terminal (CI, nohup, a
        scheduler's log), where no progress bar is drawn."""
        self._progress_from = (step, time.perf_counter())
        self._progress_last = -math.inf
        self._progress_on = not self.opts.quiet and self.shard.main and not _is_tty(sys.stderr)

    def _progress(self, phase: int, step: int, loss: float, values: dict) -> None:
        if not getattr(self, "_progress_on", False):
            return
        o = self.opts
        total = o.lbfgs_steps if phase else o.steps
        now = time.perf_counter()
        if now - self._progress_last < o.progress_seconds and step < total:
            return
        self._progress_last = now
        step0, t_start = self._progress_from
        rate = (step - step0) / max(now - t_start, 1e-9)
        eta = f"{(total - step) / rate:.0f} s" if rate > 0 else "?"
        terms = ", ".join(f"{k} {v:.3e}" for k, v in values.items())
        _log.info("%s %s %d/%d: loss %.3e (%s); %.1f %s/s, ETA %s", self.problem.name,
                  (f"{o.optimizer.upper().replace('LBFGS', 'L-BFGS')} iteration" if phase
                   else "Adam step"), step, total, loss, terms, rate,
                  "it" if phase else "steps", eta)

    def _ask_callback(self, phase: str, step: int, t0: float) -> bool:
        """Call the user's callback(phase, step, solution); a true result stops training."""
        if self.callback is None:
            return False
        sol = Solution(self.problem, self.model, self.params, self.opts, self.history,
                       self.elapsed + time.perf_counter() - t0, self.messages, self.networks)
        if self.callback(phase, step, sol):
            self.stopped = True
            self.messages.append(f"stopped by the callback at {phase} step {step}")
            return True
        return False

    # -- checkpoints
    def state(self) -> dict:
        best = self.lbfgs_best
        return {
            "problem": self.problem.name, "fingerprint": self.fingerprint,
            "options": json.dumps(self.result_options, sort_keys=True),
            "model": self.model.state_dict(), "params": self.params.state_dict(),
            "networks": self.networks.state_dict(),
            "adam": self.adam.state_dict(), "sched": self.sched.state_dict(),
            "lbfgs": self.lbfgs.state_dict() if self.lbfgs is not None else None,
            "lbfgs_best": None if best is None else {"loss": best[0], "state": best[1], "stalls": best[2]},
            "lbfgs_done": self.lbfgs_done,
            "step": self.step, "lbfgs_iter": self.lbfgs_iter, "elapsed": self.elapsed,
            "history": self.history, "messages": self.messages, "lam": self.lam.clone(), "window": self.window,
            "weighting": self.weighting.state_dict() if self.weighting is not None else {},
            "point_lam": self._global_point_lam(),
            "batches": {k: {n: torch.as_tensor(a) for n, a in b.items()}
                        for k, b in self.np_batches.items()},
            "torch_rng": torch.get_rng_state(),
        }

    def _global_point_lam(self) -> torch.Tensor | None:
        """RBA multipliers of every interior point in global order (any number of ranks can
        resume from them)."""
        if self.point_lam is None:
            return None
        n = len(self.np_batches["__interior__"]["X"])
        return self.shard.gather_rows(self.point_lam.detach(), n).cpu().clone()

    def save(self, t0: float) -> None:
        """Write the checkpoint (callers guarantee a consistent, finite state); rank 0 writes,
        every rank takes part in gathering the state."""
        if self.opts.checkpoint:
            elapsed = self.elapsed
            self.elapsed += time.perf_counter() - t0
            state = self.state()
            if self.shard.main:
                save_checkpoint(self.opts.checkpoint, state)
            self.elapsed = elapsed
            self.saved_at = (f"L-BFGS iteration {self.lbfgs_iter}" if self.lbfgs is not None
                             else f"Adam step {self.step}")

    def _finite_state(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self._trainable())

    def _guard(self, phase: int, step: int, total: torch.Tensor, terms: dict) -> None:
        """The NaN guard of a checkpoint: this step's loss and the parameters after it must be
        finite, else `TrainingError` (and the previous checkpoint stays)."""
        if not math.isfinite(float(total.detach())):
            self._record(phase, step, total, terms, time.perf_counter())   # raises, naming terms
        if not self._finite_state():
            raise TrainingError(f"problem {self.problem.name!r}: the network's parameters became "
                                f"non-finite at {'L-BFGS iteration' if phase else 'step'} {step}; "
                                f"lower --lr or check the spec{self._kept()}")

    def _kept(self) -> str:
        if self.opts.checkpoint and self.saved_at:
            return f" (checkpoint {self.opts.checkpoint} holds the last good state, {self.saved_at})"
        return ""

    def restore(self, path: str) -> None:
        s = load_checkpoint(path)
        if s.get("problem") != self.problem.name:
            raise TrainingError(f"checkpoint {path} belongs to problem {s.get('problem')!r}, "
                                f"not {self.problem.name!r}")
        why = mismatch(s.get("fingerprint"), self.fingerprint, s.get("options"), self.result_options)
        if why:
            raise TrainingError(f"checkpoint {path} was written for a different run: {why}; "
                                "remove it or rerun without --resume")
        try:
            self._restore(s)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise TrainingError(f"checkpoint {path} is damaged or does not fit this network "
                                f"({type(exc).__name__}: {first}); remove it to start afresh") from None

    def _restore(self, s: dict) -> None:
        self.np_batches = {k: {n: a.numpy() for n, a in b.items()} for k, b in s["batches"].items()}
        self.step, self.lbfgs_iter, self.elapsed = int(s["step"]), int(s["lbfgs_iter"]), float(s["elapsed"])
        self.history, self.messages = s["history"], list(s["messages"])
        self.window = s.get("window", 1.0)
        if "lam" in s:
            self.lam.copy_(s["lam"])
        if self.weighting is not None:
            self.weighting.load_state_dict(s.get("weighting", {}))
        lam = s.get("point_lam")
        self.point_lam = None if lam is None else torch.as_tensor(self.shard.rows(lam))
        best = s.get("lbfgs_best")
        self.lbfgs_best = None if best is None else (float(best["loss"]), list(best["state"]),
                                                     int(best["stalls"]))
        self.lbfgs_done = s.get("lbfgs_done")
        if s["lbfgs"] is not None:
            self._enter_lbfgs()
            self.model.load_state_dict(s["model"])
            self.params.load_state_dict(s["params"])
            self.networks.load_state_dict(s.get("networks", {}))
            self.lbfgs.load_state_dict(s["lbfgs"])
            if self.lbfgs_best is not None:
                self._load_snapshot(self.lbfgs_best[1])     # shape check of the saved best state
                self.model.load_state_dict(s["model"])
                self.params.load_state_dict(s["params"])
        else:
            self.model.load_state_dict(s["model"])
            self.params.load_state_dict(s["params"])
            self.networks.load_state_dict(s.get("networks", {}))
            self.adam.load_state_dict(s["adam"])
            self.sched.load_state_dict(s["sched"])
            self._to_tensors()
        torch.set_rng_state(s["torch_rng"])

    # -- signals
    def _interrupt(self, t0: float, where: str, total: torch.Tensor | None = None,
                   terms: dict | None = None) -> None:
        """SIGINT/SIGTERM arrived: at this consistent point write the checkpoint (after the
        finite check) and raise `TrainingInterrupted` with the partial solution."""
        signum = self._signals.signum
        name = signal.Signals(signum).name
        if total is not None:
            self._guard(0, self.step, total, terms)
        elif not self._finite_state():
            raise TrainingError(f"problem {self.problem.name!r}: interrupted by {name} at {where} "
                                f"with non-finite parameters{self._kept()}")
        self.save(t0)
        seconds = self.elapsed + time.perf_counter() - t0
        sol = Solution(self.problem, self.model, self.params, self.opts, self.history, seconds,
                       self.messages + [f"interrupted by {name} at {where}"])
        ck = self.opts.checkpoint
        raise TrainingInterrupted(f"interrupted by {name} at {where}"
                                  + (f"; checkpoint written to {ck}" if ck else ""),
                                  signum, sol, ck, where)

    # -- phases
    def run(self) -> Solution:
        o = self.opts
        if o.resume:
            if not o.checkpoint:
                raise OptionsError("option resume needs option checkpoint (the file to resume from)")
            self.restore(o.checkpoint)      # a missing file is an error, never a silent fresh start
        t0 = time.perf_counter()
        with _SignalFlag() as self._signals:
            self._adam(t0)
            self._lbfgs(t0)
            self.elapsed += time.perf_counter() - t0
            t0 = time.perf_counter()
            if o.checkpoint and not self._finite_state():
                raise TrainingError(f"problem {self.problem.name!r}: the trained parameters are "
                                    f"non-finite{self._kept()}")
            self.save(t0)
            if self._signals.signum is not None:    # arrived after the last step: training is done
                self._interrupt(time.perf_counter(), "the end of training")
        sol = Solution(self.problem, self.model, self.params, o, self.history, self.elapsed,
                       self.messages, self.networks)
        sol.world_size, sol.backend = self.shard.world, self.shard.backend
        return sol

    def _adam(self, t0: float) -> None:
        o = self.opts
        if self.step >= o.steps or self.lbfgs is not None:
            return
        self._start_progress(self.step)
        bar = tqdm(total=o.steps, initial=self.step, desc=f"{self.problem.name} adam",
                   disable=True if o.quiet or not self.shard.main else None,
                   leave=False, dynamic_ncols=True)
        try:
            while self.step < o.steps:
                if (o.resample_every and self.step and self.step % o.resample_every == 0) \
                        or self._window_fraction() != self.window:
                    self._set_batches(seed=o.seed + self.step)
                if (o.adaptive != "none" and self.step and self.step % o.adaptive_every == 0
                        and "__interior__" in self.np_batches):
                    self._adapt()
                total, terms = self._adam_step()
                self.sched.step()
                self.step += 1
                if o.point_weighting == "rba" and self.step % o.rba_every == 0:
                    self._update_point_weights()
                if self.step % o.log_every == 0 or self.step == o.steps:
                    loss = self._record(0, self.step, total, terms, t0)
                    if self._ask_callback("adam", self.step, t0):
                        break
                    bar.set_postfix(loss=f"{loss:.3e}", refresh=False)
                    bar.update(self.step - bar.n)
                if o.checkpoint and self.step % o.checkpoint_every == 0:
                    self._guard(0, self.step, total, terms)
                    self.save(t0)
                if self._signals.signum is not None:
                    self._interrupt(t0, f"Adam step {self.step}", total, terms)
        finally:
            bar.close()

    def _adam_step(self) -> tuple:
        """One Adam step on the current points: the compiled whole step when there is one,
        else loss (compiled or eager), backward and torch's Adam; (total, terms)."""
        due = self.weighting is not None and self.step % self.opts.weight_every == 0
        reweigh = due and self.weighting.needs_graph
        out = self._fast_step() if self._step_fn is not None and not reweigh else None
        if out is not None:
            if due:       # a scheme of loss values only: from the compiled step's values
                self._update_weights(self._global_values(*out)[1])
            return out
        self.adam.zero_grad(set_to_none=True)
        # a reweighting step differentiates each term on its own (autograd.grad with
        # retain_graph): eagerly, since a compiled loss's backward may donate its buffers
        # (it failed so after RAR grew the point set)
        total, terms = self._loss_eager() if reweigh else self._loss()
        if reweigh:
            total = self._update_weights(terms)
        total.backward()
        self._reduce_grads()
        self.adam.step()
        if due and not reweigh:
            self._update_weights(self._global_values(total, terms)[1])
        return total, terms

    def _global_values(self, total: torch.Tensor, terms: dict) -> tuple:
        """Detached (total, terms), summed over the data-parallel ranks."""
        if self.shard.active:
            return self._reduce_losses(total, terms)
        return total.detach(), {k: v.detach() for k, v in terms.items()}

    def _reduce_grads(self) -> None:
        """Data parallel: each rank's gradient is its share of the global one; sum them."""
        if self.shard.active:
            self.shard.all_reduce_many([p.grad for p in self._trainable() if p.grad is not None])

    def _enter_lbfgs(self) -> None:
        dt = DTYPES[self.opts.lbfgs_dtype]
        self.model.to(dtype=dt)
        self.networks.to(dtype=dt)
        for p in self.params.values():
            p.data = p.data.to(dt)
        self.lbfgs = self._new_lbfgs()
        self._to_tensors()
        # the second phase's loss and gradient as one compiled torch.func graph, like the Adam
        # whole step (a compiled loss + autograd backward otherwise)
        self._grad_fn = self._make_grad_fn() if self._compiled_loss is not None else None

    def _new_lbfgs(self):
        """The second-phase optimizer: torch's L-BFGS, or a `pinnkit.optim` quasi-Newton
        method on the flat parameter vector (``optimizer``)."""
        from .optim import OPTIMIZERS
        cls = OPTIMIZERS[self.opts.optimizer]
        if cls is not None:
            return cls(self._flat_value_and_grad, self._flat_params())
        return torch.optim.LBFGS(self._trainable(), lr=1.0, max_iter=self.opts.log_every,
                                 history_size=self.opts.lbfgs_history, tolerance_grad=1e-15,
                                 tolerance_change=0.0, line_search_fn="strong_wolfe")

    def _make_grad_fn(self):
        """(loss, [gradients]) of the trainable tensors as one compiled graph (torch.func)."""
        module = _LossModule(self)
        names = [n for n, p in module.named_parameters() if p.requires_grad]
        self._grad_names = names

        def loss(ps: dict, batches: dict, lam: torch.Tensor) -> tuple:
            return torch.func.functional_call(module, ps, (batches, lam))
        grad_and_loss = torch.func.grad_and_value(loss, has_aux=True)

        def value_and_grad(ps: dict, batches: dict, lam: torch.Tensor) -> tuple:
            grads, (total, _) = grad_and_loss(ps, batches, lam)
            return total.detach(), [grads[n] for n in names]
        return self._compile(value_and_grad)

    def _value_and_grad(self) -> tuple:
        """(this rank's loss, its gradients) at the current parameters, through the compiled
        graph when there is one, else the loss and autograd."""
        params = self._trainable()
        if self._grad_fn is not None:
            ps = dict(zip(self._grad_names, (p.detach() for p in params)))
            try:
                with torch.no_grad():
                    return self._grad_fn(ps, self.batches, self.lam)
            except Exception as exc:  # compilation failed: the loss and autograd from here on
                self._grad_fn = self._compiled_loss = None    # see _fast_step
                self._compile_failed("torch.compile of the second phase's loss and gradient",
                                     exc, "running eagerly")
        total, _ = self._loss()
        grads = torch.autograd.grad(total, params, allow_unused=True)
        return total.detach(), [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    def _global_value_and_grad(self) -> tuple:
        """The loss and gradients over every rank's points (data parallel: all-reduced)."""
        total, grads = self._value_and_grad()
        if self.shard.active:     # every rank sees the global loss and gradient
            grads = [g.clone() for g in grads]
            self.shard.all_reduce_many(grads)
            total = self.shard.all_reduce(total.clone())
        return total, grads

    def _flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._trainable()])

    def _flat_value_and_grad(self, x: torch.Tensor) -> tuple:
        """The quasi-Newton methods' objective: parameters := x, then (loss, flat gradient)."""
        self._load_flat(x)
        total, grads = self._global_value_and_grad()
        return total, torch.cat([g.reshape(-1) for g in grads])

    def _lbfgs(self, t0: float) -> None:
        o = self.opts
        if o.lbfgs_steps <= self.lbfgs_iter or self.stopped or \
                (self.lbfgs_done is not None and o.lbfgs_steps <= self.lbfgs_done):
            return
        if self.lbfgs is None:
            self._enter_lbfgs()
            if self.window < 1.0:     # Adam stopped early inside a window: whole interval now
                self._set_batches(seed=o.seed + self.step)

        if self.opts.optimizer != "lbfgs":
            return self._quasi_newton(t0)

        def closure():
            if self._signals.signum is not None:
                raise _Abort       # mid-step: the chunk is undone and the checkpoint taken before it
            total, grads = self._global_value_and_grad()
            for p, g in zip(self._trainable(), grads):
                p.grad = g
            return total

        self._start_progress(self.lbfgs_iter)
        bar = tqdm(total=o.lbfgs_steps, initial=self.lbfgs_iter,
                   desc=f"{self.problem.name} l-bfgs", disable=True if o.quiet or not self.shard.main else None,
                   leave=False, dynamic_ncols=True)
        if self.lbfgs_best is None:
            self.lbfgs_best = (self._global_loss()[0].item(), self._snapshot(), 0)
        try:
            self._lbfgs_chunks(t0, closure, bar)
        finally:
            bar.close()
        best, best_state, _ = self.lbfgs_best
        self._load_snapshot(best_state)
        total, terms = self._global_loss()
        if not self.history["phase"] or self.history["loss"][-1] != total.item():
            self._record(1, self.lbfgs_iter, total, terms, t0)
        self.lbfgs_done = o.lbfgs_steps

    def _lbfgs_chunks(self, t0: float, closure, bar) -> None:
        """L-BFGS in chunks of ``log_every`` iterations; between chunks (the only points where
        the optimizer's state is consistent) the loss is checked, recorded, checkpointed."""
        o = self.opts
        best, best_state, stalls = self.lbfgs_best
        while self.lbfgs_iter < o.lbfgs_steps:
            if self._signals.signum is not None:
                self._interrupt(t0, f"L-BFGS iteration {self.lbfgs_iter}")
            chunk = min(o.log_every, o.lbfgs_steps - self.lbfgs_iter)
            for g in self.lbfgs.param_groups:
                # torch's default cap of 1.25 evaluations per iteration ends a chunk early
                # whenever line searches need more, which restarted the history below
                g["max_iter"], g["max_eval"] = chunk, 5 * chunk
            before = self.lbfgs.state[self.lbfgs._params[0]].get("n_iter", 0)
            mark = (self._snapshot(), copy.deepcopy(self.lbfgs.state_dict()))
            try:
                self.lbfgs.step(closure)
            except _Abort:      # back to the chunk's start, the last consistent state
                self._load_snapshot(mark[0])
                self.lbfgs = self._new_lbfgs()
                self.lbfgs.load_state_dict(mark[1])
                self._interrupt(t0, f"L-BFGS iteration {self.lbfgs_iter}")
            done = self.lbfgs.state[self.lbfgs._params[0]].get("n_iter", 0) - before
            self.lbfgs_iter += max(done, 1)
            total, terms = self._global_loss()
            loss = total.item()
            if not math.isfinite(loss) or not self._finite_state():
                self._load_snapshot(best_state)
                self.messages.append(f"L-BFGS diverged at iteration {self.lbfgs_iter}; "
                                     "restored the best state")
                self.lbfgs = self._new_lbfgs()
                stalls += 1
            elif loss < best * (1 - 1e-7):
                best, best_state, stalls = loss, self._snapshot(), 0
                self._record(1, self.lbfgs_iter, total, terms, t0)
                if self._ask_callback("lbfgs", self.lbfgs_iter, t0):
                    self.lbfgs_best = (best, best_state, stalls)
                    break
                if done < chunk:  # torch stopped early: restart its history, keep going
                    self.lbfgs = self._new_lbfgs()
            else:
                stalls += 1
                self.lbfgs = self._new_lbfgs()  # zero step / no progress: restart the history
            self.lbfgs_best = (best, best_state, stalls)
            bar.set_postfix(loss=f"{best:.3e}", refresh=False)
            bar.update(min(self.lbfgs_iter, o.lbfgs_steps) - bar.n)
            if stalls >= 3:
                self.messages.append(f"L-BFGS stopped at iteration {self.lbfgs_iter}: no decrease "
                                     f"after {stalls} restarts (loss {best:.3e})")
                break
            if o.checkpoint and self.lbfgs_iter % o.checkpoint_every < chunk:
                self.save(t0)      # after the finite check above: params finite, state consistent
        if self.lbfgs_iter >= o.lbfgs_steps:
            gnorm = torch.cat([g.reshape(-1) for g in self._global_value_and_grad()[1]]).norm()
            self.messages.append(f"L-BFGS stopped after {self.lbfgs_iter} iterations: iteration "
                                 f"budget spent; loss {best:.3e}, gradient norm {float(gnorm):.3e}")

    def _quasi_newton(self, t0: float) -> None:
        """The second phase with a `pinnkit.optim` method (``optimizer``): chunks of
        ``log_every`` iterations, each recorded; ends with the method's stopping report."""
        o, opt = self.opts, self.lbfgs
        self._start_progress(self.lbfgs_iter)
        bar = tqdm(total=o.lbfgs_steps, initial=self.lbfgs_iter,
                   desc=f"{self.problem.name} {opt.name}",
                   disable=True if o.quiet or not self.shard.main else None,
                   leave=False, dynamic_ncols=True)
        while self.lbfgs_iter < o.lbfgs_steps and opt.reason is None:
            if self._signals.signum is not None:      # between chunks: x and H are consistent
                self._load_flat(opt.x)
                self._interrupt(t0, f"{opt.name} iteration {self.lbfgs_iter}")
            chunk = min(o.log_every, o.lbfgs_steps - self.lbfgs_iter)
            done = opt.run(chunk)
            self.lbfgs_iter += done
            self._load_flat(opt.x)      # the accepted point (line searches leave trial points)
            total, terms = self._global_loss()
            self._record(1, self.lbfgs_iter, total, terms, t0)
            bar.set_postfix(loss=f"{float(total.detach()):.3e}", refresh=False)
            bar.update(min(self.lbfgs_iter, o.lbfgs_steps) - bar.n)
            if self._ask_callback("lbfgs", self.lbfgs_iter, t0):
                break
            if o.checkpoint and self.lbfgs_iter % o.checkpoint_every < chunk:
                self.save(t0)
        bar.close()
        self.messages.append(opt.report())

    def _load_flat(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            i = 0
            for p in self._trainable():
                p.copy_(x[i:i + p.numel()].view_as(p))
                i += p.numel()

    def _snapshot(self) -> list:
        return [p.detach().clone() for p in self._trainable()]

    def _load_snapshot(self, snap: list) -> None:
        with torch.no_grad():
            for p, s in zip(self._trainable(), snap):
                p.copy_(s)


#: pk.train's methods: name -> (module, function) of the trainer, loaded on first use
METHODS = {"pinn": (__name__, "_train_pinn"), "ode": ("pinnkit.ode.trainer", "train_ode")}


def train(problem: Problem, callback: Any = None, method: str = "pinn", **options: Any) -> Any:
    """Train ``problem`` with ``method``: "pinn" (default, `TrainOptions`) or "ode" (a
    neural/hybrid ODE integrated by torchdiffeq, `pinnkit.ode.trainer.ODEOptions`)."""
    import importlib
    if method not in METHODS:
        raise OptionsError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    module, name = METHODS[method]
    return getattr(importlib.import_module(module), name)(problem, callback, **options)


def _train_pinn(problem: Problem, callback: Any = None, **options: Any) -> Solution:
    """Train a PINN for ``problem``; keyword options are the fields of `TrainOptions`.

    ``callback(phase, step, solution)`` (optional) is called every ``log_every`` Adam steps
    and L-BFGS iterations with phase "adam" or "lbfgs" and the current `Solution`; returning
    True stops training (e.g. once an error target is reached).

    Returns a `Solution`. Raises `TrainingError` on a bad option, a missing device or a
    non-finite loss (naming the step and the term).
    """
    if not isinstance(problem, Problem):
        raise TrainingError(f"train() needs a pinnkit Problem, got {type(problem).__name__}")
    if getattr(problem, "inputs", None):
        raise TrainingError(f"problem {problem.name!r} has input fields "
                            f"({', '.join(problem.inputs)}): a PINN solves one instance; learn "
                            "the operator with pk.train_operator (data from pk.dataset)")
    opts = TrainOptions.from_kwargs(**options)
    threads = resolve_threads(opts)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    device = resolve_device(opts.device)
    # the caller's torch RNG and thread count are theirs: training seeds a forked RNG, and
    # both are restored however training ends
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            sol = _Trainer(problem, opts, callback).run()
    finally:
        torch.set_num_threads(previous)
    sol.threads = threads
    return sol


def resolve_threads(opts: TrainOptions) -> int:
    """torch CPU threads for training: ``opts.threads``, or (0, auto) one thread on a CPU for
    networks up to `AUTO_ONE_THREAD_WIDTH` wide and torch's current count otherwise."""
    if opts.threads:
        return int(opts.threads)
    small = opts.width <= AUTO_ONE_THREAD_WIDTH
    return 1 if small and resolve_device(opts.device).type == "cpu" else torch.get_num_threads()
