"""Networks: MLP, Fourier-feature embedding, modified MLP, and the model wrapper.

The wrapper maps inputs from the domain's bounding box to [-1, 1] (so widths and learning
rates do not depend on the units of the problem), applies an optional embedding and the
core network, and an optional exact ("hard") constraint transform on the outputs.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

__all__ = ["MLP", "ModifiedMLP", "FourierFeatures", "PeriodicEmbedding", "FactorizedLinear",
           "PirateNet", "PINNModel", "NETWORKS", "ACTIVATIONS", "build_model"]


class Sine(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh, "sin": Sine, "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus,
}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None


def _glorot(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class FactorizedLinear(nn.Module):
    """Random weight factorization (Wang et al. 2022, "Random weight factorization improves
    the training of continuous neural representations"): W = diag(exp(s)) V, with s drawn from
    N(mean, std) and V = W₀ / exp(s) for a Glorot W₀, so the initial map is unchanged.
    ``weight`` is the effective matrix (what the Taylor engine multiplies by)."""

    def __init__(self, n_in: int, n_out: int, mean: float = 1.0, std: float = 0.1) -> None:
        super().__init__()
        base = _glorot(nn.Linear(n_in, n_out))
        s = mean + std * torch.randn(n_out)
        self.s = nn.Parameter(s)
        self.v = nn.Parameter(base.weight.detach() / torch.exp(s)[:, None])
        self.bias = nn.Parameter(base.bias.detach().clone())
        self.in_features, self.out_features = n_in, n_out

    @property
    def weight(self) -> torch.Tensor:
        return torch.exp(self.s)[:, None] * self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight, self.bias)


def _linear(n_in: int, n_out: int, factorized: bool) -> nn.Module:
    return FactorizedLinear(n_in, n_out) if factorized else _glorot(nn.Linear(n_in, n_out))


class MLP(nn.Module):
    """Fully connected network: ``depth`` hidden layers of ``width``, Glorot-normal init."""

    def __init__(self, n_in: int, n_out: int, width: int = 50, depth: int = 4,
                 activation: str = "tanh", factorized: bool = False) -> None:
        super().__init__()
        sizes = [n_in] + [width] * depth
        self.hidden = nn.ModuleList(_linear(a, b, factorized) for a, b in zip(sizes, sizes[1:]))
        self.act = _activation(activation)
        self.out = _linear(sizes[-1], n_out, factorized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


class ModifiedMLP(nn.Module):
    """Modified MLP of Wang, Teng & Perdikaris (2021, SIAM J. Sci. Comput. 43, A3055), eq. 2.33.

    Two encoders U = σ(XW₁+b₁), V = σ(XW₂+b₂) gate every hidden layer:
    H ← (1 − Z) ⊙ U + Z ⊙ V with Z = σ(H W + b).
    """

    def __init__(self, n_in: int, n_out: int, width: int = 50, depth: int = 4,
                 activation: str = "tanh", factorized: bool = False) -> None:
        super().__init__()
        self.enc_u = _linear(n_in, width, factorized)
        self.enc_v = _linear(n_in, width, factorized)
        sizes = [n_in] + [width] * depth
        self.hidden = nn.ModuleList(_linear(a, b, factorized) for a, b in zip(sizes, sizes[1:]))
        self.act = _activation(activation)
        self.out = _linear(width, n_out, factorized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        U, V = self.act(self.enc_u(x)), self.act(self.enc_v(x))
        h = x
        for layer in self.hidden:
            z = self.act(layer(h))
            h = (1 - z) * U + z * V
        return self.out(h)


class FourierFeatures(nn.Module):
    """Random Fourier features [cos 2πXB, sin 2πXB], B ~ N(0, σ²) fixed (Tancik et al. 2020)."""

    def __init__(self, n_in: int, n_features: int, scale=1.0, seed: int = 0) -> None:
        """``scale``: σ for every input, or one σ per input row (anisotropic features)."""
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        sigma = torch.as_tensor(scale, dtype=torch.float32).reshape(-1, 1)
        self.register_buffer("B", torch.randn(n_in, n_features, generator=g) * sigma)
        self.n_out = 2 * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * x @ self.B.to(x.dtype)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)


class PeriodicEmbedding(nn.Module):
    """Exact periodicity in chosen inputs (normalized to [-1, 1] over one period): column z
    becomes cos(π k z), sin(π k z) for k = 1..harmonics; other columns pass through.
    Every function of the embedding is periodic, so periodic conditions hold exactly."""

    def __init__(self, n_in: int, columns: list, harmonics: int = 1) -> None:
        super().__init__()
        self.columns = list(columns)
        self.keep = [i for i in range(n_in) if i not in self.columns]
        self.register_buffer("k", torch.arange(1, harmonics + 1, dtype=torch.float64) * math.pi)
        self.n_out = len(self.keep) + 2 * harmonics * len(self.columns)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        parts = [z[:, self.keep]]
        k = self.k.to(z.dtype)
        for c in self.columns:
            a = z[:, c:c + 1] * k
            parts += [torch.cos(a), torch.sin(a)]
        return torch.cat(parts, dim=1)


class PirateNet(nn.Module):
    """PirateNet of Wang, Li, Chen & Perdikaris (2024, "PirateNets: physics-informed deep
    learning with residual adaptive networks"): ``depth`` residual adaptive blocks, each of
    three dense layers gated by the encoders U, V as in the modified MLP,

        F = σ(x W₁ + b₁), Z₁ = V + F ⊙ (U − V), G = σ(Z₁ W₂ + b₂), Z₂ = V + G ⊙ (U − V),
        H = σ(Z₂ W₃ + b₃), x ← α H + (1 − α) x,

    with a trainable α per block starting at 0: at initialization the network is a linear
    map of its input (the embedding, lifted linearly to ``width`` when sizes differ), and
    training admits depth as it helps."""

    def __init__(self, n_in: int, n_out: int, width: int = 50, depth: int = 3,
                 activation: str = "tanh", factorized: bool = False) -> None:
        super().__init__()
        self.lift = None if n_in == width else _linear(n_in, width, factorized)
        self.enc_u = _linear(n_in, width, factorized)
        self.enc_v = _linear(n_in, width, factorized)
        self.blocks = nn.ModuleList(
            nn.ModuleList(_linear(width, width, factorized) for _ in range(3)) for _ in range(depth))
        self.alpha = nn.Parameter(torch.zeros(depth))
        self.act = _activation(activation)
        self.out = _linear(width, n_out, factorized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        U, V = self.act(self.enc_u(x)), self.act(self.enc_v(x))
        D = U - V
        h = x if self.lift is None else self.lift(x)
        for (l1, l2, l3), a in zip(self.blocks, self.alpha):
            z = V + self.act(l1(h)) * D
            z = V + self.act(l2(z)) * D
            h = a * self.act(l3(z)) + (1 - a) * h
        return self.out(h)


NETWORKS: dict[str, type] = {"mlp": MLP, "modified_mlp": ModifiedMLP, "pirate": PirateNet}


class PINNModel(nn.Module):
    """Normalize inputs to [-1, 1] on the box [lo, hi], embed, run the net, constrain outputs.

    ``constraint(X, raw) -> out`` (optional) enforces conditions exactly in physical inputs.
    """

    def __init__(self, core: nn.Module, lo, hi, embedding: nn.Module | None = None,
                 constraint: Callable | None = None) -> None:
        super().__init__()
        self.register_buffer("lo", torch.as_tensor(lo, dtype=torch.float64))
        self.register_buffer("hi", torch.as_tensor(hi, dtype=torch.float64))
        self.embedding = embedding
        self.core = core
        self.constraint = constraint

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        lo, hi = self.lo.to(X.dtype), self.hi.to(X.dtype)
        z = 2 * (X - lo) / (hi - lo) - 1
        if self.embedding is not None:
            z = self.embedding(z)
        out = self.core(z)
        if self.constraint is not None:
            out = self.constraint(X, out)
        return out


def build_model(n_in: int, n_out: int, lo, hi, network: str = "mlp", width: int = 50,
                depth: int = 4, activation: str = "tanh", fourier_features: int = 0,
                fourier_scale: float = 1.0, seed: int = 0,
                constraint: Callable | None = None, periodic: list | None = None,
                factorized: bool = False) -> PINNModel:
    """A `PINNModel` from options (``network`` names a class in `NETWORKS`); ``periodic``:
    input columns embedded periodically over their box; ``factorized``: random weight
    factorization of every linear layer."""
    try:
        cls = NETWORKS[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r}; choose from {', '.join(NETWORKS)}") from None
    embeddings = []
    n_core_in = n_in
    if periodic:
        embeddings.append(PeriodicEmbedding(n_in, periodic))
        n_core_in = embeddings[-1].n_out
    if fourier_features:
        embeddings.append(FourierFeatures(n_core_in, int(fourier_features), fourier_scale, seed))
        n_core_in = embeddings[-1].n_out
    embedding = None if not embeddings else (embeddings[0] if len(embeddings) == 1
                                             else nn.Sequential(*embeddings))
    core = cls(n_core_in, n_out, width=width, depth=depth, activation=activation,
               factorized=factorized)
    return PINNModel(core, lo, hi, embedding, constraint)
