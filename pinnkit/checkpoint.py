"""Checkpoint files: atomic, durable writes and safe loading (``torch.load(weights_only=True)``).

A checkpoint is only ever read with ``weights_only=True``: a file that needs more (pickled
code) is refused, and the refusal never suggests ``weights_only=False`` (which would run
whatever the file contains). Every failure to read is one `TrainingError` line.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch

from .atomic import atomic_write
from .errors import TrainingError

__all__ = ["save_checkpoint", "load_checkpoint", "REQUIRED_KEYS", "problem_fingerprint", "mismatch"]

#: keys every pinnkit checkpoint has (a file without one of them is not a pinnkit checkpoint)
REQUIRED_KEYS = ("problem", "fingerprint", "model", "params", "adam", "sched", "lbfgs", "step",
                 "lbfgs_iter", "elapsed", "history", "messages", "batches", "torch_rng")


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically and durably (`pinnkit.atomic`); a failed write
    raises `WriteError` naming the file and leaves the previous checkpoint as it was."""
    with atomic_write(path, "wb") as fh:
        torch.save(state, fh)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if "weights_only" in text or "WeightsUnpickler" in text or "Unsupported global" in text:
        return "it holds objects outside the plain-tensor checkpoint format (refused unread)"
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:200]


def load_checkpoint(path: str | os.PathLike,
                    required: tuple = REQUIRED_KEYS) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` without executing pickled code.

    Raises `TrainingError` (one line) when the file is missing, a directory, empty,
    truncated, not a torch file, holds anything but plain tensors and containers, or lacks
    one of ``required`` (default `REQUIRED_KEYS`, the PINN trainer's)."""
    path = Path(path)
    if path.is_dir():
        raise TrainingError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path} to resume from")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise TrainingError(f"checkpoint {path} is empty (0 bytes): it was not written by "
                            "pinnkit or its write was cut off; remove it to start afresh")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated or foreign file
        raise TrainingError(f"cannot read checkpoint {path}: {_first_line(exc)}; it is damaged or "
                            "not a pinnkit checkpoint (remove it to start afresh)") from None
    if not isinstance(state, dict):
        raise TrainingError(f"checkpoint {path} is not a pinnkit checkpoint (it holds a "
                            f"{type(state).__name__}, not a dict)")
    missing = [k for k in required if k not in state]
    if missing:
        raise TrainingError(f"checkpoint {path} is not a complete pinnkit checkpoint (missing "
                            f"{', '.join(missing)}); remove it to start afresh")
    return state


# --------------------------------------------------------------------------- fingerprints

def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(p, (list, tuple)):
            h.update(b"[")
            for q in p:
                h.update(_digest(q).encode())
            h.update(b"]")
        elif isinstance(p, dict):
            h.update(_digest(sorted((str(k), _digest(v)) for k, v in p.items())).encode())
        elif isinstance(p, sympy.Basic):
            h.update(sympy.srepr(p).encode())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:16]


def _callable_digest(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return _digest(type(fn).__qualname__, repr(fn))
    return _digest(getattr(fn, "__qualname__", ""), code.co_code, repr(code.co_consts),
                   repr(getattr(fn, "__defaults__", None)))


def _domain_digest(domain: Any) -> str:
    """Coordinates, bounding box, boundary names and a fixed probe sample of the domain (any
    change of shape, size, holes or mesh moves the probe points or their normals)."""
    parts: list = [[str(c) for c in domain.coords], list(domain.boundary_names)]
    try:
        lo, hi = domain.bbox
        parts += [np.asarray(lo, float), np.asarray(hi, float)]
        inner = domain.sample_interior(16, "halton", seed=12345)
        pts, normals = domain.sample_boundary(16, seed=12345)
        parts += [inner, pts, normals]
        if getattr(domain, "time", None) is not None:
            parts += [float(domain.t0), float(domain.t1)]
    except Exception:  # noqa: BLE001 - a domain that cannot be probed: its description
        parts.append(repr(domain))
    return _digest(*parts)


def problem_fingerprint(problem: Any, batches: dict | None = None) -> dict[str, str]:
    """{component: hash} over everything of ``problem`` that determines a training run:
    equations, conditions, domain, data, exact solution, parameters (start values), and the
    collocation points of ``batches`` (sampled from the seed and counts)."""
    terms = problem.terms
    fp = {
        "equations": _digest([(k, v) for k, v in problem.equations.items()]),
        "conditions": _digest([(t.name, t.kind, list(t.exprs), tuple(t.on), t.coord)
                               for t in terms if t.kind not in ("pde", "data")]),
        "data": _digest([(t.name, list(t.exprs), t.data_points, t.data_values)
                         for t in terms if t.kind == "data"]),
        "domain": _domain_digest(problem.domain),
        "parameters": _digest([(p.name, p.init) for p in problem.parameters]),
        "exact": _digest([(k, _callable_digest(v) if callable(v) and not isinstance(v, sympy.Basic)
                           else v) for k, v in problem.exact.items()]),
    }
    if batches is not None:
        fp["collocation points"] = _digest({k: dict(b) for k, b in batches.items()})
    return fp


def mismatch(saved_fp: Any, fp: dict, saved_opts: Any, opts: dict) -> str | None:
    """What differs between a checkpoint's fingerprint/options and this run's, in words
    (None when nothing does)."""
    if not isinstance(saved_fp, dict):
        return "it was written by an older pinnkit without a fingerprint of the problem"
    changed = [k for k in fp if saved_fp.get(k) != fp[k]]
    if isinstance(saved_opts, str):
        try:
            saved_opts = json.loads(saved_opts)
        except ValueError:
            saved_opts = None
    if not isinstance(saved_opts, dict):
        return "it has no record of its options"
    diff = [f"{k} {saved_opts.get(k)!r} -> {opts.get(k)!r}"
            for k in sorted(set(saved_opts) | set(opts)) if saved_opts.get(k) != opts.get(k)]
    if not changed and not diff:
        return None
    parts = []
    if changed:
        parts.append(f"the problem's {', '.join(changed)} changed")
    if diff:
        parts.append(f"different options ({', '.join(diff)})")
    return "; ".join(parts)
