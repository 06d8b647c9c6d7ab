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

__all__ = ["MLP", "ModifiedMLP", "FourierFeatures", "PINNModel", "NETWORKS", "ACTIVATIONS",
           "build_model"]


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


class MLP(nn.Module):
    """Fully connected network: ``depth`` hidden layers of ``width``, Glorot-normal init."""

    def __init__(self, n_in: int, n_out: int, width: int = 50, depth: int = 4,
                 activation: str = "tanh") -> None:
        super().__init__()
        sizes = [n_in] + [width] * depth
        self.hidden = nn.ModuleList(_glorot(nn.Linear(a, b)) for a, b in zip(sizes, sizes[1:]))
        self.act = _activation(activation)
        self.out = _glorot(nn.Linear(sizes[-1], n_out))

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
                 activation: str = "tanh") -> None:
        super().__init__()
        self.enc_u = _glorot(nn.Linear(n_in, width))
        self.enc_v = _glorot(nn.Linear(n_in, width))
        sizes = [n_in] + [width] * depth
        self.hidden = nn.ModuleList(_glorot(nn.Linear(a, b)) for a, b in zip(sizes, sizes[1:]))
        self.act = _activation(activation)
        self.out = _glorot(nn.Linear(width, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        U, V = self.act(self.enc_u(x)), self.act(self.enc_v(x))
        h = x
        for layer in self.hidden:
            z = self.act(layer(h))
            h = (1 - z) * U + z * V
        return self.out(h)


class FourierFeatures(nn.Module):
    """Random Fourier features [cos 2πXB, sin 2πXB], B ~ N(0, σ²) fixed (Tancik et al. 2020)."""

    def __init__(self, n_in: int, n_features: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("B", torch.randn(n_in, n_features, generator=g) * scale)
        self.n_out = 2 * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * x @ self.B.to(x.dtype)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)


NETWORKS: dict[str, type] = {"mlp": MLP, "modified_mlp": ModifiedMLP}


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
                constraint: Callable | None = None) -> PINNModel:
    """A `PINNModel` from options (``network`` names a class in `NETWORKS`)."""
    try:
        cls = NETWORKS[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r}; choose from {', '.join(NETWORKS)}") from None
    embedding = None
    n_core_in = n_in
    if fourier_features:
        embedding = FourierFeatures(n_in, int(fourier_features), fourier_scale, seed)
        n_core_in = embedding.n_out
    core = cls(n_core_in, n_out, width=width, depth=depth, activation=activation)
    return PINNModel(core, lo, hi, embedding, constraint)
