"""pk.dataset: HDF5 layout and provenance, agreement with pk.reference, resume after an
interruption, extension, and the errors for bad requests and files."""

import json

import h5py
import numpy as np
import pytest

import pinnkit as pk

x, t = pk.coords("x t")
u = pk.field("u", x, t)
u0 = pk.input_field("u0", x)


def _burgers(nu=0.1):
    return pk.Problem("burgers_small", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.2),
                      [u.diff(t) + u * u.diff(x) - nu * u.diff(x, 2)],
                      [pk.Periodic(u, x), pk.Initial(u, u0)], reference={"rtol": 1e-7})


GRF = {"u0": pk.GaussianRandomField(sigma=5.0, tau=5.0, alpha=2.0)}


def test_layout_provenance_and_reference_agreement(tmp_path):
    p = _burgers()
    ds = pk.dataset(p, GRF, n=4, resolution=48, path=tmp_path / "b.h5", seed=3, workers=0,
                    quiet=True)
    assert ds.inputs["u0"].shape == (4, 48) and ds.outputs["u"].shape == (4, 48)
    assert np.allclose(ds.coords["x"], np.arange(48) / 48)
    assert ds.attrs["problem"] == "burgers_small" and ds.attrs["seed"] == 3
    assert "u0(x)" in ds.attrs["spec"] and "GaussianRandomField" in ds.attrs["samplers"]
    assert json.loads(ds.attrs["periodic"]) == {"x": True}
    # each stored output is the reference solution at t = 0.2 for the stored input
    ref = pk.reference(p, resolution=48, inputs={"u0": ds.inputs["u0"][2]}, times=[0, 0.2])
    assert np.max(np.abs(ref.fields["u"][-1] - ds.outputs["u"][2])) < 1e-12
    assert not (tmp_path / "b.h5.partial").exists()
    # a second call finds the finished file and computes nothing
    again = pk.dataset(p, GRF, n=4, resolution=48, path=tmp_path / "b.h5", seed=3, quiet=True)
    assert again.info["computed"] == 0 and np.array_equal(again.outputs["u"], ds.outputs["u"])


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_dataset_resumes_without_recomputing(tmp_path, workers):
    p = _burgers()
    kw = dict(n=6, resolution=32, seed=1, quiet=True)
    full = pk.dataset(p, GRF, path=tmp_path / "full.h5", workers=0, **kw)
    written = []

    def stop(i):
        written.append(i)
        if len(written) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pk.dataset(p, GRF, path=tmp_path / "cut.h5", workers=workers, callback=stop, **kw)
    assert not (tmp_path / "cut.h5").exists()
    with h5py.File(tmp_path / "cut.h5.partial", "r") as h5:
        done = h5["done"][()]
        kept = {i: h5["outputs/u"][i] for i in np.flatnonzero(done)}
    assert done.sum() >= 3
    resumed = pk.dataset(p, GRF, path=tmp_path / "cut.h5", workers=workers, **kw)
    assert resumed.info["computed"] == 6 - done.sum()
    for i, v in kept.items():   # finished samples were kept as written
        assert np.array_equal(resumed.outputs["u"][i], v)
    assert np.array_equal(resumed.inputs["u0"], full.inputs["u0"])
    assert np.allclose(resumed.outputs["u"], full.outputs["u"], rtol=0, atol=1e-12)


def test_extend_keeps_the_first_samples(tmp_path):
    p = _burgers()
    kw = dict(resolution=32, seed=0, workers=0, quiet=True, path=tmp_path / "e.h5")
    small = pk.dataset(p, GRF, n=2, **kw)
    big = pk.dataset(p, GRF, n=4, **kw)
    assert big.info["computed"] == 2 and big.n == 4
    assert np.array_equal(big.outputs["u"][:2], small.outputs["u"])


def test_refuses_another_specs_dataset(tmp_path):
    path = tmp_path / "b.h5"
    pk.dataset(_burgers(), GRF, n=1, resolution=32, path=path, workers=0, quiet=True)
    with pytest.raises(pk.DatasetError, match="another spec.*burgers_small"):
        pk.dataset(_burgers(nu=0.2), GRF, n=1, resolution=32, path=path, workers=0, quiet=True)
    with pytest.raises(pk.DatasetError, match="another spec"):
        pk.dataset(_burgers(), GRF, n=1, resolution=32, path=path, seed=5, workers=0, quiet=True)


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(pk.DatasetError, match="not a readable HDF5"):
        pk.dataset(_burgers(), GRF, n=1, resolution=32, path=bad, workers=0, quiet=True)
    with pytest.raises(pk.DatasetError, match="not a readable pinnkit dataset"):
        pk.Dataset.load(bad)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = 1
    with pytest.raises(pk.DatasetError, match="not a pinnkit dataset"):
        pk.Dataset.load(other)
    with pytest.raises(pk.DatasetError, match="HDF5 file but not a pinnkit dataset"):
        pk.dataset(_burgers(), GRF, n=1, resolution=32, path=other, workers=0, quiet=True)


def test_bad_requests(tmp_path):
    p = _burgers()
    path = tmp_path / "b.h5"
    with pytest.raises(pk.DatasetError, match="sampler for 'a'.*does not declare.*u0"):
        pk.dataset(p, {**GRF, "a": GRF["u0"]}, n=1, resolution=32, path=path)
    with pytest.raises(pk.DatasetError, match="no sampler for input field.*u0"):
        pk.dataset(p, {}, n=1, resolution=32, path=path)
    with pytest.raises(pk.SamplerError, match="axis x.*both ends"):
        pk.dataset(p, {"u0": pk.GaussianRandomField(boundary="dirichlet")}, n=1, resolution=32,
                   path=path)
    with pytest.raises(pk.DatasetError, match="n must be a positive int"):
        pk.dataset(p, GRF, n=0, resolution=32, path=path)
    q = pk.Problem("implicit", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
                   [u.diff(t) ** 2 - u.diff(x, 2)], [pk.Periodic(u, x), pk.Initial(u, u0)])
    with pytest.raises(pk.UnsupportedSpecError, match="not linear in the highest time derivative"):
        pk.dataset(q, GRF, n=1, resolution=32, path=path, workers=0, quiet=True)
    # nothing was finished: no file is left to claim the path for that spec
    assert not path.exists() and not path.with_name("b.h5.partial").exists()
