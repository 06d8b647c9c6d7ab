"""Taylor mode (`pinnkit.taylor`): jets of every network with a Taylor mode equal nested
autograd's derivatives (mixed, to order 4, through embeddings, hard constraints and
torch.compile)."""
import itertools

import pytest
import torch

from pinnkit.derivatives import ENGINES, DerivativePlan, compute_derivatives, resolve_engine
from pinnkit.nn import build_model
from pinnkit.taylor import multi_index_closure, supports


@pytest.mark.parametrize("network,activation,features", [
    ("mlp", "tanh", 0), ("mlp", "sin", 0), ("modified_mlp", "tanh", 0), ("mlp", "tanh", 6),
    ("modified_mlp", "sin", 4), ("pirate", "tanh", 0), ("pirate", "tanh", 6), ("pirate", "sin", 4)])
def test_taylor_matches_nested_autograd_to_order_4_with_mixed(network, activation, features):
    torch.manual_seed(1)
    model = build_model(3, 2, [0, -1, 0], [1, 1, 2], network=network, width=12, depth=3,
                        activation=activation, fourier_features=features).double()
    if network == "pirate":   # α starts at 0 (blocks off): switch the blocks on
        with torch.no_grad():
            model.core.alpha.uniform_(0.3, 0.9)
    X = torch.rand(40, 3, dtype=torch.float64) * torch.tensor([1.0, 2.0, 2.0]) - torch.tensor([0, 1.0, 0])
    keys = [(f, o) for f in ("u", "v") for o in itertools.product(range(5), repeat=3) if sum(o) <= 4]
    plan = DerivativePlan(keys, ["u", "v"], 3)
    ref = compute_derivatives(model, X, plan, engine="autograd")
    tay = compute_derivatives(model, X, plan, engine="taylor")
    assert set(tay) == set(keys)
    for k in keys:
        scale = float(ref[k].abs().max()) + 1e-30
        assert float((ref[k] - tay[k]).abs().max()) <= 1e-10 * max(scale, 1.0), k
    # gradients with respect to the weights agree too (the training signal)
    g_ref = torch.autograd.grad(sum(v.pow(2).sum() for v in ref.values()), list(model.parameters()))
    g_tay = torch.autograd.grad(sum(v.pow(2).sum() for v in tay.values()), list(model.parameters()))
    for a, b in zip(g_ref, g_tay):
        assert float((a - b).abs().max()) <= 1e-9 * max(float(a.abs().max()), 1.0)


def test_taylor_with_hard_constraint_matches_autograd():
    from conftest import load_problem
    from pinnkit.trainer import TrainOptions, Trainer
    ns = load_problem("burgers")
    res = {}
    for engine in ("autograd", "taylor"):
        opts = TrainOptions.from_kwargs(**{**ns["options"], "interior_points": 500, "engine": engine,
                                           "dtype": "float64", "quiet": True})
        tr = Trainer(ns["problem"], opts)
        assert tr.model.constraint is not None
        res[engine] = tr.compiled.residuals(tr.model, dict(tr.params), tr.batches)
    for name, rs in res["autograd"].items():
        for a, b in zip(rs, res["taylor"][name]):
            assert float((a - b).abs().max()) <= 1e-10


def test_multi_index_closure_and_engine_selection():
    S = multi_index_closure([(2, 0), (1, 1)], 2)
    assert S[0] == (0, 0) and set(S) == {(0, 0), (1, 0), (0, 1), (2, 0), (1, 1)}
    mlp = build_model(2, 1, [0, 0], [1, 1], activation="tanh")
    gelu = build_model(2, 1, [0, 0], [1, 1], activation="gelu")
    assert supports(mlp) and not supports(gelu)
    assert resolve_engine("auto", mlp, compiled=True) == "taylor"
    assert resolve_engine("auto", mlp, compiled=False) == "autograd"
    assert resolve_engine("auto", gelu, compiled=True) == "autograd"
    assert set(ENGINES) == {"auto", "autograd", "taylor"}
    plan = DerivativePlan([("u", (2, 0))], ["u"], 2)
    with pytest.raises(Exception, match="taylor engine supports"):
        compute_derivatives(gelu, torch.rand(5, 2), plan, engine="taylor")


def test_taylor_through_periodic_embedding_and_factorized_layers():
    torch.manual_seed(2)
    model = build_model(3, 2, [0, 0, 0], [1, 2, 1], network="modified_mlp", width=10, depth=2,
                        periodic=[0, 2], fourier_features=4, factorized=True).double()
    assert supports(model)
    X = torch.rand(30, 3, dtype=torch.float64)
    keys = [(f, o) for f in ("a", "b") for o in itertools.product(range(4), repeat=3) if sum(o) <= 3]
    plan = DerivativePlan(keys, ["a", "b"], 3, {"a": (0, 1)})
    ref = compute_derivatives(model, X, plan, engine="autograd")
    tay = compute_derivatives(model, X, plan, engine="taylor")
    for k in ref:
        assert float((ref[k] - tay[k]).abs().max()) <= 1e-10 * max(float(ref[k].abs().max()), 1.0), k


def test_rational_tanh_is_tanh_to_float32_resolution():
    """The compiled CPU float32 tanh (x·P(x²)/Q(x²)): within 4e-7 relative of tanh over the
    line, exactly ±1 far out, NaN stays NaN, and its gradient is tanh's, 1 − σ², from the
    saved value."""
    from pinnkit.taylor import _RationalTanh
    x = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    exact = torch.tanh(x)
    y = _RationalTanh.apply(x.float()).double()
    rel = (y - exact).abs() / exact.abs().clamp_min(1e-300)
    assert float(rel.max()) <= 4e-7
    assert float(rel.max()) >= 1e-7     # a real approximation, not torch.tanh
    far = _RationalTanh.apply(torch.tensor([-1e30, -9.0, 9.0, 1e30, float("inf")]))
    assert far.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert torch.isnan(_RationalTanh.apply(torch.tensor([float("nan")]))).all()
    z = torch.linspace(-3, 3, 101, requires_grad=True)
    (g,) = torch.autograd.grad(_RationalTanh.apply(z).sum(), z)
    s = _RationalTanh.apply(z.detach())
    assert torch.equal(g, 1 - s * s)
    # per-point gradients (torch.func.vmap of grad): a compiled graph with a per-point
    # Jacobian (as Gauss-Newton builds eagerly) would batch the function so
    per_point = torch.func.vmap(torch.func.grad(lambda v: _RationalTanh.apply(v).sum()))
    assert torch.allclose(per_point(z.detach().reshape(101, 1)).reshape(-1), 1 - s * s,
                          rtol=0, atol=1e-7)


def test_compiled_cpu_float32_graphs_take_the_rational_tanh():
    """`pinnkit.taylor.tanh` is torch.tanh eagerly and in float64, the rational function
    inside a float32 graph compiled for a CPU; pinnkit's float32 CPU compiles carry the
    Inductor option it needs, and a torch.compile mode's own options."""
    from pinnkit.pinn.compiled import FAST_TANH_OPTIONS, compile_backend, cpu_options
    from pinnkit.taylor import _RationalTanh, tanh
    z = torch.linspace(-4, 4, 1001)
    compiled = torch.compile(tanh, backend=compile_backend())
    assert torch.equal(tanh(z), torch.tanh(z))
    assert torch.equal(compiled(z), _RationalTanh.apply(z))
    assert not torch.equal(compiled(z), torch.tanh(z))
    assert torch.equal(compiled(z.double()), torch.tanh(z.double()))
    assert cpu_options(torch.float32, True) == FAST_TANH_OPTIONS
    assert cpu_options(torch.float64, True) == {}
    assert cpu_options(torch.float32, "max-autotune-no-cudagraphs", {"cpp_wrapper": True}) == {
        "cpp_wrapper": True, "max_autotune": True, "coordinate_descent_tuning": True,
        **FAST_TANH_OPTIONS}


@pytest.mark.parametrize("n_out,periodic", [pytest.param(1, None, marks=pytest.mark.inductor),
                                            (3, [1])])
def test_compiled_taylor_matches_nested_autograd(n_out, periodic):
    """Under torch.compile the engine maps to few outputs elementwise (not a matmul) and the
    first layer's constant derivative rows stay (1, width): same derivatives and gradients."""
    torch.manual_seed(3)
    model = build_model(2, n_out, [-1, 0], [1, 1], width=8, depth=2, periodic=periodic).double()
    fields = ["u", "v", "p"][:n_out]
    X = torch.rand(25, 2, dtype=torch.float64) * torch.tensor([2.0, 1.0]) - torch.tensor([1.0, 0.0])
    keys = [(f, o) for f in fields for o in [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (3, 0)]]
    plan = DerivativePlan(keys, fields, 2, {fields[0]: (0, 1)})
    ref = compute_derivatives(model, X, plan, engine="autograd")
    from pinnkit.pinn.compiled import torch_compile
    tay = torch_compile(lambda X: compute_derivatives(model, X, plan, engine="taylor"),
                        fullgraph=False)(X)
    for k in ref:
        assert float((ref[k] - tay[k]).abs().max()) <= 1e-10 * max(float(ref[k].abs().max()), 1.0), k
    g_ref = torch.autograd.grad(sum(v.pow(2).sum() for v in ref.values()), list(model.parameters()))
    g_tay = torch.autograd.grad(sum(v.pow(2).sum() for v in tay.values()), list(model.parameters()))
    for a, b in zip(g_ref, g_tay):
        assert float((a - b).abs().max()) <= 1e-9 * max(float(a.abs().max()), 1.0)


@pytest.mark.parametrize("name, S, lap", [
    ("burgers", ((0, 0), (1, 0), (0, 1), (2, 0)), ()),
    ("heat2d_ms", ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (2, 0, 0), (1, 1, 0)), (0, 1))])
def test_constraint_jets_match_nested_autograd(name, S, lap):
    """The hard constraint's jets from its symbolic derivatives (plain torch arithmetic, what
    a compiled step traces) equal nested autograd's derivatives of its factors A, D, mixed
    and collapsed Laplacian included."""
    from conftest import load_problem
    from pinnkit.derivatives import DerivativePlan, NestedAutograd
    from pinnkit.taylor import _constraint_jets, _tables
    from pinnkit.trainer import TrainOptions, Trainer
    ns = load_problem(name)
    recipe = ns.get("recipes", {}).get("accurate", {})   # the recipe's network (heat2d_ms: Fourier)
    tr = Trainer(ns["problem"], TrainOptions.from_kwargs(**{**ns["options"], **recipe, "dtype": "float64",
                                                            "hard_constraints": True, "quiet": True,
                                                            "interior_points": 300}))
    constraint = tr.model.constraint
    X = tr.batches.interior.X
    A1, D1 = _constraint_jets(constraint, X, S, lap)
    # reference: nested autograd of the factors, scaled to Taylor coefficients
    Xd = X.detach().requires_grad_(True)
    A, D = constraint.factors(Xd)
    F = A.shape[1]
    names = [f"c{i}" for i in range(2 * F)]
    plan = DerivativePlan([(f, g) for f in names for g in S], names, X.shape[1],
                          {f: lap for f in names} if lap else None)
    vals = NestedAutograd()(lambda _: torch.cat([A, D], dim=1), Xd, plan, create_graph=False)
    tab = _tables(S, lap)
    J = [torch.stack([vals[(f, g)] for f in names]) / tab.factorials[i] for i, g in enumerate(S)]
    if lap:
        J.append(torch.stack([vals[("lap", f)] for f in names]) / 2)
    A0, D0 = [j[:F] for j in J], [j[F:] for j in J]
    assert len(A1) == len(A0) == len(S) + bool(lap)
    scale = max(float(a.abs().max()) for a in A0 + D0)
    assert max(float((a - b).abs().max()) for a, b in zip(A0 + D0, A1 + D1)) <= 1e-12 * scale
    assert any(float(a.abs().max()) > 0 for a in A1[1:])      # derivatives, not just values
