"""Output files (docs/outputs.md): fields.h5, fields.xdmf, report.json and plots/.

Every file is written to a temporary name in the output folder and renamed into place, so
an interrupted export never leaves a half-written file over a good one.
"""

from __future__ import annotations

import datetime as _dt
import io as _io
import json
import math
import os
import platform
import subprocess
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .atomic import atomic_path, write_bytes, write_text
from .metrics import Evaluation, MeshEvaluation, evaluate, metrics_of, reference_errors

__all__ = ["export", "versions", "git_commit"]


def versions() -> dict:
    import scipy
    import sympy
    out = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
           "sympy": sympy.__version__, "h5py": h5py.__version__}
    from . import __version__
    out["pinnkit"] = __version__
    try:
        import torch
        out["torch"] = torch.__version__
    except ImportError:  # reference-only use
        pass
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def strict(obj: Any, reasons: dict | None = None, where: str = "") -> Any:
    """``obj`` with every NaN/Inf float replaced by None (strict JSON has neither); each
    replacement is recorded in ``reasons`` as {dotted path: "nan" | "inf" | "-inf"}."""
    if isinstance(obj, dict):
        return {k: strict(v, reasons, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v, reasons, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        if reasons is not None:
            reasons[where] = "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
        return None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _json(obj: Any) -> str:
    return json.dumps(strict(obj), sort_keys=True, default=str, allow_nan=False)


def report_json(report: dict) -> str:
    """Strict JSON of a report: non-finite numbers become null, listed under "nonfinite"
    ({path: "nan" | "inf"}) so that a null says why it is one."""
    reasons: dict = {}
    clean = strict(report, reasons)
    if reasons:
        clean["nonfinite"] = reasons
    return json.dumps(clean, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def export(out: str | os.PathLike, problem, sol=None, ref=None, metrics: dict | None = None,
           config: dict | None = None, plots: bool = True,
           reference_reason: str | None = None, evaluation: Evaluation | None = None) -> dict:
    """Write fields.h5, fields.xdmf, report.json and plots/ for a run; returns the report.

    ``reference_reason`` says why there is no reference (shown in report.json).
    ``evaluation``: the run's `pinnkit.metrics.evaluate(problem, sol, ref)` when the caller
    already has it (the CLI computes it once for the metrics and the files: evaluating the
    PINN and an exact solution on a fine grid can take many seconds)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .errors import WriteError
        raise WriteError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    ev = evaluation if evaluation is not None else evaluate(problem, sol, ref)
    metrics = metrics if metrics is not None else metrics_of(ev)
    config = dict(config or (sol.options.__dict__ if sol is not None else {}))
    report = build_report(problem, sol, ref, ev, metrics, config, reference_reason)
    # an ODE system (time the only axis) has no spatial grid for ParaView: no XDMF
    layout = xdmf_layout(ev) if problem.spatial_coords else None
    # HDF5 is built in memory and written by the atomic helper: a full disk then surfaces
    # as one OSError at our write, not inside the HDF5 library (which crashed on ENOSPC)
    buf = _io.BytesIO()
    write_h5(buf, problem, sol, ev, metrics, config, layout)
    write_bytes(out / "fields.h5", buf.getbuffer())
    del buf
    if layout is not None:
        with atomic_path(out / "fields.xdmf") as tmp:
            write_xdmf(tmp, layout, "fields.h5", problem.name)
    write_text(out / "report.json", report_json(report))
    if plots and layout is None:
        from .plot_ode import plot_ode_all
        plot_ode_all(out / "plots", problem, ev, sol, ref)
    elif plots:
        from .plot import plot_all
        plot_all(out / "plots", ev, sol.history if sol is not None else None)
    return report


def build_report(problem, sol, ref, ev: Evaluation, metrics: dict, config: dict,
                 reference_reason: str | None = None) -> dict:
    report: dict = {"problem": problem.name, "metrics": metrics, "config": config}
    if ref is not None:
        report["reference"] = {"seconds": ref.seconds, "info": ref.info, "notes": ref.notes}
        errs = reference_errors(ev)
        if errs:
            report["reference"]["l2re_exact"] = errs
        if getattr(ref, "error_estimate", None) is not None:
            report["reference"]["error_estimate"] = ref.error_estimate
    elif sol is not None:
        report["reference"] = {"skipped": True, "reason": reference_reason or "not requested",
                               "compared_with": "exact" if ev.exact else "nothing"}
    if sol is not None:
        steps = [s for s, ph in zip(sol.history["step"], sol.history["phase"]) if ph == 1]
        report["train"] = {"seconds": sol.seconds, "steps": sol.options.steps,
                           "lbfgs_steps": steps[-1] if steps else 0,
                           "final_loss": sol.final_loss, "messages": sol.messages,
                           "world_size": getattr(sol, "world_size", 1),
                           "backend": getattr(sol, "backend", "none")}
        if getattr(sol, "threads", None) is not None:
            report["train"]["threads"] = sol.threads
        if sol.parameters:
            report["parameters"] = sol.parameters
    return report


def _compression(data: np.ndarray) -> dict:
    """h5py's compression keywords for ``data``: gzip (level 4), with the byte-shuffle filter
    when that packs tighter, where it shrinks the data by at least 10 % (judged on up to 1 MiB
    of it); none otherwise. Grids, masks and smooth fields compress well; a trained network's
    float64 output sometimes only with shuffling, noise not at all, and then compressing
    would only cost time on every read."""
    if data.size < 1024:             # a chunk's bookkeeping costs more than it could save
        return {}
    sample = np.ascontiguousarray(data.ravel()[:131072])
    plain = sample.tobytes()
    shuffled = sample.view(np.uint8).reshape(-1, sample.itemsize).T.tobytes()  # HDF5's shuffle
    sizes = {False: len(zlib.compress(plain, 4)), True: len(zlib.compress(shuffled, 4))}
    shuffle = sizes[True] < sizes[False]
    if sizes[shuffle] >= 0.9 * len(plain):
        return {}
    return {"compression": "gzip", "compression_opts": 4, "shuffle": shuffle, "chunks": True}


def _dataset(group: h5py.Group, name: str, data: np.ndarray, dtype=np.float64,
             **attrs: Any) -> h5py.Dataset:
    """A dataset, gzip-compressed where that pays (`_compression`); ``attrs`` are written as
    its attributes."""
    data = np.asarray(data, dtype=dtype)
    ds = group.create_dataset(name, data=data, **_compression(data))
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


_SETS = {"pinn": "PINN prediction", "reference": "finite-difference reference solution",
         "exact": "exact solution (the problem's exact=)"}
_HISTORY = {"step": "Adam step, or L-BFGS iteration when phase is 1", "phase": "0 Adam, 1 L-BFGS",
            "loss": "weighted total loss", "time": "seconds of training so far",
            "lr": "Adam learning rate (1 in the L-BFGS phase)"}


def _history_meaning(col: str) -> str:
    if col.startswith("loss_"):
        return f"mean squared residual of term {col[5:]!r}"
    if col.startswith("weight_"):
        return f"adaptive loss weight of term {col[7:]!r}"
    return _HISTORY.get(col, col)


def write_h5(path: Path, problem, sol, ev: Evaluation, metrics: dict, config: dict,
             layout: dict) -> None:
    with h5py.File(path, "w") as h5:
        a = h5.attrs
        a["problem"] = problem.name
        a["equations"] = "\n".join(f"{k}: {v} = 0" for k, v in problem.equations.items())
        a["axes"] = list(ev.axes)
        a["config"] = _json(config)
        a["metrics"] = _json(metrics)
        a["seed"] = int(config.get("seed", 0))
        a["versions"] = _json(versions())
        a["git_commit"] = git_commit()
        a["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        coords = h5.create_group("coords")
        for i, name in enumerate(ev.axes):
            if name != "vertex":
                _dataset(coords, name, ev.coords[name], axis=i,
                         description=f"grid coordinate {name}, axis {i} of every field array")
        if isinstance(ev, MeshEvaluation):
            mg = h5.create_group("mesh")
            mg.create_dataset("points", data=ev.mesh.points)
            mg.attrs["coords"] = list(ev.mesh.names)
            cg = mg.create_group("cells")
            for ctype, cells in ev.mesh.cells.items():
                cg.create_dataset(ctype, data=np.asarray(cells, dtype=np.int64))
        space = [n for n in ev.axes if problem.time is None or n != problem.time.name]
        _dataset(h5, "mask", ev.mask, dtype=np.uint8, axes=space,
                 description="1 at the nodes inside the domain (fields are NaN elsewhere)")
        base = "reference" if ev.reference else "exact"
        for label, data in (("pinn", ev.pinn), ("reference", ev.reference), ("exact", ev.exact),
                            ("error", ev.error())):
            if data:
                g = h5.create_group(label)
                for f, v in data.items():
                    if label == "error":
                        meaning = dict(definition=f"pinn - {base}", minuend=f"/pinn/{f}",
                                       subtrahend=f"/{base}/{f}",
                                       description=f"PINN minus {_SETS[base]} of {f}")
                    else:
                        meaning = dict(description=f"{_SETS[label]} of {f}")
                    _dataset(g, f, v, field=f, axes=list(ev.axes), **meaning)
        if sol is not None:
            hist = h5.create_group("history")
            for col, values in sol.history.items():
                _dataset(hist, col, np.asarray(values, dtype=float),
                         description=_history_meaning(col))
            if sol.parameters:
                pg = h5.create_group("parameters")
                for k, v in sol.parameters.items():
                    pg.create_dataset(k, data=float(v))
        if layout is not None:
            write_xdmf_views(h5, layout)


# --------------------------------------------------------------------------- XDMF

_CELLS = {1: ("Polyline", 2), 2: ("Quadrilateral", 4), 3: ("Hexahedron", 8)}


def _cells(mask: np.ndarray) -> np.ndarray:
    """Cells of the tensor grid whose corners are all inside; indices into all grid nodes
    (C order, as the flattened field arrays)."""
    shape = mask.shape
    idx = np.where(mask.ravel(), np.arange(mask.size), -1).reshape(shape)
    d = len(shape)
    if d == 1:
        corners = [(0,), (1,)]
    elif d == 2:
        corners = [(0, 0), (1, 0), (1, 1), (0, 1)]
    else:
        corners = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0),
                   (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
    sl = [tuple(slice(c, s - 1 + c) for c, s in zip(corner, shape)) for corner in corners]
    cols = np.stack([idx[s].ravel() for s in sl], axis=1)
    return cols[np.all(cols >= 0, axis=1)]


# meshio cell type -> (XDMF topology name, corner nodes, XDMF "Mixed" code)
_XDMF_TYPES = {"triangle": ("Triangle", 3, 4), "quad": ("Quadrilateral", 4, 5),
               "tetra": ("Tetrahedron", 4, 6), "pyramid": ("Pyramid", 5, 7),
               "wedge": ("Wedge", 6, 8), "hexahedron": ("Hexahedron", 8, 9)}


def _mesh_topology(mesh) -> tuple[str, int | None, np.ndarray]:
    """(topology type, nodes per element or None for Mixed, connectivity) of a mesh's cells
    (higher-order cells by their corners)."""
    from .mesh import _base
    blocks = [(_XDMF_TYPES[_base(t)], c) for t, c in mesh.cells.items()]
    if len(blocks) == 1:
        (name, k, _), c = blocks[0]
        return name, k, np.ascontiguousarray(c[:, :k])
    flat = [np.concatenate([np.full((len(c), 1), code), c[:, :k]], axis=1).ravel()
            for (_, k, code), c in blocks]
    return "Mixed", None, np.concatenate(flat)


def xdmf_layout(ev: Evaluation) -> dict:
    """What the sidecar shows: the nodes (every node of the tensor grid, or the mesh's
    vertices), the cells over the nodes inside the domain, the times and the field sets.
    Nodes outside the domain belong to no cell and carry NaN."""
    problem = ev.problem
    time = problem.time.name if problem.time is not None else None
    sets = {"pinn": ev.pinn, "reference": ev.reference, "exact": ev.exact, "error": ev.error()}
    times = list(ev.coords[time]) if time else [None]
    if isinstance(ev, MeshEvaluation):
        ctype, per, cells = _mesh_topology(ev.mesh)
        blocks = list(ev.mesh.cells)
        whole = per is not None and len(blocks) == 1 and ev.mesh.cells[blocks[0]].shape[1] == per
        own = ev.mesh.dim in (2, 3)      # /mesh/points serves as the XDMF geometry as it is
        return {"points": None if own else _pad3(ev.mesh.points), "cells": None if whole else cells,
                "points_path": "/mesh/points" if own else "/xdmf/points",
                "geometry": "XY" if ev.mesh.dim == 2 else "XYZ",
                "cells_path": f"/mesh/cells/{blocks[0]}" if whole else "/xdmf/cells",
                "ctype": ctype, "per": per, "ncells": sum(len(c) for c in ev.mesh.cells.values()),
                "npoints": len(ev.mesh.points), "times": times, "time": time, "sets": sets}
    space = [a for a in ev.axes if a != time]
    mask = np.asarray(ev.mask, bool)
    grids = np.meshgrid(*[ev.coords[a] for a in space], indexing="ij")
    P = _pad3(np.stack([g.ravel() for g in grids], axis=1))
    ctype, per = _CELLS[len(space)]
    cells = _cells(mask)
    return {"points": P, "cells": cells, "points_path": "/xdmf/points", "geometry": "XYZ",
            "cells_path": "/xdmf/cells", "ctype": ctype, "per": per, "ncells": len(cells),
            "npoints": len(P), "times": times, "time": time, "sets": sets}


def _pad3(points: np.ndarray) -> np.ndarray:
    P = np.zeros((len(points), 3))
    P[:, :points.shape[1]] = points
    return P


def write_xdmf_views(h5: h5py.File, layout: dict) -> None:
    """/xdmf: the sidecar's node coordinates and cells (when the file has none of its own)
    and, for each field set and time, a virtual dataset: a flat view of that time's slice of
    /pinn/<field> etc. that holds no data of its own. XDMF readers without hyperslab support
    (meshio) read the views; the values live once, in the field arrays."""
    g = h5.create_group("xdmf")
    g.attrs["description"] = ("node coordinates, cells and flat virtual views of the field "
                              "arrays (one per time) for fields.xdmf; no copies of field data")
    if layout["points"] is not None:
        _dataset(g, "points", layout["points"], description="node coordinates (x, y, z)")
    if layout["cells"] is not None:
        _dataset(g, "cells", layout["cells"], dtype=np.int64,
                 description=f"{layout['ctype']} cells over the nodes inside the domain")
    n = layout["npoints"]
    for label, data in layout["sets"].items():
        for f in data:
            src = h5[f"{label}/{f}"]
            for k in range(len(layout["times"])):
                view = h5py.VirtualLayout(shape=(n,), dtype=src.dtype)
                vsrc = h5py.VirtualSource(".", src.name, shape=src.shape)  # ".": this file
                view[:] = vsrc[k] if layout["time"] else vsrc
                g.create_virtual_dataset(f"{label}_{f}_{k}", view, fillvalue=np.nan)


def write_xdmf(path: Path, layout: dict, h5name: str, name: str) -> None:
    """An XDMF 3 sidecar: unstructured cells over the grid nodes inside the domain, point
    data for every field (a temporal collection for time-dependent problems)."""
    n, nc, per, ctype = layout["npoints"], layout["ncells"], layout["per"], layout["ctype"]
    cells = f'{h5name}:{layout["cells_path"]}'
    if per is None:   # Mixed: one flat array of (type code, nodes...) per cell
        topo = (f'<Topology TopologyType="Mixed" NumberOfElements="{nc}">'
                f'<DataItem DataType="Int" Precision="8" Dimensions="{len(layout["cells"])}" '
                f'Format="HDF">{cells}</DataItem></Topology>')
    else:
        topo = (f'<Topology TopologyType="{ctype}" NumberOfElements="{nc}" NodesPerElement="{per}">'
                f'<DataItem DataType="Int" Precision="8" Dimensions="{nc} {per}" Format="HDF">'
                f'{cells}</DataItem></Topology>')
    geo, dims = layout["geometry"], {"XY": 2, "XYZ": 3}[layout["geometry"]]
    geometry = (f'<Geometry GeometryType="{geo}"><DataItem DataType="Float" Precision="8" '
                f'Dimensions="{n} {dims}" Format="HDF">{h5name}:{layout["points_path"]}</DataItem>'
                '</Geometry>')

    def grid_xml(k: int, t) -> str:
        attrs = "".join(
            f'<Attribute Name="{label}_{f}" AttributeType="Scalar" Center="Node">'
            f'<DataItem DataType="Float" Precision="8" Dimensions="{n}" Format="HDF">'
            f'{h5name}:/xdmf/{label}_{f}_{k}</DataItem></Attribute>'
            for label, data in layout["sets"].items() for f in data)
        tx = f'<Time Value="{t:.17g}"/>' if t is not None else ""
        return (f'<Grid Name="{name}{"" if t is None else f"_{k}"}" GridType="Uniform">{tx}'
                f'{topo}{geometry}{attrs}</Grid>')

    body = "".join(grid_xml(k, t) for k, t in enumerate(layout["times"]))
    if layout["time"]:
        body = f'<Grid Name="TimeSeries" GridType="Collection" CollectionType="Temporal">{body}</Grid>'
    path.write_text('<?xml version="1.0"?>\n<Xdmf Version="3.0" xmlns:xi="http://www.w3.org/2001/XInclude">'
                    f'<Domain>{body}</Domain></Xdmf>\n')
