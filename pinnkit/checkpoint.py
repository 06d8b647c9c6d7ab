"""Checkpoint files: atomic writes and safe loading (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import TrainingError

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` without executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path} to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc
