"""Figures of ODE systems: trajectories with the data points and the extrapolated span marked,
the phase plane of the first two fields, and the loss history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .io import atomic_path

__all__ = ["plot_ode_all", "plot_trajectories", "plot_phase_plane"]


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def _data(problem, other_trajectories: bool = False) -> list:
    """[(field name, times, values)] of every Data condition of the problem's own trajectory
    or, with ``other_trajectories``, [(field name, times, values, initial)] of the Data with
    their own initial values (``Data(initial=...)``)."""
    tname = problem.time.name
    out = []
    for term in problem.terms:
        if term.kind == "data" and other_trajectories and term.data_initial is not None:
            vals = np.asarray(term.data_values, float).reshape(len(term.data_points[tname]), -1)
            for k, e in enumerate(term.exprs):
                out.append((e.func.__name__, term.data_points[tname], vals[:, k],
                            term.condition.initial))
        elif term.kind == "data" and not other_trajectories and term.data_initial is None:
            vals = np.asarray(term.data_values, float).reshape(len(term.data_points[tname]), -1)
            for k, e in enumerate(term.exprs):
                out.append((e.func.__name__, term.data_points[tname], vals[:, k]))
    return out


def _curves(problem, ev, sol, extend: float) -> tuple:
    """Times (past t1 by ``extend`` of the span when there is a solution) and its values."""
    tname = problem.time.name
    t0, t1 = float(problem.domain.t0), float(problem.domain.t1)
    tt = np.linspace(t0, t1 + (extend * (t1 - t0) if sol is not None else 0.0), 600)
    return tt, (sol({tname: tt}) if sol is not None else {})


def plot_trajectories(folder: Path, problem, ev, sol=None, ref=None, extend: float = 0.4) -> Path:
    """Each field against time: trained solution, reference, exact, data; the span after the
    last observation (extrapolation) shaded."""
    tname = problem.time.name
    fields = list(problem.fields)
    tt, trained = _curves(problem, ev, sol, extend)
    data, others = _data(problem), _data(problem, other_trajectories=True)
    fig = Figure(figsize=(7, 2.4 * len(fields)))
    axes = fig.subplots(len(fields), 1, sharex=True, squeeze=False)[:, 0]
    last = max((float(np.max(d[1])) for d in data + others), default=None)
    for ax, f in zip(axes, fields):
        if f in trained:
            ax.plot(tt, trained[f], "C0-", lw=1.8, label="trained")
        if ref is not None and f in ref.fields:
            ax.plot(ref.coords[tname], ref.fields[f], "k--", lw=1, label="reference")
        fn = problem.exact_function(f)
        if fn is not None:
            ax.plot(tt, fn(**{tname: tt}), "C2:", lw=1.2, label="exact")
        for name, ts, vs in data:
            if name == f:
                ax.plot(ts, vs, "o", ms=2.5, color="C3", alpha=0.6, label="data")
        for k, (name, ts, vs, initial) in enumerate(others):
            if name == f:      # another trajectory: its data and the model from its initial values
                if sol is not None and hasattr(sol, "initial_state"):
                    ax.plot(tt, sol({tname: tt}, initial=initial)[f], "-", lw=1.2,
                            color=f"C{4 + k % 5}")
                ax.plot(ts, vs, "s", ms=2.5, color=f"C{4 + k % 5}", alpha=0.6,
                        label="other trajectories" if k == 0 else None)
        if last is not None and tt[-1] > last:
            ax.axvspan(last, tt[-1], color="0.9", zorder=0, label="extrapolation")
        ax.set_ylabel(f)
    axes[0].legend(fontsize=7, ncol=5, loc="upper right")
    axes[-1].set_xlabel(tname)
    fig.tight_layout()
    return _save(fig, Path(folder) / "trajectories.png")


def plot_phase_plane(folder: Path, problem, ev, sol=None, ref=None, extend: float = 0.4) -> Path | None:
    """The first two fields against each other (None for a single field)."""
    fields = list(problem.fields)
    if len(fields) < 2:
        return None
    a, b = fields[:2]
    tt, trained = _curves(problem, ev, sol, extend)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    if trained:
        ax.plot(trained[a], trained[b], "C0-", lw=1.5, label="trained")
    if ref is not None:
        ax.plot(ref.fields[a], ref.fields[b], "k--", lw=1, label="reference")
    data = {name: (ts, vs) for name, ts, vs in _data(problem)}
    if a in data and b in data and len(data[a][0]) == len(data[b][0]):
        ax.plot(data[a][1], data[b][1], "o", ms=2.5, color="C3", alpha=0.6, label="data")
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(folder) / "phase_plane.png")


def plot_ode_all(folder: Path, problem, ev, sol=None, ref=None) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [plot_trajectories(folder, problem, ev, sol, ref)]
    phase = plot_phase_plane(folder, problem, ev, sol, ref)
    if phase is not None:
        paths.append(phase)
    if sol is not None and sol.history.get("step"):
        from .plot import plot_history
        paths.append(plot_history(folder, sol.history))
    return paths
