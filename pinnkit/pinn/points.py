"""The trainer's point strategies: what it does with the collocation points between steps.

- `TimeMarching` (option ``time_windows``): the Adam steps run in K stages on growing time
  windows [t0, t0 + (i+1)/K (t1 − t0)].
- `ADAPTIVE_SAMPLING` (option ``adaptive``): residual-based adaptive sampling, RAR (add the
  worst candidates) and RAD (redraw by residual), every ``adaptive_every`` steps.
- `POINT_WEIGHTINGS` (option ``point_weighting``): per-point multipliers of the PDE residual,
  RBA (residual-based attention), every ``rba_every`` steps.
- `CausalWeighting` (option ``causal_eps``): the PDE loss of a time-dependent problem
  weighted slab by slab in time, given to `pinnkit.losses.CompiledProblem`.

Each class reads its own options (listed in ``OPTIONS``) and keeps its own state; the
formulas with their papers are in `pinnkit.recipes`. Adding a scheme is one class here,
registered by name, and its test; `pinnkit.options` and the CLI take the names from these
registries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..recipes import causal_loss, rad_select, rar_select, rba_update
from ..spec import Problem
from .batches import Batch, Batches

__all__ = ["TimeMarching", "AdaptiveSampling", "RAR", "RAD", "ADAPTIVE_SAMPLING",
           "PointWeighting", "RBA", "POINT_WEIGHTINGS", "CausalWeighting"]


class TimeMarching:
    """Time marching: stage i of ``time_windows`` = K trains on [t0, t0 + (i+1)/K·(t1 − t0)]
    for steps/K Adam steps; the second phase trains on the whole interval."""

    OPTIONS = ("time_windows",)

    def __init__(self, problem: Problem, options) -> None:
        self.windows, self.steps = int(options.time_windows), int(options.steps)
        self.col = len(problem.coords) - 1
        self.t0 = problem.domain.t0 if problem.time is not None else 0.0

    def fraction(self, step: int, second_phase: bool = False) -> float:
        """The fraction of the time interval the points cover at Adam step ``step``."""
        K = self.windows
        if not K or second_phase or step >= self.steps:
            return 1.0
        return (min(K - 1, step * K // self.steps) + 1) / K

    def squeeze(self, batches: Batches, kinds: dict, fraction: float) -> Batches:
        """The sampled times of the PDE, boundary and periodic points (numpy; ``kinds``:
        {term name: kind}) squeezed into [t0, t0 + fraction (t1 − t0)]: still uniform in the
        window."""
        if fraction >= 1.0:
            return batches

        def times(X: np.ndarray) -> np.ndarray:
            X = X.copy()
            X[:, self.col] = self.t0 + (X[:, self.col] - self.t0) * fraction
            return X

        def squeezed(b: Batch) -> Batch:
            return b._replace(X=times(b.X), X2=None if b.X2 is None else times(b.X2))
        interior = None if batches.interior is None else squeezed(batches.interior)
        return Batches(interior, {name: squeezed(b) if kinds[name] in ("boundary", "periodic")
                                  else b for name, b in batches.terms.items()})


class AdaptiveSampling:
    """Residual-based adaptive sampling: every ``adaptive_every`` Adam steps, new interior
    points from candidates drawn uniformly and the PDE residual there. Stateless (seeded by
    the step), so checkpoints keep only the points."""

    OPTIONS = ("adaptive_every", "adaptive_candidates")
    #: whether the new set starts with the old points in order (point multipliers carry over)
    keeps_points = True

    def __init__(self, options) -> None:
        self.every = int(options.adaptive_every)
        self.candidates = int(options.adaptive_candidates) or 10 * int(options.interior_points)
        self.seed = int(options.seed)

    def due(self, step: int) -> bool:
        return bool(step) and step % self.every == 0

    def candidate_seed(self, step: int) -> int:
        return self.seed * 7919 + step

    def select(self, current: np.ndarray, candidates: np.ndarray, residual: np.ndarray,
               step: int) -> np.ndarray:
        """The new interior points (n, ndim) from the current ones and the candidates with
        their residual magnitudes |r|."""
        raise NotImplementedError


class RAR(AdaptiveSampling):
    """RAR (Lu et al. 2021): add the ``adaptive_points`` candidates of largest residual."""

    OPTIONS = AdaptiveSampling.OPTIONS + ("adaptive_points",)

    def __init__(self, options) -> None:
        super().__init__(options)
        self.points = int(options.adaptive_points)

    def select(self, current, candidates, residual, step):
        return np.concatenate([current, candidates[rar_select(residual, self.points)]])


class RAD(AdaptiveSampling):
    """RAD (Wu et al. 2023): redraw as many points from the candidates, p ∝ |r|^k/mean + c."""

    OPTIONS = AdaptiveSampling.OPTIONS + ("rad_k", "rad_c")
    keeps_points = False

    def __init__(self, options) -> None:
        super().__init__(options)
        self.k, self.c = float(options.rad_k), float(options.rad_c)

    def select(self, current, candidates, residual, step):
        rng = np.random.default_rng(self.seed * 104729 + step)
        return candidates[rad_select(residual, len(current), self.k, self.c, rng)]


#: option ``adaptive`` (besides "none"): name -> class
ADAPTIVE_SAMPLING: dict[str, type[AdaptiveSampling]] = {"rar": RAR, "rad": RAD}


class PointWeighting:
    """Per-point multipliers of the PDE residuals (``weights``, one per interior point of this
    rank, not differentiated), updated every ``every`` Adam steps from the residual."""

    OPTIONS: tuple = ()
    every: int = 1

    def __init__(self, options) -> None:
        self.weights: torch.Tensor | None = None

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def fit(self, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Multipliers for ``n`` points in ``dtype``: the current ones first (points appended
        by RAR start from 1), all ones after a reset (``weights = None``: new points)."""
        old = self.weights
        w = torch.ones(n, dtype=dtype, device=device)
        if old is not None:
            w[:min(n, len(old))] = old[:n].to(dtype)
        self.weights = w
        return w

    def update(self, residual: torch.Tensor, reduce_max: Callable | None) -> None:
        """New multipliers (in place) from the residual magnitudes |r| at the points."""
        raise NotImplementedError

    def state_dict(self, gather: Callable) -> dict:
        """The multipliers of every point in global order (``gather(tensor)``), so that any
        number of ranks can resume."""
        return {"point_lam": None if self.weights is None else gather(self.weights.detach())}

    def load_state_dict(self, state: dict, rows: Callable) -> None:
        lam = state.get("point_lam")
        self.weights = None if lam is None else torch.as_tensor(rows(lam))


class RBA(PointWeighting):
    """Residual-based attention (Anagnostopoulos et al. 2024): λ_i ← γ λ_i + η |r_i| / max|r|."""

    OPTIONS = ("rba_gamma", "rba_eta", "rba_every")

    def __init__(self, options) -> None:
        super().__init__(options)
        self.gamma, self.eta = float(options.rba_gamma), float(options.rba_eta)
        self.every = int(options.rba_every)

    def update(self, residual, reduce_max):
        rba_update(self.weights, residual, self.gamma, self.eta, reduce_max)


#: option ``point_weighting`` (besides "none"): name -> class
POINT_WEIGHTINGS: dict[str, type[PointWeighting]] = {"rba": RBA}


@dataclass(frozen=True)
class CausalWeighting:
    """Causal training (Wang, Sankaran & Perdikaris 2022): the PDE loss of a time-dependent
    problem as the mean of ``bins`` time slabs' losses, slab i weighted by
    exp(−ε Σ_{k<i} L_k) (`pinnkit.recipes.causal_loss`)."""

    OPTIONS = ("causal_eps", "causal_bins")

    eps: float
    bins: int
    col: int       # the time column of the points
    t0: float
    t1: float

    @classmethod
    def from_options(cls, problem: Problem, options) -> "CausalWeighting | None":
        if not options.causal_eps > 0:
            return None
        d = problem.domain
        return cls(float(options.causal_eps), int(options.causal_bins), len(problem.coords) - 1,
                   d.t0, d.t1)

    def loss(self, r2: torch.Tensor, X: torch.Tensor, reduce: Callable | None) -> torch.Tensor:
        """The weighted loss of squared residuals ``r2`` (N,) at points ``X`` (N, ndim);
        ``reduce``: the data-parallel in-place sum (None in one process)."""
        return causal_loss(r2, X[:, self.col], self.t0, self.t1, self.bins, self.eps, reduce)[0]
