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
