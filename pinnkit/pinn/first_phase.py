"""The first training phase (before the second-phase optimizer), a registry name -> class.

- ``adam``: torch's Adam (fused into one kernel where torch supports it) with the smooth
  exponential learning-rate schedule lr · lr_decay^(step / lr_decay_steps), from the flat
  options ``lr``, ``lr_decay`` and ``lr_decay_steps``.

The trainer steps a phase eagerly (`FirstPhase.zero_grad`, backward, `FirstPhase.step`) or,
when the phase has a traceable update (`FirstPhase.compiled_update`), runs loss, gradients
and the update as one compiled graph (`pinnkit.pinn.compiled.WholeStep`) on the phase's own
state tensors (`FirstPhase.states`), so that both paths leave the same state; after every
step it calls `FirstPhase.advance` (the schedule). `state_dict`/`load_state_dict` give the
checkpoint's keys. A new first-phase optimizer is one class here, registered by name.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["FirstPhase", "Adam", "FIRST_PHASES", "FIRST_PHASE", "adam_state"]


class FirstPhase:
    """Base class: a first-phase optimizer of ``params`` (the trainable tensors) with its
    options (the fields named in ``OPTIONS`` of a `pinnkit.pinn.train_options.TrainOptions`)."""

    #: in progress lines and messages ("Adam step 40")
    name = ""
    OPTIONS: tuple = ()

    def __init__(self, params: list, options) -> None:
        self.options = options

    @property
    def lr(self) -> float:
        """The learning rate of the next step (the history's ``lr`` column)."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        raise NotImplementedError

    def step(self) -> None:
        """The update from the gradients in the parameters' ``.grad``."""
        raise NotImplementedError

    def advance(self) -> None:
        """After every step, eager or compiled: the learning-rate schedule."""

    def update_math(self) -> Callable | None:
        """The update of one parameter as traceable, out-of-place tensor arithmetic:
        ``math(p, g, state, lr) -> (new p, new state)`` (``state`` this parameter's entry of
        `states`, a tuple of tensors; the learning rate a 0-dim tensor); None when these
        settings have none (then the trainer compiles the loss only). `compiled_update`
        applies it in place; `pinnkit.pinn.compiled.LoopStep` carries it through a loop."""
        return None

    def compiled_update(self) -> Callable | None:
        """The update as traceable tensor arithmetic, ``update(ps, grads, states, lr)``
        ({name: parameter}, {name: gradient}, `states` in the order of ``ps``, the learning
        rate as a 0-dim tensor), in place on ``ps`` and ``states``: `update_math`, written
        back; None when there is none."""
        math = self.update_math()
        if math is None:
            return None

        def update(ps: dict, grads: dict, states: list, lr: torch.Tensor) -> None:
            for (name, p), state in zip(ps.items(), states):
                p, g, state = _as_vectors(p, grads[name], state)
                new_p, new_state = math(p, g, state, lr)
                p.copy_(new_p)
                for s, new in zip(state, new_state):
                    s.copy_(new)
        return update

    def upcoming_lrs(self, n: int) -> list[float]:
        """The learning rates of the next ``n`` steps, as `lr` will read before each."""
        raise NotImplementedError

    def states(self, params: list) -> list:
        """The state tensors `compiled_update` updates, one entry per parameter."""
        raise NotImplementedError

    def compiled_step_done(self) -> None:
        """After a compiled step (it bypassed `step`)."""

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


def adam_state(adam: torch.optim.Adam, p: torch.Tensor) -> tuple:
    """(step, exp_avg, exp_avg_sq) of ``p`` in ``adam``, created as torch's Adam would on its
    first step."""
    st = adam.state[p]
    if not st:
        st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
        st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return st["step"], st["exp_avg"], st["exp_avg_sq"]


class Adam(FirstPhase):
    """Adam (Kingma & Ba 2015) with lr(step) = lr · lr_decay^(step / lr_decay_steps).

    ``optimizer`` is torch's Adam, ``schedule`` its `LambdaLR`; the compiled update is
    torch's Adam's, term for term, on torch's own state tensors, so checkpoints and the
    eager steps in between (loss-weight updates) see what torch's Adam would have left."""

    name = "Adam"
    OPTIONS = ("lr", "lr_decay", "lr_decay_steps")

    def __init__(self, params: list, options) -> None:
        super().__init__(params, options)
        try:    # fused into one kernel where torch supports it (fewer launches per step)
            self.optimizer = torch.optim.Adam(params, lr=options.lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            self.optimizer = torch.optim.Adam(params, lr=options.lr)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: options.lr_decay ** (s / options.lr_decay_steps))

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.optimizer.step()

    def advance(self) -> None:
        self.schedule.step()

    def update_math(self) -> Callable | None:
        group = self.optimizer.param_groups[0]
        if group["amsgrad"] or group["weight_decay"] or group["maximize"]:
            return None
        b1, b2 = group["betas"]
        eps = group["eps"]

        def math(p: torch.Tensor, g: torch.Tensor, state: tuple, lr: torch.Tensor) -> tuple:
            t, m, v = state
            t = t + 1
            m = torch.lerp(m, g, 1 - b1)
            v = torch.addcmul(v * b2, g, g, value=1 - b2)
            # torch.optim.Adam's update, term for term (bias corrections in p's precision:
            # the step counter is float32)
            k = t.to(p.dtype)
            denom = v.sqrt() / (1 - b2 ** k).sqrt() + eps
            return p - (lr / (1 - b1 ** k)) * m / denom, (t, m, v)
        return math

    def upcoming_lrs(self, n: int) -> list[float]:
        # LambdaLR's lr at epoch e is base_lr · lambda(e); the first is the one set now
        sched = self.schedule
        base, fn = sched.base_lrs[0], sched.lr_lambdas[0]
        return [self.lr] + [base * fn(sched.last_epoch + j) for j in range(1, n)]

    def states(self, params: list) -> list:
        return [adam_state(self.optimizer, p) for p in params]

    def compiled_step_done(self) -> None:
        # the lr scheduler checks that the optimizer stepped (else it warns, once)
        self.optimizer._opt_called = True

    def state_dict(self) -> dict:
        return {"adam": self.optimizer.state_dict(), "sched": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["adam"])
        self.schedule.load_state_dict(state["sched"])


def _as_vectors(p: torch.Tensor, g: torch.Tensor, state: tuple) -> tuple:
    """A problem parameter (0-dim), its gradient and its state as 1-element views, so that the
    in-place writes land: torch.compile (2.13, AOT autograd) dropped the in-place updates of
    a 0-dim input that the gradient transform had wrapped, and left an inverse problem's
    parameter at its initial value."""
    if p.dim() != 0:
        return p, g, state
    return p.view(1), g.view(1), tuple(s.view(1) for s in state)


#: the first phase's optimizers: name -> class (the trainer's is `FIRST_PHASE`)
FIRST_PHASES: dict[str, type[FirstPhase]] = {"adam": Adam}
#: the entry of `FIRST_PHASES` the trainer runs (the flat options have no choice of it yet)
FIRST_PHASE = "adam"
