"""The first phase's optimizers (pinnkit/pinn/first_phase.py): Adam is torch's Adam with the
schedule of the flat options, its compiled update is torch's update, its state round-trips,
and another first-phase optimizer is one class."""
import copy

import pytest
import torch

import pinnkit as pk
from pinnkit.pinn.first_phase import FIRST_PHASE, FIRST_PHASES, Adam, FirstPhase
from pinnkit.pinn.train_options import TrainOptions

from conftest import load_problem

OPTS = TrainOptions.from_kwargs(lr=0.05, lr_decay=0.5, lr_decay_steps=4)


def _quadratic(seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(12, 12, generator=g, dtype=torch.float64)
    params = [torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True),
              torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)]
    return (lambda ps: (A @ torch.cat([p.reshape(-1) for p in ps])).square().sum()), params


def _run(phase, loss, params, steps):
    for _ in range(steps):
        phase.zero_grad()
        loss(params).backward()
        phase.step()
        phase.advance()


def test_adam_is_torch_adam_with_the_exponential_schedule():
    assert FIRST_PHASES[FIRST_PHASE] is Adam and FIRST_PHASE == "adam"
    loss, params = _quadratic()
    ref = [p.detach().clone().requires_grad_(True) for p in params]
    phase = Adam(params, OPTS)
    torch_adam = torch.optim.Adam(ref, lr=0.05)
    lrs = []
    for k in range(10):
        lrs.append(phase.lr)
        assert phase.lr == pytest.approx(0.05 * 0.5 ** (k / 4), rel=1e-12)
        for group in torch_adam.param_groups:
            group["lr"] = 0.05 * 0.5 ** (k / 4)
        torch_adam.zero_grad()
        loss(ref).backward()
        torch_adam.step()
        _run(phase, loss, params, 1)
    for p, q in zip(params, ref):
        assert torch.allclose(p, q, rtol=0, atol=1e-14)
    # and pk.train records that schedule in its history
    sol = pk.train(load_problem("heat1d")["problem"], steps=12, lbfgs_steps=0, width=4, depth=1,
                   interior_points=20, boundary_points=4, initial_points=4, log_every=4,
                   quiet=True, lr=0.05, lr_decay=0.5, lr_decay_steps=4)
    assert sol.history["lr"] == pytest.approx([0.05 * 0.5 ** (s / 4) for s in (4, 8, 12)],
                                              rel=1e-12)


def test_adams_compiled_update_is_torchs_step():
    """The update the compiled whole step traces, run eagerly, gives torch's Adam's iterates
    (the compiled graph itself: tests/test_trainer.py::test_whole_step_compile_is_torch_adam)."""
    loss, params = _quadratic(1)
    eager = Adam(params, OPTS)
    traced_params = [p.detach().clone() for p in params]
    traced = Adam([p.requires_grad_(True) for p in traced_params], OPTS)
    update = traced.compiled_update()
    for _ in range(7):
        _run(eager, loss, params, 1)
        ps = {str(i): p for i, p in enumerate(traced_params)}
        grads = dict(zip(ps, torch.autograd.grad(loss(traced_params), traced_params)))
        with torch.no_grad():
            update(ps, grads, traced.states(traced_params),
                   torch.tensor(traced.lr, dtype=torch.float64))
        traced.compiled_step_done()
        traced.advance()
    for p, q in zip(params, traced_params):
        assert torch.allclose(p, q, rtol=0, atol=1e-14)
    assert [float(eager.optimizer.state[p]["step"]) for p in params] == [7.0, 7.0]
    assert [float(traced.optimizer.state[p]["step"]) for p in traced_params] == [7.0, 7.0]
    amsgrad = Adam([torch.zeros(2, requires_grad=True)], OPTS)
    amsgrad.optimizer.param_groups[0]["amsgrad"] = True
    assert amsgrad.compiled_update() is None     # then the trainer compiles the loss only


def test_adam_state_round_trips():
    loss, params = _quadratic(2)
    straight = Adam(params, OPTS)
    _run(straight, loss, params, 5)
    saved = copy.deepcopy(straight.state_dict())
    assert set(saved) == {"adam", "sched"}          # the checkpoint's keys
    resumed_params = [p.detach().clone().requires_grad_(True) for p in params]
    resumed = Adam(resumed_params, OPTS)
    resumed.load_state_dict(saved)
    assert resumed.lr == straight.lr
    _run(straight, loss, params, 5)
    _run(resumed, loss, resumed_params, 5)
    for p, q in zip(params, resumed_params):
        assert torch.equal(p, q)


class GradientDescent(FirstPhase):
    """θ ← θ − lr ∇L: a first-phase optimizer in one class (eager only)."""

    name = "GD"
    OPTIONS = ("lr",)

    def __init__(self, params, options):
        super().__init__(params, options)
        self.params, self.steps = list(params), 0

    @property
    def lr(self):
        return self.options.lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with torch.no_grad():
            for p in self.params:
                p -= self.lr * p.grad
        self.steps += 1

    def state_dict(self):
        return {"adam": {"steps": self.steps}, "sched": {}}

    def load_state_dict(self, state):
        self.steps = state["adam"]["steps"]


def test_a_new_first_phase_is_one_class(monkeypatch):
    import pinnkit.trainer as trainer
    monkeypatch.setitem(FIRST_PHASES, "gd", GradientDescent)
    monkeypatch.setattr(trainer, "FIRST_PHASE", "gd")
    opts = TrainOptions.from_kwargs(steps=1, lbfgs_steps=0, width=6, depth=1, interior_points=30,
                                    boundary_points=6, initial_points=6, log_every=1, quiet=True,
                                    dtype="float64", lr=0.01, compile=False)
    tr = trainer.Trainer(load_problem("heat1d")["problem"], opts)
    assert isinstance(tr.first, GradientDescent)
    params = tr.parameters()
    total = sum(tr.compiled.losses(tr.model, dict(tr.params), tr.batches).values())
    expected = [p.detach() - 0.01 * g for p, g in zip(params, torch.autograd.grad(total, params))]
    sol = tr.run()
    assert tr.first.steps == 1 and sol.history["lr"] == [0.01]
    for p, e in zip(tr.parameters(), expected):
        assert torch.allclose(p, e, rtol=0, atol=1e-14)
