"""Normalisers of operator inputs/outputs: statistics, exact resampling on subgrids, linear
interpolation elsewhere, and a pointwise-normalised model that trains, predicts on other grids
and saves/loads to the same predictions."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pinnkit as pk  # noqa: E402
from pinnkit.operator.normalize import (NORMALIZERS, PointwiseNormalizer,  # noqa: E402
                                        ScalarNormalizer, resample)
from pinnkit.operator.train import relative_l2  # noqa: E402

x, y = pk.coords("x y")
u = pk.field("u", x, y)
a = pk.input_field("a", x, y)
POISSON = pk.Problem("var_poisson_op", pk.Rectangle((x, y), (0, 0), (1, 1)),
                     [pk.Eq(-pk.div([a * g for g in pk.grad(u)]), 1)],
                     [pk.Dirichlet(u, 0, on="boundary")])
SMALL = dict(modes=6, width=12, layers=2, batch_size=10, n_test=8, lr=3e-3, quiet=True)


def test_statistics_per_channel_and_per_point():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 2, 7, 5)) * np.arange(1, 36).reshape(1, 1, 7, 5) + 3.0
    X[:, 1] = 0.0                                   # a constant channel keeps std 1 (scalar)
    s = ScalarNormalizer.fit(X)
    assert s.mean.shape == (2,) and s.std[1] == 1.0
    assert np.isclose(s.std[0], X[:, 0].std())
    p = PointwiseNormalizer.fit(X)
    assert p.mean.shape == (2, 7, 5)
    np.testing.assert_allclose(p.mean[0], X[:, 0].mean(0))
    np.testing.assert_allclose(p.std[0], X[:, 0].std(0), rtol=1e-3)
    assert np.all(p.std[1] > 0)                     # no division by zero where data is fixed
    m, sd = p.on_grid((7, 5), [False, False])
    z = (X - m) / sd
    np.testing.assert_allclose(z[:, 0].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(z[:, 0].std(0), 1, rtol=1e-3)
    assert set(NORMALIZERS) == {"scalar", "pointwise"}


@pytest.mark.parametrize("periodic", [False, True])
def test_resample_exact_on_subgrids_and_linear_between(periodic):
    n = 16 if periodic else 17                       # 16 cells either way
    s = np.arange(n) / (n if periodic else n - 1)
    f = np.cos(2 * np.pi * s)[None, :, None] * np.ones((1, 1, 9))
    sub = f[:, ::4]
    assert np.array_equal(resample(f, (sub.shape[1], 9), [periodic, False]), sub)
    if not periodic:   # a linear function is reproduced on a finer grid, end points included
        lin = (2 * s + 1)[None, :, None]
        fine = np.linspace(0, 1, 65)
        np.testing.assert_allclose(resample(lin, (65, 1), [False, False])[0, :, 0],
                                   2 * fine + 1, atol=1e-13)
    else:              # wraps: the point between the last node and 1 (= 0) is their mean
        fine = resample(f, (32, 9), [True, False])
        np.testing.assert_allclose(fine[0, -1, 0], 0.5 * (f[0, -1, 0] + f[0, 0, 0]))


@pytest.fixture(scope="module")
def darcy_small(tmp_path_factory):
    grf = pk.GaussianRandomField(1.0, 3.0, 2.0, boundary="neumann", zero_mean=True,
                                 transform=lambda g: np.where(g >= 0, 12.0, 3.0))
    d = tmp_path_factory.mktemp("vp")
    return pk.dataset(POISSON, {"a": grf}, n=48, resolution=17, path=d / "vp.h5", workers=0,
                      quiet=True)


def test_pointwise_model_trains_predicts_on_other_grids_and_round_trips(darcy_small, tmp_path):
    m = pk.train_operator(darcy_small, epochs=30, normalize="pointwise", **SMALL)
    assert m.layout.normalize == "pointwise" and m.layout.out_mean.shape == (1, 17, 17)
    Y = darcy_small.outputs["u"]                     # beats the training-mean field by far
    mean_field = np.broadcast_to(Y[:40].mean(0), Y[40:].shape)
    assert m.info["test_l2re"]["u"] < 0.6 * relative_l2(mean_field, Y[40:]).mean()
    a = darcy_small.inputs["a"][-8:]
    pred = m({"a": a})["u"]
    # the output std is ~0 on the Dirichlet boundary: the prediction is the training mean, 0
    assert np.abs(pred[:, 0, :]).max() < 1e-6 and np.abs(pred[:, :, -1]).max() < 1e-6
    coarse = m({"a": a[:, ::2, ::2]})["u"]          # 9 x 9: a subgrid, zero-shot
    assert coarse.shape == (8, 9, 9) and np.abs(coarse[:, 0]).max() < 1e-6
    m.save(tmp_path / "m.pt")
    back = pk.OperatorModel.load(tmp_path / "m.pt")
    assert np.array_equal(back({"a": a})["u"], pred)
    with pytest.raises(pk.TrainingError, match="unknown normalize='minmax'.*scalar, pointwise"):
        pk.train_operator(darcy_small, normalize="minmax", **SMALL)
