"""Loss-weighting schemes (option ``loss_weighting``): a registry name -> class.

A scheme sees the loss terms every ``weight_every`` Adam steps and returns new weights
λ_k (term name -> float); the trainer multiplies each term by its λ. Adding a scheme is one
class here (and its test): subclass `LossWeighting`, implement `update`, register it.

``needs_graph`` says whether `update` differentiates the terms (then the trainer evaluates
that step's loss eagerly, with a graph); a scheme that reads only the loss values runs after
a compiled step on its detached values, which keeps the fast path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .recipes import gradnorm_weights, ntk_weights

__all__ = ["LossWeighting", "GradNorm", "NTKTrace", "ReLoBRaLo", "WeightingInputs", "WEIGHTINGS"]


@dataclass(frozen=True)
class WeightingInputs:
    """What a scheme may use: the loss terms (0-dim tensors; with a graph when the scheme
    ``needs_graph``, global values in a data-parallel run otherwise), the trainable tensors,
    a function giving residuals on a small subset of every term's points (NTK), an in-place
    sum over data-parallel ranks of a list of tensors (None in one process), the Adam step,
    and the current weights (None before the first update)."""

    terms: dict
    params: list
    residuals: Callable[[], dict]
    reduce: Callable | None
    step: int
    old: dict | None


class LossWeighting:
    """Base class: state, `update` -> {term: weight}, `state_dict` / `load_state_dict`."""

    needs_graph: bool = True

    def __init__(self, term_names: list, options) -> None:
        self.term_names = list(term_names)
        self.momentum = float(options.weight_momentum)

    def update(self, inputs: WeightingInputs) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class GradNorm(LossWeighting):
    """λ_k = Σ_j ‖∇L_j‖ / ‖∇L_k‖, a moving average (Wang, Teng & Perdikaris 2021)."""

    def update(self, inputs: WeightingInputs) -> dict:
        return gradnorm_weights(inputs.terms, inputs.params, inputs.old, self.momentum,
                                inputs.reduce)


class NTKTrace(LossWeighting):
    """λ_k = Σ_j tr K_j / tr K_k from the neural tangent kernel's trace on a subset of points
    (Wang, Yu & Perdikaris 2022)."""

    def update(self, inputs: WeightingInputs) -> dict:
        return ntk_weights(inputs.residuals(), inputs.params, inputs.old, self.momentum)


class ReLoBRaLo(LossWeighting):
    """Relative loss balancing with random lookback (Bischof & Kraus 2021, arXiv:2110.09813,
    eqs. 10-12): with m terms, temperature T and L_k(t) the term losses at update t,

        λ^bal_k(t, t') = m · softmax_k( L_k(t) / (T · L_k(t')) )
        λ_k(t) = α [ρ λ_k(t−1) + (1 − ρ) λ^bal_k(t, 0)] + (1 − α) λ^bal_k(t, t−1),

    ρ ~ Bernoulli(``relobralo_saudade``) drawn from a generator seeded by the run's seed, α =
    ``relobralo_alpha``. It uses loss values only (no gradients), so it costs nothing per step."""

    needs_graph = False

    def __init__(self, term_names: list, options) -> None:
        super().__init__(term_names, options)
        self.alpha = float(options.relobralo_alpha)
        self.temperature = float(options.relobralo_temperature)
        self.saudade = float(options.relobralo_saudade)
        self.rng = np.random.default_rng(int(options.seed) + 7349)
        self.first: np.ndarray | None = None     # L(0)
        self.last: np.ndarray | None = None      # L(t − 1)

    def _balance(self, now: np.ndarray, then: np.ndarray) -> np.ndarray:
        z = now / (self.temperature * np.maximum(then, 1e-300))
        e = np.exp(z - z.max())
        return len(now) * e / e.sum()

    def update(self, inputs: WeightingInputs) -> dict:
        now = np.array([float(inputs.terms[k]) for k in self.term_names])
        if self.first is None or inputs.old is None:
            self.first, self.last = now, now
            return dict.fromkeys(self.term_names, 1.0)
        old = np.array([inputs.old[k] for k in self.term_names])
        rho = float(self.rng.random() < self.saudade)
        lam = (self.alpha * (rho * old + (1 - rho) * self._balance(now, self.first))
               + (1 - self.alpha) * self._balance(now, self.last))
        self.last = now
        return {k: float(v) for k, v in zip(self.term_names, lam)}

    def state_dict(self) -> dict:
        return {"first": None if self.first is None else torch.as_tensor(self.first),
                "last": None if self.last is None else torch.as_tensor(self.last),
                "rng": self.rng.bit_generator.state}      # plain dict of ints and strings

    def load_state_dict(self, state: dict) -> None:
        self.first = None if state.get("first") is None else state["first"].numpy()
        self.last = None if state.get("last") is None else state["last"].numpy()
        if state.get("rng") is not None:
            self.rng.bit_generator.state = state["rng"]


#: option ``loss_weighting`` -> scheme ("fixed": no scheme, the fixed ``weights`` alone)
WEIGHTINGS: dict[str, type[LossWeighting]] = {
    "gradnorm": GradNorm, "ntk": NTKTrace, "relobralo": ReLoBRaLo}
