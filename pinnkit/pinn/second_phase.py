"""The second training phase (after Adam), option ``optimizer``: a registry name -> class.

- ``lbfgs``: torch's L-BFGS with a strong-Wolfe line search, restarted whenever the line
  search stalls. A zero step makes torch's L-BFGS quit silently after a few iterations
  (DeepXDE issue #1819); this one stops only when its budget is spent or when several
  restarts in a row make no progress, and says which. It keeps the best state it has seen.
- ``bfgs``, ``ssbfgs``, ``ssbroyden``: the dense quasi-Newton methods of `pinnkit.optim` on
  the flat parameter vector.
- ``lm``: Levenberg–Marquardt on the loss written as a sum of squared residuals, with the
  residuals' Jacobian (`pinnkit.pinn.compiled.GaussNewton`).

The trainer runs a phase in chunks of ``log_every`` iterations (`SecondPhase.run`); between
chunks the phase's state is consistent, and the trainer records, checkpoints and stops
there. A phase sees the training problem only through an `Objective`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Protocol

import torch

from ..optim import BFGS, SSBFGS, QuasiNewton, SSBroyden
from .signals import Abort

__all__ = ["Objective", "Chunk", "SecondPhase", "RestartingLBFGS", "DenseQuasiNewton",
           "LevenbergMarquardt",
           "SECOND_PHASES", "finite"]


class Objective(Protocol):
    """What a second-phase optimizer needs from the trainer."""

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors, in a fixed order (the optimizer updates them in place)."""

    def value_and_grad(self) -> tuple:
        """(global loss, [its gradients]) at the current parameters."""

    def loss(self) -> tuple:
        """(global total, {term: loss}) at the current parameters, without gradients."""

    def signalled(self) -> bool:
        """Whether SIGINT/SIGTERM arrived (an evaluation then raises `Abort`)."""

    def gauss_newton(self) -> tuple:
        """(loss, JᵀJ, Jᵀr) at the current parameters, the loss written as Σ r² (the
        phases with ``least_squares`` only)."""


@dataclass(frozen=True)
class Chunk:
    """The outcome of one chunk: iterations done; the (global) loss at its end, and whether
    the trainer should record it; a message for the run's report (or None); why the phase
    stopped (None: it may go on)."""

    done: int
    total: torch.Tensor
    terms: dict
    record: bool = True
    note: str | None = None
    stop: str | None = None


def snapshot(params: list) -> list:
    return [p.detach().clone() for p in params]


def load_snapshot(params: list, snap: list) -> None:
    with torch.no_grad():
        for p, s in zip(params, snap):
            p.copy_(s)


def flatten(params: list) -> torch.Tensor:
    """``params`` as one flat vector (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def load_flat(params: list, x: torch.Tensor) -> None:
    """``params`` := the flat vector ``x``, in place."""
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(x[i:i + p.numel()].view_as(p))
            i += p.numel()


def finite(params: list) -> bool:
    """Whether every tensor of ``params`` is finite."""
    return all(bool(torch.isfinite(p).all()) for p in params)


class SecondPhase:
    """Base class. The trainer calls `start` once, then `run` chunk by chunk while
    `stopped` is false and the budget lasts, `consistent` before it checkpoints on a signal,
    and `finish` at the end; `state_dict`/`load_state_dict` give the checkpoint's keys."""

    name = ""
    #: what progress lines and the CLI call it
    label = ""
    #: keeps a dense inverse Hessian (its size is checked before training, `pinnkit.options`)
    dense = False
    #: works on the residuals (`Objective.gauss_newton`): needs a least-squares loss and the
    #: Taylor engine (checked before training, `pinnkit.trainer`)
    least_squares = False
    OPTIONS: tuple = ()

    def __init__(self, objective: Objective, options) -> None:
        self.objective, self.options = objective, options

    @property
    def stopped(self) -> bool:
        return False

    def start(self) -> None:
        pass

    def run(self, iterations: int, at: int) -> Chunk:
        """Up to ``iterations`` iterations (``at`` done before). May raise `Abort` (a signal
        arrived mid-chunk; the phase is then back at the chunk's start)."""
        raise NotImplementedError

    def shown_loss(self, chunk: Chunk) -> float:
        """The loss the progress bar shows after ``chunk``."""
        return float(chunk.total.detach())

    def consistent(self) -> None:
        """Put the parameters at the phase's last consistent point."""

    def finish(self, at: int, budget: int) -> tuple[list[str], bool]:
        """(messages for the run's report, whether the trainer records the loss at the
        parameters it leaves)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class RestartingLBFGS(SecondPhase):
    """torch's L-BFGS, its history restarted when a chunk makes no progress or torch stopped
    early; it stops after 3 restarts in a row without a decrease, and ends at the best state
    it has seen (``best``: loss, parameters, restarts without progress since)."""

    name = label = "L-BFGS"
    OPTIONS = ("lbfgs_history",)

    def __init__(self, objective: Objective, options) -> None:
        super().__init__(objective, options)
        self.best: tuple | None = None
        self.lbfgs = self._new()

    def _new(self) -> torch.optim.LBFGS:
        return torch.optim.LBFGS(self.objective.parameters(), lr=1.0,
                                 max_iter=self.options.log_every,
                                 history_size=self.options.lbfgs_history, tolerance_grad=1e-15,
                                 tolerance_change=0.0, line_search_fn="strong_wolfe")

    def _closure(self):
        obj = self.objective
        if obj.signalled():
            raise Abort    # mid-step: the chunk is undone and the checkpoint taken before it
        total, grads = obj.value_and_grad()
        for p, g in zip(obj.parameters(), grads):
            p.grad = g
        return total

    def _iterations(self) -> int:
        return self.lbfgs.state[self.lbfgs._params[0]].get("n_iter", 0)

    def start(self) -> None:
        if self.best is None:
            self.best = (self.objective.loss()[0].item(), snapshot(self.objective.parameters()), 0)

    def run(self, iterations: int, at: int) -> Chunk:
        params = self.objective.parameters()
        best, best_state, stalls = self.best
        for g in self.lbfgs.param_groups:
            # torch's default cap of 1.25 evaluations per iteration ends a chunk early
            # whenever line searches need more, which restarted the history below
            g["max_iter"], g["max_eval"] = iterations, 5 * iterations
        before = self._iterations()
        mark = (snapshot(params), copy.deepcopy(self.lbfgs.state_dict()))
        try:
            self.lbfgs.step(self._closure)
        except Abort:      # back to the chunk's start, the last consistent state
            load_snapshot(params, mark[0])
            self.lbfgs = self._new()
            self.lbfgs.load_state_dict(mark[1])
            raise
        done = max(self._iterations() - before, 1)
        total, terms = self.objective.loss()
        loss, record, note = total.item(), False, None
        if not math.isfinite(loss) or not finite(params):
            load_snapshot(params, best_state)
            note = f"L-BFGS diverged at iteration {at + done}; restored the best state"
            self.lbfgs = self._new()
            stalls += 1
        elif loss < best * (1 - 1e-7):
            best, best_state, stalls, record = loss, snapshot(params), 0, True
            if done < iterations:   # torch stopped early: restart its history, keep going
                self.lbfgs = self._new()
        else:
            stalls += 1
            self.lbfgs = self._new()   # zero step / no progress: restart the history
        self.best = (best, best_state, stalls)
        stop = f"no decrease after {stalls} restarts (loss {best:.3e})" if stalls >= 3 else None
        return Chunk(done, total, terms, record, note, stop)

    def shown_loss(self, chunk: Chunk) -> float:
        return self.best[0]

    def finish(self, at: int, budget: int) -> tuple[list[str], bool]:
        notes = []
        if at >= budget:
            g = torch.cat([g.reshape(-1) for g in self.objective.value_and_grad()[1]]).norm()
            notes.append(f"L-BFGS stopped after {at} iterations: iteration budget spent; loss "
                         f"{self.best[0]:.3e}, gradient norm {float(g):.3e}")
        load_snapshot(self.objective.parameters(), self.best[1])
        return notes, True

    def state_dict(self) -> dict:
        best = self.best
        return {"lbfgs": self.lbfgs.state_dict(),
                "lbfgs_best": None if best is None else {"loss": best[0], "state": best[1],
                                                         "stalls": best[2]}}

    def load_state_dict(self, state: dict) -> None:
        self.lbfgs.load_state_dict(state["lbfgs"])
        best = state.get("lbfgs_best")
        if best is None:
            self.best = None
            return
        params = self.objective.parameters()
        if len(best["state"]) != len(params) or any(
                tuple(s.shape) != tuple(p.shape) for s, p in zip(best["state"], params)):
            raise ValueError("the saved best L-BFGS state does not fit this network's parameters")
        self.best = (float(best["loss"]), list(best["state"]), int(best["stalls"]))


class DenseQuasiNewton(SecondPhase):
    """A dense quasi-Newton method of `pinnkit.optim` (``method``) on the flat parameter
    vector; each chunk is recorded, and it ends with the method's stopping report."""

    dense = True
    method: type[QuasiNewton] = QuasiNewton

    def __init__(self, objective: Objective, options) -> None:
        super().__init__(objective, options)
        self.name = self.method.name
        self.opt = self.method(self._fun, self._flat())

    def _flat(self) -> torch.Tensor:
        return flatten(self.objective.parameters())

    def _load(self, x: torch.Tensor) -> None:
        load_flat(self.objective.parameters(), x)

    def _fun(self, x: torch.Tensor) -> tuple:
        """parameters := x, then (loss, flat gradient)."""
        self._load(x)
        total, grads = self.objective.value_and_grad()
        return total, torch.cat([g.reshape(-1) for g in grads])

    @property
    def stopped(self) -> bool:
        return self.opt.reason is not None

    def run(self, iterations: int, at: int) -> Chunk:
        done = self.opt.run(iterations)
        self._load(self.opt.x)      # the accepted point (line searches leave trial points)
        total, terms = self.objective.loss()
        return Chunk(done, total, terms)

    def consistent(self) -> None:
        self._load(self.opt.x)      # between chunks: x and H are consistent

    def finish(self, at: int, budget: int) -> tuple[list[str], bool]:
        return [self.opt.report()], False

    def state_dict(self) -> dict:
        return {"lbfgs": self.opt.state_dict(), "lbfgs_best": None}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["lbfgs"])


class LevenbergMarquardt(SecondPhase):
    """Levenberg–Marquardt on the loss as a sum of squares, L(θ) = Σ r(θ)² (every term's mean
    squared residual times its weight): each iteration solves (JᵀJ + μI) δ = −Jᵀr by Cholesky
    (float64) and accepts δ when the loss decreases. μ follows Nielsen's rule (Madsen, Nielsen
    & Tingleff 1999, "Methods for non-linear least squares problems", Sec. 3.2; μ₀ = 1e-3 ·
    max diag JᵀJ): on a gain ratio ρ > 0, μ ← μ · max(1/3, 1 − (2ρ − 1)³); on a rejection
    μ ← μ·ν, ν ← 2ν. A Gauss–Newton method for PINNs as in Müller & Zeinhofer (2023, energy
    natural gradient) and Bonfanti et al. (2024, LM for PINNs); each iteration costs one
    Jacobian (about one per-point backward pass) and an n × n factorisation, so it is for
    the small networks the dense quasi-Newton methods are for. It stops on a gradient norm
    below 1e-12 · (1 + loss), or when μ grows past 1e16 · max diag JᵀJ (no step decreases
    the loss), and says which."""

    name = label = "Levenberg-Marquardt"
    dense = True
    least_squares = True
    #: damped steps tried per iteration before it gives up
    MAX_TRIES = 30

    def __init__(self, objective: Objective, options) -> None:
        super().__init__(objective, options)
        self.mu: float | None = None
        self.nu = 2.0
        self.reason: str | None = None
        self.iterations = 0
        self.rejected = 0
        self.loss_value: float | None = None
        self.grad_norm: float | None = None

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def _iterate(self) -> None:
        obj = self.objective
        if obj.signalled():
            raise Abort
        loss, A, g = obj.gauss_newton()
        f = float(loss)
        self.loss_value = f
        self.grad_norm = 2 * float(g.norm())   # ∇L = 2 Jᵀr
        if not math.isfinite(f):
            self.reason = "non-finite loss"
            return
        if self.grad_norm <= 1e-12 * (1 + f):
            self.reason = f"gradient norm {self.grad_norm:.3e} <= 1e-12 (1 + loss)"
            return
        top = float(A.diagonal().max())
        if self.mu is None:
            self.mu = 1e-3 * top
        params = obj.parameters()
        x = flatten(params)
        eye = torch.eye(len(g), dtype=A.dtype, device=A.device)
        for _ in range(self.MAX_TRIES):
            if self.mu > 1e16 * max(top, 1e-300):
                self.reason = f"no step decreases the loss (damping {self.mu:.3e})"
                return
            Lc, info = torch.linalg.cholesky_ex(A + self.mu * eye)
            if int(info):        # not positive definite in floating point: damp more
                self.mu *= self.nu
                self.nu *= 2
                continue
            d = -torch.cholesky_solve(g.unsqueeze(1), Lc).squeeze(1)
            predicted = -float(2 * (d @ g) + d @ (A @ d))    # decrease of the linear model
            load_flat(params, x + d.to(x.dtype))
            if obj.signalled():
                load_flat(params, x)
                raise Abort
            new = float(obj.loss()[0].detach())
            rho = (f - new) / predicted if predicted > 0 else -1.0
            if math.isfinite(new) and rho > 0:
                self.mu *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
                self.nu = 2.0
                self.loss_value = new
                self.iterations += 1
                return
            load_flat(params, x)
            self.rejected += 1
            self.mu *= self.nu
            self.nu *= 2
        self.reason = f"no decrease in {self.MAX_TRIES} damped steps (damping {self.mu:.3e})"

    def run(self, iterations: int, at: int) -> Chunk:
        before = self.iterations
        for _ in range(iterations):
            self._iterate()
            if self.reason is not None:
                break
        total, terms = self.objective.loss()
        return Chunk(max(self.iterations - before, 1 if self.reason is None else 0), total, terms)

    def finish(self, at: int, budget: int) -> tuple[list[str], bool]:
        why = self.reason or "iteration budget spent"
        return [f"{self.name} stopped after {self.iterations} iterations ({self.rejected} "
                f"rejected steps): {why}; loss {self.loss_value:.3e}, gradient norm "
                f"{self.grad_norm:.3e}, damping {self.mu:.3e}"], False

    def state_dict(self) -> dict:
        return {"lbfgs": {"mu": self.mu, "nu": self.nu, "reason": self.reason,
                          "iterations": self.iterations, "rejected": self.rejected,
                          "loss": self.loss_value, "grad_norm": self.grad_norm},
                "lbfgs_best": None}

    def load_state_dict(self, state: dict) -> None:
        s = state["lbfgs"]
        self.mu, self.nu, self.reason = s["mu"], s["nu"], s["reason"]
        self.iterations, self.rejected = int(s["iterations"]), int(s["rejected"])
        self.loss_value, self.grad_norm = s["loss"], s["grad_norm"]


def _dense(method: type[QuasiNewton]) -> type[DenseQuasiNewton]:
    return type(f"Dense{method.__name__}", (DenseQuasiNewton,),
                {"method": method, "label": method.__name__, "__doc__": f"`pinnkit.optim.{method.__name__}` as a second phase."})


#: option ``optimizer``: name -> class
SECOND_PHASES: dict[str, type[SecondPhase]] = {
    "lbfgs": RestartingLBFGS, "bfgs": _dense(BFGS), "ssbfgs": _dense(SSBFGS),
    "ssbroyden": _dense(SSBroyden), "lm": LevenbergMarquardt}
