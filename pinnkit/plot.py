"""Figures: fields side by side (PINN, reference/exact, error) and losses.

Drawn on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot's global state:
the caller's backend and open figures stay as they were.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .metrics import Evaluation, MeshEvaluation
from .atomic import atomic_path

__all__ = ["plot_all", "plot_fields", "plot_history"]


def _figure(**kw) -> Figure:
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def _error_norm(data) -> TwoSlopeNorm:
    """A diverging colour scale centred on zero, symmetric: equal errors of either sign get
    equally strong colours."""
    d = np.asarray(data, float)
    m = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 0.0
    m = m if m > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-m, vmax=m)


def _panels(ev: Evaluation, f: str) -> list:
    """(title, data) panels of field ``f``: the PINN, the exact solution when there is one
    (else the reference), the PINN's error against that, and the reference's own error
    against the exact solution when both exist."""
    out = []
    exact, ref = ev.exact.get(f), ev.reference.get(f)
    base, name = (exact, "exact") if exact is not None else (ref, "reference (FD)")
    if f in ev.pinn:
        out.append(("PINN", ev.pinn[f]))
    if base is not None:
        out.append((name, base))
        if f in ev.pinn:
            out.append((f"error: PINN − {name.split()[0]}", ev.pinn[f] - base))
    if exact is not None and ref is not None:
        out.append(("error: reference − exact", ref - exact))
    return out


def _image(ax, data2d, xa, ya, xlabel, ylabel, title, cmap, norm=None):
    im = ax.pcolormesh(xa, ya, data2d.T, shading="auto", cmap=cmap, norm=norm)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax)


def _is_error(title: str) -> bool:
    return title.startswith("error")


def _style(title: str, data) -> tuple:
    """(colormap, norm) of a panel: errors diverge from zero, fields are sequential."""
    return ("RdBu_r", _error_norm(data)) if _is_error(title) else ("viridis", None)


def plot_fields(folder: Path, ev: Evaluation) -> list[Path]:
    """One figure per field: heatmaps (x-t for 1D+time, last time for 2D+time, mid-plane
    for 3D); for 1D+time a few time slices, for 2D/3D+time a grid of time snapshots."""
    problem = ev.problem
    if isinstance(ev, MeshEvaluation):
        return _plot_mesh_fields(folder, ev)
    time = problem.time.name if problem.time is not None else None
    space = [a for a in ev.axes if a != time]

    def snapshot(ax, d, cmap, norm):
        """One spatial array on ``ax`` (3-D: its middle plane in the third coordinate)."""
        if len(space) == 3:
            d = d[:, :, d.shape[2] // 2]
        im = ax.pcolormesh(ev.coords[space[0]], ev.coords[space[1]], np.asarray(d).T,
                           shading="auto", cmap=cmap, norm=norm)
        ax.set_xlabel(space[0])
        ax.set_ylabel(space[1])
        ax.set_aspect("equal")
        return im

    def draw(ax, f, title, data, cmap, norm):
        if len(space) == 1 and time:
            _image(ax, data, ev.coords[time], ev.coords[space[0]], time, space[0],
                   f"{f}: {title}", cmap, norm)
        elif len(space) == 1:
            ax.plot(ev.coords[space[0]], data)
            if _is_error(title):
                ax.axhline(0, color="gray", lw=0.5)
            ax.set_xlabel(space[0])
            ax.set_title(f"{f}: {title}")
        else:
            sub = f" ({time}={ev.coords[time][-1]:.3g})" if time else ""
            ax.figure.colorbar(snapshot(ax, data[-1] if time else data, cmap, norm), ax=ax)
            ax.set_title(f"{f}: {title}{sub}")
    written = _field_figures(folder, ev, draw)
    fields = [f for f in problem.fields if _panels(ev, f)]
    if len(space) == 1 and time:
        written += [_time_slices(folder, ev, f, time, space[0]) for f in fields]
    elif time:
        written += [_snapshots(folder, ev, f, time, snapshot) for f in fields]
    return written


def _snapshots(folder: Path, ev: Evaluation, f: str, time: str, snapshot) -> Path:
    """A grid of snapshots: one row per panel (PINN, exact/reference, errors), one column
    per time (first, 1/3, 2/3, last); each row on one colour scale."""
    ts = ev.coords[time]
    picks = sorted({0, (len(ts) - 1) // 3, 2 * (len(ts) - 1) // 3, len(ts) - 1})
    panels = _panels(ev, f)
    fig = _figure(figsize=(3.2 * len(picks) + 0.8, 2.9 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), len(picks), squeeze=False)
    for row, (title, data) in zip(axes, panels):
        shown = np.asarray(data, float)[picks]
        cmap, norm = _style(title, shown)
        if norm is None and np.isfinite(shown).any():
            from matplotlib.colors import Normalize
            norm = Normalize(float(np.nanmin(shown)), float(np.nanmax(shown)))
        for ax, k in zip(row, picks):
            im = snapshot(ax, data[k], cmap, norm)
            ax.set_title(f"{f}: {title}, {time} = {ts[k]:.3g}", fontsize=8)
        fig.colorbar(im, ax=list(row))
    path = folder / f"{f}_snapshots.png"
    _save(fig, path)
    return path


def _plot_mesh_fields(folder: Path, ev: MeshEvaluation) -> list[Path]:
    """Fields on the mesh at the last time: colour over the triangles in 2-D; in 3-D the
    vertices within a slab around the middle z-plane, coloured. 2-D with time: also a
    grid of time snapshots."""
    mesh, problem = ev.mesh, ev.problem
    time = problem.time.name if problem.time is not None else None
    P = mesh.points
    sub = f" ({time}={ev.coords[time][-1]:.3g})" if time else ""
    if mesh.dim == 3:
        zmid = 0.5 * (P[:, 2].min() + P[:, 2].max())
        slab = np.abs(P[:, 2] - zmid) <= 0.08 * np.ptp(P[:, 2])
    names = mesh.names

    def snapshot(ax, d, cmap, norm):
        d = np.asarray(d, float)
        if mesh.dim == 2:
            im = ax.tripcolor(P[:, 0], P[:, 1], d, triangles=mesh.simplices, shading="gouraud",
                              cmap=cmap, norm=norm)
        else:
            im = ax.scatter(P[slab, 0], P[slab, 1], c=d[slab], s=6, cmap=cmap, norm=norm)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_aspect("equal")
        return im

    def draw(ax, f, title, data, cmap, norm):
        ax.figure.colorbar(snapshot(ax, data[-1] if time else data, cmap, norm), ax=ax)
        if mesh.dim == 3:
            title = f"{title}, |{names[2]} − {zmid:.2g}| ≤ {0.08 * np.ptp(P[:, 2]):.2g}"
        ax.set_title(f"{f}: {title}{sub}", fontsize=9)
    written = _field_figures(folder, ev, draw)
    if time and mesh.dim == 2:
        written += [_snapshots(folder, ev, f, time, snapshot) for f in problem.fields
                    if _panels(ev, f)]
    return written


def _field_figures(folder: Path, ev: Evaluation, draw) -> list[Path]:
    """One figure per field with its panels (PINN, reference/exact, errors) side by side;
    ``draw(ax, field, title, data, cmap, norm)`` fills one panel."""
    written = []
    for f in ev.problem.fields:
        panels = _panels(ev, f)
        if not panels:
            continue
        fig = _figure(figsize=(4.6 * len(panels), 3.8), layout="tight")
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, (title, data) in zip(axes[0], panels):
            time = ev.problem.time
            last = data[-1] if time is not None and len(ev.axes) > 2 else data
            draw(ax, f, title, data, *_style(title, last))
        path = folder / f"{f}.png"
        _save(fig, path)
        written.append(path)
    return written


def _time_slices(folder: Path, ev: Evaluation, f: str, time: str, x: str) -> Path:
    ts = ev.coords[time]
    picks = sorted({0, len(ts) // 4, len(ts) // 2, 3 * len(ts) // 4, len(ts) - 1})
    fig = _figure(figsize=(3.4 * len(picks), 3), layout="tight")
    axes = fig.subplots(1, len(picks), sharey=True, squeeze=False)[0]
    for ax, k in zip(axes, picks):
        if f in ev.exact:
            ax.plot(ev.coords[x], ev.exact[f][k], "k-", lw=2, label="exact")
        if f in ev.reference:     # the black line when there is no exact one, else dotted
            style = (dict(ls=":", color="tab:blue", lw=1.5) if f in ev.exact
                     else dict(color="k", lw=2))
            ax.plot(ev.coords[x], ev.reference[f][k], label="reference", **style)
        if f in ev.pinn:
            ax.plot(ev.coords[x], ev.pinn[f][k], "r--", lw=1.5, label="PINN")
        ax.set_title(f"{time} = {ts[k]:.3g}")
        ax.set_xlabel(x)
    axes[0].legend()
    path = folder / f"{f}_slices.png"
    _save(fig, path)
    return path


def plot_history(folder: Path, history: dict) -> Path:
    """Total and per-term losses against step (log scale); L-BFGS iterations continue the axis."""
    step = np.asarray(history["step"], float)
    phase = np.asarray(history["phase"])
    n_adam = step[phase == 0].max() if np.any(phase == 0) else 0
    x = np.where(phase == 1, n_adam + step, step)
    fig = _figure(figsize=(6.4, 4), layout="tight")
    ax = fig.subplots()
    ax.semilogy(x, history["loss"], "k-", lw=2, label="total")
    for col, values in history.items():
        if col.startswith("loss_"):
            ax.semilogy(x, values, lw=1, label=col[5:])
    if np.any(phase == 1) and n_adam:
        ax.axvline(n_adam, color="gray", ls=":", label="Adam → L-BFGS")
    ax.set_xlabel("step (Adam, then L-BFGS iterations)")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
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
