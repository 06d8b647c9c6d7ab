"""`Solution`: a trained PINN, callable on points."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..spec import Problem
from .train_options import TrainOptions

__all__ = ["Solution"]


class Solution:
    """A trained PINN. ``sol(points)`` evaluates every field; ``history``, ``parameters``."""

    world_size: int = 1         # data-parallel ranks that trained it (pinnkit.distributed)
    backend: str = "none"       # their torch.distributed backend

    def __init__(self, problem: Problem, model: torch.nn.Module, params: dict,
                 options: TrainOptions, history: dict, seconds: float, messages: list,
                 networks: Any = None) -> None:
        self.problem = problem
        self.networks = networks if networks is not None else torch.nn.ModuleDict()
        self.model = model
        self._params = params
        self.options = options
        self.history = history
        self.seconds = seconds
        self.messages = messages
        self.threads: int | None = None     # torch CPU threads it was trained with
        self.fields = list(problem.fields)
        self.coord_names = problem.coord_names

    @property
    def parameters(self) -> dict[str, float]:
        """Trained values of the problem's unknown parameters."""
        return {k: float(v.detach().cpu()) for k, v in self._params.items()}

    @property
    def final_loss(self) -> float:
        return float(self.history["loss"][-1]) if self.history.get("loss") else float("nan")

    def learned_terms(self) -> dict:
        """{network name: f(X (n, n_in) numpy) -> (n, n_out) numpy} of the learned terms."""
        def wrap(module: torch.nn.Module):
            def f(X: np.ndarray) -> np.ndarray:
                p = next(module.parameters())
                with torch.no_grad():
                    x = torch.as_tensor(np.asarray(X, float), dtype=p.dtype, device=p.device)
                    return module(x).cpu().numpy().astype(np.float64)
            return f
        return {name: wrap(m) for name, m in self.networks.items()}

    def __call__(self, points: dict, batch_size: int = 65536) -> dict[str, np.ndarray]:
        """Fields at ``points`` (coordinate name -> arrays of equal shape) -> name -> array."""
        missing = [n for n in self.coord_names if n not in points]
        if missing:
            raise KeyError(f"points lack coordinate(s) {', '.join(missing)}; need "
                           f"{', '.join(self.coord_names)}")
        arrays = np.broadcast_arrays(*[np.asarray(points[n], dtype=float) for n in self.coord_names])
        shape = arrays[0].shape
        X = np.stack([a.ravel() for a in arrays], axis=1)
        p = next(self.model.parameters())
        outs = []
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                xb = torch.as_tensor(X[i:i + batch_size], dtype=p.dtype, device=p.device)
                outs.append(self.model(xb).cpu().numpy().astype(np.float64))
        Y = np.concatenate(outs) if outs else np.zeros((0, len(self.fields)))
        return {f: Y[:, i].reshape(shape) for i, f in enumerate(self.fields)}

    def __repr__(self) -> str:
        return (f"Solution({self.problem.name!r}, steps={self.options.steps}, "
                f"lbfgs_steps={self.options.lbfgs_steps}, final_loss={self.final_loss:.3e})")
