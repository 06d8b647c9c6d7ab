"""Figures (matplotlib, Agg): fields side by side (PINN, reference/exact, error) and losses."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .compare import Evaluation, MeshEvaluation  # noqa: E402
from .io import atomic_path  # noqa: E402

__all__ = ["plot_all", "plot_fields", "plot_history"]


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def _panels(ev: Evaluation, f: str) -> list:
    """PINN, reference, exact (where known) and the PINN's error: against the exact
    solution when there is one (the reference has its own error), else the reference."""
    out = []
    if f in ev.pinn:
        out.append(("PINN", ev.pinn[f]))
    if f in ev.reference:
        out.append(("reference (FD)", ev.reference[f]))
    if f in ev.exact:
        out.append(("exact", ev.exact[f]))
    if f in ev.pinn and f in ev.exact:
        out.append(("error vs exact", ev.pinn[f] - ev.exact[f]))
    elif f in ev.error():
        out.append(("error vs reference" if f in ev.reference else "error", ev.error()[f]))
    return out


def _image(ax, data2d, xa, ya, xlabel, ylabel, title, cmap):
    im = ax.pcolormesh(xa, ya, data2d.T, shading="auto", cmap=cmap)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    plt.colorbar(im, ax=ax)


def plot_fields(folder: Path, ev: Evaluation) -> list[Path]:
    """One figure per field: heatmaps (x-t for 1D+time, last time for 2D+time, mid-plane
    for 3D) and, for 1D+time, a few time slices."""
    problem = ev.problem
    if isinstance(ev, MeshEvaluation):
        return _plot_mesh_fields(folder, ev)
    time = problem.time.name if problem.time is not None else None
    space = [a for a in ev.axes if a != time]

    def draw(ax, f, title, data, cmap):
        if len(space) == 1 and time:
            _image(ax, data, ev.coords[time], ev.coords[space[0]], time, space[0],
                   f"{f}: {title}", cmap)
        elif len(space) == 1:
            ax.plot(ev.coords[space[0]], data)
            ax.set_xlabel(space[0])
            ax.set_title(f"{f}: {title}")
        else:
            d = data[-1] if time else data
            if len(space) == 3:
                d = d[:, :, d.shape[2] // 2]
            sub = f" ({time}={ev.coords[time][-1]:.3g})" if time else ""
            _image(ax, d, ev.coords[space[0]], ev.coords[space[1]], space[0], space[1],
                   f"{f}: {title}{sub}", cmap)
            ax.set_aspect("equal")
    written = _field_figures(folder, ev, draw)
    if len(space) == 1 and time:
        written += [_time_slices(folder, ev, f, time, space[0]) for f in problem.fields
                    if _panels(ev, f)]
    return written


def _plot_mesh_fields(folder: Path, ev: MeshEvaluation) -> list[Path]:
    """Fields on the mesh at the last time: colour over the triangles in 2-D; in 3-D the
    vertices within a slab around the middle z-plane, coloured."""
    mesh, problem = ev.mesh, ev.problem
    time = problem.time.name if problem.time is not None else None
    P = mesh.points
    sub = f" ({time}={ev.coords[time][-1]:.3g})" if time else ""
    if mesh.dim == 3:
        zmid = 0.5 * (P[:, 2].min() + P[:, 2].max())
        slab = np.abs(P[:, 2] - zmid) <= 0.08 * np.ptp(P[:, 2])
    names = mesh.names

    def draw(ax, f, title, data, cmap):
        d = np.asarray(data[-1] if time else data, float)
        if mesh.dim == 2:
            im = ax.tripcolor(P[:, 0], P[:, 1], d, triangles=mesh.simplices, shading="gouraud",
                              cmap=cmap)
        else:
            im = ax.scatter(P[slab, 0], P[slab, 1], c=d[slab], s=6, cmap=cmap)
            title = f"{title}, |{names[2]} − {zmid:.2g}| ≤ {0.08 * np.ptp(P[:, 2]):.2g}"
        plt.colorbar(im, ax=ax)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title(f"{f}: {title}{sub}", fontsize=9)
        ax.set_aspect("equal")
    return _field_figures(folder, ev, draw)


def _field_figures(folder: Path, ev: Evaluation, draw) -> list[Path]:
    """One figure per field with its panels (PINN, reference/exact, error) side by side;
    ``draw(ax, field, title, data, cmap)`` fills one panel."""
    written = []
    for f in ev.problem.fields:
        panels = _panels(ev, f)
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
        for ax, (title, data) in zip(axes[0], panels):
            draw(ax, f, title, data, "RdBu_r" if title.startswith("error") else "viridis")
        fig.tight_layout()
        path = folder / f"{f}.png"
        _save(fig, path)
        written.append(path)
    return written


def _time_slices(folder: Path, ev: Evaluation, f: str, time: str, x: str) -> Path:
    ts = ev.coords[time]
    picks = sorted({0, len(ts) // 4, len(ts) // 2, 3 * len(ts) // 4, len(ts) - 1})
    fig, axes = plt.subplots(1, len(picks), figsize=(3.4 * len(picks), 3), sharey=True)
    base = ev.exact.get(f, ev.reference.get(f))
    for ax, k in zip(np.atleast_1d(axes), picks):
        if base is not None:
            ax.plot(ev.coords[x], base[k], "k-", lw=2, label="exact" if f in ev.exact else "reference")
        if f in ev.pinn:
            ax.plot(ev.coords[x], ev.pinn[f][k], "r--", lw=1.5, label="PINN")
        ax.set_title(f"{time} = {ts[k]:.3g}")
        ax.set_xlabel(x)
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    path = folder / f"{f}_slices.png"
    _save(fig, path)
    return path


def plot_history(folder: Path, history: dict) -> Path:
    """Total and per-term losses against step (log scale); L-BFGS iterations continue the axis."""
    step = np.asarray(history["step"], float)
    phase = np.asarray(history["phase"])
    n_adam = step[phase == 0].max() if np.any(phase == 0) else 0
    x = np.where(phase == 1, n_adam + step, step)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.semilogy(x, history["loss"], "k-", lw=2, label="total")
    for col, values in history.items():
        if col.startswith("loss_"):
            ax.semilogy(x, values, lw=1, label=col[5:])
    if np.any(phase == 1) and n_adam:
        ax.axvline(n_adam, color="gray", ls=":", label="Adam → L-BFGS")
    ax.set_xlabel("step (Adam, then L-BFGS iterations)")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "loss.png"
    _save(fig, path)
    return path


def plot_all(folder: Path, ev: Evaluation, history: dict | None) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = plot_fields(folder, ev)
    if history and history.get("step"):
        paths.append(plot_history(folder, history))
    return paths
