"""Gaussian random fields: covariance against the Karhunen-Loève kernel written out in
explicit sine/cosine/exponential sums (independent of the FFT path), seeded."""

import numpy as np
import pytest

import pinnkit as pk

M = 2000   # samples; the empirical variance has relative std sqrt(2 / M) = 0.032 per point


def _kernel(kind: str, xs: np.ndarray, L: float, v: np.ndarray, ms: list) -> np.ndarray:
    """Theoretical covariance matrix over the points of a 1-D or 2-D tensor grid."""
    phis = []
    for m in ms:
        if kind == "periodic":   # real basis: 1, sqrt2 cos, sqrt2 sin, each / sqrt(L)
            k = np.fft.fftfreq(m, 1.0 / m)
            phis.append(np.exp(2j * np.pi * np.outer(k, xs) / L) / np.sqrt(L))
        elif kind == "dirichlet":
            k = np.arange(1, m)
            phis.append(np.sqrt(2 / L) * np.sin(np.pi * np.outer(k, xs) / L))
        else:
            k = np.arange(0, m)
            ph = np.sqrt(2 / L) * np.cos(np.pi * np.outer(k, xs) / L)
            ph[0] = 1 / np.sqrt(L)
            phis.append(ph)
    if len(ms) == 1:
        return np.real(np.einsum("k,kx,ky->xy", v, phis[0], phis[0].conj()))
    P = np.einsum("ka,lb->klab", phis[0], phis[1]).reshape(v.size, -1)
    return np.real(np.einsum("k,kx,ky->xy", v.ravel(), P, P.conj()))


def _full_spectrum(g, coords, box):
    """Variance per mode on the full (not half) spectrum for the kernel above."""
    if g.boundary != "periodic":
        return g.covariance_spectrum(coords, box)
    ks = [(2 * np.pi * np.fft.fftfreq(len(x), 1.0 / len(x)) / (box[n][1] - box[n][0])) ** 2
          for n, x in coords.items()]
    lam = sum(np.meshgrid(*ks, indexing="ij"), np.zeros(()))
    return g.sigma ** 2 * (lam + g.tau ** 2) ** (-g.alpha)


@pytest.mark.parametrize("kind", ["periodic", "dirichlet", "neumann"])
@pytest.mark.parametrize("dim", [1, 2])
def test_covariance_matches_kl_kernel(kind, dim):
    L, n = 2.0, (33 if dim == 1 else 13)
    xs = np.arange(n - 1) * L / (n - 1) if kind == "periodic" else np.linspace(0, L, n)
    coords = {f"x{i}": xs for i in range(dim)}
    box = {k: (0.0, L) for k in coords}
    g = pk.GaussianRandomField(sigma=3.0, tau=2.0, alpha=2.0, boundary=kind)
    S = np.stack([g.sample(coords, box, rng=s) for s in range(M)]).reshape(M, -1)
    _, ms = g.eigenvalues(coords, box)
    C = _kernel(kind, xs, L, _full_spectrum(g, coords, box), ms)
    E = S.T @ S / M    # zero-mean field: second moments
    inside = np.diag(C) > 1e-12 * np.max(np.diag(C))
    ratio = np.diag(E)[inside] / np.diag(C)[inside]
    bound = 5 * np.sqrt(2 / M)
    assert np.max(np.abs(ratio - 1)) < bound
    assert abs(np.mean(ratio) - 1) < 3 * np.sqrt(2 / M)
    Ci = C[np.ix_(inside, inside)]
    assert np.linalg.norm(E[np.ix_(inside, inside)] - Ci) / np.linalg.norm(Ci) < bound
    if kind == "dirichlet":
        assert np.all(S[:, ~inside] == 0)


def test_variance_scales_with_parameters():
    # sigma^2 scaling and the tau-dominated limit: variance -> sigma^2 tau^(-2 alpha) / L
    xs = np.arange(64) / 64
    g = pk.GaussianRandomField(sigma=2.0, tau=200.0, alpha=1.0)
    S = np.stack([g.sample({"x": xs}, {"x": (0, 1)}, rng=s) for s in range(M)])
    lam = (2 * np.pi * np.fft.fftfreq(64, 1 / 64)) ** 2
    expected = np.sum(4.0 / (lam + 200.0 ** 2))
    assert abs(S.var() / expected - 1) < 5 * np.sqrt(2 / (M * 10))


def test_seeded_transform_and_zero_mean():
    xs = np.linspace(0, 1, 41)
    coords, box = {"x": xs, "y": xs}, {"x": (0, 1), "y": (0, 1)}
    g = pk.GaussianRandomField(1.0, 3.0, 2.0, boundary="neumann", zero_mean=True,
                               transform=lambda a: np.where(a >= 0, 12.0, 3.0))
    a, b = g.sample(coords, box, rng=7), g.sample(coords, box, rng=7)
    assert np.array_equal(a, b) and set(np.unique(a)) == {3.0, 12.0}
    assert not np.array_equal(a, g.sample(coords, box, rng=8))
    raw = pk.GaussianRandomField(1.0, 3.0, 2.0, boundary="neumann", zero_mean=True)
    u = raw.sample(coords, box, rng=1)
    # zero mean in the cosine basis = zero trapezoidal mean over the nodes
    w = np.ones(41)
    w[[0, -1]] = 0.5
    assert abs(w @ u @ w) / np.sum(w) ** 2 < 1e-12 * np.abs(u).max()


def test_periodic_right_end_repeats_the_left():
    xs = np.linspace(0, 1, 33)
    u = pk.GaussianRandomField(boundary="periodic").sample({"x": xs}, {"x": (0, 1)}, rng=0)
    assert u[0] == u[-1]


@pytest.mark.parametrize("xs, match", [
    (np.linspace(0, 1, 10) ** 2, "uniform"),
    (np.linspace(0, 0.9, 10), "both ends"),
])
def test_grid_it_cannot_make(xs, match):
    g = pk.GaussianRandomField(boundary="dirichlet")
    with pytest.raises(pk.SamplerError, match=match):
        g.sample({"x": xs}, {"x": (0, 1)})


def test_bad_parameters():
    with pytest.raises(pk.SamplerError, match="boundary must be one of"):
        pk.GaussianRandomField(boundary="robin")
    with pytest.raises(pk.SamplerError, match="tau"):
        pk.GaussianRandomField(tau=-1)
