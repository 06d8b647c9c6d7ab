"""Torch side of learned terms and ODE systems: MLPs for `Network`s, the system's right-hand
side as an `nn.Module` (what torchdiffeq's `odeint`/`odeint_adjoint` integrate)."""

from __future__ import annotations

from typing import Callable

import torch

from ..expr import compile_exprs
from ..learned import Network
from .system import ODESystem, split_networks

__all__ = ["LearnedMLP", "build_networks", "ODEFunc", "lambdify_torch", "ACTIVATION_MODULES"]


class _RBF(torch.nn.Module):
    """exp(-x²), the radial activation of Rackauckas et al. (2020)'s Lotka-Volterra UDE."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x * x)


ACTIVATION_MODULES: dict[str, Callable[[], torch.nn.Module]] = {
    "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU,
    "softplus": torch.nn.Softplus, "sigmoid": torch.nn.Sigmoid, "rbf": _RBF,
}

def lambdify_torch(args: list, exprs: list) -> Callable:
    """A torch function of ``args`` returning the list ``exprs`` (`pinnkit.expr`)."""
    return compile_exprs(args, exprs, "torch")


class LearnedMLP(torch.nn.Module):
    """inputs (..., n_in) -> (..., n_out): ``depth`` hidden layers of ``width`` units.

    Weights start N(0, 0.1²) with zero biases (torchdiffeq's ode_demo), so a learned term
    starts small and a hybrid model starts near its known part."""

    def __init__(self, net: Network, generator: torch.Generator) -> None:
        super().__init__()
        sizes = [len(net.inputs)] + [net.width] * net.depth + [net.n_outputs]
        layers: list = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = torch.nn.Linear(a, b)
            with torch.no_grad():
                lin.weight.normal_(0.0, 0.1, generator=generator)
                lin.bias.zero_()
            layers.append(lin)
            if i < len(sizes) - 2:
                layers.append(ACTIVATION_MODULES[net.activation]())
        self.net = torch.nn.Sequential(*layers)
        self.spec = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_networks(networks: dict, seed: int) -> torch.nn.ModuleDict:
    """One `LearnedMLP` per network of the spec, initialized from a local generator."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.nn.ModuleDict({name: LearnedMLP(net, g) for name, net in networks.items()})


class _BudgetExceeded(Exception):
    def __init__(self, t: float) -> None:
        super().__init__(t)
        self.t = t


class ODEFunc(torch.nn.Module):
    """dy/dt of the system, for states y (..., n_state); networks and parameters are its
    submodules, so `odeint_adjoint` finds them. ``offset`` (batch, 1) shifts the time of each
    sub-trajectory (mini-batches integrate from a common 0). ``budget`` caps the right-hand
    side evaluations of one integration (0 = no cap)."""

    def __init__(self, system: ODESystem, networks: torch.nn.ModuleDict,
                 params: torch.nn.ParameterDict) -> None:
        super().__init__()
        self.networks, self.params = networks, params
        self.param_names = [p.name for p in system.parameters]
        base = [system.t] + list(system.symbols) + list(system.parameters)
        rhs, groups = split_networks(system.rhs)
        holders = [ph for _, _, outs in groups for _, ph in outs]
        self._rhs = lambdify_torch(base + holders, rhs)
        self._inputs = [(net.name, lambdify_torch(base, list(args)), [k for k, _ in outs])
                        for net, args, outs in groups]
        self._y0 = lambdify_torch(list(system.parameters), list(system.y0))
        # the other observed trajectories' initial states (Data(initial=...)), stacked by y0()
        self._y0s = [self._y0] + [lambdify_torch(list(system.parameters), list(y))
                                  for y in system.trajectories[1:]]
        self.offset: torch.Tensor | None = None
        self.budget, self.nfe = 0, 0

    def param_values(self) -> list:
        return [self.params[n] for n in self.param_names]

    def y0(self, dtype: torch.dtype, device: torch.device,
           trajectories: list | None = None) -> torch.Tensor:
        """Initial state (n_state,) from the Initial conditions (may depend on trained
        parameters); with ``trajectories`` (indices into the system's trajectories) the
        initial states of those, stacked (len(trajectories), n_state)."""
        ref = torch.zeros((), dtype=dtype, device=device)
        if trajectories is None:
            return torch.stack([_like(v, ref) for v in self._y0(*self.param_values())])
        return torch.stack([torch.stack([_like(v, ref) for v in self._y0s[k](*self.param_values())])
                            for k in trajectories])

    def charge(self, t) -> None:
        """Count one right-hand-side evaluation (or a step of an adjoint solver that evaluates
        its own linearisation) against the budget; `_BudgetExceeded` past it."""
        self.nfe += 1
        if self.budget and self.nfe > self.budget:
            raise _BudgetExceeded(float(t))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.charge(t)
        tt = t if self.offset is None else t + self.offset[..., 0]
        cols = [y[..., i] for i in range(y.shape[-1])]
        args = [tt, *cols, *self.param_values()]
        outs = []
        for name, inputs, ks in self._inputs:
            X = torch.stack([_like(v, cols[0]) for v in inputs(*args)], dim=-1)
            Y = self.networks[name](X)
            outs += [Y[..., k] for k in ks]
        return torch.stack([_like(v, cols[0]) for v in self._rhs(*args, *outs)], dim=-1)


def _like(v, ref: torch.Tensor) -> torch.Tensor:
    if isinstance(v, torch.Tensor) and v.shape == ref.shape:
        return v
    return torch.as_tensor(v, dtype=ref.dtype, device=ref.device).expand_as(ref)
