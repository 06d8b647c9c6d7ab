"""Accuracy toolbox: causal training, gradient-norm loss balancing, adaptive sampling.

- Causal training (Wang, Sankaran & Perdikaris 2022, "Respecting causality is all you need
  for training physics-informed neural networks"): the PDE residual of a time-dependent
  problem is split into ``bins`` time slabs with mean losses L_1..L_M and weighted by
  w_i = exp(−ε Σ_{k<i} L_k) (weights not differentiated), so later times train only once
  earlier ones are resolved.
- Gradient-norm weighting (Wang et al. 2023, "An expert's guide to training PINNs", Sec. 4):
  λ_k = Σ_j ‖∇_θ L_j‖ / ‖∇_θ L_k‖, smoothed by a moving average, updated every K steps;
  afterwards every weighted term has the same gradient norm.
- NTK-trace weighting (Wang, Yu & Perdikaris 2022, "When and why PINNs fail to train: a
  neural tangent kernel perspective"; JAX-PI): λ_k = Σ_j tr K_j / tr K_k with tr K_k the mean
  over the term's points of ‖∂r_i/∂θ‖² (estimated on a random subset of points), moving
  average, every K steps: terms whose residuals the parameters move slowly get more weight.
- Residual-based attention (RBA, Anagnostopoulos et al. 2024, "Residual-based attention in
  physics-informed neural networks"): per-point multipliers of the PDE residual,
  λ_i ← γ λ_i + η |r_i| / max |r|, so persistently large residuals gain weight.
- RAR (Lu et al. 2021, DeepXDE paper): every K steps add the m candidate points with the
  largest PDE residual. RAD (Wu et al. 2023, "A comprehensive study of non-adaptive and
  residual-based adaptive sampling for PINNs"): every K steps redraw the interior points from
  candidates with probability ∝ |r|^k / mean|r|^k + c.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["causal_weights", "causal_loss", "gradnorm_weights", "ntk_weights", "rba_update",
           "rar_select", "rad_select"]


def causal_weights(slab_losses: torch.Tensor, eps: float) -> torch.Tensor:
    """w_i = exp(−ε Σ_{k<i} L_k) for slab losses L (M,), detached; w_0 = 1."""
    L = slab_losses.detach()
    before = torch.cumsum(L, 0) - L
    return torch.exp(-eps * before)


def causal_loss(r2: torch.Tensor, t: torch.Tensor, t0: float, t1: float, bins: int,
                eps: float, reduce: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_i w_i L_i, weights) for squared residuals r2 (N,) at times t (N,).

    ``reduce`` (data-parallel runs: an in-place sum over the ranks) makes the slab counts and
    the weights global; the returned loss is then this rank's share of the global one."""
    idx = ((t - t0) / (t1 - t0) * bins).long().clamp_(0, bins - 1)
    sums = torch.zeros(bins, dtype=r2.dtype, device=r2.device).index_add(0, idx, r2)
    counts = torch.zeros(bins, dtype=r2.dtype, device=r2.device).index_add(0, idx, torch.ones_like(r2))
    if reduce is None:
        L = sums / counts.clamp(min=1)
        w = causal_weights(L, eps)
        return torch.mean(w * L), w
    counts = reduce(counts)
    w = causal_weights(reduce(sums.detach().clone()) / counts.clamp(min=1), eps)
    return torch.mean(w * sums / counts.clamp(min=1)), w


def gradnorm_weights(terms: dict, params: list, old: dict | None, momentum: float,
                     reduce: Callable | None = None) -> dict:
    """New loss weights λ_k = Σ_j ‖∇L_j‖ / ‖∇L_k‖ (moving average with ``old``); ``reduce``
    (data-parallel runs) sums each term's gradients over the ranks in place first."""
    norms = {}
    for k, v in terms.items():
        grads = torch.autograd.grad(v, params, retain_graph=True, allow_unused=True)
        if reduce is not None:
            reduce([g for g in grads if g is not None])
        sq = sum(float(g.detach().pow(2).sum()) for g in grads if g is not None)
        norms[k] = max(sq ** 0.5, 1e-30)
    total = sum(norms.values())
    return _smooth({k: total / n for k, n in norms.items()}, old, momentum)


def _smooth(new: dict, old: dict | None, momentum: float) -> dict:
    if old:
        new = {k: momentum * old.get(k, new[k]) + (1 - momentum) * new[k] for k in new}
    return new


def ntk_traces(residuals: dict, params: list) -> dict:
    """{term: mean over its points of ‖∂r_i/∂θ‖²} for residual vectors {term: (n,) tensor}
    (one backward pass per point: pass a small subset)."""
    traces = {}
    for k, r in residuals.items():
        total = 0.0
        for i in range(len(r)):
            grads = torch.autograd.grad(r[i], params, retain_graph=True, allow_unused=True)
            total += sum(float(g.detach().pow(2).sum()) for g in grads if g is not None)
        traces[k] = max(total / max(len(r), 1), 1e-30)
    return traces


def ntk_weights(residuals: dict, params: list, old: dict | None, momentum: float) -> dict:
    """New loss weights λ_k = Σ_j tr K_j / tr K_k (moving average with ``old``)."""
    traces = ntk_traces(residuals, params)
    total = sum(traces.values())
    return _smooth({k: total / t for k, t in traces.items()}, old, momentum)


@torch.no_grad()
def rba_update(lam: torch.Tensor, residual: torch.Tensor, gamma: float, eta: float,
               reduce_max: Callable | None = None) -> None:
    """In place: λ ← γ λ + η |r| / max |r| (RBA point multipliers); ``reduce_max`` (data-
    parallel runs) takes the maximum over every rank's points."""
    a = residual.detach().abs().to(lam.dtype)
    amax = a.max()
    if reduce_max is not None:
        amax = reduce_max(amax)
    lam.mul_(gamma).add_(eta * a / amax.clamp(min=1e-30))


def rar_select(residual: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m candidates with the largest |residual|."""
    m = min(m, len(residual))
    return np.argpartition(-np.abs(residual), m - 1)[:m] if m else np.zeros(0, int)


def rad_select(residual: np.ndarray, n: int, k: float, c: float,
               rng: np.random.Generator) -> np.ndarray:
    """n candidate indices drawn (without replacement when possible) with probability
    ∝ |r|^k / mean(|r|^k) + c."""
    e = np.abs(residual) ** k
    p = e / max(float(e.mean()), 1e-300) + c
    p = p / p.sum()
    return rng.choice(len(residual), size=n, replace=n > len(residual), p=p)
