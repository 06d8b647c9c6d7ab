"""The physics-informed operator loss: the torch residual on the predicted grid is the
reference's own discretization (zero on the reference solution, face fluxes included)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pinnkit as pk  # noqa: E402
from pinnkit.operator.physics import GridResidual  # noqa: E402

x, y = pk.coords("x y")


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float32)


@pytest.mark.parametrize("dim", [1, 2])
def test_residual_vanishes_on_the_reference_solution(dim, tmp_path):
    cs = (x, y)[:dim]
    u, a = pk.field("u", *cs), pk.input_field("a", *cs)
    dom = pk.Interval(x, 0, 1) if dim == 1 else pk.Rectangle((x, y), (0, 0), (1, 1))
    p = pk.Problem(f"flux{dim}", dom, [pk.Eq(-pk.div([a * g for g in pk.grad(u)]), 1 + x)],
                   [pk.Dirichlet(u, 0)])
    grf = pk.GaussianRandomField(1.0, 3.0, 2.0, boundary="neumann", zero_mean=True,
                                 transform=lambda v: np.where(v >= 0, 12.0, 3.0))
    n = 33 if dim == 1 else 17
    ds = pk.dataset(p, {"a": grf}, n=3, resolution=n, path=tmp_path / "d.h5", workers=0,
                    quiet=True)
    R = GridResidual(p, (n,) * dim)
    true = R.relative({"u": _t(ds.outputs["u"])}, {"a": _t(ds.inputs["a"])})
    assert torch.all(true < 1e-9)    # float32 rounding of a residual that is O(1) at u = 0
    wrong = R.relative({"u": _t(ds.outputs["u"] * 1.01)}, {"a": _t(ds.inputs["a"])})
    assert torch.all(wrong > 1e-5)
    bc = np.array(ds.outputs["u"])
    bc[:, 0] += 0.01      # a boundary value off: the Dirichlet rows see it
    assert torch.all(R.relative({"u": _t(bc)}, {"a": _t(ds.inputs["a"])}) > 1e-6)


def test_physics_option_errors(tmp_path):
    u, a = pk.field("u", x), pk.input_field("a", x)
    p = pk.Problem("flux", pk.Interval(x, 0, 1), [pk.Eq(-pk.div([a * g for g in pk.grad(u)]), 1)],
                   [pk.Dirichlet(u, 0)])
    ds = pk.dataset(p, {"a": pk.GaussianRandomField(transform=np.exp, boundary="neumann")}, n=4,
                    resolution=17, path=tmp_path / "d.h5", workers=0, quiet=True)
    with pytest.raises(pk.TrainingError, match="needs problem="):
        pk.train_operator(ds, physics_weight=1.0, epochs=1, quiet=True)
    with pytest.raises(pk.TrainingError, match="physics_weight must be >= 0"):
        pk.train_operator(ds, physics_weight=-1.0, epochs=1, quiet=True)
    t = pk.coords("t")
    v, v0 = pk.field("v", x, t), pk.input_field("v0", x)
    q = pk.Problem("flux", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [v.diff(t) - v.diff(x, 2)], [pk.Periodic(v, x), pk.Initial(v, v0)])
    with pytest.raises(pk.TrainingError, match="needs a steady problem"):
        pk.train_operator(ds, physics_weight=1.0, problem=q, epochs=1, quiet=True)
    m = pk.train_operator(ds, physics_weight=0.1, problem=p, epochs=2, n_test=1, batch_size=2,
                          modes=4, width=8, layers=1, quiet=True,
                          physics_inputs={"a": ds.inputs["a"]})
    assert np.isfinite(m.info["test_l2re"]["u"])


def _burgers(bc="periodic"):
    x, t = pk.coords("x t")
    u, u0 = pk.field("u", x, t), pk.input_field("u0", x)
    cond = pk.Periodic(u, x) if bc == "periodic" else pk.Dirichlet(u, 0)
    return pk.Problem("burgers_st", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                      [u.diff(t) + u * u.diff(x) - 0.1 * u.diff(x, 2)],
                      [cond, pk.Initial(u, u0)],
                      reference={"order": 4, "rtol": 1e-8, "atol": 1e-10})


_GRF = pk.GaussianRandomField(sigma=25.0, tau=5.0, alpha=2.0, zero_mean=True)
_TIMES = np.linspace(0, 1, 33) ** 2     # graded towards t = 0


def test_space_time_residual_small_on_the_reference_solution(tmp_path):
    """Burgers (nu = 0.1, the FNO paper's inputs): the exponential-integrator defect of the
    reference solution is the quadrature error of u u_x only (the stiff diffusion of the
    input's high modes is exact); a 1 % change of the solution is seen clearly."""
    from pinnkit.operator.physics import SpaceTimeResidual
    p = _burgers()
    ds = pk.dataset(p, {"u0": _GRF}, n=3, resolution=64, path=tmp_path / "b.h5", workers=0,
                    quiet=True, times=_TIMES)
    U, U0 = _t(ds.outputs["u"]), _t(ds.inputs["u0"])
    assert U.shape == (3, 33, 64)
    R = SpaceTimeResidual(p, U.shape[1:], _TIMES)
    true = torch.sqrt(R.relative({"u": U}, {"u0": U0}))
    assert torch.all(true < 2e-3), true           # measured 7e-4 ... 1.0e-3
    xs = torch.arange(64) / 64
    bump = U.flatten(2).norm(dim=2)[..., None] / 8 * torch.cos(4 * np.pi * xs)
    wrong = torch.sqrt(R.relative({"u": U + 1e-2 * bump}, {"u0": U0}))
    assert torch.all(wrong > 5 * true), (wrong, true)
    ic = U.clone()
    ic[:, 0] += 1e-2 * bump[:, 0]                 # the initial value off: the IC term sees it
    assert torch.all(torch.sqrt(R.relative({"u": ic}, {"u0": U0})) > 5e-3)


def test_space_time_physics_gradient_and_tiny_training(tmp_path):
    from pinnkit.operator.physics import SpaceTimeResidual
    p = _burgers()
    times = np.linspace(0, 1, 9) ** 2
    ds = pk.dataset(p, {"u0": _GRF}, n=6, resolution=32, path=tmp_path / "b.h5", workers=0,
                    quiet=True, times=times)
    R = SpaceTimeResidual(p, (9, 32), times)
    V = _t(ds.outputs["u"]).mul(0.9).requires_grad_(True)
    R.relative({"u": V}, {"u0": _t(ds.inputs["u0"])}).sum().backward()
    assert torch.isfinite(V.grad).all() and V.grad[:, 1:].abs().sum() > 0
    m = pk.train_operator(ds, physics_weight=1.0, problem=p, epochs=2, n_test=2, batch_size=2,
                          modes=4, width=8, layers=1, padding=2, quiet=True,
                          physics_inputs={"u0": ds.inputs["u0"]})
    out = m({"u0": ds.inputs["u0"][:3]})["u"]
    assert out.shape == (3, 9, 32)
    assert np.isfinite(m.info["test_l2re"]["u"]) and np.isfinite(
        m.info["test_l2re_space_time"]["u"])
    # the final-time error is what info reports (the operator's target, DESIGN §8)
    ref = np.mean(np.linalg.norm(m({"u0": ds.inputs["u0"][4:]})["u"][:, -1]
                                 - ds.outputs["u"][4:, -1], axis=1)
                  / np.linalg.norm(ds.outputs["u"][4:, -1], axis=1))
    assert m.info["test_l2re"]["u"] == pytest.approx(ref, rel=1e-5)


def test_space_time_physics_needs_a_periodic_box(tmp_path):
    from pinnkit.operator.physics import SpaceTimeResidual
    with pytest.raises(pk.TrainingError, match="periodic"):
        SpaceTimeResidual(_burgers("dirichlet"), (5, 16), np.linspace(0, 1, 5))
    with pytest.raises(pk.TrainingError, match="increasing"):
        SpaceTimeResidual(_burgers(), (5, 16), np.linspace(1, 0, 5))
