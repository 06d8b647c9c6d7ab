"""`TrainOptions`: every option of `pk.train` (method "pinn"), the keys of a problem file's
``options`` and the CLI's flags; where each option is checked: `pinnkit.options`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field as dc_field

import torch

from ..errors import OptionsError
from ..options import KeywordOptions
from ..spec import Problem

__all__ = ["TrainOptions", "DTYPES", "COMPILE_MODES", "resolve_device", "resolve_threads"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
# threads=0 (auto) runs networks up to this width on one CPU thread: a PINN's tensors are small,
# and more threads measured slower (README's Burgers run, docs/cli.md); wider ones keep torch's
# count
AUTO_ONE_THREAD_WIDTH = 256
# torch.compile modes the option ``compile`` may name ("reduce-overhead": CUDA graphs on a GPU)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainOptions(KeywordOptions):
    """Every option of `train` (also keys of a problem file's ``options`` and CLI flags)."""

    steps: int = 2000                 # Adam steps
    lbfgs_steps: int = 500            # L-BFGS iterations after Adam
    seed: int = 0                     # seed of the network's weights and the collocation points
    device: str = "auto"              # auto (CUDA when available) | cpu | cuda
    dtype: str = "float32"            # Adam phase dtype
    lbfgs_dtype: str = "float64"      # L-BFGS phase dtype (float64 avoids the zero-step stall)
    network: str = "mlp"              # mlp | modified_mlp | pirate
    width: int = 50                   # neurons per hidden layer
    depth: int = 4                    # hidden layers
    activation: str = "tanh"          # activation function of the hidden layers
    fourier_features: int = 0         # Fourier feature embedding size (0 = none)
    fourier_scale: float = 1.0        # σ of the Fourier feature frequencies
    fourier_scales: dict = dc_field(default_factory=dict)  # per-coordinate σ overriding fourier_scale
    periodic_embedding: bool = False  # exact periodicity for Periodic conditions (cos/sin inputs)
    weight_factorization: bool = False  # random weight factorization of the linear layers
    interior_points: int = 2000       # collocation points inside the domain (PDE residuals)
    boundary_points: int = 200        # points per boundary/periodic condition
    initial_points: int = 200         # points per initial condition
    sampling: str = "sobol"           # sobol | halton | lhs | uniform
    mesh_vertices: bool = False       # also collocate at the mesh's interior vertices (meshes)
    resample_every: int = 0           # resample collocation points every K Adam steps (0 = never)
    time_windows: int = 0             # time marching: Adam steps in K expanding windows [t0, t0 + iT/K]
    lr: float = 1e-3                  # Adam learning rate at step 0
    lr_decay: float = 0.9             # multiply lr by this ...
    lr_decay_steps: int = 1000        # ... every this many steps (smoothly)
    lbfgs_history: int = 50           # L-BFGS memory (pairs of past steps)
    weights: dict = dc_field(default_factory=dict)   # term name -> fixed loss weight
    hard_constraints: bool = False    # enforce Dirichlet/Initial exactly on boxes
    # derivative engine: auto | taylor | autograd (default: $PINNKIT_ENGINE, else auto)
    engine: str = dc_field(default_factory=lambda: os.environ.get("PINNKIT_ENGINE", "auto"))
    compile: bool | str = "auto"      # torch.compile the training step: auto (when the run is long
                                      # enough to pay for compiling) | true | false | a mode (COMPILE_MODES)
    optimizer: str = "lbfgs"          # second phase: lbfgs | bfgs | ssbfgs | ssbroyden (pinnkit.optim)
    causal_eps: float = 0.0           # causal training of time-dependent PDE terms (0 = off)
    causal_bins: int = 32             # time slabs for causal training
    loss_weighting: str = "fixed"     # fixed | gradnorm | ntk | relobralo (Adam phase; L-BFGS keeps the last weights)
    weight_every: int = 100           # loss-weight update interval (steps)
    weight_momentum: float = 0.9      # gradnorm/ntk moving average
    relobralo_alpha: float = 0.999    # ReLoBRaLo: weight of the history term
    relobralo_temperature: float = 0.1  # ReLoBRaLo: softmax temperature
    relobralo_saudade: float = 0.999  # ReLoBRaLo: probability of looking back to the first losses
    ntk_points: int = 32              # ntk: points per term for the kernel trace estimate
    point_weighting: str = "none"     # none | rba (residual-based attention on PDE points)
    rba_gamma: float = 0.999          # RBA: λ_i <- γ λ_i + η |r_i| / max|r|
    rba_eta: float = 0.01             # RBA: step η of the multipliers
    rba_every: int = 10               # RBA update interval (steps)
    adaptive: str = "none"            # none | rar | rad (residual-based adaptive sampling)
    adaptive_every: int = 1000        # steps between adaptive updates
    adaptive_points: int = 100        # RAR: points added per update
    adaptive_candidates: int = 0      # candidates per update (0 = 10 x interior_points)
    rad_k: float = 1.0                # RAD: p ∝ |r|^k / mean + c
    rad_c: float = 1.0                # RAD: the constant c above
    log_every: int = 100              # history/progress/NaN check interval (steps)
    checkpoint: str | None = None     # path of checkpoint.pt (None = no checkpoints)
    checkpoint_every: int = 1000      # steps between checkpoints
    resume: bool = False              # continue from the checkpoint when it exists
    quiet: bool = False               # no progress bar, progress lines or messages
    threads: int = 0                  # torch CPU threads in training (0 = auto: 1 up to width 256)
    progress_seconds: float = 30.0    # not on a terminal: seconds between progress log lines

    def validate(self) -> None:
        """Check every option on its own (`pinnkit.options.check_options`); `OptionsError`
        names the option and lists the valid values."""
        from ..options import check_options
        check_options(self)

    def check_problem(self, problem: Problem) -> None:
        """Check the options that depend on ``problem`` (`pinnkit.options.check_problem_options`):
        `OptionsError` before any work."""
        from ..options import check_problem_options
        check_problem_options(self, problem)

    def fourier_scale_of(self, coord_names: list[str]) -> float | list[float]:
        """σ of the Fourier features: one number, or one per input (``fourier_scales`` by
        coordinate name, the others ``fourier_scale``)."""
        if not self.fourier_scales:
            return self.fourier_scale
        return [float(self.fourier_scales.get(n, self.fourier_scale)) for n in coord_names]

    def result_options(self) -> dict:
        """The options that change the result (resume refuses a checkpoint whose differ), as
        plain JSON values. The budgets (steps, lbfgs_steps) may grow on resume."""
        skip = {"steps", "lbfgs_steps", "checkpoint", "checkpoint_every", "resume", "quiet",
                "log_every", "device", "threads", "progress_seconds"}
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        return json.loads(json.dumps(d, sort_keys=True, default=str))

    def fingerprint(self) -> str:
        """Hash of `result_options`."""
        return hashlib.sha256(json.dumps(self.result_options(), sort_keys=True).encode()).hexdigest()[:16]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise OptionsError(f"option device: {device!r} requested but CUDA is not available "
                           "(use --device cpu or auto)")
    return torch.device(device)


def resolve_threads(opts: TrainOptions) -> int:
    """torch CPU threads for training: ``opts.threads``, or (0, auto) one thread on a CPU for
    networks up to `AUTO_ONE_THREAD_WIDTH` wide and torch's current count otherwise."""
    if opts.threads:
        return int(opts.threads)
    small = opts.width <= AUTO_ONE_THREAD_WIDTH
    return 1 if small and resolve_device(opts.device).type == "cpu" else torch.get_num_threads()
