"""Figures of an operator-learning run (drawn on `Figure` + `FigureCanvasAgg`, no pyplot
state): input / truth / prediction / error for a few test samples, error vs resolution,
loss history."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import atomic_path

__all__ = ["plot_all"]


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def plot_samples(path: Path, arrays: tuple, k: int) -> None:
    ins, truth, pred, coords = arrays
    axes = list(coords)
    n = min(k, len(next(iter(ins.values()))))
    f = next(iter(truth))
    name = next(iter(ins))
    if len(axes) == 1:
        x = coords[axes[0]]
        fig = Figure(figsize=(11, 2.8 * n))
        for i in range(n):
            a1, a2, a3 = (fig.add_subplot(n, 3, 3 * i + j) for j in (1, 2, 3))
            a1.plot(x, ins[name][i])
            a1.set_title(f"input {name}, sample {i}")
            a2.plot(x, truth[f][i], label="reference")
            a2.plot(x, pred[f][i], "--", label="FNO")
            a2.legend(fontsize=7)
            a2.set_title(f"output {f}")
            a3.plot(x, pred[f][i] - truth[f][i])
            a3.set_title("error (FNO - reference)")
    else:
        fig = Figure(figsize=(14, 3.2 * n))
        ext = [coords[axes[1]][0], coords[axes[1]][-1], coords[axes[0]][0], coords[axes[0]][-1]]
        for i in range(n):
            panels = [(f"input {name}", ins[name][i]), (f"reference {f}", truth[f][i]),
                      (f"FNO {f}", pred[f][i]), ("error", pred[f][i] - truth[f][i])]
            for j, (title, v) in enumerate(panels):
                ax = fig.add_subplot(n, 4, 4 * i + j + 1)
                im = ax.imshow(v, origin="lower", extent=ext, aspect="equal")
                fig.colorbar(im, ax=ax, fraction=0.046)
                ax.set_title(f"{title}, sample {i}", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_all(folder: Path, arrays: dict, model, results: dict, k: int = 3,
             train_res: int | None = None) -> None:
    """samples.png (at the training resolution, or the first), error_vs_resolution.png, loss.png."""
    train_res = train_res if train_res is not None else next(iter(arrays))
    plot_samples(Path(folder) / "samples.png", arrays[train_res], k)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    rs = sorted(int(r) for r in results)
    for f in model.layout.outputs:
        ax.loglog(rs, [results[str(r)][f]["l2re_mean"] for r in rs], "o-", label=f)
    ax.set_xlabel("grid points per axis")
    ax.set_ylabel("test relative L2 error")
    ax.legend()
    fig.tight_layout()
    _save(fig, Path(folder) / "error_vs_resolution.png")
    h = model.history
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.semilogy(h["epoch"], h["train"], label="train")
    ax.semilogy(h["epoch"], h["test"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("relative L2")
    ax.legend()
    fig.tight_layout()
    _save(fig, Path(folder) / "loss.png")
