"""A compact Fourier neural operator in 1-D and 2-D.

Li et al. (2021), "Fourier neural operator for parametric partial differential equations",
ICLR: lift the input (and the grid coordinates) to ``width`` channels, apply ``layers``
Fourier layers v <- GELU(K v + W v), where K multiplies the lowest ``modes`` Fourier
coefficients by learned complex matrices and W is a pointwise linear map, then project to the
output channels. Only the low modes carry weights, so the same network evaluates on any grid
of the same box (zero-shot super-resolution).

Only the retained modes are transformed: partial DFTs by matmul with exponential matrices
along each axis, equal to rfftn -> truncate -> irfftn (tests/test_operator.py) and 3.2x
faster per 85 x 85 training step on one CPU thread than the full FFTs of a padded grid whose
size (93 = 3 x 31) FFTs handle badly; the pointwise maps are batched matmuls for the same
reason (mkldnn's 1 x 1 convolutions ran at ~1 GFLOP/s here; docs/benchmarks.md, Darcy).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["SpectralConv", "FNO"]


class SpectralConv(nn.Module):
    """Fourier integral operator on the lowest modes of a 1-D or 2-D periodic grid.

    1-D: modes 0..m-1 of the real transform. 2-D: k1 in [0, m1) and (-m1, 0) times k2 in
    [0, m2) (two weight blocks; the negative k2 half follows from the real transform).

    The layer computes irfftn(W · truncate(rfftn(x))), but only the retained modes are ever
    formed: each axis is a partial DFT, a matmul with a matrix of complex exponentials for the
    grid at hand (cached per grid size, device and dtype on the instance). On a CPU that is
    several times faster than full FFTs of which all but a few modes are dropped (and the
    padded grids, e.g. 93 = 3 · 31, are poor FFT sizes)."""

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
        self._bases: dict = {}    # (kind, n, m, device, dtype) -> DFT matrix; not state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.modes) == 1:
            n = x.shape[-1]
            m = min(self.modes[0], n // 2 + 1)
            X = _real_dft(x, self._basis("r2c", n, m, x))                  # (b, i, m)
            Y = torch.einsum("bix,iox->box", X, self.weights[0][..., :m])
            return _real_idft(Y, self._basis("c2r", n, m, x))
        n1, n2 = x.shape[-2:]
        m1, m2 = min(self.modes[0], n1 // 2), min(self.modes[1], n2 // 2 + 1)
        X = _real_dft(x, self._basis("r2c", n2, m2, x))                    # (b, i, n1, m2)
        X = torch.matmul(self._basis("c2c", n1, m1, x), X)                 # (b, i, 2 m1, m2)
        w0, w1 = self.weights[0][..., :m1, :m2], self.weights[1][..., :m1, :m2]
        Y = torch.cat([torch.einsum("bixy,ioxy->boxy", X[:, :, :m1], w0),
                       torch.einsum("bixy,ioxy->boxy", X[:, :, m1:], w1)], dim=2)
        Y = torch.matmul(self._basis("ic2c", n1, m1, x), Y)                # (b, o, n1, m2)
        return _real_idft(Y, self._basis("c2r", n2, m2, x))

    def _basis(self, kind: str, n: int, m: int, x: torch.Tensor) -> torch.Tensor:
        key = (kind, n, m, x.device, x.dtype)
        if key not in self._bases:
            self._bases[key] = _dft_matrix(kind, n, m).to(
                device=x.device, dtype=x.dtype if kind in ("r2c", "c2r") else
                (torch.complex128 if x.dtype == torch.float64 else torch.complex64))
        return self._bases[key]


def _dft_matrix(kind: str, n: int, m: int) -> torch.Tensor:
    """Partial DFT matrices (float64 / complex128) on an n-point axis, m retained modes.

    r2c (n, 2m): x @ it interleaves (Re, Im) of rfft(x)[:m]. c2r (2m, n): the interleaved
    (Re, Im) of m half-spectrum modes @ it is irfft(., n), the imaginary parts of the zero
    and Nyquist modes dropped as irfft drops them. c2c (2m, n): rows k = 0..m-1, n-m..n-1 of
    the forward DFT; ic2c (n, 2m): the inverse DFT's columns for those k, with the 1/n."""
    j = torch.arange(n, dtype=torch.int64)
    if kind in ("r2c", "c2r"):
        k = torch.arange(m, dtype=torch.int64)
    else:
        k = torch.cat([torch.arange(m), torch.arange(n - m, n)])
    # the exponent's phase from the integer product mod n: exact for any size
    phase = (2 * math.pi / n) * ((k[:, None] * j[None, :]) % n).to(torch.float64)   # (k, j)
    if kind == "r2c":
        return torch.stack([torch.cos(phase), -torch.sin(phase)], dim=1).reshape(2 * m, n).T
    if kind == "c2r":
        w = torch.full((m, 1), 2.0 / n, dtype=torch.float64)
        w[0] = 1.0 / n
        if n % 2 == 0 and m == n // 2 + 1:
            w[-1] = 1.0 / n
        sin = torch.sin(phase)
        sin[0] = 0.0
        if n % 2 == 0 and m == n // 2 + 1:
            sin[-1] = 0.0
        return torch.stack([w * torch.cos(phase), -w * sin], dim=1).reshape(2 * m, n)
    if kind == "c2c":
        return torch.polar(torch.ones_like(phase), -phase)
    return torch.polar(torch.ones_like(phase), phase).T / n


def _real_dft(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """rfft of real x along its last axis, the first m modes: (..., n) -> complex (..., m)."""
    y = torch.matmul(x, basis)
    return torch.view_as_complex(y.view(*y.shape[:-1], -1, 2))


def _real_idft(X: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """irfft along the last axis of m half-spectrum modes: complex (..., m) -> real (..., n)."""
    return torch.matmul(torch.view_as_real(X).flatten(-2), basis)


def _pointwise(self, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as one batched matmul over the channels: the same map (and the same
    parameters, names and initialisation as the nn.Conv it replaces, so checkpoints load), but
    on a CPU thread several times faster than the convolution kernels for kernel size 1."""
    b, n = x.shape[0], x.shape[2:]
    w = self.weight.flatten(1)
    y = torch.baddbmm(self.bias[:, None], w.expand(b, *w.shape), x.reshape(b, x.shape[1], -1))
    return y.view(b, -1, *n)


class Pointwise1d(nn.Conv1d):
    """nn.Conv1d(c_in, c_out, 1) computed as a matmul over the channels (`_pointwise`)."""
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(channels_in, channels_out, 1)

    forward = _pointwise


class Pointwise2d(nn.Conv2d):
    """nn.Conv2d(c_in, c_out, 1) computed as a matmul over the channels (`_pointwise`)."""
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(channels_in, channels_out, 1)

    forward = _pointwise


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
        conv = Pointwise1d if dim == 1 else Pointwise2d
        self.dim, self.padding = dim, int(padding)
        self.lift = conv(channels_in + dim, width)
        self.spectral = nn.ModuleList(SpectralConv(width, width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(conv(width, width) for _ in range(layers))
        self.project = nn.Sequential(conv(width, hidden), nn.GELU(),
                                     conv(hidden, channels_out))

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
