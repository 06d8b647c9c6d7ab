"""The PINN trainer: the loop of its two phases, a first-phase optimizer
(`pinnkit.pinn.first_phase`: Adam with a learning-rate schedule) and then a second-phase
optimizer (`pinnkit.pinn.second_phase`: the restarting L-BFGS by default),
with the registered strategies in between (loss weighting, `pinnkit.weighting`; time
marching, adaptive sampling, point and causal weighting, `pinnkit.pinn.points`), history,
progress, checkpoints, signals and the NaN guard.

Its parts: the options (`pinnkit.pinn.train_options`), the result (`pinnkit.pinn.solution`),
the compiled whole step (`pinnkit.pinn.compiled`).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
import types
from typing import Any

import torch

from .checkpoint import load_checkpoint, mismatch, problem_fingerprint, save_checkpoint
from .derivatives import resolve_engine
from .distributed import current as current_shard
from .errors import OptionsError, SpecError, TrainingError, TrainingInterrupted
from .losses import CompiledProblem, hard_constraint, sample_batches, stack_points
from .nn import build_model
from .pinn.batches import Batch, Batches
from .pinn.compiled import (AUTO_COMPILE_MIN_STEPS, SECOND_PHASE_WEIGHT, GaussNewton, LossModule,
                            ValueAndGrad, WholeStep, LoopStep, LOOP_STEPS, compile_error_line, cpu_options,
                            decide_compile, own_code, torch_compile)
from .pinn.first_phase import FIRST_PHASE, FIRST_PHASES
from .pinn.points import (ADAPTIVE_SAMPLING, POINT_WEIGHTINGS, CausalWeighting, TimeMarching)
from .pinn.progress import Progress, record
from .pinn.second_phase import SECOND_PHASES, finite
from .pinn.signals import Abort, SignalFlag
from .pinn.solution import Solution
from .pinn.train_options import (COMPILE_MODES, DTYPES, TrainOptions, resolve_device,
                                 resolve_threads)
from .spec import Problem

__all__ = ["TrainOptions", "Solution", "train", "resolve_device", "resolve_threads", "DTYPES",
           "COMPILE_MODES", "AUTO_COMPILE_MIN_STEPS", "SECOND_PHASE_WEIGHT"]


class _Objective:
    """The trainer as a second-phase optimizer sees it (`pinnkit.pinn.second_phase.Objective`)."""

    def __init__(self, trainer: "Trainer") -> None:
        self._t = trainer

    def parameters(self) -> list:
        return self._t.parameters()

    def value_and_grad(self) -> tuple:
        return self._t._global_value_and_grad()

    def loss(self) -> tuple:
        return self._t._global_loss()

    def gauss_newton(self) -> tuple:
        return self._t.gauss_newton()

    def signalled(self) -> bool:
        return self._t._signals.signum is not None


class Trainer:
    """A PINN's training run: ``Trainer(problem, options).run()`` -> `Solution` (what
    `pk.train` does, in a forked RNG and with its thread count).

    Its state, for tests and tools (read, do not assign): ``model``, ``params`` and
    ``networks`` (the trainable modules); ``compiled`` (the `CompiledProblem`);
    ``np_batches`` / ``batches`` (the current points, `pinnkit.pinn.batches.Batches` of
    numpy and torch arrays);
    ``point_weights`` (the point weighting's multipliers, or None); ``window`` (the time
    marching's current fraction); ``lam`` (loss weights); ``step`` and ``lbfgs_iter``;
    ``first`` and ``second`` (the phases' optimizers, `pinnkit.pinn.first_phase` and
    `pinnkit.pinn.second_phase`; ``second`` None until that phase starts);
    ``compile`` and ``engine`` (what was decided), ``whole_step`` (the compiled first-phase
    step or None) and ``compiled_steps`` (how many steps it took); ``messages``; ``history``."""

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
            names = problem.coord_names
            periodic = [t for t in problem.terms if t.kind == "periodic"]
            periodic_cols = sorted({names.index(t.coord) for t in periodic})
            enforced = tuple(enforced) + tuple(t.name for t in periodic)
        lo, hi = problem.domain.bbox
        self.model = build_model(len(problem.coords), len(problem.fields), lo, hi,
                                 network=opts.network, width=opts.width, depth=opts.depth,
                                 activation=opts.activation, fourier_features=opts.fourier_features,
                                 fourier_scale=opts.fourier_scale_of(problem.coord_names),
                                 seed=opts.seed,
                                 constraint=constraint, periodic=periodic_cols,
                                 factorized=opts.weight_factorization).to(self.device, self.dtype)
        self.params = torch.nn.ParameterDict({
            p.name: torch.nn.Parameter(torch.tensor(p.init, dtype=self.dtype, device=self.device))
            for p in problem.parameters})
        from .ode.modules import build_networks   # learned terms (pk.network)
        self.networks = build_networks(problem.networks, opts.seed).to(self.device, self.dtype)
        self.compiled = CompiledProblem(problem, engine=opts.engine, skip=enforced,
                                        causal=CausalWeighting.from_options(problem, opts),
                                        shard=self.shard, networks=self.networks)
        self.term_names = [t.name for t in self.compiled.terms]
        if opts.lbfgs_steps and SECOND_PHASES[opts.optimizer].least_squares:
            from .taylor import supports
            if opts.engine == "autograd" or not supports(self.model):
                raise OptionsError(f"option optimizer={opts.optimizer!r} takes the residuals' "
                                   "Jacobian in Taylor mode, which engine='autograd' or this "
                                   f"network ({opts.network}) does not have: use another "
                                   "optimizer or engine")
            if self.compiled.causal is not None:
                raise OptionsError(f"option optimizer={opts.optimizer!r} needs the loss as a "
                                   "sum of squared residuals, which causal weighting is not; "
                                   "use another optimizer or causal_eps=0")
        self.history: dict = {k: [] for k in ["step", "phase", "loss", "time", "lr"]
                              + [f"loss_{n}" for n in self.term_names]
                              + ([f"weight_{n}" for n in self.term_names]
                                 if opts.loss_weighting != "fixed" else [])}
        # the strategies (registries: pinnkit.weighting, pinnkit.pinn.points, .second_phase)
        # adaptive loss weights (gradnorm, ntk), a tensor so that compiled losses do not recompile
        self.lam = torch.ones(len(self.term_names), dtype=torch.float64)
        from .weighting import WEIGHTINGS
        self.weighting = (WEIGHTINGS[opts.loss_weighting](self.term_names, opts)
                          if opts.loss_weighting != "fixed" else None)
        self.marching = TimeMarching(problem, opts)
        self.sampling = (ADAPTIVE_SAMPLING[opts.adaptive](opts) if opts.adaptive != "none"
                         else None)
        self.point_weighting = (POINT_WEIGHTINGS[opts.point_weighting](opts)
                                if opts.point_weighting != "none" else None)
        self.second = None       # the second-phase optimizer, once it starts
        self.window = 1.0        # fraction of the time interval the current points cover
        self.messages: list[str] = []
        self.step = 0            # Adam steps done
        self.lbfgs_iter = 0      # second-phase iterations done
        self.elapsed = 0.0
        self.lbfgs_done: int | None = None      # second-phase budget at which it finished
        self.saved_at: str | None = None        # where the last checkpoint was taken
        self.progress: Progress | None = None   # the running phase's
        self._signals = SignalFlag()            # inactive until run()
        self._set_batches(seed=opts.seed)
        # everything that determines the run; a checkpoint with a different one is refused
        self.fingerprint = problem_fingerprint(problem, self.np_batches.as_dict())
        self.result_options = opts.result_options()
        # each phase compiles when it is long enough to pay for its own graph (compile="auto")
        compilable = self._compilable()
        self.compile = decide_compile(opts.compile, opts.steps, compilable)
        self.compile_second = decide_compile(opts.compile, SECOND_PHASE_WEIGHT * opts.lbfgs_steps,
                                             compilable)
        self._compile_broken = False     # a compile failed: the rest of the run is eager
        self.engine = self.compiled.engine = resolve_engine(opts.engine, self.model, bool(self.compile))
        self.first = FIRST_PHASES[FIRST_PHASE](self.parameters(), opts)
        self._compiled_loss = self._make_compiled() if self.compile else None
        self._grad_fn = None     # the second phase's compiled loss and gradient (_enter_second)
        self._gn = None          # the Gauss–Newton system (optimizer="lm", gauss_newton)
        self.whole_step = self._make_step() if self._compiled_loss is not None else None
        self.compiled_steps = 0

    # -- data
    def parameters(self) -> list:
        return (list(self.model.parameters()) + list(self.params.values())
                + list(self.networks.parameters()))

    def _set_batches(self, seed: int) -> None:
        o = self.opts
        self.np_batches = sample_batches(self.problem, self.compiled.terms, o.interior_points,
                                         o.boundary_points, o.initial_points, seed, o.sampling,
                                         o.mesh_vertices)
        self.window = self.marching.fraction(self.step, self.second is not None)
        self.np_batches = self.marching.squeeze(self.np_batches,
                                                {t.name: t.kind for t in self.compiled.terms},
                                                self.window)
        if self.point_weighting is not None:   # new points: multipliers start again from 1
            self.point_weighting.weights = None
        self._to_tensors()

    def _to_tensors(self) -> None:
        dt = DTYPES[self.opts.lbfgs_dtype] if self.second is not None else self.dtype
        # this rank's rows; data parallel: each term's share of its global mean (the losses
        # multiply by it)
        self.batches = self.shard.batches(
            self.np_batches, lambda a: torch.as_tensor(a, dtype=dt, device=self.device))
        if self.point_weighting is not None:   # RAR appends points: the old keep their weights
            n = len(self.batches.interior.X)
            self.point_weighting.fit(n, dt, self.device)

    @property
    def point_weights(self) -> torch.Tensor | None:
        """The point weighting's multipliers of this rank's interior points (None: no point
        weighting), in the current dtype."""
        return None if self.point_weighting is None else self.point_weighting.weights

    # -- loss
    def _param_values(self, given: dict | None = None) -> dict:
        """{name: tensor} of the problem's parameters, with ``given`` (the tensors a
        torch.func graph differentiates, `pinnkit.pinn.compiled.param_values`) in place of
        the module's. Not ``dict(self.params)``: dynamo (torch 2.13) unpacks a
        ParameterDict's keys as pairs there and breaks the graph."""
        values = {k: v for k, v in self.params.items()}
        values.update(given or {})
        return values

    def _loss_on(self, batches: Batches, lam: torch.Tensor,
                 point_weights: torch.Tensor | None,
                 values: dict | None = None) -> tuple[torch.Tensor, dict]:
        """(weighted total, {term: loss}) on ``batches``: what the compiled graphs trace;
        ``values``: parameter tensors to use instead of the module's."""
        terms = self.compiled.losses(self.model, self._param_values(values), batches,
                                     point_weights)
        return self._total(terms, lam), terms

    def _loss_eager(self) -> tuple[torch.Tensor, dict]:
        """(weighted total, {term: loss}) on the current points."""
        return self._loss_on(self.batches, self.lam, self.point_weights)

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
            terms, self.parameters(), self._subset_residuals,
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
        batches = (self.batches if not self.shard.active else self.np_batches.map(
            lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)))

        def subset(b):    # interior first, then the terms in order: the generator's draws
            n = len(b.X)
            idx = torch.randperm(n, generator=g)[:self.opts.ntk_points].to(self.device)
            return b.map(lambda a: a[idx] if a.ndim and len(a) == n else a)._replace(S=None)
        sub = batches.map_batches(subset)
        res = self.compiled.residuals(self.model, self._param_values(), sub, create_graph=True)
        return {k: torch.cat(res[k]) for k in self.term_names}

    def _update_point_weights(self) -> None:
        """The point weighting's update from the PDE residual at the interior points."""
        X = self.batches.interior.X
        r = self.compiled.pde_residual(self.model, self._param_values(), X) ** 0.5
        reduce_max = ((lambda a: self.shard.all_reduce(a, "max")) if self.shard.active else None)
        self.point_weighting.update(r, reduce_max)

    def _adapt(self) -> None:
        """Adaptive sampling: new interior points from candidates and their residual."""
        s = self.sampling
        pts = self.problem.domain.sample_interior(s.candidates, "uniform",
                                                  seed=s.candidate_seed(self.step))
        C = stack_points(pts, self.problem.coord_names)
        X = torch.as_tensor(C, dtype=self.dtype, device=self.device)
        r = self.compiled.pde_residual(self.model, self._param_values(), X).cpu().numpy() ** 0.5
        new = s.select(self.np_batches.interior.X, C, r, self.step)
        if not s.keeps_points and self.point_weighting is not None:
            self.point_weighting.weights = None
        self.np_batches = self.np_batches.with_interior(new)
        self._to_tensors()

    def _loss(self) -> tuple[torch.Tensor, dict]:
        if self._compiled_loss is None:
            return self._loss_eager()
        try:
            # λ passed in, not read from self: a compiled graph must see each update
            return self._compiled_loss(self.batches, self.lam, self.point_weights)
        except Exception as exc:  # compilation failed (no compiler, unsupported op, ...)
            self._compiled_loss = None
            self._compile_failed("torch.compile", exc, "continuing eagerly")
            return self._loss_eager()

    # -- compiling (pinnkit.pinn.compiled)
    def _compile_failed(self, what: str, exc: Exception, then: str) -> None:
        """Record (and unless quiet, print) that a compilation failed and what happens instead."""
        self._compile_broken = True
        self.messages.append(f"{what} failed ({compile_error_line(exc)}); {then}")
        if not self.opts.quiet and self.shard.main:
            print(f"pinnkit: {self.messages[-1]}", file=sys.stderr)

    def _compilable(self) -> bool:
        """Whether the loss can be compiled: the derivatives in Taylor mode (torch.compile does
        not support nested autograd's double backward), which this network must have."""
        from .taylor import supports
        return self.opts.engine != "autograd" and supports(self.model)

    def _make_compiled(self):
        """torch.compile of the loss (needs the Taylor engine)."""
        if not self._compilable():
            self.messages.append("compile=True needs the taylor engine (nested autograd's double "
                                 "backward cannot be compiled; this network or engine has no Taylor "
                                 "mode); running eagerly")
            return None
        mode = self.compile if isinstance(self.compile, str) else None
        # this trainer's own code object (pinnkit.pinn.compiled.compile_function): with the
        # shared one, the ninth pk.train of a process hit dynamo's recompile limit and ran
        # its loss eagerly
        loss = types.MethodType(own_code(self._loss_on.__func__), self)
        if self.device.type == "cpu":
            return torch_compile(loss, fullgraph=False,
                                 options=cpu_options(self.dtype, self.compile))
        return torch_compile(loss, fullgraph=False, mode=mode)

    def _loss_module(self) -> LossModule:
        return LossModule(self.model, self.params, self.networks, self._loss_on)

    def _make_step(self) -> WholeStep | LoopStep | None:
        """The compiled first-phase step: `LoopStep` (several steps a call) on one CPU
        process, else `WholeStep`; None when the phase has no compiled update."""
        if not self.shard.active:
            loop = LoopStep(self._loss_module(), self.first, self.compile, self.device,
                            self.dtype, self.term_names)
            if loop.supported:
                return loop
        step = WholeStep(self._loss_module(), self.first, self.compile, self.device, self.dtype,
                         self.shard.active)
        return step if step.supported else None

    def _fast_step(self, n: int = 1) -> tuple | None:
        """``n`` compiled whole steps (n > 1 with a `LoopStep` only); None when they cannot
        run (the loop then takes the loss-only compiled path, and keeps it)."""
        try:
            if n == 1:
                out = self.whole_step(self.batches, self.lam, self.point_weights)
            else:
                out = self.whole_step(self.batches, self.lam, self.point_weights, n)
            self.compiled_steps += n
            return out
        except Exception as exc:  # compilation failed: eager from here on
            # dynamo leaves the failed frames marked "skip", so the compiled loss (the same
            # frames) would run eagerly anyway; resetting dynamo's caches would do that to
            # every other compiled function of the caller's process, which is not ours to do
            self.whole_step = self._compiled_loss = None
            self._compile_failed("torch.compile of the whole step", exc, "running eagerly")
            return None

    # -- history and progress
    def _record(self, phase: int, step: int, total: torch.Tensor, terms: dict, t0: float) -> float:
        if self.shard.active and phase == 0:   # second-phase losses come reduced already
            total, terms = self._reduce_losses(total, terms)
        values = {k: float(terms[k].detach()) for k in self.term_names}
        loss = float(total.detach())
        h = self.history
        record(h, self.problem.name, phase, step, loss, values,
               self.elapsed + time.perf_counter() - t0,
               self.first.lr if phase == 0 else 1.0,
               f"lower --lr or check the spec{self._kept()}")
        if self.opts.loss_weighting != "fixed":
            for i, k in enumerate(self.term_names):
                h[f"weight_{k}"].append(float(self.lam[i]))
        if self.progress is not None:
            self.progress.log(step, loss, values)
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

    def _start_progress(self, second: bool) -> Progress:
        o = self.opts
        if second:
            what = f"{o.optimizer.upper().replace('LBFGS', 'L-BFGS')} iteration"
            tag, unit, start, total = self.second.name.lower(), "it", self.lbfgs_iter, o.lbfgs_steps
        else:
            name = self.first.name
            tag, what, unit, start, total = (name.lower(), f"{name} step", "steps", self.step,
                                             o.steps)
        self.progress = Progress(self.problem.name, tag, what, unit, start, total, o.quiet,
                                 self.shard.main, o.progress_seconds)
        return self.progress

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
        pw = self.point_weighting
        gather = lambda w: self.shard.gather_rows(w, len(self.np_batches.interior.X)).cpu().clone()
        return {
            "problem": self.problem.name, "fingerprint": self.fingerprint,
            "options": json.dumps(self.result_options, sort_keys=True),
            "model": self.model.state_dict(), "params": self.params.state_dict(),
            "networks": self.networks.state_dict(),
            **self.first.state_dict(),
            **(self.second.state_dict() if self.second is not None
               else {"lbfgs": None, "lbfgs_best": None}),
            "lbfgs_done": self.lbfgs_done,
            "step": self.step, "lbfgs_iter": self.lbfgs_iter, "elapsed": self.elapsed,
            "history": self.history, "messages": self.messages, "lam": self.lam.clone(), "window": self.window,
            "weighting": self.weighting.state_dict() if self.weighting is not None else {},
            **(pw.state_dict(gather) if pw is not None else {"point_lam": None}),
            "batches": self.np_batches.map(torch.as_tensor).as_dict(),
            "torch_rng": torch.get_rng_state(),
        }

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
            self.saved_at = (f"L-BFGS iteration {self.lbfgs_iter}" if self.second is not None
                             else f"{self.first.name} step {self.step}")

    def _finite_state(self) -> bool:
        return finite(self.parameters())

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
        self.np_batches = Batches.from_dict(s["batches"]).map(lambda a: a.numpy())
        self.step, self.lbfgs_iter, self.elapsed = int(s["step"]), int(s["lbfgs_iter"]), float(s["elapsed"])
        self.history, self.messages = s["history"], list(s["messages"])
        self.window = s.get("window", 1.0)
        if "lam" in s:
            self.lam.copy_(s["lam"])
        if self.weighting is not None:
            self.weighting.load_state_dict(s.get("weighting", {}))
        if self.point_weighting is not None:
            self.point_weighting.load_state_dict(s, self.shard.rows)
        self.lbfgs_done = s.get("lbfgs_done")
        second = s["lbfgs"] is not None
        if second:        # in the second phase's dtype before the saved tensors load
            self._enter_second()
        self.model.load_state_dict(s["model"])
        self.params.load_state_dict(s["params"])
        self.networks.load_state_dict(s.get("networks", {}))
        if second:
            self.second.load_state_dict(s)
        else:
            self.first.load_state_dict(s)
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
        with SignalFlag() as self._signals:
            self._first_phase(t0)
            self._second_phase(t0)
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

    def _first_phase(self, t0: float) -> None:
        o = self.opts
        if self.step >= o.steps or self.second is not None:
            return
        progress = self._start_progress(second=False)
        try:
            while self.step < o.steps:
                if self._resample_due(self.step):
                    self._set_batches(seed=o.seed + self.step)
                if self._adapt_due(self.step):
                    self._adapt()
                total, terms = self.adam_steps(self._block_length())
                if self._point_weights_due(self.step):
                    self._update_point_weights()
                if self._log_due(self.step):
                    loss = self._record(0, self.step, total, terms, t0)
                    if self._ask_callback("adam", self.step, t0):
                        break
                    progress.show(self.step, loss)
                if self._checkpoint_due(self.step):
                    self._guard(0, self.step, total, terms)
                    self.save(t0)
                if self._signals.signum is not None:
                    self._interrupt(t0, f"{self.first.name} step {self.step}", total, terms)
        finally:
            progress.close()
            self.progress = None

    # -- the first phase's events: before step j (resample, adapt, reweigh) or after count c
    def _resample_due(self, j: int) -> bool:
        o = self.opts
        return bool(o.resample_every and j and j % o.resample_every == 0) \
            or self.marching.fraction(j) != self.window

    def _adapt_due(self, j: int) -> bool:
        return (self.sampling is not None and self.sampling.due(j)
                and self.np_batches.interior is not None)

    def _weights_due(self, j: int) -> bool:
        return self.weighting is not None and j % self.opts.weight_every == 0

    def _point_weights_due(self, c: int) -> bool:
        return self.point_weighting is not None and self.point_weighting.due(c)

    def _log_due(self, c: int) -> bool:
        return c % self.opts.log_every == 0 or c == self.opts.steps

    def _checkpoint_due(self, c: int) -> bool:
        return bool(self.opts.checkpoint) and c % self.opts.checkpoint_every == 0

    def _block_length(self) -> int:
        """How many first-phase steps from the current one can run as one call: up to
        `LOOP_STEPS` with a `LoopStep`, ending before the next step that has an event before
        it (resample, adapt, reweigh; a step that reweighs runs alone) and at the next count
        with one after it (point weights, log, checkpoint, the phase's end)."""
        if not isinstance(self.whole_step, LoopStep) or self._weights_due(self.step):
            return 1
        s = self.step
        n = 1
        while n < min(LOOP_STEPS, self.opts.steps - s):
            c = s + n
            if (self._point_weights_due(c) or self._log_due(c) or self._checkpoint_due(c)
                    or self._resample_due(c) or self._adapt_due(c) or self._weights_due(c)):
                break
            n += 1
        return n

    def adam_steps(self, n: int) -> tuple:
        """``n`` first-phase steps with none of the loop's events between them (the caller
        runs those), each followed by the learning-rate schedule; (total, terms) of the
        last. With a `LoopStep` they run in blocks of up to `_block_length` steps, one
        compiled call each; else one `adam_step` at a time."""
        while n > 0:
            k = min(n, self._block_length())
            out = self._fast_step(k) if k > 1 else None
            if out is not None:
                for _ in range(k):
                    self.first.advance()
                self.step += k
            else:        # one step at a time (also after a failed compile)
                for _ in range(k):
                    out = self.adam_step()
                    self.first.advance()
                    self.step += 1
            n -= k
        return out

    def adam_step(self) -> tuple:
        """One first-phase step on the current points: the compiled whole step when there is
        one, else loss (compiled or eager), backward and the optimizer's step; (total, terms)."""
        due = self._weights_due(self.step)
        reweigh = due and self.weighting.needs_graph
        out = self._fast_step() if self.whole_step is not None and not reweigh else None
        if out is not None:
            if due:       # a scheme of loss values only: from the compiled step's values
                self._update_weights(self._global_values(*out)[1])
            return out
        self.first.zero_grad()
        # a reweighting step differentiates each term on its own (autograd.grad with
        # retain_graph): eagerly, since a compiled loss's backward may donate its buffers
        # (it failed so after RAR grew the point set)
        total, terms = self._loss_eager() if reweigh else self._loss()
        if reweigh:
            total = self._update_weights(terms)
        total.backward()
        self._reduce_grads()
        self.first.step()
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
            self.shard.all_reduce_many([p.grad for p in self.parameters() if p.grad is not None])

    # -- the second phase (pinnkit.pinn.second_phase)
    def _enter_second(self) -> None:
        dt = DTYPES[self.opts.lbfgs_dtype]
        self.model.to(dtype=dt)
        self.networks.to(dtype=dt)
        for p in self.params.values():
            p.data = p.data.to(dt)
        self.second = SECOND_PHASES[self.opts.optimizer](_Objective(self), self.opts)
        self._to_tensors()
        # the second phase's loss and gradient as one compiled torch.func graph, like the Adam
        # whole step (eagerly: the loss and autograd)
        self._grad_fn = None
        compiled = self.compile_second and not self._compile_broken and self._compilable()
        if (compiled and self._compiled_loss is None) or self.second.least_squares:
            # torch.func graphs (the compiled loss and gradient, or LM's Jacobian) need Taylor
            # mode: from here on when Adam ran eagerly (LM's need is checked in __init__)
            self.engine = self.compiled.engine = resolve_engine(self.opts.engine, self.model, True)
        if compiled:
            self._grad_fn = ValueAndGrad(self._loss_module(), self.compile_second, self.device)

    def _value_and_grad(self) -> tuple:
        """(this rank's loss, its gradients) at the current parameters, through the compiled
        graph when there is one, else the loss and autograd."""
        params = self.parameters()
        if self._grad_fn is not None:
            try:
                return self._grad_fn(params, self.batches, self.lam, self.point_weights)
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

    def gauss_newton(self) -> tuple:
        """(loss, JᵀJ, Jᵀr) of the loss written as Σ r² over every rank's points (the
        Levenberg–Marquardt phase's system; `pinnkit.pinn.compiled.GaussNewton`)."""
        if self._gn is None:
            self._gn = GaussNewton(self.model, self.params, self.networks)
        compiled, opts = self.compiled, self.opts
        adaptive = opts.loss_weighting != "fixed"
        scale = {}
        for i, k in enumerate(self.term_names):   # the weight of the term's mean, as _total
            c = opts.weights.get(k, 1.0) * (float(self.lam[i]) if adaptive else 1.0)
            b = self.batches.of(compiled.terms[i])
            S = 1.0 if b.S is None else float(b.S)
            scale[k] = math.sqrt(c * S / len(b.X))
        groups = []
        pde = [t for t in compiled.terms if t.kind == "pde"]
        if pde:
            X = self.batches.interior.X
            pw = self.point_weights
            batch = {"X": X} if pw is None else {"X": X, "w": pw}

            def interior(b: dict) -> torch.Tensor:
                res = compiled._pde_residuals(self.model, self._param_values(), b["X"], True)
                w = b.get("w", 1.0)
                return torch.cat([scale[t.name] * w * r for t in pde for r in res[t.name]])
            groups.append((interior, batch))
        for t in compiled.terms:
            if t.kind == "pde":
                continue
            batch = self.batches.terms[t.name]._replace(S=None).as_dict()

            def term(b: dict, t=t) -> torch.Tensor:
                res = compiled.term_residuals(self.model, self._param_values(), t, Batch(**b))
                return torch.cat([scale[t.name] * r for r in res])
            groups.append((term, batch))
        loss, A, g = self._gn(groups)
        if self.shard.active:
            self.shard.all_reduce_many([loss, A, g])
        return loss, A, g

    def _second_phase(self, t0: float) -> None:
        """The second-phase optimizer in chunks of ``log_every`` iterations; between chunks
        (where its state is consistent) the loss is recorded, checkpointed, and signals and
        the callback may stop it. Ends with the optimizer's stopping report."""
        o = self.opts
        if o.lbfgs_steps <= self.lbfgs_iter or self.stopped or \
                (self.lbfgs_done is not None and o.lbfgs_steps <= self.lbfgs_done):
            return
        if self.second is None:
            self._enter_second()
            if self.window < 1.0:     # Adam stopped early inside a window: whole interval now
                self._set_batches(seed=o.seed + self.step)
        phase = self.second
        progress = self._start_progress(second=True)
        try:
            phase.start()
            while self.lbfgs_iter < o.lbfgs_steps and not phase.stopped:
                where = f"{phase.name} iteration {self.lbfgs_iter}"
                if self._signals.signum is not None:
                    phase.consistent()
                    self._interrupt(t0, where)
                chunk = min(o.log_every, o.lbfgs_steps - self.lbfgs_iter)
                try:
                    c = phase.run(chunk, self.lbfgs_iter)
                except Abort:         # a signal mid-chunk: the phase is back at its start
                    self._interrupt(t0, where)
                self.lbfgs_iter += c.done
                if c.note:
                    self.messages.append(c.note)
                if c.record:
                    self._record(1, self.lbfgs_iter, c.total, c.terms, t0)
                    if self._ask_callback("lbfgs", self.lbfgs_iter, t0):
                        break
                progress.show(self.lbfgs_iter, phase.shown_loss(c))
                if c.stop:
                    self.messages.append(f"{phase.name} stopped at iteration {self.lbfgs_iter}: "
                                         f"{c.stop}")
                    break
                if o.checkpoint and self.lbfgs_iter % o.checkpoint_every < chunk:
                    self.save(t0)      # after the finite check: params finite, state consistent
            notes, record_end = phase.finish(self.lbfgs_iter, o.lbfgs_steps)
            self.messages += notes
            if record_end:
                total, terms = self._global_loss()
                if not self.history["phase"] or self.history["loss"][-1] != total.item():
                    self._record(1, self.lbfgs_iter, total, terms, t0)
        finally:
            progress.close()
            self.progress = None
        self.lbfgs_done = o.lbfgs_steps


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
            sol = Trainer(problem, opts, callback).run()
    finally:
        torch.set_num_threads(previous)
    sol.threads = threads
    return sol
