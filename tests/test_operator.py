"""Fourier neural operators: spectral layers are exact across resolutions, a linear operator
(heat flow) is learned to a small error and evaluated zero-shot on a finer grid, checkpoints
resume to the same weights, bad options and inputs fail clearly."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pinnkit as pk  # noqa: E402
from pinnkit.operator.fno import SpectralConv  # noqa: E402

x, t = pk.coords("x t")
u = pk.field("u", x, t)
u0 = pk.input_field("u0", x)
HEAT = pk.Problem("heat_op", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.01),
                  [u.diff(t) - u.diff(x, 2)], [pk.Periodic(u, x), pk.Initial(u, u0)],
                  reference={"order": 4})
GRF = {"u0": pk.GaussianRandomField(sigma=10.0, tau=3.0, alpha=2.0)}
SMALL = dict(modes=8, width=16, layers=2, batch_size=10, n_test=10, lr=3e-3, quiet=True)


@pytest.fixture(scope="module")
def heat(tmp_path_factory):
    d = tmp_path_factory.mktemp("heat")
    train = pk.dataset(HEAT, GRF, n=60, resolution=64, path=d / "h64.h5", workers=0, quiet=True)
    fine = pk.dataset(HEAT, GRF, n=10, resolution=256, path=d / "h256.h5", seed=9, workers=0,
                      quiet=True)
    return train, fine, d


@pytest.mark.parametrize("dim", [1, 2])
def test_spectral_layer_is_exact_across_resolutions(dim):
    torch.manual_seed(0)
    K = SpectralConv(3, 2, (5,) * dim).double()
    for w in K.weights:
        w.data = w.data.to(torch.cdouble)
    n, m = 16, 64
    k = torch.arange(4, dtype=torch.float64)

    def band_limited(N):   # a few low modes, sampled on an N-point periodic grid
        s = torch.arange(N, dtype=torch.float64) / N
        f = sum(torch.cos(2 * np.pi * kk * s + kk) for kk in k)
        return f if dim == 1 else f[:, None] * torch.sin(2 * np.pi * s + 0.3)[None, :]

    coarse = band_limited(n).expand(1, 3, *(n,) * dim)
    fine = band_limited(m).expand(1, 3, *(m,) * dim)
    sub = (slice(None), slice(None)) + (slice(None, None, m // n),) * dim
    assert torch.max(torch.abs(K(fine)[sub] - K(coarse))) < 1e-12


def _rel(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


def _fft_spectral(K, x):
    """The plain torch.fft formula of SpectralConv: rfftn, keep the low modes, irfftn."""
    dims = len(K.modes)
    shape = x.shape[-dims:]
    X = torch.fft.rfftn(x, dim=tuple(range(-dims, 0)))
    out = torch.zeros(x.shape[0], K.channels_out, *X.shape[2:], dtype=X.dtype)
    if dims == 1:
        m = min(K.modes[0], X.shape[-1])
        out[..., :m] = torch.einsum("bix,iox->box", X[..., :m], K.weights[0][..., :m])
    else:
        m1, m2 = min(K.modes[0], shape[0] // 2), min(K.modes[1], X.shape[-1])
        out[..., :m1, :m2] = torch.einsum("bixy,ioxy->boxy", X[..., :m1, :m2],
                                          K.weights[0][..., :m1, :m2])
        out[..., -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", X[..., -m1:, :m2],
                                           K.weights[1][..., :m1, :m2])
    return torch.fft.irfftn(out, s=shape, dim=tuple(range(-dims, 0)))


def _fft_fno(net, a, grid, pad):
    """FNO.forward with nn.functional.conv for the 1x1 maps and `_fft_spectral`."""
    conv = torch.nn.functional.conv1d if net.dim == 1 else torch.nn.functional.conv2d

    def pw(c, x):
        return conv(x, c.weight, c.bias)
    mesh = torch.meshgrid(*grid, indexing="ij")
    coords = torch.stack(mesh).to(a.dtype).unsqueeze(0).expand(a.shape[0], -1, *mesh[0].shape)
    x = pw(net.lift, torch.cat([a, coords], dim=1))
    x = torch.nn.functional.pad(x, [v for _ in range(net.dim) for v in (0, pad)])
    for k, (K, W) in enumerate(zip(net.spectral, net.pointwise)):
        x = _fft_spectral(K, x) + pw(W, x)
        x = torch.nn.functional.gelu(x) if k < len(net.spectral) - 1 else x
    x = x[(...,) + tuple(slice(0, n) for n in a.shape[2:])]
    return pw(net.project[2], torch.nn.functional.gelu(pw(net.project[0], x)))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("dim,shapes", [(1, [(16,), (17,), (5,)]),
                                        (2, [(16, 16), (17, 15), (12, 9), (5, 4)])])
def test_spectral_layer_equals_the_fft_formula(dim, shapes, dtype, tol):
    # the partial DFTs (only the retained modes) give rfftn -> truncate -> irfftn's numbers
    # and gradients, on odd and even grids and with more modes than the grid holds (5 > 5 // 2)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        K = SpectralConv(3, 2, (5,) * dim)
        if dtype == torch.float64:
            for w in K.weights:
                w.data = w.data.to(torch.cdouble)
        gen = torch.Generator().manual_seed(2)
        for shape in shapes:
            x = torch.randn(4, 3, *shape, dtype=dtype, generator=gen, requires_grad=True)
            y, ref = K(x), _fft_spectral(K, x)
            assert _rel(y, ref) < tol
            g = torch.randn(y.shape, dtype=dtype, generator=gen)
            grads = torch.autograd.grad(y, [x, *K.weights], g)
            refs = torch.autograd.grad(ref, [x, *K.weights], g)
            for a, b in zip(grads, refs):
                assert _rel(a, b) < tol


@pytest.mark.parametrize("dim,n", [(1, 33), (1, 32), (2, 17), (2, 16)])
@pytest.mark.parametrize("pad", [0, 3])
def test_fno_equals_the_conv_and_fft_formula(dim, n, pad):
    # the 1x1 maps as matmuls keep nn.Conv's parameters (a state dict of nn.Conv layers loads)
    from pinnkit.operator.fno import FNO
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = FNO(1, 1, 6, width=8, layers=2, dim=dim, padding=pad, hidden=16)
        a = torch.randn(3, 1, *(n,) * dim)
    # the state dict of the nn.Conv layers: same names and shapes, so old checkpoints load
    assert net.state_dict()["lift.weight"].shape == (8, 1 + dim) + (1,) * dim
    assert {"project.0.bias", "project.2.weight", "pointwise.1.weight"} <= set(net.state_dict())
    grid = [torch.linspace(0, 1, n)] * dim
    y, ref = net(a, grid), _fft_fno(net, a, grid, pad)
    assert _rel(y, ref) < 1e-5
    params = [p for p in net.parameters()]
    for g1, g2 in zip(torch.autograd.grad(y.square().sum(), params),
                      torch.autograd.grad(ref.square().sum(), params)):
        assert _rel(g1, g2) < 1e-4


def test_padding_scales_with_the_grid():
    # zero padding must cover the same length of the box on every grid, or the learned modes
    # mean other frequencies there: a padded FNO (random weights, smooth non-periodic input)
    # on 2x and 4x finer grids agrees with its coarse output at the shared nodes much better
    # with the padding scaled than with the same number of points
    from pinnkit.operator.fno import FNO
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = FNO(1, 1, 6, width=8, layers=2, dim=2, padding=4)

    def run(n, pad=None):
        s = torch.linspace(0, 1, n)
        X, Y = torch.meshgrid(s, s, indexing="ij")
        with torch.no_grad():
            return net((torch.exp(X) * torch.cos(2 * Y) + X * Y)[None, None], [s, s], pad)

    coarse = run(33)
    for r in (2, 4):
        def err(f):
            return float((f[..., ::r, ::r] - coarse).norm() / coarse.norm())
        fixed, scaled = err(run(32 * r + 1)), err(run(32 * r + 1, [4 * r, 4 * r]))
        assert scaled < 0.4 * fixed and scaled < 3e-3


def test_heat_operator_learned_and_zero_shot(heat):
    # trained on every 2nd point (32 of 64), evaluated at 64 (info) and at 256
    train, fine, _ = heat
    m = pk.train_operator(train, epochs=100, subsample=2, **SMALL)
    assert m.layout.train_shape == [32] and m.layout.padding(3, (64,)) == [6]
    assert m.history["test"][-1] < m.history["test"][0] / 20
    assert m.info["test_l2re"]["u"] < 0.03
    zero_shot = m.evaluate(fine.inputs, fine.outputs)["u"]
    coarse = m.evaluate({"u0": fine.inputs["u0"][:, ::4]}, {"u": fine.outputs["u"][:, ::4]})["u"]
    assert zero_shot < 0.03 and abs(zero_shot - coarse) < 0.2 * coarse


def test_checkpoint_resume_gives_the_same_weights(heat, tmp_path):
    train, _, _ = heat
    straight = pk.train_operator(train, epochs=6, **SMALL)
    ck = tmp_path / "ck.pt"
    pk.train_operator(train, epochs=6, checkpoint=ck, checkpoint_every=3,
                      callback=lambda epoch, model: epoch == 3, **SMALL)
    resumed = pk.train_operator(train, epochs=6, checkpoint=ck, resume=True, **SMALL)
    assert resumed.history["epoch"] == list(range(1, 7))
    for a, b in zip(straight.net.parameters(), resumed.net.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(pk.TrainingError, match="other settings.*width"):
        pk.train_operator(train, epochs=6, checkpoint=ck, resume=True,
                          **{**SMALL, "width": 8})


def test_progress_is_logged_when_stderr_is_not_a_terminal(heat, caplog):
    # pytest's captured stderr is no terminal: a line per epoch (progress_seconds=0) with the
    # train loss, the test error and seconds per epoch
    import logging
    train, _, _ = heat
    with caplog.at_level(logging.INFO, logger="pinnkit.train"):
        m = pk.train_operator(train, epochs=3, progress_seconds=0, **{**SMALL, "quiet": False})
    lines = [r.getMessage() for r in caplog.records if r.name == "pinnkit.train"]
    assert [ln.split(":")[0] for ln in lines] == [f"heat_op epoch {k}/3" for k in (1, 2, 3)]
    assert f"test l2re {m.history['test'][-1]:.3e}" in lines[-1] and "ETA 0 s" in lines[-1]
    assert all("/epoch" in ln or "epoch/s" in ln for ln in lines)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pinnkit.train"):
        pk.train_operator(train, epochs=2, **SMALL)                    # quiet: nothing
    assert not caplog.records


def test_save_load_and_path_input(heat, tmp_path):
    train, _, d = heat
    m = pk.train_operator(d / "h64.h5", epochs=2, **SMALL)
    m.save(tmp_path / "m.pt")
    back = pk.OperatorModel.load(tmp_path / "m.pt")
    a = train.inputs["u0"][:3]
    assert np.array_equal(back({"u0": a})["u"], m({"u0": a})["u"])


def test_bad_options_and_inputs(heat):
    train, _, d = heat
    with pytest.raises(pk.TrainingError, match="unknown model 'unet'.*fno"):
        pk.train_operator(train, model="unet")
    with pytest.raises(pk.TrainingError, match="subsample=3 does not divide the 64 cells"):
        pk.train_operator(train, subsample=3, **SMALL)
    with pytest.raises(pk.TrainingError, match="n_train=70"):
        pk.train_operator(train, n_train=70, **SMALL)
    with pytest.raises(pk.DatasetError, match="no such dataset file"):
        pk.train_operator(d / "missing.h5")
    m = pk.train_operator(train, epochs=1, **SMALL)
    with pytest.raises(pk.TrainingError, match="operator inputs are u0"):
        m({"a": train.inputs["u0"]})
    with pytest.raises(pk.TrainingError, match="input fields.*train_operator"):
        pk.train(HEAT)


@pytest.mark.slow
def test_burgers_operator_reference_accuracy():
    # acceptance: the dataset's reference (1024 points) within 1e-4 of a 2x finer solve
    import runpy
    ns = runpy.run_path("problems/burgers_operator.py")
    problem, grf = ns["problem"], ns["samplers"]["u0"]
    xs = np.arange(2048) / 2048
    for seed in range(3):
        u0_fine = grf.sample({"x": xs}, {"x": (0.0, 1.0)}, rng=seed)
        fine = pk.reference(problem, resolution={"x": 2048}, inputs={"u0": u0_fine})
        coarse = pk.reference(problem, resolution={"x": 1024}, inputs={"u0": u0_fine[::2]})
        a, b = coarse.fields["u"][-1], fine.fields["u"][-1][::2]
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-4
