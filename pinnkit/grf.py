"""Gaussian random fields: input samplers for operator learning (numpy/scipy only).

``GaussianRandomField(sigma, tau, alpha)`` samples u ~ N(0, sigma² (-Δ + tau² I)^-alpha) on a
box, spectrally (Karhunen-Loève expansion in the eigenfunctions of the Laplacian): Fourier
modes on a periodic box (`scipy.fft.irfftn`), sine modes on a box with u = 0 on the boundary
(`scipy.fft.dstn`, type I), cosine modes with zero normal derivative (`scipy.fft.dctn`,
type I; the Darcy inputs of Li et al. are thresholded samples of this kind, mean mode
removed). This is the input distribution of the Fourier neural operator
benchmarks (Li et al. 2021, "Fourier neural operator for parametric PDEs", ICLR, Sec. 5).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import scipy.fft

from .errors import PinnkitError

__all__ = ["GaussianRandomField", "SamplerError"]


class SamplerError(PinnkitError, ValueError):
    """An input sampler cannot make the requested grid (or has bad parameters)."""


def _axis_grid(name: str, x: np.ndarray, lo: float, hi: float, periodic: bool) -> int:
    """Number of modes along one axis; checks that ``x`` is the uniform grid the sampler makes."""
    x = np.asarray(x, dtype=float)
    L = hi - lo
    if x.ndim != 1 or len(x) < 3:
        raise SamplerError(f"axis {name}: needs a 1-D grid of at least 3 points, got {x.shape}")
    h = x[1] - x[0]
    m = int(round(L / h)) if h > 0 else 0
    tol = 1e-8 * L
    uniform = m > 0 and np.allclose(x, lo + h * np.arange(len(x)), atol=tol, rtol=0)
    if periodic:
        ok = uniform and abs(m * h - L) <= tol and len(x) in (m, m + 1)
        what = f"the uniform periodic grid lo + k L/m of [{lo}, {hi}) (the right end optional)"
    else:
        ok = uniform and abs(m * h - L) <= tol and len(x) == m + 1
        what = f"a uniform grid of [{lo}, {hi}] with both ends"
    if not ok:
        raise SamplerError(f"axis {name}: the Gaussian random field samples {what}; "
                           f"got {len(x)} points from {x[0]:.6g} to {x[-1]:.6g}")
    return m


class GaussianRandomField:
    """u ~ N(0, sigma² (-Δ + tau² I)^-alpha) on a box, optionally mapped pointwise.

    boundary: "periodic" (Fourier modes; period = box length), "dirichlet" (sine modes,
    u = 0 on the boundary) or "neumann" (cosine modes). zero_mean: drop the constant mode
    (periodic, neumann). transform: optional ``f(values) -> values`` applied pointwise
    (e.g. ``lambda a: np.where(a >= 0, 12.0, 3.0)``). Smoothness grows with alpha: samples
    lie in H^s for s < alpha - d/2.
    """

    kinds = ("periodic", "dirichlet", "neumann")

    def __init__(self, sigma: float = 1.0, tau: float = 1.0, alpha: float = 2.0,
                 boundary: str = "periodic", transform: Callable | None = None,
                 zero_mean: bool = False) -> None:
        if boundary not in self.kinds:
            raise SamplerError(f"GaussianRandomField boundary must be one of "
                               f"{', '.join(self.kinds)}, got {boundary!r}")
        for name, v in (("sigma", sigma), ("tau", tau), ("alpha", alpha)):
            if not np.isfinite(v) or v < 0:
                raise SamplerError(f"GaussianRandomField {name} must be finite and >= 0, got {v!r}")
        if transform is not None and not callable(transform):
            raise SamplerError("GaussianRandomField transform must be callable")
        self.sigma, self.tau, self.alpha = float(sigma), float(tau), float(alpha)
        self.boundary, self.transform, self.zero_mean = boundary, transform, bool(zero_mean)

    def __repr__(self) -> str:
        name = getattr(self.transform, "__name__", "f")
        t = "" if self.transform is None else f", transform={name}"
        z = ", zero_mean=True" if self.zero_mean else ""
        return (f"GaussianRandomField(sigma={self.sigma:g}, tau={self.tau:g}, "
                f"alpha={self.alpha:g}, boundary={self.boundary!r}{z}{t})")

    def eigenvalues(self, coords: Mapping[str, np.ndarray], box: Mapping[str, tuple]) -> tuple:
        """(eigenvalues of -Δ on the sampled modes, shaped like the mode array; mode counts)."""
        periodic = self.boundary == "periodic"
        ms, ks = [], []
        for name, x in coords.items():
            lo, hi = box[name]
            m = _axis_grid(name, x, lo, hi, periodic)
            L = hi - lo
            if periodic:
                k = np.fft.fftfreq(m, 1.0 / m)
                ks.append((2 * np.pi * k / L) ** 2)
            elif self.boundary == "dirichlet":
                ks.append((np.pi * np.arange(1, m) / L) ** 2)
            else:   # neumann: modes 0 .. m - 1 (the highest, alternating sign, is left out)
                ks.append((np.pi * np.arange(0, m) / L) ** 2)
            ms.append(m)
        if periodic:   # the last axis uses the half spectrum of a real transform
            ks[-1] = ks[-1][:ms[-1] // 2 + 1]
        lam = sum(np.meshgrid(*ks, indexing="ij"), np.zeros(()))
        return lam, ms

    def sample(self, coords: Mapping[str, np.ndarray], box: Mapping[str, tuple],
               rng: np.random.Generator | int = 0) -> np.ndarray:
        """One sample on the tensor grid ``coords`` (name -> 1-D nodes) of ``box`` (name ->
        (lo, hi)); returns an array of shape (len(coords[n]) for n in coords).

        Raises `SamplerError` when a grid is not the uniform grid this field samples."""
        rng = np.random.default_rng(rng)
        lam, ms = self.eigenvalues(coords, box)
        vol = float(np.prod([box[n][1] - box[n][0] for n in coords]))
        # KL coefficients: sigma (lam + tau²)^(-alpha/2) over orthonormal eigenfunctions
        with np.errstate(divide="ignore"):
            c = self.sigma * (lam + self.tau ** 2) ** (-self.alpha / 2)
        c[~np.isfinite(c)] = 0.0   # tau = 0: the constant mode has no finite variance
        if self.zero_mean and self.boundary != "dirichlet":
            c.flat[0] = 0.0
        if self.boundary == "periodic":
            # white noise -> rfftn has E|W_k|² = N: u = N ifft(c W / sqrt(N)) / sqrt(vol)
            N = int(np.prod(ms))
            W = scipy.fft.rfftn(rng.standard_normal(ms))
            u = scipy.fft.irfftn(c * W, s=ms) * np.sqrt(N) / np.sqrt(vol)
            u = np.pad(u, [(0, len(coords[n]) - m) for n, m in zip(coords, ms)], mode="wrap")
        elif self.boundary == "dirichlet":
            # sine modes sqrt(2/L) sin(pi k x / L) per axis; DST-I evaluates them at the nodes
            xi = rng.standard_normal(c.shape) * c * np.sqrt(2.0 ** len(ms) / vol)
            u = scipy.fft.dstn(xi, type=1) / 2.0 ** len(ms)
            u = np.pad(u, 1)
        else:
            # cosine modes: 1/sqrt(L) (k = 0), sqrt(2/L) cos(pi k x / L); DCT-I at the nodes
            # counts its first and last entries once, the others twice
            xi = rng.standard_normal(c.shape) * c * np.sqrt(2.0 ** len(ms) / vol)
            for ax in range(len(ms)):
                first = [slice(None)] * len(ms)
                first[ax] = 0
                xi[tuple(first)] *= np.sqrt(2.0)   # (1/sqrt(L)) / (sqrt(2/L) / 2)
            xi = np.pad(xi, [(0, 1)] * len(ms))   # the alternating mode m: zero
            u = scipy.fft.dctn(xi, type=1) / 2.0 ** len(ms)
        if self.transform is not None:
            u = np.asarray(self.transform(u), dtype=float)
        return u

    def covariance_spectrum(self, coords: Mapping[str, np.ndarray],
                            box: Mapping[str, tuple]) -> np.ndarray:
        """Variance of each KL coefficient: sigma² (lam + tau²)^-alpha (before the transform)."""
        lam, _ = self.eigenvalues(coords, box)
        with np.errstate(divide="ignore"):
            v = self.sigma ** 2 * (lam + self.tau ** 2) ** (-self.alpha)
        v[~np.isfinite(v)] = 0.0
        return v
