"""Normalisation of an operator's input and output channels, fitted on the training samples.

``"scalar"``: one mean and standard deviation per channel, over samples and grid points.
``"pointwise"``: a mean and standard deviation per channel and grid point, over the samples;
the ``UnitGaussianNormalizer`` of Li et al. (2021), whose Darcy code normalises both the
coefficient and the solution this way. A field that is fixed at some points (u = 0 on a
Dirichlet boundary) then has std ≈ 0 there, and the decoded prediction is the training mean
there. The statistics are stored on the grid they were fitted on and are linearly
interpolated to other grids of the same box (periodic axes wrap), so a model that uses them
still evaluates on any resolution; on a subgrid of the fitting grid the interpolation is exact.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ScalarNormalizer", "PointwiseNormalizer", "NORMALIZERS"]

#: added to the pointwise std, relative to its mean (Li et al. add 1e-5 in absolute terms)
_EPS = 1e-5


class ScalarNormalizer:
    """Per-channel mean and std: ``mean``, ``std`` of shape (channels,)."""

    name = "scalar"

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, dtype=float)
        self.std = np.asarray(std, dtype=float)

    @classmethod
    def fit(cls, x: np.ndarray) -> "ScalarNormalizer":
        """x: (samples, channels, *grid)."""
        axes = (0,) + tuple(range(2, x.ndim))
        std = x.std(axis=axes)
        return cls(x.mean(axis=axes), np.where(std > 0, std, 1.0))

    def on_grid(self, shape: tuple, periodic: Sequence[bool]) -> tuple:
        """(mean, std) as float32 arrays that broadcast against (batch, channels, *shape)."""
        view = (1, -1) + (1,) * len(shape)
        return (self.mean.reshape(view).astype(np.float32),
                self.std.reshape(view).astype(np.float32))

    def state(self) -> tuple:
        return self.mean.tolist(), self.std.tolist()


class PointwiseNormalizer:
    """Per-channel, per-point mean and std: ``mean``, ``std`` of shape (channels, *grid)."""

    name = "pointwise"

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=float)
        self.std = np.asarray(std, dtype=float)

    @classmethod
    def fit(cls, x: np.ndarray) -> "PointwiseNormalizer":
        """x: (samples, channels, *grid)."""
        std = x.std(axis=0)
        scale = std.reshape(len(std), -1).mean(axis=1)
        scale = np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (x.ndim - 2))
        return cls(x.mean(axis=0), std + _EPS * scale)

    def on_grid(self, shape: tuple, periodic: Sequence[bool]) -> tuple:
        """(mean, std) resampled to ``shape``, as float32 arrays of shape (1, channels, *shape)."""
        return (resample(self.mean, shape, periodic)[None].astype(np.float32),
                resample(self.std, shape, periodic)[None].astype(np.float32))

    def state(self) -> tuple:
        return self.mean, self.std


#: normaliser name -> class (``train_operator(normalize=...)`` and the CLI's choices)
NORMALIZERS = {c.name: c for c in (ScalarNormalizer, PointwiseNormalizer)}


def resample(a: np.ndarray, shape: Sequence[int], periodic: Sequence[bool]) -> np.ndarray:
    """Linear interpolation of ``a`` (channels, *grid) to a grid of ``shape`` on the same box.

    A periodic axis of n points has nodes k/n (no right end point) and wraps; a closed axis
    has nodes k/(n-1), end points included."""
    for ax, (m, per) in enumerate(zip(shape, periodic), start=1):
        n = a.shape[ax]
        if m == n:
            continue
        if per:
            pos = np.arange(m) * (n / m)
            i0 = np.floor(pos).astype(int)
            w, i1 = pos - i0, (i0 + 1) % n
            i0 = i0 % n
        else:
            pos = np.linspace(0.0, n - 1.0, m)
            i0 = np.minimum(np.floor(pos).astype(int), n - 2)
            w, i1 = pos - i0, i0 + 1
        view = [1] * a.ndim
        view[ax] = m
        w = w.reshape(view)
        a = np.take(a, i0, axis=ax) * (1 - w) + np.take(a, i1, axis=ax) * w
    return a
