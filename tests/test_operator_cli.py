"""scripts/operator.py: a small end-to-end run and the one-line errors (exit status 2)."""

import json
import textwrap

import h5py
import pytest

pytest.importorskip("torch")

from pinnkit.operator.cli import main  # noqa: E402

PROBLEM = textwrap.dedent('''
    import pinnkit as pk
    x, t = pk.coords("x t")
    u = pk.field("u", x, t)
    u0 = pk.input_field("u0", x)
    problem = pk.Problem("heat_cli", pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 0.01),
                         [{eq}], [pk.Periodic(u, x), pk.Initial(u, u0)])
    samplers = {{"{name}": pk.GaussianRandomField(sigma=10.0, tau=3.0, alpha=2.0)}}
    options = {{"n_train": 8, "n_test": 4, "resolution": 32, "test_resolutions": [16, 32, 64],
               "modes": 4, "width": 8, "layers": 2, "epochs": 2, "batch_size": 4,
               "quiet": True}}
''')


def _file(tmp_path, eq="u.diff(t) - u.diff(x, 2)", name="u0"):
    f = tmp_path / f"p{abs(hash((eq, name)))}.py"
    f.write_text(PROBLEM.format(eq=eq, name=name))
    return f


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert match in err, err


def test_end_to_end(tmp_path):
    out = tmp_path / "run"
    assert main([str(_file(tmp_path)), "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["metrics"]) == {"16", "32", "64"}
    assert rep["speed"]["samples"] == 4 and rep["speed"]["reference_vs_finer_l2re_max"]["u"] < 1e-2
    with h5py.File(out / "fields.h5", "r") as h5:
        assert h5["test/64/prediction/u"].shape == (4, 64)
        assert h5["test/16/inputs/u0"].shape == (4, 16)
    for p in ("samples.png", "error_vs_resolution.png", "loss.png"):
        assert (out / "plots" / p).stat().st_size > 1000
    # a rerun reuses both datasets and resumes from the finished checkpoint
    assert main([str(_file(tmp_path)), "--out", str(out), "--resume"]) == 0


def test_bad_inputs(tmp_path, capsys):
    f = _file(tmp_path)
    out = ["--out", str(tmp_path / "run")]
    _one_line_error(capsys, [str(tmp_path / "nope.py")], "no such problem file")
    _one_line_error(capsys, ["problems/heat1d.py"], "has no input fields")
    _one_line_error(capsys, [str(_file(tmp_path, name="a"))] + out, "sampler for 'a'")
    _one_line_error(capsys, [str(f), "--test-resolutions", "24,64"] + out,
                    "test resolution 24 is not a subgrid of the test set's 64")
    _one_line_error(capsys, [str(_file(tmp_path, eq="u.diff(t)**2 - u.diff(x, 2)"))] + out,
                    "not linear in the highest time derivative")
    _one_line_error(capsys, [str(f), "--model", "unet"] + out, "unknown model 'unet'")
    _one_line_error(capsys, [str(f), "--normalize", "minmax"] + out,
                    "unknown normalize 'minmax'; choose one of scalar, pointwise")
    bad = tmp_path / "run" / "data"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "train_32.h5").write_bytes(b"garbage")
    _one_line_error(capsys, [str(f)] + out, "not a readable HDF5 file")
    (bad / "train_32.h5").unlink()
    with h5py.File(bad / "train_32.h5", "w") as h5:
        h5.attrs["fingerprint"] = "0"
        h5.attrs["problem"] = "other"
    _one_line_error(capsys, [str(f)] + out, "holds a dataset of another spec (problem 'other'")
    _one_line_error(capsys, [str(f), "--epochs", "x"] + out, "invalid int value")


def test_space_time_physics_run(tmp_path, capsys):
    """--time-slices: a (t, x) operator, evaluated and written at the final time, with the
    space-time physics loss on sampled inputs."""
    out = tmp_path / "st"
    f = _file(tmp_path)
    assert main([str(f), "--out", str(out), "--time-slices", "5", "--padding", "2",
                 "--test-resolutions", "32", "--physics-weight", "1",
                 "--physics-samples", "4"]) == 0
    rep = json.loads((out / "report.json").read_text())
    with h5py.File(out / "fields.h5", "r") as h5, \
            h5py.File(out / "data" / "test_32.h5", "r") as data:
        assert h5["test/32/prediction/u"].shape == (4, 32)
        truth = data["outputs/u"][()]
        assert truth.shape == (4, 5, 32)
        assert (h5["test/32/truth/u"][()] == truth[:, -1]).all()      # u(., t1)
        err = h5["test/32/error/u"][()]
        l2re = (err ** 2).sum(1) ** 0.5 / (truth[:, -1] ** 2).sum(1) ** 0.5
        assert rep["metrics"]["32"]["u"]["l2re_mean"] == pytest.approx(l2re.mean(), rel=1e-6)
    with h5py.File(out / "data" / "train_32.h5", "r") as h5:
        assert h5["outputs/u"].shape == (9, 5, 32)        # n_train + n_val
        assert h5["coords/t"][()].tolist() == pytest.approx(
            [0.01 * s * s for s in (0, 0.25, 0.5, 0.75, 1)])
    _one_line_error(capsys, [str(f), "--out", str(tmp_path / "x"), "--time-slices", "1"],
                    "time_slices must be 0")
