"""Training Fourier neural operators on a `Dataset`: ``train_operator(data, model="fno", ...)``.

Loss: the relative L2 error per sample, averaged over the batch (Li et al. 2021, Sec. 5);
Adam with a step schedule (the learning rate halves every ``step_size`` epochs); the last
``n_test`` samples are held out and evaluated every ``eval_every`` epochs; checkpoints are
written atomically and ``resume=True`` continues from one.
"""

from __future__ import annotations

import json
import os
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import OptionsError, TrainingError
from ..pinn.progress import Progress
from .dataset import Dataset, DatasetError
from .fno import FNO
from .normalize import NORMALIZERS

__all__ = ["train_operator", "OperatorModel", "MODELS", "relative_l2"]

#: model name -> network class (the CLI's --model choices come from here)
MODELS = {"fno": FNO}


def relative_l2(pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor):
    """Per-sample ‖pred − true‖₂ / ‖true‖₂ over all non-sample axes."""
    if isinstance(pred, torch.Tensor):
        d = (pred - true).flatten(1).norm(dim=1)
        return d / true.flatten(1).norm(dim=1).clamp_min(1e-30)
    d = np.linalg.norm((pred - true).reshape(len(pred), -1), axis=1)
    return d / np.maximum(np.linalg.norm(np.reshape(true, (len(true), -1)), axis=1), 1e-30)


@dataclass
class _Layout:
    """What the network needs to know about the data: channel names, grid, normalisation
    (``normalize``: a `NORMALIZERS` name; the means and stds are that normaliser's state)."""

    inputs: list
    outputs: list
    axes: list
    box: dict          # axis -> (lo, hi)
    periodic: dict     # axis -> bool
    in_mean: list
    in_std: list
    out_mean: list
    out_std: list
    normalize: str = "scalar"
    train_shape: list | None = None   # the training grid (padding scales from it)
    # space-time operators (a dataset made with times=): the output grid is (t, *space), the
    # inputs are over space only and broadcast over t; t values scaled to [0, 1]
    times: list | None = None

    @property
    def input_axes(self) -> list:
        return self.axes[1:] if self.times is not None else self.axes

    def padding(self, pad: int, shape: tuple) -> list | None:
        """Points of padding per axis on a grid of ``shape`` that pad the same length of the
        box as ``pad`` points on the training grid (None: ``pad`` as it is)."""
        if not pad or self.train_shape is None:
            return None
        if self.times is not None:   # pad the (fixed) t axis only, which is not periodic
            return [pad if not self.periodic.get(a, False) else 0 for a in self.axes]
        cells = [n if self.periodic[a] else n - 1 for a, n in zip(self.axes, shape)]
        train = [n if self.periodic[a] else n - 1 for a, n in zip(self.axes, self.train_shape)]
        return [int(round(pad * c / t)) for c, t in zip(cells, train)]

    def normalizers(self) -> tuple:
        cls = NORMALIZERS[self.normalize]
        return cls(self.in_mean, self.in_std), cls(self.out_mean, self.out_std)

    def grid(self, shape: tuple) -> list:
        """Per axis, node positions scaled to [0, 1] for a grid of ``shape`` on the box."""
        out = []
        for a, n in zip(self.axes, shape):
            if self.times is not None and a == self.axes[0]:
                out.append(torch.tensor(self.times, dtype=torch.float32))
            elif self.periodic[a]:
                out.append(torch.arange(n, dtype=torch.float32) / n)
            else:
                out.append(torch.linspace(0, 1, n))
        return out


class OperatorModel:
    """A trained neural operator: ``model({"u0": (batch, *grid)}) -> {"u": (batch, *grid)}``
    on any grid of the training box. ``history``: per-epoch losses; ``info``: run details."""

    def __init__(self, net: torch.nn.Module, layout: _Layout, config: dict,
                 history: dict | None = None, info: dict | None = None) -> None:
        self.net, self.layout, self.config = net, layout, dict(config)
        self.history = history or {"epoch": [], "train": [], "test": [], "lr": [], "time": []}
        self.info = dict(info or {})
        self._norms = layout.normalizers()
        self._stats: dict = {}   # (grid shape, device) -> normalisation tensors on that grid

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _forward(self, a: torch.Tensor) -> torch.Tensor:
        L = self.layout
        dev, shape = a.device, tuple(a.shape[2:])
        out_shape = shape if L.times is None else (len(L.times),) + shape
        key = (shape, str(dev))
        if key not in self._stats:
            per_in = [L.periodic[ax] for ax in L.input_axes]
            per_out = [L.periodic.get(ax, False) for ax in L.axes]
            stats = [*self._norms[0].on_grid(shape, per_in),
                     *self._norms[1].on_grid(out_shape, per_out)]
            self._stats[key] = [torch.from_numpy(v).to(dev) for v in stats]
        mi, si, mo, so = self._stats[key]
        a = (a - mi) / si
        if L.times is not None:       # the input at every time slice, beside the t coordinate
            a = a.unsqueeze(2).expand(-1, -1, len(L.times), *shape)
        grid = [g.to(dev) for g in L.grid(out_shape)]
        pad = L.padding(self.config["padding"], out_shape)
        return self.net(a, grid, pad) * so + mo

    def __call__(self, inputs: Mapping[str, Any], batch_size: int = 100) -> dict:
        """Predict: input name -> array (batch, *grid) -> field -> array (batch, *grid)."""
        L = self.layout
        missing = [k for k in L.inputs if k not in inputs]
        extra = sorted(set(inputs) - set(L.inputs))
        if missing or extra:
            raise TrainingError(f"operator inputs are {', '.join(L.inputs)}; got "
                                f"{', '.join(map(str, inputs)) or 'none'}")
        arrays = [np.asarray(inputs[k], dtype=np.float32) for k in L.inputs]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != len(L.input_axes) + 1:
            raise TrainingError(f"operator inputs must be arrays (batch, *grid) over "
                                f"({', '.join(L.input_axes)}) of one shape; got {sorted(shapes)}")
        x = torch.from_numpy(np.stack(arrays, axis=1))
        outs = []
        self.net.eval()
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                outs.append(self._forward(x[i:i + batch_size].to(self.device)).cpu().numpy())
        y = np.concatenate(outs).astype(float)
        return {f: y[:, j] for j, f in enumerate(L.outputs)}

    def evaluate(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict:
        """{field: mean relative L2 error} of the prediction for ``inputs`` against ``outputs``."""
        pred = self(inputs)
        return {f: float(np.mean(relative_l2(pred[f], np.asarray(outputs[f])))) for f in pred}

    def save(self, path: str | os.PathLike) -> None:
        """Write weights, layout and config atomically (``OperatorModel.load`` reads it)."""
        state = {"net": self.net.state_dict(), "layout": self.layout.__dict__,
                 "config": self.config, "history": self.history, "info": self.info}
        _atomic_save(state, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "OperatorModel":
        state = torch.load(path, map_location=device, weights_only=False)
        layout = _Layout(**state["layout"])
        net = _build(state["config"], layout).to(device)
        net.load_state_dict(state["net"])
        return cls(net, layout, state["config"], state["history"], state["info"])


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _build(config: dict, layout: _Layout) -> torch.nn.Module:
    cls = MODELS[config["model"]]
    return cls(len(layout.inputs), len(layout.outputs), config["modes"], width=config["width"],
               layers=config["layers"], dim=len(layout.axes), padding=config["padding"])


def _layout(data: Dataset, n_train: int, normalize: str = "scalar") -> _Layout:
    attrs = data.attrs
    try:
        in_axes = json.loads(attrs["input_axes"])
        out_axes = json.loads(attrs["output_axes"])
        box = {k: tuple(v) for k, v in json.loads(attrs["box"]).items()}
        periodic = json.loads(attrs["periodic"])
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{data.path}: dataset attributes are missing or damaged "
                           f"({exc})") from None
    times = None
    if out_axes and out_axes[0] in data.coords and out_axes[0] not in periodic:
        # outputs over (t, *space) from pk.dataset(..., times=...): a space-time operator
        t = np.asarray(data.coords[out_axes[0]], float)
        if all(ax == out_axes[1:] for ax in in_axes.values()) and len(t) > 1:
            times = ((t - t[0]) / (t[-1] - t[0])).tolist()
    for k, ax in in_axes.items():
        if ax != (out_axes if times is None else out_axes[1:]):
            raise TrainingError(f"input {k!r} is defined over ({', '.join(ax)}) but the outputs "
                                f"over ({', '.join(out_axes)}); the FNO needs one grid")
    if len(out_axes) not in (1, 2):
        raise TrainingError(f"the FNO takes 1-D or 2-D grids; the outputs have axes {out_axes}")
    ins, outs = sorted(data.inputs), sorted(data.outputs)
    cls = NORMALIZERS[normalize]
    im, isd = cls.fit(np.stack([data.inputs[k][:n_train] for k in ins], 1)).state()
    om, osd = cls.fit(np.stack([data.outputs[k][:n_train] for k in outs], 1)).state()
    return _Layout(ins, outs, out_axes, box, periodic, im, isd, om, osd, normalize, times=times)


def _as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        return Dataset.load(data)
    raise TrainingError(f"train_operator() needs a pk.Dataset or a dataset path, got "
                        f"{type(data).__name__}")


def train_operator(data: Dataset | str | os.PathLike, model: str = "fno", modes: int = 16,
                   width: int = 64, layers: int = 4, epochs: int = 500, batch_size: int = 20,
                   lr: float = 1e-3, weight_decay: float = 1e-4, step_size: int | None = None,
                   gamma: float = 0.5, n_train: int | None = None, n_test: int | None = None,
                   padding: int = 0, subsample: int = 1, normalize: str = "scalar",
                   seed: int = 0, device: str = "cpu",
                   checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
                   resume: bool = False, eval_every: int = 1, quiet: bool = False,
                   progress_seconds: float = 30.0,
                   physics_weight: float = 0.0, problem: Any = None,
                   physics_inputs: Mapping[str, Any] | None = None,
                   callback: Callable[[int, OperatorModel], Any] | None = None) -> OperatorModel:
    """Train a neural operator from the inputs to the outputs of ``data``.

    The first ``n_train`` samples train (default: all but ``n_test``), the last ``n_test``
    (default n // 6) are the held-out test set. subsample: train on every subsample-th grid
    point per axis (a coarser grid of the same box; the final test error in ``info`` is at
    the data's resolution: zero-shot when subsample > 1). normalize: "scalar" (a mean and std
    per channel) or "pointwise" (per channel and grid point, Li et al.'s
    UnitGaussianNormalizer; see `pinnkit.operator.normalize`), fitted on the training samples
    and stored with the model. step_size: epochs between halvings of the
    learning rate (default epochs // 5). checkpoint: a file written every ``checkpoint_every``
    epochs; resume=True continues from it. callback(epoch, model) after each epoch; returning
    True stops. Progress: a bar on a terminal, elsewhere a line to logging ("pinnkit.train")
    at most every ``progress_seconds``. physics_weight > 0 adds that multiple of the squared relative residual
    ‖r(prediction)‖² / ‖r(0)‖² (per sample, batch mean) of the steady spec ``problem`` on
    the predicted grid, through the reference's finite-difference
    operators (`GridResidual`), at the training inputs and at the unlabeled ``physics_inputs``
    ({name: (m, *grid)}, no solutions needed), a batch of each per step. A dataset made
    with ``times=`` gives a space-time operator u0 -> u(t, *x) (a (t, *x) FNO, the input
    broadcast over t; the data loss averages the relative L2 of each time slice; ``padding``
    pads t only; ``info["test_l2re"]`` is at the final time); its physics loss is the
    exponential-integrator defect between slices (`SpaceTimeResidual`). Returns an
    `OperatorModel` whose ``info`` has the final test error per field.
    Raises `TrainingError` on a bad option, `DatasetError` on a bad dataset.
    """
    data = _as_dataset(data)
    if model not in MODELS:
        raise OptionsError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    for name, v in (("modes", modes), ("width", width), ("layers", layers), ("epochs", epochs),
                    ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise OptionsError(f"{name} must be a positive int, got {v!r}")
    if not lr > 0:
        raise OptionsError(f"lr must be positive, got {lr!r}")
    if normalize not in NORMALIZERS:
        raise OptionsError(f"unknown normalize={normalize!r}; choose one of "
                           f"{', '.join(NORMALIZERS)}")
    n = data.n
    n_test = max(1, n // 6) if n_test is None else int(n_test)
    n_train = n - n_test if n_train is None else int(n_train)
    if n_test < 1 or n_train < 1 or n_train + n_test > n:
        raise OptionsError(f"n_train={n_train} + n_test={n_test} must be positive and at most "
                           f"the {n} samples of {data.path}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionsError("device 'cuda' requested but no CUDA device is available")
    config = {"model": model, "modes": int(modes), "width": int(width), "layers": int(layers),
              "epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
              "weight_decay": float(weight_decay),
              "step_size": int(step_size or max(1, epochs // 5)),
              "gamma": float(gamma), "n_train": n_train, "n_test": n_test,
              "padding": int(padding), "subsample": int(subsample), "normalize": normalize,
              "seed": int(seed),
              "physics_weight": float(physics_weight),
              "dataset": str(data.path)}
    if not physics_weight >= 0:
        raise OptionsError(f"physics_weight must be >= 0, got {physics_weight!r}")
    if physics_weight > 0 and problem is None:
        raise OptionsError("physics_weight > 0 needs problem= (the spec whose residual is used)")
    if physics_weight > 0 and problem.name != data.attrs.get("problem"):
        raise TrainingError(f"problem {problem.name!r} is not the dataset's problem "
                            f"{data.attrs.get('problem')!r}")
    layout = _layout(data, n_train, normalize)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = _build(config, layout).to(device)
    om = OperatorModel(net, layout, config)
    if not isinstance(subsample, (int, np.integer)) or subsample < 1:
        raise OptionsError(f"subsample must be a positive int, got {subsample!r}")
    cut = (slice(None), slice(None)) + tuple(
        slice(None, None, int(subsample)) for _ in layout.input_axes)
    cut_out = cut if layout.times is None else cut[:2] + (slice(None),) + cut[2:]
    for a, n_a in zip(layout.input_axes, next(iter(data.inputs.values())).shape[1:]):
        cells = n_a if layout.periodic[a] else n_a - 1
        if cells % subsample:
            raise TrainingError(f"subsample={subsample} does not divide the {cells} cells of axis "
                                f"{a}: the coarse grid would not span the box")
    X = torch.from_numpy(np.stack([data.inputs[k] for k in layout.inputs], 1)[cut]
                         .astype(np.float32))
    Y = torch.from_numpy(np.stack([data.outputs[k] for k in layout.outputs], 1)[cut_out]
                         .astype(np.float32))
    layout.train_shape = list(Y.shape[2:])
    Xtr, Ytr = X[:n_train].to(device), Y[:n_train].to(device)
    physics, Xph = None, None
    if physics_weight > 0:
        from .physics import GridResidual, SpaceTimeResidual
        if layout.times is None:
            physics = GridResidual(problem, tuple(X.shape[2:]))
        else:
            physics = SpaceTimeResidual(problem, tuple(Y.shape[2:]),
                                        np.asarray(data.coords[layout.axes[0]], float))
        if physics_inputs is not None:
            Xph = torch.from_numpy(np.stack([np.asarray(physics_inputs[k])
                                             for k in layout.inputs], 1)[cut]
                                   .astype(np.float32)).to(device)

    def physics_loss(x: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        return physics.relative({f: pred[:, j] for j, f in enumerate(layout.outputs)},
                                {k: x[:, j] for j, k in enumerate(layout.inputs)}).mean()
    Xte, Yte = X[n - n_test:].to(device), Y[n - n_test:].to(device)

    def data_loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        if layout.times is None:
            return relative_l2(pred, true).mean()
        # space-time: the relative L2 of each time slice (of each field), averaged, so that
        # late slices, where the solution has decayed, weigh as much as early ones
        return relative_l2(pred.flatten(0, 2), true.flatten(0, 2)).mean()

    def final(v: torch.Tensor) -> torch.Tensor:
        """The operator's target: the whole output, or its final time slice."""
        return v if layout.times is None else v[:, :, -1]
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=config["step_size"], gamma=gamma)
    start, elapsed = 0, 0.0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume:
        if ckpt is None or not ckpt.exists():
            raise TrainingError(f"resume=True but no checkpoint at {ckpt}")
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state["config"] != config:
            diff = sorted(k for k in config if state["config"].get(k) != config[k])
            raise TrainingError(f"checkpoint {ckpt} was made with other settings "
                                f"({', '.join(diff)})")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        om.history, start, elapsed = state["history"], state["epoch"], state["elapsed"]

    def test_error() -> float:
        net.eval()
        with torch.no_grad():
            errs = [relative_l2(final(om._forward(Xte[i:i + 100])), final(Yte[i:i + 100]))
                    for i in range(0, n_test, 100)]
        return float(torch.cat(errs).mean())

    # data parallel (torchrun, DESIGN §9): every rank draws the same permutation and takes the
    # samples rank::world of each batch; gradients and loss sums are all-reduced, so every rank
    # takes the one-process step on the whole batch
    from ..distributed import current
    shard = current()
    params = list(net.parameters())
    bar = Progress(str(data.attrs.get("problem", "")), "FNO", "epoch", "epoch", start, epochs,
                   quiet, shard.main, progress_seconds)
    t0 = _time.perf_counter() - elapsed
    for epoch in range(start, epochs):
        net.train()
        perm = torch.randperm(n_train, generator=gen).to(device)
        total = 0.0
        for i in range(0, n_train, batch_size):
            batch = perm[i:i + batch_size]
            idx = batch[shard.rank::shard.world]      # all of it in one process
            # this rank's share of the batch mean: the sum over the ranks is that mean
            share = len(idx) / len(batch)
            opt.zero_grad()
            if len(idx):
                pred = om._forward(Xtr[idx])
                loss = data_loss(pred, Ytr[idx]) * share
                if physics is not None:
                    loss = loss + physics_weight * share * physics_loss(Xtr[idx], pred)
            if physics is not None and Xph is not None:
                j = torch.randint(len(Xph), (len(batch),), generator=gen).to(device)
                j = j[shard.rank::shard.world]
                if len(j):
                    loss = loss + physics_weight * share * physics_loss(Xph[j], om._forward(Xph[j]))
            if len(idx):
                loss.backward()
                value = loss.detach().reshape(1).clone()
            else:       # a last batch smaller than the ranks: nothing here, zeros to the sum
                for p in params:
                    p.grad = torch.zeros_like(p)
                value = torch.zeros(1, device=device)
            if shard.active:
                shard.all_reduce_many([p.grad for p in params if p.grad is not None] + [value])
            if not torch.isfinite(value).all():
                raise TrainingError(f"non-finite loss at epoch {epoch + 1}; lower lr ({lr})")
            opt.step()
            total += float(value) * len(batch)
        sched.step()
        h = om.history
        h["epoch"].append(epoch + 1)
        h["train"].append(total / n_train)
        h["test"].append(test_error() if ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs)
                         else float("nan"))
        h["lr"].append(opt.param_groups[0]["lr"])
        h["time"].append(_time.perf_counter() - t0)
        bar.show(epoch + 1, h["train"][-1])
        bar.log(epoch + 1, h["train"][-1], {"test l2re": h["test"][-1]})
        last = epoch + 1 == epochs
        if ckpt is not None and shard.main and ((epoch + 1) % checkpoint_every == 0 or last):
            _atomic_save({"net": net.state_dict(), "opt": opt.state_dict(),
                          "sched": sched.state_dict(), "gen": gen.get_state(), "config": config,
                          "history": h, "epoch": epoch + 1, "elapsed": h["time"][-1]}, ckpt)
        if callback is not None and callback(epoch + 1, om):
            break
    bar.close()
    test_inputs = {k: data.inputs[k][n - n_test:] for k in layout.inputs}
    test_outputs = {k: data.outputs[k][n - n_test:] for k in layout.outputs}
    test_l2re = om.evaluate(test_inputs, test_outputs)
    extra = {}
    if layout.times is not None:   # the operator's target is the final time (DESIGN §8)
        pred = om(test_inputs)
        extra["test_l2re_space_time"] = test_l2re
        test_l2re = {f: float(np.mean(relative_l2(pred[f][:, -1], test_outputs[f][:, -1])))
                     for f in pred}
    om.info = {"seconds": _time.perf_counter() - t0, "epochs": om.history["epoch"][-1]
               if om.history["epoch"] else 0, "test_l2re": test_l2re, **extra,
               "n_train": n_train, "n_test": n_test,
               "parameters": int(sum(p.numel() for p in net.parameters()))}
    return om
