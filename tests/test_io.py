"""The output files (`pinnkit.io`, DESIGN.md §5) of real runs: HDF5 schema, report, XDMF read
back by meshio, masks, attributes, file modes, plots."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

import pinnkit as pk
from pinnkit.cli import main

from conftest import ROOT

FAST = ["--steps", "60", "--lbfgs-steps", "20", "--width", "12", "--depth", "2",
        "--interior-points", "300", "--boundary-points", "40", "--initial-points", "40", "--quiet"]


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("heat")
    assert main([str(ROOT / "problems" / "heat1d.py"), "--out", str(out), *FAST]) == 0
    return out


def test_output_files_exist(heat_run):
    for name in ("fields.h5", "fields.xdmf", "report.json", "checkpoint.pt", "plots/u.png",
                 "plots/u_slices.png", "plots/loss.png"):
        assert (heat_run / name).is_file(), name
    assert not [p for p in heat_run.iterdir() if p.name.endswith(".tmp")]


def test_hdf5_schema(heat_run):
    with h5py.File(heat_run / "fields.h5") as h5:
        for attr in ("problem", "equations", "axes", "config", "metrics", "seed", "versions",
                     "git_commit", "created"):
            assert attr in h5.attrs, attr
        assert h5.attrs["problem"] == "heat1d"
        axes = list(h5.attrs["axes"])
        assert axes == ["t", "x"]
        shape = tuple(len(h5["coords"][a]) for a in axes)
        for group in ("pinn", "reference", "exact", "error"):
            assert h5[group]["u"].shape == shape and h5[group]["u"].dtype == np.float64
        assert np.allclose(h5["error/u"][()], h5["pinn/u"][()] - h5["reference/u"][()])
        hist = h5["history"]
        assert {"step", "loss", "time", "loss_pde", "loss_initial_u"} <= set(hist)
        assert len(hist["step"]) == len(hist["loss"])
        json.loads(h5.attrs["config"]), json.loads(h5.attrs["metrics"]), json.loads(h5.attrs["versions"])


def test_report_matches_h5(heat_run):
    report = json.loads((heat_run / "report.json").read_text())
    assert set(report) >= {"problem", "metrics", "reference", "train", "config"}
    m = report["metrics"]["u"]
    assert set(m) == {"l2re_reference", "l2re_exact", "linf_reference", "linf_exact"}
    assert set(report["train"]) >= {"seconds", "steps", "lbfgs_steps", "final_loss"}
    assert report["reference"]["l2re_exact"]["u"] < 1e-4
    # the CLI estimates the reference's error (Richardson, 2x coarser grid): within 3x of the
    # true one on this problem with an exact solution
    est, true = report["reference"]["error_estimate"]["u"], report["reference"]["l2re_exact"]["u"]
    assert true / 3 <= est <= 3 * true, (est, true)
    with h5py.File(heat_run / "fields.h5") as h5:
        p, r = h5["pinn/u"][()], h5["reference/u"][()]
    recomputed = np.linalg.norm(p - r) / np.linalg.norm(r)
    assert abs(recomputed - m["l2re_reference"]) <= 1e-12


def test_xdmf_valid_and_readable(heat_run):
    tree = ET.parse(heat_run / "fields.xdmf")
    items = [e.text for e in tree.iter("DataItem")]
    with h5py.File(heat_run / "fields.h5") as h5:
        for text in items:
            fname, dset = text.split(":")
            assert fname == "fields.h5" and dset in h5
    from meshio.xdmf import TimeSeriesReader
    with TimeSeriesReader(str(heat_run / "fields.xdmf")) as rd:
        points, cells = rd.read_points_cells()
        t, pdata, _ = rd.read_data(5)
    with h5py.File(heat_run / "fields.h5") as h5:
        assert np.allclose(points[:, 0], h5["coords/x"][()])
        assert t == pytest.approx(h5["coords/t"][5])
        assert np.array_equal(pdata["pinn_u"], h5["pinn/u"][5])


def test_steady_masked_export_reads_with_meshio(tmp_path):
    import meshio
    assert main([str(ROOT / "problems" / "poisson2d.py"), "--out", str(tmp_path),
                 "--reference-only", "--quiet"]) == 0
    mesh = meshio.read(tmp_path / "fields.xdmf")
    with h5py.File(tmp_path / "fields.h5") as h5:
        mask = h5["mask"][()].astype(bool)
        ref = h5["reference/u"][()]
        # every grid node, NaN outside the domain; cells only over the nodes inside
        assert np.array_equal(mesh.point_data["reference_u"], ref.ravel(), equal_nan=True)
        assert np.isnan(ref[~mask]).all() and not np.isnan(ref[mask]).any()
        X, Y = np.meshgrid(h5["coords/x"][()], h5["coords/y"][()], indexing="ij")
        assert np.array_equal(mesh.points[:, :2], np.stack([X.ravel(), Y.ravel()], axis=1))
    assert "quad" in mesh.cells_dict and mask.ravel()[mesh.cells_dict["quad"]].all()


HOLED_HEAT = """
import numpy as np
import pinnkit as pk
x, y, t = pk.coords("x y t")
u = pk.field("u", x, y, t)
exact = pk.exp(-2 * pk.pi**2 * t) * pk.sin(pk.pi * x) * pk.sin(pk.pi * y)
space = pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), (0.5, 0.5), 0.2, name="hole")
problem = pk.Problem("holed_heat", space * pk.TimeInterval(t, 0, 0.1),
                     [u.diff(t) - pk.laplacian(u)],
                     [pk.Dirichlet(u, exact, on="boundary"), pk.Initial(u, exact.subs(t, 0))],
                     exact={"u": exact}, reference={"resolution": {"x": 21, "y": 21, "t": 6}})
"""


@pytest.fixture(scope="module")
def holed_run(tmp_path_factory):
    """A masked 2-D time-dependent run with PINN, reference, exact and error, written under
    umask 027."""
    out = tmp_path_factory.mktemp("holed")
    (out / "holed_heat.py").write_text(HOLED_HEAT)
    old = os.umask(0o027)
    try:
        assert main([str(out / "holed_heat.py"), "--out", str(out / "run"), "--steps", "5",
                     "--lbfgs-steps", "0", "--width", "4", "--depth", "1", "--quiet",
                     "--interior-points", "50", "--boundary-points", "20",
                     "--initial-points", "20"]) == 0
    finally:
        os.umask(old)
    return out / "run"


def test_time_series_xdmf_round_trip_with_meshio(holed_run):
    from meshio.xdmf import TimeSeriesReader
    with h5py.File(holed_run / "fields.h5") as h5, \
            TimeSeriesReader(str(holed_run / "fields.xdmf")) as rd:
        points, cells = rd.read_points_cells()
        X, Y = np.meshgrid(h5["coords/x"][()], h5["coords/y"][()], indexing="ij")
        assert np.array_equal(points[:, :2], np.stack([X.ravel(), Y.ravel()], axis=1))
        mask = h5["mask"][()].astype(bool).ravel()
        assert cells[0].type == "quad" and mask[cells[0].data].all()
        ts = h5["coords/t"][()]
        assert rd.num_steps == len(ts) == 6
        for k in range(rd.num_steps):
            t, pdata, _ = rd.read_data(k)
            assert t == ts[k]
            assert set(pdata) == {"pinn_u", "reference_u", "exact_u", "error_u"}
            for name, values in pdata.items():
                label = name.rsplit("_", 1)[0]
                assert np.array_equal(values, h5[f"{label}/u"][k].ravel(), equal_nan=True)
                assert not np.isnan(values[mask]).any()


def test_h5_attributes_views_and_compression(holed_run):
    from pinnkit.io import _compression
    with h5py.File(holed_run / "fields.h5") as h5:
        err = h5["error/u"]
        assert err.attrs["definition"] == "pinn - reference"
        assert h5[err.attrs["minuend"]].name == "/pinn/u"
        assert h5[err.attrs["subtrahend"]].name == "/reference/u"
        assert np.array_equal(err[()], h5["pinn/u"][()] - h5["reference/u"][()], equal_nan=True)
        for label in ("pinn", "reference", "exact", "error"):
            assert list(h5[f"{label}/u"].attrs["axes"]) == ["t", "x", "y"]
            assert h5[f"{label}/u"].attrs["description"]
        assert h5["coords/y"].attrs["axis"] == 2 and list(h5["mask"].attrs["axes"]) == ["x", "y"]
        assert h5["history/loss"].attrs["description"] == "weighted total loss"
        # /xdmf holds the geometry and views, never a copy of the field values
        views = [d for name, d in h5["xdmf"].items() if name not in ("points", "cells")]
        assert len(views) == 4 * 6 and all(d.is_virtual for d in views)
        assert h5["xdmf/points"].compression == "gzip"   # a grid's coordinates: it pays
        assert h5["mask"].compression is None            # 441 bytes: it does not
    assert _compression(np.zeros(5000))["compression"] == "gzip"
    assert _compression(np.linspace(0, 1, 5000))["shuffle"]     # shuffling packs a ramp tighter
    assert _compression(np.random.default_rng(0).standard_normal(5000)) == {}
    assert _compression(np.zeros(100)) == {}             # too small to pay for a chunk


def test_output_files_follow_the_umask(holed_run):
    files = [holed_run / n for n in ("fields.h5", "fields.xdmf", "report.json")]
    files += sorted((holed_run / "plots").glob("*.png"))
    assert len(files) >= 5
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o640, (f, oct(f.stat().st_mode))


def test_plots_keep_the_callers_backend_and_figures(tmp_path):
    code = ("import matplotlib\nmatplotlib.use('svg')\nimport matplotlib.pyplot as plt\n"
            "plt.figure()\nfrom pinnkit.cli import main\n"
            f"assert main([{str(ROOT / 'problems' / 'heat1d.py')!r}, '--out', {str(tmp_path)!r}, "
            "'--steps', '5', '--lbfgs-steps', '0', '--width', '4', '--depth', '1', "
            "'--quiet']) == 0\n"
            "print(matplotlib.get_backend(), plt.get_fignums())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "[1]"]
    assert (tmp_path / "plots" / "u.png").stat().st_size > 1000


def test_plot_panels_error_against_exact_centred_on_zero(holed_run):
    from pinnkit.metrics import Evaluation
    from pinnkit.plot import _panels, _style
    x, = pk.coords("x,")
    u = pk.field("u", x)
    problem = pk.Problem("p", pk.Interval(x, 0, 1), [u.diff(x, 2)], [pk.Dirichlet(u, 0)])
    ev = Evaluation(problem, ["x"], {"x": np.linspace(0, 1, 3)}, np.ones(3, bool))
    ev.pinn, ev.reference, ev.exact = ({"u": np.array(a, float)} for a in
                                       ([1, 2, 3], [1, 2, 2.5], [1.5, 2, 3.25]))
    panels = dict(_panels(ev, "u"))
    assert list(panels) == ["PINN", "exact", "error: PINN − exact", "error: reference − exact"]
    assert np.array_equal(panels["error: PINN − exact"], [-0.5, 0, -0.25])
    cmap, norm = _style("error: PINN − exact", np.array([-0.1, 0.3]))
    assert cmap == "RdBu_r" and (norm.vmin, norm.vcenter, norm.vmax) == (-0.3, 0.0, 0.3)
    assert _style("PINN", np.array([1.0]))[1] is None
    ev.exact = {}                                          # no exact solution: vs the reference
    titles = [t for t, _ in _panels(ev, "u")]
    assert titles == ["PINN", "reference (FD)", "error: PINN − reference"]
    # a 2-D time-dependent run draws a grid of snapshots besides the last time
    assert (holed_run / "plots" / "u_snapshots.png").stat().st_size > 10000
