"""Checking the options of `pk.train` in one place, before any work (torchdiffeq's
``_check_inputs``).

`check_options` checks each option of `TrainOptions` on its own: its type, its range, a name
from its registry. `check_problem_options` checks the options that depend on the problem: a
time-dependent problem for time marching and causal weighting, a Periodic condition for the
periodic embedding, term and coordinate names, points for every kind of term, and the size
of the network against the memory of the device. Both raise `OptionsError` with a message
that names the option and lists the valid values, read from the registries themselves (the
CLI's choices come from `option_choices` too).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from .errors import OptionsError

__all__ = ["KeywordOptions", "DEVICES", "option_choices", "check_options",
           "check_problem_options", "check_operator_options", "trainable_parameter_count"]

class KeywordOptions:
    """Base of the options dataclasses (`TrainOptions`, `ODEOptions`): ``from_kwargs`` refuses
    unknown names, listing the valid ones, then checks every value (``validate``)."""

    #: appended to "unknown option(s) ..." (which training method the options belong to)
    WHOSE = ""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_kwargs(cls, **kwargs: Any):
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise OptionsError(f"unknown option(s) {', '.join(unknown)}{cls.WHOSE}; valid "
                               f"options: {', '.join(cls.names())}")
        opts = cls(**kwargs)
        opts.validate()
        return opts

    def validate(self) -> None:
        raise NotImplementedError


#: devices the option ``device`` takes (and "cuda:N")
DEVICES = ("auto", "cpu", "cuda")
#: seeds go to torch.manual_seed, numpy's default_rng and torch.Generator (all take these)
MAX_SEED = 2**63 - 1

# options by kind (every field of TrainOptions is in exactly one of these, or checked below)
_COUNTS = ("steps", "lbfgs_steps", "seed", "interior_points", "boundary_points", "initial_points",
           "resample_every", "checkpoint_every", "lbfgs_history", "time_windows", "threads",
           "fourier_features", "adaptive_points", "adaptive_candidates")
_POSITIVE_INTS = ("width", "depth", "log_every", "lr_decay_steps", "causal_bins", "weight_every",
                  "adaptive_every", "ntk_points", "rba_every")
_FLAGS = ("periodic_embedding", "weight_factorization", "mesh_vertices", "hard_constraints",
          "resume", "quiet")
# name -> (low, low included, high, high included, what the message says)
_NUMBERS = {
    "lr": (0, False, None, False, "a positive number"),
    "lr_decay": (0, False, None, False, "a positive number"),
    "fourier_scale": (0, False, None, False, "a positive number"),
    "causal_eps": (0, True, None, False, "a number >= 0"),
    "rba_gamma": (0, True, 1, False, "a number in [0, 1)"),
    "rba_eta": (0, False, None, False, "a positive number"),
    "weight_momentum": (0, True, 1, False, "a number in [0, 1)"),
    "relobralo_alpha": (0, True, 1, True, "a number in [0, 1]"),
    "relobralo_temperature": (0, False, None, False, "a positive number"),
    "relobralo_saudade": (0, True, 1, True, "a number in [0, 1]"),
    "rad_k": (0, True, None, False, "a number >= 0"),
    "rad_c": (0, True, None, False, "a number >= 0"),
    "progress_seconds": (0, True, None, False, "a number >= 0"),
}
# Adam keeps the weights, their gradients and two moments: four numbers per parameter
_ADAM_COPIES = 4


def option_choices() -> dict[str, tuple[str, ...]]:
    """{option: the names it takes}, from the registries of the parts the names select."""
    from .derivatives import ENGINES
    from .geometry import SAMPLERS
    from .nn import ACTIVATIONS, NETWORKS
    from .pinn.points import ADAPTIVE_SAMPLING, POINT_WEIGHTINGS
    from .pinn.second_phase import SECOND_PHASES
    from .pinn.train_options import DTYPES
    from .weighting import WEIGHTINGS
    return {"network": tuple(NETWORKS), "activation": tuple(ACTIVATIONS),
            "sampling": tuple(SAMPLERS), "engine": tuple(ENGINES),
            "optimizer": tuple(SECOND_PHASES), "loss_weighting": ("fixed", *WEIGHTINGS),
            "point_weighting": ("none", *POINT_WEIGHTINGS), "adaptive": ("none", *ADAPTIVE_SAMPLING),
            "dtype": tuple(DTYPES), "lbfgs_dtype": tuple(DTYPES), "device": DEVICES}


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_number(v: Any, finite: bool = True) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_)) and (not finite or math.isfinite(v)))


def check_options(opts: Any) -> None:
    """Every option of ``opts`` (a `TrainOptions`) on its own; `OptionsError` at the first
    bad one."""
    for name in _COUNTS:
        v = getattr(opts, name)
        if not is_int(v) or v < 0:
            raise OptionsError(f"option {name} must be a non-negative integer, got {v!r}")
    if opts.seed > MAX_SEED:
        raise OptionsError(f"option seed must be at most 2**63 - 1, got {opts.seed!r}")
    for name in _POSITIVE_INTS:
        v = getattr(opts, name)
        if not is_int(v) or v < 1:
            raise OptionsError(f"option {name} must be a positive integer, got {v!r}")
    for name in _FLAGS:
        v = getattr(opts, name)
        if not isinstance(v, (bool, np.bool_)):
            raise OptionsError(f"option {name} must be true or false, got {v!r}")
    for name, (lo, lo_in, hi, hi_in, what) in _NUMBERS.items():
        v = getattr(opts, name)
        if is_number(v, finite=False) and not math.isfinite(v):
            raise OptionsError(f"option {name} must be a finite number, got {v!r}")
        if not is_number(v) or (v < lo if lo_in else v <= lo) or \
                (hi is not None and (v > hi if hi_in else v >= hi)):
            raise OptionsError(f"option {name} must be {what}, got {v!r}")
    for name, allowed in option_choices().items():
        v = getattr(opts, name)
        if name == "device" and isinstance(v, str) and v.startswith("cuda:") and v[5:].isdigit():
            continue
        if not isinstance(v, str) or v not in allowed:
            extra = " (or cuda:N)" if name == "device" else ""
            raise OptionsError(f"option {name} must be one of {', '.join(allowed)}{extra}, "
                               f"got {v!r}")
    from .pinn.train_options import COMPILE_MODES
    c = opts.compile
    if not (isinstance(c, (bool, np.bool_)) or (isinstance(c, str) and (c in COMPILE_MODES
                                                                        or c == "auto"))):
        raise OptionsError(f"option compile must be auto, true, false or one of torch.compile's "
                           f"modes {', '.join(COMPILE_MODES)}, got {c!r}")
    for name, what in (("weights", "term -> weight"), ("fourier_scales", "coordinate -> σ")):
        d = getattr(opts, name)
        if not isinstance(d, dict):
            raise OptionsError(f"option {name} must be a dict {what}, got {d!r}")
        bad = {k: v for k, v in d.items() if not (isinstance(k, str) and is_number(v) and v >= 0)}
        if bad:
            raise OptionsError(f"option {name}: values must be finite numbers >= 0, got "
                               f"{', '.join(f'{k}={v!r}' for k, v in bad.items())}")
    if opts.checkpoint is not None and not isinstance(opts.checkpoint, (str, os.PathLike)):
        raise OptionsError(f"option checkpoint must be a file path or None, "
                           f"got {opts.checkpoint!r}")


def check_problem_options(opts: Any, problem: Any) -> None:
    """The options of ``opts`` that depend on ``problem``; `OptionsError` names the option."""
    name = problem.name
    terms = list(problem.terms)
    names = problem.coord_names
    unknown = sorted(set(opts.weights) - {t.name for t in terms})
    if unknown:
        raise OptionsError(f"option weights gives weights for unknown term(s) "
                           f"{', '.join(unknown)}; terms: {', '.join(t.name for t in terms)}")
    periodic = [t for t in terms if t.kind == "periodic"]
    if opts.periodic_embedding and not periodic:
        raise OptionsError(f"option periodic_embedding: problem {name!r} has no Periodic condition")
    unknown = sorted(set(opts.fourier_scales) - set(names))
    if unknown:
        raise OptionsError(f"fourier_scales for unknown coordinate(s) {', '.join(unknown)}; "
                           f"coordinates: {', '.join(names)}")
    if opts.fourier_scales and opts.periodic_embedding:
        raise OptionsError("fourier_scales cannot be combined with periodic_embedding "
                           "(the embedding changes the inputs); use fourier_scale")
    for option in ("time_windows", "causal_eps"):
        if getattr(opts, option) and problem.time is None:
            raise OptionsError(f"option {option} needs a time-dependent problem; "
                               f"{name!r} is steady")
    if opts.point_weighting == "rba" and not any(t.kind == "pde" for t in terms):
        raise OptionsError("option point_weighting='rba' needs PDE terms (interior points)")
    if opts.mesh_vertices:
        from .mesh import Mesh
        space = problem.space
        if not isinstance(space, Mesh):
            raise OptionsError(f"option mesh_vertices needs a domain on a pk.Mesh; problem "
                               f"{name!r} is on {space!r}")
    _check_counts(opts, problem, periodic)
    _check_size(opts, problem)


def _check_counts(opts: Any, problem: Any, periodic: list) -> None:
    """Each kind of term needs points: 0 interior points with an equation would train the
    boundary alone and report a meaningless fit. Terms enforced exactly need none."""
    need = {"pde": ("interior_points", opts.interior_points),
            "boundary": ("boundary_points", opts.boundary_points),
            "periodic": ("boundary_points", opts.boundary_points),
            "initial": ("initial_points", opts.initial_points)}
    short = [t for t in problem.terms if t.kind in need and need[t.kind][1] < 1]
    if not short:
        return
    enforced = {t.name for t in periodic} if opts.periodic_embedding else set()
    if opts.hard_constraints:
        from .losses import hard_constraint
        enforced |= set(hard_constraint(problem)[1])
    for t in short:
        if t.name not in enforced:
            raise OptionsError(f"problem {problem.name!r}: option {need[t.kind][0]} is 0 but term "
                               f"{t.name!r} needs {t.kind} points; give at least 1")


def trainable_parameter_count(opts: Any, problem: Any) -> int:
    """The number of trainable parameters `pk.train` would make (network, learned terms,
    unknown parameters), counted on torch's meta device: nothing is allocated."""
    import torch
    from .nn import build_model
    from .ode.modules import build_networks
    periodic = ([problem.coord_names.index(t.coord) for t in problem.terms
                 if t.kind == "periodic"] if opts.periodic_embedding else [])
    lo, hi = problem.domain.bbox
    with torch.device("meta"):
        model = build_model(len(problem.coords), len(problem.fields), lo, hi,
                            network=opts.network, width=opts.width, depth=opts.depth,
                            activation=opts.activation, fourier_features=opts.fourier_features,
                            fourier_scale=opts.fourier_scale, seed=opts.seed,
                            periodic=sorted(set(periodic)), factorized=opts.weight_factorization)
        networks = build_networks(problem.networks, opts.seed)
    return (sum(p.numel() for p in model.parameters())
            + sum(p.numel() for p in networks.parameters()) + len(problem.parameters))


def _parameter_bound(opts: Any, problem: Any) -> int:
    """An upper bound of `trainable_parameter_count` from the sizes alone: no network has
    more than 3·depth + 4 linear layers (PirateNet's), at most 4 of them on the embedded
    inputs (at most 2·inputs + 2·fourier_features wide), the others on ``width`` inputs, each
    with at most w = max(width, outputs) outputs, a bias and factorization scales (2w)."""
    e = 2 * len(problem.coords) + 2 * opts.fourier_features
    w = max(opts.width, len(problem.fields))
    bound = 4 * (e + 2) * w + (3 * opts.depth + 4) * (w + 2) * w + opts.depth
    for net in problem.networks.values():        # learned terms: MLPs of depth + 1 layers
        k = max(net.width, len(net.inputs), net.n_outputs) + 1
        bound += (net.depth + 1) * (k * k + k)
    return bound + len(problem.parameters)


def _memory_bytes(opts: Any) -> tuple[int | None, str]:
    """(bytes of memory of the device ``opts.device`` resolves to, or None when unknown;
    the device's name)."""
    from .pinn.train_options import resolve_device
    device = resolve_device(opts.device)
    if device.type == "cuda":
        import torch
        return torch.cuda.get_device_properties(device.index or 0).total_memory, str(device)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine"
    except (AttributeError, ValueError, OSError):
        return None, "this machine"


def _check_size(opts: Any, problem: Any) -> None:
    """Refuse a network whose weights, gradients and Adam moments alone exceed the device's
    memory (a huge ``width`` would otherwise end in an allocation failure or in swapping),
    and a dense quasi-Newton method on more parameters than it can hold."""
    import torch
    from .optim import MAX_DENSE_PARAMETERS
    from .pinn.second_phase import SECOND_PHASES
    from .pinn.train_options import DTYPES
    dtypes = [opts.dtype] + ([opts.lbfgs_dtype] if opts.lbfgs_steps else [])
    itemsize = max(torch.empty((), dtype=DTYPES[d]).element_size() for d in dtypes)
    memory, where = _memory_bytes(opts)
    what = (f"options width={opts.width}, depth={opts.depth} (network {opts.network!r})")
    # every network has at least `depth` layers of `width` outputs (their biases alone): a
    # bound that refuses absurd sizes before even the meta-device count
    lower = opts.depth * opts.width
    if memory is not None and lower * itemsize * _ADAM_COPIES > memory:
        raise OptionsError(f"{what} give a network of more than {lower:.3g} parameters, which "
                           f"need more than the {memory / 2**30:.3g} GiB of memory of {where}; "
                           "choose a smaller width or depth")
    bound = _parameter_bound(opts, problem)
    dense = bool(opts.lbfgs_steps) and SECOND_PHASES[opts.optimizer].dense
    if (memory is None or bound * itemsize * _ADAM_COPIES <= memory) and \
            not (dense and bound > MAX_DENSE_PARAMETERS):
        return      # small enough by the bound: no need to count (torch's meta init costs ~1 s)
    try:
        n = trainable_parameter_count(opts, problem)
    except (RuntimeError, OverflowError) as exc:     # sizes beyond torch's index range
        raise OptionsError(f"{what} give a network too large to build ({exc}); choose a smaller "
                           "width or depth") from None
    need = n * itemsize * _ADAM_COPIES
    if memory is not None and need > memory:
        raise OptionsError(f"{what} give a network of {n:.3g} parameters: its weights, gradients "
                           f"and Adam moments alone need {need / 2**30:.3g} GiB, more than the "
                           f"{memory / 2**30:.3g} GiB of memory of {where}; choose a smaller "
                           "width or depth")
    if dense and n > MAX_DENSE_PARAMETERS:
        gib = n * n * torch.empty((), dtype=DTYPES[opts.lbfgs_dtype]).element_size() / 2**30
        raise OptionsError(f"option optimizer={opts.optimizer!r} keeps a dense {n} x {n} inverse "
                           f"Hessian ({gib:.1f} GiB) for this network's {n} parameters; the limit "
                           f"is {MAX_DENSE_PARAMETERS}: use optimizer='lbfgs' or a smaller network")



# scripts/operator.py's options (pinnkit.operator.cli.DEFAULTS) by kind; None = the default
_OPERATOR_POSITIVE = ("n_train", "n_test", "modes", "width", "layers", "epochs", "batch_size",
                      "subsample")
_OPERATOR_OPTIONAL_POSITIVE = ("n_val", "workers", "speed_samples")
_OPERATOR_COUNTS = ("padding", "seed", "plot_samples", "physics_samples", "time_slices")


def check_operator_options(opts: dict) -> None:
    """The options of ``scripts/operator.py`` (a dict over `pinnkit.operator.cli.DEFAULTS`),
    checked before any dataset is made; `OptionsError` names the option."""
    from .operator.train import MODELS
    for name in _OPERATOR_POSITIVE + _OPERATOR_OPTIONAL_POSITIVE:
        v = opts.get(name)
        if (v is not None or name in _OPERATOR_POSITIVE) and not (is_int(v) and v >= 1):
            raise OptionsError(f"option {name} must be a positive integer, got {v!r}")
    for name in _OPERATOR_COUNTS:
        v = opts.get(name)
        if not (is_int(v) and v >= 0):
            raise OptionsError(f"option {name} must be a non-negative integer, got {v!r}")
    if opts.get("seed", 0) > MAX_SEED:
        raise OptionsError(f"option seed must be at most 2**63 - 1, got {opts['seed']!r}")
    res = opts.get("resolution")
    if res is not None and not (is_int(res) and res >= 2):
        raise OptionsError(f"option resolution must be an integer >= 2 (grid points per axis), "
                           f"got {res!r}")
    tests = opts.get("test_resolutions")
    if tests is not None and not (isinstance(tests, (list, tuple)) and tests
                                  and all(is_int(r) and r >= 2 for r in tests)):
        raise OptionsError(f"option test_resolutions must be a list of integers >= 2, "
                           f"got {tests!r}")
    if not (is_number(opts.get("lr")) and opts["lr"] > 0):
        raise OptionsError(f"option lr must be a positive number, got {opts.get('lr')!r}")
    if opts.get("time_slices", 0) == 1:
        raise OptionsError("option time_slices must be 0 (the final time only) or >= 2")
    grading = opts.get("time_grading", 2.0)
    if not (is_number(grading) and grading >= 1):
        raise OptionsError(f"option time_grading must be a number >= 1, got {grading!r}")
    if not (is_number(opts.get("physics_weight")) and opts["physics_weight"] >= 0):
        raise OptionsError(f"option physics_weight must be a number >= 0, got "
                           f"{opts.get('physics_weight')!r}")
    from .operator.normalize import NORMALIZERS
    if opts.get("normalize", "scalar") not in NORMALIZERS:
        raise OptionsError(f"option normalize: unknown normalize {opts.get('normalize')!r}; "
                           f"choose one of {', '.join(NORMALIZERS)}")
    if opts.get("model") not in MODELS:
        raise OptionsError(f"option model: unknown model {opts.get('model')!r}; choose one of "
                           f"{', '.join(MODELS)}")
    device = opts.get("device")
    if not (device in DEVICES or (isinstance(device, str) and device.startswith("cuda:")
                                  and device[5:].isdigit())):
        raise OptionsError(f"option device must be one of {', '.join(DEVICES)} (or cuda:N), "
                           f"got {device!r}")
