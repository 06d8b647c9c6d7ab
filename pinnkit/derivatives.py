"""The derivative engine: the single place where derivatives of the network are computed.

A `DerivativePlan` is the set of field derivatives a group of residuals needs (e.g.
{u, u_t, u_x, u_xx}), planned once from the whole spec. An engine computes every key of
the plan together for one batch of points. `NestedAutograd` is the reference
implementation: it walks the plan as a tree so that each parent derivative is
differentiated once, giving all its children (one column per coordinate) in one call.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from .errors import TrainingError

__all__ = ["DerivativePlan", "NestedAutograd", "ENGINES", "compute_derivatives", "resolve_engine",
           "unit_index"]

Key = tuple  # (field name, orders per input coordinate)


def unit_index(ndim: int, axis: int, order: int = 1) -> tuple:
    """The multi-index of ∂^order/∂x_axis^order: ``order`` at ``axis``, 0 elsewhere."""
    return tuple(order if j == axis else 0 for j in range(ndim))


class DerivativePlan:
    """Which derivatives to compute: keys ``(field, orders)`` closed under taking parents.

    ``parent[key] = (parent_key, axis)``: ``key`` is d/d(axis) of ``parent_key``. Parents are
    chosen to reuse derivatives that are needed anyway, so {u_x, u_xx, u_xy} costs two
    backward passes (of u and of u_x), not three.
    """

    def __init__(self, keys: Iterable[Key], fields: list[str], ndim: int,
                 laplacians: dict | None = None) -> None:
        self.fields = list(fields)
        self.ndim = ndim
        # collapsed Laplacians: {field: axes}; the engines return key ("lap", field) = Σ ∂²/∂x_i²
        self.laplacians = {f: tuple(a) for f, a in (laplacians or {}).items()}
        keys = set(keys)
        self.regular = sorted(keys)
        for f, axes in self.laplacians.items():
            keys |= {(f, unit_index(ndim, i, 2)) for i in axes}
        self.requested = sorted(keys)
        for f, orders in self.requested:
            if f not in self.fields or len(orders) != ndim:
                raise ValueError(f"bad derivative key {(f, orders)} for fields {self.fields}")
        closure = set(self.requested)
        self.parent: dict = {}
        # highest orders first so that their parents join the closure before being planned
        for key in sorted(self.requested, key=lambda k: -sum(k[1])):
            self._plan(key, closure)
        self.keys = sorted(closure, key=lambda k: (sum(k[1]), k))
        self._max_order = max((sum(o) for _, o in self.keys), default=0)
        # the Taylor engine's multi-index set and index tables, built here (outside any
        # torch.compile region)
        from .taylor import _tables, multi_index_closure
        self.lap_axes = tuple(sorted({i for a in self.laplacians.values() for i in a}))
        first = [unit_index(ndim, i) for i in self.lap_axes]
        self.jet_set = multi_index_closure([o for _, o in self.regular] + first, ndim)
        _tables(self.jet_set, self.lap_axes)

    def _plan(self, key: Key, closure: set) -> None:
        f, orders = key
        if sum(orders) == 0 or key in self.parent:
            return
        options = []
        for axis, n in enumerate(orders):
            if n > 0:
                p = (f, orders[:axis] + (n - 1,) + orders[axis + 1:])
                options.append((p not in closure, axis, p))
        _, axis, p = min(options)  # prefer a parent that is already needed
        self.parent[key] = (p, axis)
        closure.add(p)
        self._plan(p, closure)

    @property
    def max_order(self) -> int:
        return self._max_order

    def __repr__(self) -> str:
        lap = f", laplacians={self.laplacians}" if self.laplacians else ""
        return f"DerivativePlan({self.regular}{lap})"


class NestedAutograd:
    """Nested reverse-mode autograd: one ``torch.autograd.grad`` per distinct parent."""

    name = "autograd"

    def __call__(self, net: Callable, X: torch.Tensor, plan: DerivativePlan,
                 create_graph: bool = True) -> dict:
        if plan.max_order > 0 and not X.requires_grad:
            X = X.detach().requires_grad_(True)
        out = net(X)
        values: dict = {}
        for i, f in enumerate(plan.fields):
            values[(f, (0,) * plan.ndim)] = out[:, i]
        grads: dict = {}
        for key in plan.keys:
            if key in values:
                continue
            parent, axis = plan.parent[key]
            if parent not in grads and not values[parent].requires_grad:
                grads[parent] = torch.zeros_like(X)  # the parent is constant in X
            if parent not in grads:
                g, = torch.autograd.grad(values[parent], X,
                                         grad_outputs=torch.ones_like(values[parent]),
                                         create_graph=True, allow_unused=True)
                grads[parent] = torch.zeros_like(X) if g is None else g
            values[key] = grads[parent][:, axis]
        for f, axes in plan.laplacians.items():
            values[("lap", f)] = sum(values[(f, unit_index(plan.ndim, i, 2))] for i in axes)
        if not create_graph:
            values = {k: v.detach() for k, v in values.items()}
        return {k: values[k] for k in plan.regular + [("lap", f) for f in plan.laplacians]}


def resolve_engine(engine: str, net: Callable, compiled: bool) -> str:
    """The engine "auto" stands for: taylor when compiling a network it supports, else autograd."""
    if engine != "auto":
        return engine
    from .taylor import supports
    return "taylor" if compiled and supports(net) else "autograd"


def _taylor():
    from .taylor import TaylorMode
    return TaylorMode()


#: Registry of derivative engines: name -> factory. "auto" is nested autograd when called
#: directly: eagerly it measured faster than Taylor mode on CPU (scripts/bench.py: Taylor
#: mode's extra elementwise kernels cost more than the backward passes it saves); under
#: ``compile=True`` the trainer resolves "auto" to Taylor mode (`resolve_engine`), which
#: compiles (nested autograd's double backward does not) and then wins.
ENGINES: dict[str, Callable] = {"auto": NestedAutograd, "autograd": NestedAutograd, "taylor": _taylor}


def compute_derivatives(net: Callable, X: torch.Tensor, plan: DerivativePlan,
                        engine: str = "auto", create_graph: bool = True) -> dict:
    """Every derivative of ``plan`` at the points ``X`` (N, ndim): dict key -> (N,) tensor."""
    try:
        eng = ENGINES[engine]()
    except KeyError:
        raise TrainingError(f"unknown derivative engine {engine!r}; choose from "
                            f"{', '.join(ENGINES)}") from None
    return eng(net, X, plan, create_graph=create_graph)
