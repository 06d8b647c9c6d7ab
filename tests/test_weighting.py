"""Loss-weighting schemes (pinnkit/weighting.py): the registry, ReLoBRaLo's update rule, and
schemes through pk.train (history, resume)."""
import numpy as np
import pytest

import pinnkit as pk
from pinnkit.trainer import TrainOptions
from pinnkit.weighting import WEIGHTINGS, ReLoBRaLo, WeightingInputs

from conftest import load_problem


def _inputs(values, old, step=1):
    return WeightingInputs(dict(values), [], lambda: {}, None, step, old)


def _bal(now, then, T):
    z = np.asarray(now) / (T * np.asarray(then))
    return len(now) * np.exp(z) / np.exp(z).sum()


@pytest.mark.parametrize("saudade", [0.0, 1.0])
def test_relobralo_follows_bischof_kraus_eq_12(saudade):
    opts = TrainOptions(loss_weighting="relobralo", relobralo_alpha=0.9,
                        relobralo_temperature=0.5, relobralo_saudade=saudade)
    s = ReLoBRaLo(["a", "b", "c"], opts)
    L0, L1, L2 = [1.0, 2.0, 4.0], [0.5, 1.5, 4.2], [0.2, 1.4, 3.0]
    lam = s.update(_inputs(zip("abc", L0), None, step=0))
    assert lam == {"a": 1.0, "b": 1.0, "c": 1.0}
    rho = saudade          # E[rho] = 0 or 1: deterministic draws
    expected = np.ones(3)
    for now, prev in ((L1, L0), (L2, L1)):
        lam = s.update(_inputs(zip("abc", now), dict(zip("abc", expected))))
        expected = (0.9 * (rho * expected + (1 - rho) * _bal(now, L0, 0.5))
                    + 0.1 * _bal(now, prev, 0.5))
        assert np.allclose([lam[k] for k in "abc"], expected, rtol=1e-14)
    # the balanced weights sum to the number of terms; the update keeps that sum
    assert abs(sum(lam.values()) - 3) < 1e-12


def test_registry_is_the_options_choices():
    assert set(WEIGHTINGS) == {"gradnorm", "ntk", "relobralo"}
    with pytest.raises(pk.TrainingError, match="relobralo"):
        TrainOptions.from_kwargs(loss_weighting="bogus")
    with pytest.raises(pk.TrainingError, match="relobralo_temperature"):
        TrainOptions.from_kwargs(relobralo_temperature=0)
    with pytest.raises(pk.TrainingError, match="relobralo_alpha"):
        TrainOptions.from_kwargs(relobralo_alpha=1.5)


KW = dict(lbfgs_steps=0, width=8, depth=2, interior_points=64, boundary_points=16,
          initial_points=16, dtype="float64", log_every=5, quiet=True, seed=1,
          loss_weighting="relobralo", weight_every=2, relobralo_saudade=0.5)


def test_relobralo_trains_records_weights_and_resumes_exactly(tmp_path):
    problem = load_problem("heat1d")["problem"]
    full = pk.train(problem, steps=30, **KW)
    w = np.array([full.history[f"weight_{k}"] for k in ("pde", "dirichlet_u_boundary",
                                                        "initial_u")])
    assert w.shape[1] == 6 and np.all(np.isfinite(w)) and np.all(w > 0)
    assert not np.allclose(w, 1.0)          # the scheme moved the weights
    ck = str(tmp_path / "ck.pt")
    pk.train(problem, steps=15, checkpoint=ck, checkpoint_every=5, **KW)
    resumed = pk.train(problem, steps=30, checkpoint=ck, checkpoint_every=5, resume=True, **KW)
    # the random lookback's generator and the remembered losses come back with the checkpoint
    assert resumed.history["loss"][-1] == full.history["loss"][-1]
