"""The accuracy toolbox (causal training, gradient-norm weighting, RAR/RAD) does what it claims."""
import numpy as np
import pytest
import torch

import pinnkit as pk
from pinnkit.recipes import (causal_loss, causal_weights, gradnorm_weights, ntk_traces, ntk_weights,
                             rad_select, rar_select, rba_update)
from pinnkit.pinn.points import RAR
from pinnkit.trainer import TrainOptions, Trainer

from conftest import load_problem


def test_causal_weights_monotone_and_respond_to_eps():
    L = torch.tensor([0.5, 0.1, 2.0, 0.0, 1.0])
    w1, w10 = causal_weights(L, 1.0), causal_weights(L, 10.0)
    assert w1[0] == 1 and torch.all(w1[1:] <= w1[:-1])
    assert torch.all(w10[1:] < w1[1:])                     # larger eps: later slabs weigh less
    assert torch.allclose(w1, torch.exp(-torch.tensor([0, 0.5, 0.6, 2.6, 2.6])))
    # slab losses are the mean of r² per time slab; gradients do not flow through the weights
    r2 = torch.tensor([1.0, 3.0, 0.0, 4.0], requires_grad=True)
    t = torch.tensor([0.1, 0.2, 0.6, 0.9])
    loss, w = causal_loss(r2, t, 0.0, 1.0, 2, eps=1.0)
    assert torch.allclose(w, torch.tensor([1.0, float(np.exp(-2.0))]))
    assert loss.item() == pytest.approx((2.0 + np.exp(-2.0) * 2.0) / 2)
    loss.backward()
    e = float(np.exp(-2.0))
    assert torch.allclose(r2.grad, torch.tensor([0.25, 0.25, 0.25 * e, 0.25 * e]))


def test_causal_training_option_runs_and_needs_time():
    ns = load_problem("heat1d")
    sol = pk.train(ns["problem"], steps=40, lbfgs_steps=0, width=8, depth=2, interior_points=200,
                   boundary_points=20, initial_points=20, causal_eps=1.0, causal_bins=8, quiet=True)
    assert np.isfinite(sol.final_loss)
    with pytest.raises(pk.TrainingError, match="causal_eps needs a time-dependent problem"):
        pk.train(load_problem("poisson2d")["problem"], steps=1, lbfgs_steps=0, causal_eps=1.0, quiet=True)


def test_gradnorm_equalizes_weighted_gradient_norms():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    terms = {"a": (w ** 2).sum() * 100, "b": (w - 1).abs().sum() * 0.01, "c": torch.sin(w).sum()}
    lam = gradnorm_weights(terms, [w], None, momentum=0.0)
    norms = []
    for k, v in terms.items():
        g, = torch.autograd.grad(lam[k] * v, [w], retain_graph=True)
        norms.append(float(g.norm()))
    assert max(norms) / min(norms) == pytest.approx(1.0, abs=1e-9)
    # moving average: halfway between old and new with momentum 0.5
    half = gradnorm_weights(terms, [w], {k: 1.0 for k in terms}, momentum=0.5)
    assert all(half[k] == pytest.approx(0.5 + 0.5 * lam[k]) for k in terms)


def test_gradnorm_option_records_weights():
    ns = load_problem("heat1d")
    sol = pk.train(ns["problem"], steps=60, lbfgs_steps=0, width=8, depth=2, interior_points=200,
                   boundary_points=20, initial_points=20, loss_weighting="gradnorm", weight_every=20,
                   log_every=20, quiet=True)
    cols = [c for c in sol.history if c.startswith("weight_")]
    assert len(cols) == 3 and all(len(sol.history[c]) == 3 for c in cols)
    assert any(abs(sol.history[c][-1] - 1.0) > 1e-3 for c in cols)


def test_ntk_traces_match_the_jacobian_and_weights_equalize_them():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    X = torch.linspace(0, 1, 6, dtype=torch.float64)

    def res_a(p):
        return 50 * torch.tanh(X[:, None] * p).sum(1)

    def res_b(p):
        return 0.1 * torch.sin(p[0] * X) + p[1] ** 2

    residuals = {"a": res_a(w), "b": res_b(w)}
    traces = ntk_traces(residuals, [w])
    for k, fn in (("a", res_a), ("b", res_b)):
        J = torch.autograd.functional.jacobian(fn, w.detach())      # (points, params)
        assert traces[k] == pytest.approx(float((J ** 2).sum()) / len(X), rel=1e-12)
    lam = ntk_weights(residuals, [w], None, momentum=0.0)
    weighted = [lam[k] * traces[k] for k in traces]
    assert weighted[0] == pytest.approx(weighted[1], rel=1e-12)
    assert lam["b"] > 100 * lam["a"]          # the slowly moving term gets the weight
    half = ntk_weights(residuals, [w], {k: 1.0 for k in traces}, momentum=0.5)
    assert all(half[k] == pytest.approx(0.5 + 0.5 * lam[k]) for k in traces)


def test_ntk_option_equalizes_the_terms_kernel_traces():
    from pinnkit.losses import CompiledProblem, sample_batches
    from pinnkit.weighting import WEIGHTINGS, WeightingInputs
    ns = load_problem("poisson2d")
    kw = dict(steps=40, lbfgs_steps=0, width=8, depth=2, interior_points=200, boundary_points=40,
              loss_weighting="ntk", weight_every=20, weight_momentum=0.0, ntk_points=16,
              log_every=20, quiet=True, dtype="float64")
    sol = pk.train(ns["problem"], **kw)
    comp = CompiledProblem(ns["problem"])
    names = [t.name for t in comp.terms]
    cols = [c for c in sol.history if c.startswith("weight_")]
    assert cols == [f"weight_{k}" for k in names] and len(cols) == 4
    assert all(len(sol.history[c]) == 2 for c in cols)
    # the scheme's weights make every term's weighted kernel trace equal, on the trained network
    pts = sample_batches(ns["problem"], comp.terms, 16, 16, 16, seed=1)
    batches = pts.map(torch.as_tensor)
    residuals = {k: torch.cat(v) for k, v in
                 comp.residuals(sol.model, {}, batches, create_graph=True).items()}
    params = list(sol.model.parameters())
    traces = ntk_traces(residuals, params)
    scheme = WEIGHTINGS["ntk"](names, TrainOptions.from_kwargs(**kw))
    lam = scheme.update(WeightingInputs({}, params, lambda: residuals, None, 40, None))
    weighted = [lam[k] * traces[k] for k in names]
    assert max(weighted) / min(weighted) == pytest.approx(1.0, abs=1e-9)
    assert max(traces.values()) > 10 * min(traces.values())   # unequal before weighting
    boundary = [k for k in names if k != "pde"]
    assert all(lam[k] > lam["pde"] for k in boundary)   # Laplacian residuals move fastest
    # and the trained run's last weights say the same
    assert all(sol.history[f"weight_{k}"][-1] > sol.history["weight_pde"][-1] for k in boundary)


def test_rba_multipliers_follow_the_residual():
    lam = torch.ones(3, dtype=torch.float64)
    r = torch.tensor([0.5, -2.0, 0.0], dtype=torch.float64)
    for _ in range(20000):
        rba_update(lam, r, gamma=0.999, eta=0.01)
    # fixed point η/(1-γ)·|r|/max|r| = 10·(0.25, 1, 0)
    assert lam.numpy() == pytest.approx([2.5, 10.0, 0.0], abs=1e-6)
    ns = load_problem("poisson2d")
    opts = TrainOptions.from_kwargs(steps=60, lbfgs_steps=5, width=8, depth=2, interior_points=300,
                                    boundary_points=40, point_weighting="rba", rba_every=10,
                                    quiet=True)
    tr = Trainer(ns["problem"], opts)
    tr.run()
    W = tr.point_weights
    assert len(W) == 300 and float(W.std()) > 0
    # the largest multiplier sits where the residual was largest
    r = tr.compiled.pde_residual(tr.model, {}, tr.batches.interior.X)
    assert float(r[int(torch.argmax(W))]) >= float(torch.quantile(r, 0.8))
    # the PDE loss is the mean of (λ r)²
    terms = tr.compiled.losses(tr.model, {}, tr.batches, W)
    assert float(terms["pde"].detach()) == pytest.approx(float(torch.mean(W ** 2 * r)), rel=1e-5)
    with pytest.raises(pk.TrainingError, match="point_weighting must be one of"):
        TrainOptions.from_kwargs(point_weighting="sa")


def test_rar_adds_points_where_the_residual_is_largest():
    from pinnkit.losses import CompiledProblem
    r = np.array([0.1, -5.0, 0.3, 2.0, -0.2, 4.0])
    assert set(rar_select(r, 3)) == {1, 3, 5}
    ns = load_problem("poisson2d")
    kw = dict(steps=30, lbfgs_steps=0, width=8, depth=2, interior_points=300, boundary_points=40,
              adaptive="rar", adaptive_points=25, adaptive_candidates=2000, adaptive_every=10,
              quiet=True)
    sol = pk.train(ns["problem"], **kw)
    assert np.isfinite(sol.final_loss)
    # the strategy on the trained network: the 25 added points are the top 25 of 2000 candidates
    comp = CompiledProblem(ns["problem"])
    cur = np.random.default_rng(0).uniform(0, 1, (300, 2))
    cand = ns["problem"].domain.sample_interior(2000, "uniform", seed=0)
    C = np.stack([cand["x"], cand["y"]], axis=1)
    r_cand = comp.pde_residual(sol.model, {}, torch.as_tensor(C, dtype=torch.float32)).numpy() ** 0.5
    after = RAR(TrainOptions.from_kwargs(**kw)).select(cur, C, r_cand, 10)
    assert len(after) == 325 and np.array_equal(after[:300], cur)
    r_added = comp.pde_residual(sol.model, {}, torch.as_tensor(after[300:], dtype=torch.float32))
    assert float(r_added.min()) >= float(np.quantile(r_cand ** 2, 0.98)) * 0.9


def test_rad_samples_proportionally_to_the_residual():
    rng = np.random.default_rng(0)
    r = np.concatenate([np.full(500, 10.0), np.full(500, 0.1)])
    idx = rad_select(r, 400, k=1.0, c=0.0, rng=rng)
    frac_high = np.mean(idx < 500)
    assert frac_high > 0.95                                   # p ∝ |r|: 100:1
    # c flattens it toward uniform: p_high / p_low = (10/5.05 + 10) / (0.1/5.05 + 10)
    idx_c = rad_select(r, 40000, k=1.0, c=10.0, rng=np.random.default_rng(0))
    expected = (10 / 5.05 + 10) / ((10 / 5.05 + 10) + (0.1 / 5.05 + 10))
    assert abs(np.mean(idx_c < 500) - expected) < 0.01


def test_periodic_embedding_is_exactly_periodic_and_drops_the_periodic_term():
    ns = load_problem("allen_cahn")
    opts = TrainOptions.from_kwargs(steps=0, lbfgs_steps=0, width=16, depth=2, interior_points=100,
                                    periodic_embedding=True, dtype="float64", quiet=True)
    tr = Trainer(ns["problem"], opts)
    assert not any(t.kind == "periodic" for t in tr.compiled.terms)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    lo, hi = ns["problem"].domain.bbox
    left = torch.stack([torch.full_like(t, lo[0]), t], 1)
    right = torch.stack([torch.full_like(t, hi[0]), t], 1)
    assert torch.allclose(tr.model(left), tr.model(right), atol=1e-14)
    with pytest.raises(pk.TrainingError, match="has no Periodic condition"):
        pk.train(load_problem("heat1d")["problem"], periodic_embedding=True, quiet=True)


def test_weight_factorization_keeps_the_initial_map_and_trains():
    from pinnkit.nn import FactorizedLinear, _glorot, build_model
    torch.manual_seed(0)
    plain = _glorot(torch.nn.Linear(6, 4))
    torch.manual_seed(0)
    fact = FactorizedLinear(6, 4)                 # same Glorot draw, then s ~ N(1, 0.1)
    assert torch.allclose(plain.weight, fact.weight, atol=1e-6)
    assert 0.6 < float(fact.s.mean()) < 1.4 and not torch.allclose(fact.v, fact.weight)
    X = torch.rand(10, 6)
    assert torch.allclose(plain(X), fact(X), atol=1e-6)
    model = build_model(2, 1, [0, 0], [1, 1], width=8, depth=2, factorized=True)
    assert sum(n.endswith(".s") for n, _ in model.named_parameters()) == 3
    ns = load_problem("heat1d")
    sol = pk.train(ns["problem"], steps=30, lbfgs_steps=0, width=8, depth=2, interior_points=100,
                   boundary_points=10, initial_points=10, weight_factorization=True, quiet=True)
    assert np.isfinite(sol.final_loss)


def test_anisotropic_fourier_scales():
    from pinnkit.nn import FourierFeatures
    ff = FourierFeatures(3, 4000, scale=[5.0, 0.5, 1.0], seed=0)
    std = ff.B.std(dim=1)
    assert torch.allclose(std, torch.tensor([5.0, 0.5, 1.0]), rtol=0.05)
    ns = load_problem("heat1d")
    opts = TrainOptions.from_kwargs(fourier_features=8, fourier_scales={"x": 3.0}, quiet=True)
    assert opts.fourier_scale_of(["x", "t"]) == [3.0, 1.0]
    with pytest.raises(pk.TrainingError, match="fourier_scales for unknown coordinate"):
        pk.train(ns["problem"], fourier_features=8, fourier_scales={"z": 1.0}, quiet=True)


def test_time_windows_march_the_points_through_time():
    ns = load_problem("heat1d")
    problem = ns["problem"]
    t0, t1 = problem.domain.t0, problem.domain.t1
    opts = TrainOptions.from_kwargs(steps=8, lbfgs_steps=2, width=8, depth=2, interior_points=256,
                                    boundary_points=32, initial_points=32, time_windows=4,
                                    log_every=1, quiet=True)
    tr = Trainer(problem, opts)
    seen = []
    tr.callback = lambda phase, step, sol: seen.append(
        (phase, tr.window, float(tr.np_batches.interior.X[:, 1].max()))) and False
    kinds = {t.name: t.kind for t in tr.compiled.terms}
    for name, b in [(None, tr.np_batches.interior), *tr.np_batches.terms.items()]:
        t = b.X[:, 1]
        if kinds.get(name, "pde") == "initial":
            assert np.all(t == t0)
        else:
            assert t.max() <= t0 + 0.25 * (t1 - t0) + 1e-12 and t.max() > t0 + 0.2 * (t1 - t0)
    tr.run()
    windows = [w for phase, w, _ in seen if phase == "adam"]
    assert windows == [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0]
    assert all(tmax <= t0 + w * (t1 - t0) + 1e-12 for _, w, tmax in seen)
    assert tr.window == 1.0 and tr.np_batches.interior.X[:, 1].max() > t0 + 0.9 * (t1 - t0)
    with pytest.raises(pk.TrainingError, match="time_windows needs a time-dependent problem"):
        pk.train(load_problem("poisson2d")["problem"], steps=1, time_windows=2, quiet=True)


def test_pirate_net_starts_linear_and_trains():
    from pinnkit.nn import build_model
    torch.manual_seed(0)
    model = build_model(2, 1, [0, 0], [1, 1], network="pirate", width=16, depth=3,
                        fourier_features=8).double()
    # α = 0: the output is an affine map of the Fourier embedding (16 = 2 x 8 features)
    X = torch.rand(50, 2, dtype=torch.float64)
    Phi = model.embedding(2 * X - 1)
    A = torch.cat([Phi, torch.ones(50, 1, dtype=torch.float64)], 1)
    y = model(X).detach()
    coef = torch.linalg.lstsq(A, y).solution
    assert float((A @ coef - y).abs().max()) < 1e-12
    ns = load_problem("poisson2d")
    sol = pk.train(ns["problem"], steps=300, lbfgs_steps=0, network="pirate", width=16, depth=2,
                   interior_points=300, boundary_points=60, log_every=100, quiet=True)
    assert sol.history["loss"][-1] < 0.5 * sol.history["loss"][0]
    alpha = sol.model.core.alpha.detach()
    assert float(alpha.abs().min()) > 0      # the blocks were admitted by training
