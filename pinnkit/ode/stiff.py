"""A stiff ODE solver that torch can differentiate through: the Rosenbrock method of MATLAB's
``ode23s`` (Shampine & Reichelt 1997, "The MATLAB ODE suite", SIAM J. Sci. Comput. 18, Sec. 3).

torchdiffeq has no stiff method with gradients (its ``implicit_adams`` iterates the corrector
by fixed point, which needs h·λ < 1), so a stiff system such as Robertson's kinetics cannot be
fitted to data through it. A Rosenbrock method is linearly implicit: each step solves three
linear systems with W = I − h d J (J = ∂f/∂y, taken by forward-mode autodiff), with no Newton
iteration, so the whole integration is an ordinary torch graph and back-propagation gives the
gradients of a data misfit with respect to rates and network weights ("discretize, then
differentiate"). L-stable, second order with a third-order error estimate; step sizes from
the error estimate (detached: the step sequence carries no gradient).

The formula is a W-method: second order for any matrix in place of J (Shampine & Reichelt,
Sec. 3.1). So J enters the graph as a constant (∂f/∂t does not): back-propagating through J
cost ~100x more on Robertson's system (26.7 s against 0.27 s for one backward pass) while the
gradient stays a consistent second-order approximation of the exact one (it agreed with
central differences of the integration to 0.05-0.8 % there; tests/test_ode.py checks it
against a closed form).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["rosenbrock23", "rosenbrock23_adjoint"]

_D = 1.0 / (2.0 + math.sqrt(2.0))
_E32 = 6.0 + math.sqrt(2.0)


def _jacobian(f: Callable, t: torch.Tensor, y: torch.Tensor, n: int) -> tuple:
    """(f(t, y) flattened, ∂f/∂y over the first ``n`` components of the flattened state as
    (N, n), ∂f/∂t flattened), by forward-mode autodiff; J detached (a W-method needs no exact
    J), ∂f/∂t not (the order conditions of a non-autonomous system need it exact, and so does
    its gradient)."""
    shape = y.shape

    def g(yy: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        return f(tt, yy.reshape(shape)).reshape(-1)
    flat = y.reshape(-1)
    if n == flat.numel():
        J = torch.func.jacfwd(g, argnums=0)(flat.detach(), t)
    else:
        rest = flat[n:].detach()
        J = torch.func.jacfwd(lambda yn: g(torch.cat([yn, rest]), t))(flat[:n].detach())
    # the jvp's primal output is f(t, y) itself (one evaluation for both)
    F0, T = torch.func.jvp(lambda tt: g(flat, tt), (t,), (torch.ones_like(t),))
    return F0, J.detach(), T


def rosenbrock23(f: Callable, y0: torch.Tensor, t: torch.Tensor, rtol: float, atol: float,
                 h0: float | None = None, max_steps: int = 100000, stiff: int | None = None,
                 record: list | None = None, jac: Callable | None = None) -> torch.Tensor:
    """Integrate dy/dt = f(t, y) from ``y0`` (any shape) at ``t[0]`` and return the states at
    every time of ``t`` (monotone, len(t) × y0.shape); steps land exactly on each output time.
    The local error estimate (h/6)(k1 − 2k2 + k3) is kept below ``atol`` + ``rtol``·|y| in
    the max norm. Raises RuntimeError when the step size underflows or after ``max_steps``.

    ``stiff``: the right-hand side depends on the first that many components of the
    flattened state only (the rest are quadratures); the linear systems are then solved on
    those components, and the quadratures follow from them exactly (W is block triangular).
    ``jac(t, y)``: (f, ∂f/∂y over those components as (N, n), ∂f/∂t), all flattened, in
    place of forward-mode autodiff of ``f`` (for a right-hand side whose Jacobian is known).
    ``record``: a list that receives (t, y, f(t, y)) at the start and after every accepted
    step (detached; the nodes of a cubic Hermite interpolant of the solution)."""
    out = [y0]
    n = y0.numel() if stiff is None else int(stiff)
    y = y0
    direction = 1.0 if float(t[-1]) >= float(t[0]) else -1.0
    span = abs(float(t[-1]) - float(t[0]))
    h = None if h0 is None else abs(h0)
    tc = t[0]
    steps = 0
    eye = None
    for k in range(1, len(t)):
        t_end = float(t[k])
        while direction * (t_end - float(tc)) > 0:
            F0, J, T = _jacobian(f, tc, y, n) if jac is None else jac(tc, y)
            if record is not None and not record:
                record.append((float(tc), y.detach(), F0.detach().reshape(y.shape)))
            if eye is None:
                eye = torch.eye(n, dtype=J.dtype, device=J.device)
            if h is None:     # Hairer, Nørsett & Wanner's initial step, first order
                sc = atol + rtol * y.detach().abs().reshape(-1)
                d0 = float((y.detach().reshape(-1) / sc).abs().max())
                d1 = float((F0.detach() / sc).abs().max())
                h = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
                h = min(h, span)
            while True:
                steps += 1
                if steps > max_steps:
                    raise RuntimeError(f"rosenbrock23: more than {max_steps} steps before "
                                       f"t = {t_end:g} (reached {float(tc):g})")
                left = abs(t_end - float(tc))
                hs = min(h, left)
                if left - hs < 1e-12 * max(1.0, abs(t_end)):   # land on the output time
                    hs = left
                hd = direction * hs
                W = eye - (hd * _D) * J[:n]
                lu = torch.linalg.lu_factor(W)

                def solve(b: torch.Tensor) -> torch.Tensor:
                    head = torch.linalg.lu_solve(*lu, b[:n].unsqueeze(-1)).squeeze(-1)
                    if n == b.numel():
                        return head
                    return torch.cat([head, b[n:] + (hd * _D) * (J[n:] @ head)])
                y_flat = y.reshape(-1)
                k1 = solve(F0 + hd * _D * T)
                F1 = f(tc + 0.5 * hd, (y_flat + 0.5 * hd * k1).reshape(y.shape)).reshape(-1)
                k2 = solve(F1 - k1) + k1
                y_new = y_flat + hd * k2
                F2 = f(tc + hd, y_new.reshape(y.shape)).reshape(-1)
                k3 = solve(F2 - _E32 * (k2 - F1) - 2.0 * (k1 - F0) + hd * _D * T)
                err = (hs / 6.0) * (k1 - 2.0 * k2 + k3).detach()
                scale = atol + rtol * torch.maximum(y_flat.detach().abs(), y_new.detach().abs())
                e = float((err / scale).abs().max())
                if not math.isfinite(e):   # nan too: reject, shrink tenfold
                    e = math.inf
                if e <= 1.0:
                    tc = tc + hd if hs != left else t[k]
                    y = y_new.reshape(y.shape)
                    if record is not None:
                        record.append((float(tc), y.detach(), F2.detach().reshape(y.shape)))
                    h = hs * min(5.0, 0.8 * max(e, 1e-10) ** (-1.0 / 3.0))
                    break
                h = hs * max(0.1, 0.8 * e ** (-1.0 / 3.0))
                if h < 1e-14 * max(1.0, abs(float(tc))):
                    raise RuntimeError(f"rosenbrock23: the step size underflowed at t = "
                                       f"{float(tc):g}")
        out.append(y)
    return torch.stack(out)


def _hermite(a: tuple, b: tuple) -> Callable:
    """The cubic Hermite interpolant of the solution between two recorded nodes (t, y, f), as
    a function of a 0-d time tensor (differentiable in it: the adjoint's ∂/∂t needs dy/dt)."""
    (ta, ya, fa), (tb, yb, fb) = a, b
    h = tb - ta

    def y_at(s: torch.Tensor) -> torch.Tensor:
        th = (s - ta) / h
        th2, th3 = th * th, th * th * th
        return ((2 * th3 - 3 * th2 + 1) * ya + (th3 - 2 * th2 + th) * h * fa
                + (3 * th2 - 2 * th3) * yb + (th3 - th2) * h * fb)
    return y_at


class _RosenbrockAdjoint(torch.autograd.Function):
    """rosenbrock23 forward under ``no_grad`` keeping only the accepted steps (t, y, f); the
    backward pass integrates the adjoint a' = −(∂f/∂y)ᵀa with the parameter quadratures
    g' = −(∂f/∂θ)ᵀa from the last output time to the first, with rosenbrock23 again, one
    forward step at a time, adding dL/dy(tₖ) at every output time (an "interpolated" adjoint
    on a stored forward solution, as CVODES does: integrating y backwards as well would be
    unstable for a stiff system). Within a forward step the Jacobian K = ∂f/∂(y, θ) (n × (n+P),
    reverse mode: n vector-Jacobian products) is taken at its two ends and its middle (y there
    from the cubic Hermite interpolant of the nodes) and interpolated quadratically in t, so
    the adjoint system there is linear with a known Jacobian: its solver steps cost matrix
    products, not differentiations of f."""

    @staticmethod
    def forward(ctx, func, settings, y0, t, *params):
        rtol, atol, max_steps = settings
        record: list = []
        with torch.no_grad():
            Y = rosenbrock23(func, y0, t, rtol, atol, max_steps=max_steps, record=record)
        if not record:        # all output times equal: nothing was integrated
            record.append((float(t[0]), y0.detach(), func(t[0], y0).detach()))
        times = [r[0] for r in record]
        # node index of every output time (steps land exactly on each)
        ctx.outs = [_node(times, float(tk)) for tk in t]
        ctx.func, ctx.settings, ctx.record = func, settings, record
        # what the backward pass must see of func as the forward did: the time offset of
        # sub-trajectory windows (reset after the forward call), and this integration's
        # share of the evaluation budget (another integration may have run since)
        ctx.state = {k: getattr(func, k) for k in ("offset", "nfe", "budget") if hasattr(func, k)}
        ctx.save_for_backward(*params)
        return Y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gY):
        func = ctx.func
        # put back what the forward saw; the evaluation count goes on from there
        current = {k: getattr(func, k) for k in ("offset", "budget") if k in ctx.state}
        for k, v in ctx.state.items():
            setattr(func, k, v)
        try:
            return _RosenbrockAdjoint._backward(ctx, gY)
        finally:
            for k, v in current.items():
                setattr(func, k, v)

    @staticmethod
    def _backward(ctx, gY):
        func, (rtol, atol, max_steps), record = ctx.func, ctx.settings, ctx.record
        params = [p.detach() for p in ctx.saved_tensors]
        names = [name for name, _ in func.named_parameters()]
        shape = record[0][1].shape
        n = record[0][1].numel()
        sizes = [p.numel() for p in params]

        def fz(s: torch.Tensor, yf: torch.Tensor, theta: list) -> torch.Tensor:
            out = torch.func.functional_call(func, dict(zip(names, theta)), (s, yf.reshape(shape)))
            return out.reshape(-1)

        def K_at(s: float, yf: torch.Tensor) -> torch.Tensor:
            """∂f/∂(y, θ) at (s, y) as (n, n + P)."""
            st = torch.tensor(s, dtype=yf.dtype, device=yf.device)
            _, vjp = torch.func.vjp(lambda yy, th: fz(st, yy, th), yf, params)
            rows = torch.func.vmap(vjp)(torch.eye(n, dtype=yf.dtype, device=yf.device))
            return torch.cat([rows[0]] + [r.reshape(n, -1) for r in rows[1]], dim=1)

        a = gY[-1].reshape(-1)
        g = a.new_zeros(sum(sizes))
        K_right = None
        for k in range(len(ctx.outs) - 1, 0, -1):
            for i in range(ctx.outs[k], ctx.outs[k - 1], -1):
                left, right = record[i - 1], record[i]
                t0, h = left[0], right[0] - left[0]
                if K_right is None:
                    K_right = K_at(right[0], right[1].reshape(-1))
                mid = _hermite(left, right)(torch.tensor(t0 + 0.5 * h, dtype=a.dtype,
                                                         device=a.device))
                Ks = (K_at(left[0], left[1].reshape(-1)), K_at(t0 + 0.5 * h, mid.reshape(-1)),
                      K_right)
                K_right = Ks[0]
                f, jac = _linear_adjoint(Ks, t0, h, n, getattr(func, "charge", None))
                Z = rosenbrock23(f, torch.cat([a, g]),
                                 torch.tensor([right[0], left[0]], dtype=a.dtype, device=a.device),
                                 rtol, atol, h0=abs(h), max_steps=max_steps, stiff=n, jac=jac)
                a, g = Z[-1, :n], Z[-1, n:]
            a = a + gY[k - 1].reshape(-1)
        grads = torch.split(g, sizes) if sizes else ()
        return (None, None, a.reshape(shape), None,
                *[gr.reshape(p.shape) for gr, p in zip(grads, params)])


def _linear_adjoint(Ks: tuple, t0: float, h: float, n: int,
                    charge: Callable | None) -> tuple:
    """(f, jac) for rosenbrock23 of z' = −K(s)ᵀ z[:n], with K quadratic in s through its
    values ``Ks`` at t0, t0 + h/2 and t0 + h. Each step (one ``jac`` call) is charged to
    ``charge(s)``, the right-hand side's evaluation budget, when given."""
    K0, Km, K1 = Ks

    def K_at(s: torch.Tensor) -> torch.Tensor:
        th = (float(s) - t0) / h
        return ((2 * (th - 0.5) * (th - 1)) * K0 - (4 * th * (th - 1)) * Km
                + (2 * th * (th - 0.5)) * K1)

    def f(s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -(K_at(s).T @ z[:n])

    def jac(s: torch.Tensor, z: torch.Tensor) -> tuple:
        if charge is not None:
            charge(s)
        th = (float(s) - t0) / h
        dK = ((4 * th - 3) * K0 - (8 * th - 4) * Km + (4 * th - 1) * K1) / h
        K = K_at(s)
        return -(K.T @ z[:n]), -K.T, -(dK.T @ z[:n])
    return f, jac


def _node(times: list, tk: float) -> int:
    """Index of the recorded node at output time ``tk`` (the last one there: a repeated
    output time adds no step)."""
    for i in range(len(times) - 1, -1, -1):
        if times[i] == tk:
            return i
    raise RuntimeError(f"internal error: no recorded step ended at the output time {tk:g}")


def rosenbrock23_adjoint(func: torch.nn.Module, y0: torch.Tensor, t: torch.Tensor, rtol: float,
                         atol: float, max_steps: int = 100000) -> torch.Tensor:
    """`rosenbrock23` whose backward pass solves the adjoint equations (`_RosenbrockAdjoint`)
    instead of back-propagating through the steps: memory O(steps × state) for the stored
    solution instead of the autograd graph of every step. Gradients flow to ``y0`` and to
    ``func``'s parameters (not to ``t``)."""
    params = tuple(func.parameters())
    return _RosenbrockAdjoint.apply(func, (rtol, atol, max_steps), y0, t, *params)
