"""A compact Fourier neural operator in 1-D and 2-D (torch.fft).

Li et al. (2021), "Fourier neural operator for parametric partial differential equations",
ICLR: lift the input (and the grid coordinates) to ``width`` channels, apply ``layers``
Fourier layers v <- GELU(K v + W v), where K multiplies the lowest ``modes`` Fourier
coefficients by learned complex matrices and W is a pointwise linear map, then project to the
output channels. Only the low modes carry weights, so the same network evaluates on any grid
of the same box (zero-shot super-resolution).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["SpectralConv", "FNO"]


class SpectralConv(nn.Module):
    """Fourier integral operator on the lowest modes of a 1-D or 2-D periodic grid.

    1-D: modes 0..m-1 of the real transform. 2-D: k1 in [0, m1) and (-m1, 0) times k2 in
    [0, m2) (two weight blocks; the negative k2 half follows from the real transform)."""

    def __init__(self, channels_in: int, channels_out: int, modes: Sequence[int]) -> None:
        super().__init__()
        self.modes = tuple(int(m) for m in modes)
        if len(self.modes) not in (1, 2):
            raise ValueError("SpectralConv takes 1-D or 2-D grids")
        scale = 1.0 / (channels_in * channels_out)
        blocks = 1 if len(self.modes) == 1 else 2
        self.weights = nn.ParameterList([
            nn.Parameter(scale * torch.rand(channels_in, channels_out, *self.modes,
                                            dtype=torch.cfloat))
            for _ in range(blocks)])
        self.channels_out = channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = len(self.modes)
        shape = x.shape[-dims:]
        X = torch.fft.rfftn(x, dim=tuple(range(-dims, 0)))
        out = torch.zeros(x.shape[0], self.channels_out, *X.shape[2:], dtype=X.dtype,
                          device=x.device)
        if dims == 1:
            m = min(self.modes[0], X.shape[-1])
            out[..., :m] = torch.einsum("bix,iox->box", X[..., :m], self.weights[0][..., :m])
        else:
            m1 = min(self.modes[0], shape[0] // 2)
            m2 = min(self.modes[1], X.shape[-1])
            w0, w1 = self.weights[0][..., :m1, :m2], self.weights[1][..., :m1, :m2]
            out[..., :m1, :m2] = torch.einsum("bixy,ioxy->boxy", X[..., :m1, :m2], w0)
            out[..., -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", X[..., -m1:, :m2], w1)
        return torch.fft.irfftn(out, s=shape, dim=tuple(range(-dims, 0)))


class FNO(nn.Module):
    """Fourier neural operator: (batch, channels_in, *grid) -> (batch, channels_out, *grid).

    The grid coordinates (scaled to [0, 1] over the box) are appended to the input channels.
    ``padding``: points of zero padding per axis before the Fourier layers (for non-periodic
    boxes; Li et al. pad the Darcy problem), cropped again before the projection. The
    padded box must have the same physical size on every grid for the learned modes to mean
    the same frequencies, so `forward` takes the padding per axis for the grid at hand
    (`OperatorModel` scales it with the resolution)."""

    def __init__(self, channels_in: int, channels_out: int, modes: int | Sequence[int],
                 width: int = 32, layers: int = 4, dim: int = 1, padding: int = 0,
                 hidden: int = 128) -> None:
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"FNO grids are 1-D or 2-D, got dim={dim}")
        modes = (int(modes),) * dim if isinstance(modes, int) else tuple(int(m) for m in modes)
        conv = nn.Conv1d if dim == 1 else nn.Conv2d
        self.dim, self.padding = dim, int(padding)
        self.lift = conv(channels_in + dim, width, 1)
        self.spectral = nn.ModuleList(SpectralConv(width, width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(conv(width, width, 1) for _ in range(layers))
        self.project = nn.Sequential(conv(width, hidden, 1), nn.GELU(),
                                     conv(hidden, channels_out, 1))

    def forward(self, a: torch.Tensor, grid: Sequence[torch.Tensor],
                padding: Sequence[int] | None = None) -> torch.Tensor:
        """a: (batch, channels_in, *grid); grid: per axis, node positions scaled to [0, 1];
        padding: points per axis (default ``self.padding`` on every axis)."""
        mesh = torch.meshgrid(*grid, indexing="ij")
        coords = torch.stack(mesh).to(a.dtype).unsqueeze(0).expand(a.shape[0], -1, *mesh[0].shape)
        x = self.lift(torch.cat([a, coords], dim=1))
        pads = [self.padding] * self.dim if padding is None else [int(p) for p in padding]
        if any(pads):
            x = nn.functional.pad(x, [v for p in reversed(pads) for v in (0, p)])
        for k, (K, W) in enumerate(zip(self.spectral, self.pointwise)):
            x = K(x) + W(x)
            if k < len(self.spectral) - 1:
                x = nn.functional.gelu(x)
        if any(pads):
            x = x[(...,) + tuple(slice(0, n) for n in a.shape[2:])]
        return self.project(x)
