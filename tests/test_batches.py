"""The terms' point sets as typed records (pinnkit/pinn/batches.py): what each kind carries,
the checkpoint layout, time marching's squeeze and the data-parallel shards."""
import numpy as np
import pytest
import torch

import pinnkit as pk
from pinnkit.distributed import Shard
from pinnkit.losses import CompiledProblem, sample_batches
from pinnkit.pinn.batches import INTERIOR_KEY, Batch, Batches
from pinnkit.pinn.points import TimeMarching
from pinnkit.pinn.train_options import TrainOptions


def _problem():
    """Every kind of point set: PDE (interior), Neumann (normals), periodic (two faces),
    initial, data."""
    x, y, t = pk.coords("x y t")
    u = pk.field("u", x, y, t)
    return pk.Problem("kinds", pk.Rectangle((x, y), (0, 0), (1, 2)) * pk.TimeInterval(t, 0, 2),
                      [u.diff(t) - pk.laplacian(u, [x, y])],
                      [pk.Neumann(u, 0, on="y_min"), pk.Periodic(u, x), pk.Initial(u, pk.sin(x)),
                       pk.Data(u, points={"x": [0.5, 0.25], "y": [1.0, 0.5], "t": [1.0, 1.5]},
                               values=[0.1, 0.2])])


def _sampled():
    problem = _problem()
    comp = CompiledProblem(problem)
    return problem, comp, sample_batches(problem, comp.terms, 40, 12, 10, seed=3)


def test_each_kind_carries_its_fields():
    problem, comp, b = _sampled()
    kinds = {t.name: t.kind for t in comp.terms}
    assert b.interior.X.shape == (40, 3) and b.interior._replace(X=None) == Batch(None)
    assert list(b.terms) == [t.name for t in comp.terms if t.kind != "pde"]
    for name, batch in b.terms.items():
        assert b.of(next(t for t in comp.terms if t.name == name)) is batch
        set_ = set(batch.as_dict())
        assert set_ == {"boundary": {"X", "N"}, "periodic": {"X", "X2"}, "initial": {"X"},
                        "data": {"X", "values"}}[kinds[name]], name
        if kinds[name] == "periodic":    # the same points on the opposite face x = 1
            assert np.all(batch.X[:, 0] == 0) and np.all(batch.X2[:, 0] == 1)
            assert np.array_equal(batch.X[:, 1:], batch.X2[:, 1:])
        if kinds[name] == "boundary":    # y_min: outward normal (0, -1, 0)
            assert np.all(batch.X[:, 1] == 0) and np.all(batch.N == [0, -1, 0])
    pde = next(t for t in comp.terms if t.kind == "pde")
    assert b.of(pde) is b.interior


def test_checkpoint_layout_round_trips():
    """as_dict is the layout of the checkpoints written before these records (interior under
    "__interior__", each term {field: array}); from_dict inverts it, tensors or arrays."""
    _, comp, b = _sampled()
    d = b.as_dict()
    assert list(d)[0] == INTERIOR_KEY and set(d[INTERIOR_KEY]) == {"X"}
    assert set(d) == {INTERIOR_KEY} | set(b.terms)
    back = Batches.from_dict(b.map(torch.as_tensor).as_dict()).map(lambda a: a.numpy())
    assert list(back.terms) == list(b.terms)
    for one, two in zip([back.interior, *back.terms.values()], [b.interior, *b.terms.values()]):
        assert one.as_dict().keys() == two.as_dict().keys()
        assert all(np.array_equal(one.as_dict()[k], v) for k, v in two.as_dict().items())
    with pytest.raises(TypeError, match="W"):     # a field a Batch lacks
        Batches.from_dict({INTERIOR_KEY: {"X": d[INTERIOR_KEY]["X"], "W": 1}})
    moved = b.with_interior(b.interior.X[:5])
    assert len(moved.interior.X) == 5 and len(b.interior.X) == 40 and moved.terms is b.terms


def test_time_marching_squeezes_pde_boundary_and_periodic_times():
    problem, comp, b = _sampled()
    kinds = {t.name: t.kind for t in comp.terms}
    marching = TimeMarching(problem, TrainOptions.from_kwargs(time_windows=4, steps=8))
    before = b.map(np.copy)
    out = marching.squeeze(b, kinds, 0.25)
    assert marching.squeeze(b, kinds, 1.0) is b
    for name, new in [(None, out.interior), *out.terms.items()]:
        old = before.interior if name is None else before.terms[name]
        kind = kinds.get(name, "pde")
        for key, a in new.as_dict().items():
            if key in ("X", "X2") and kind in ("pde", "boundary", "periodic"):
                assert np.allclose(a[:, 2], 0.25 * old.as_dict()[key][:, 2])    # t0 = 0
                assert np.array_equal(a[:, :2], old.as_dict()[key][:, :2])
            else:
                assert np.array_equal(a, old.as_dict()[key]), (name, key)
    # the sampled records themselves are left as they were
    assert all(np.array_equal(a, c) for a, c in zip(b.interior, before.interior) if a is not None)


def test_shards_split_every_point_set_and_carry_their_share():
    """Rank r of W keeps the rows r::W of every array; S is its share of the global count;
    one process (W = 1) keeps everything and no S."""
    _, _, b = _sampled()
    one = Shard().batches(b, torch.as_tensor)
    assert one.interior.S is None and torch.equal(one.interior.X, torch.as_tensor(b.interior.X))
    shards = [Shard(3, r, "gloo").batches(b, lambda a: torch.as_tensor(a, dtype=torch.float64))
              for r in range(3)]
    for name in [None, *b.terms]:
        glob = b.interior if name is None else b.terms[name]
        parts = [s.interior if name is None else s.terms[name] for s in shards]
        assert sum(float(p.S) for p in parts) == pytest.approx(1.0, abs=1e-15)
        for key, a in glob.as_dict().items():
            rows = np.concatenate([p.as_dict()[key].numpy() for p in parts])
            flat = lambda v: sorted(map(tuple, np.asarray(v, float).reshape(len(v), -1)))
            assert flat(rows) == flat(a), (name, key)
        for r, p in enumerate(parts):
            assert float(p.S) == len(range(r, len(glob.X), 3)) / len(glob.X)
