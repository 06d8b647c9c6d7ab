"""Second-phase optimizers (after Adam): dense quasi-Newton methods with a strong-Wolfe line
search, for the small networks (a few thousand parameters) with which they reach PINN errors
far below Adam + L-BFGS (Urbán, Stefanou & Pons 2025, J. Comput. Phys. 523, 113656;
Kiyani et al. 2025, arXiv:2501.16371).

``OPTIMIZERS`` maps the names the ``optimizer`` option takes to classes; "lbfgs" is torch's
L-BFGS, which the trainer drives itself. Each class works on one flat parameter vector ``x``
through ``fun(x) -> (f, g)`` (the loss as a 0-d tensor and its gradient, both in the
optimizer's dtype) and keeps the dense inverse-Hessian approximation ``H`` (n × n).

All of them update ``H`` with the self-scaled Broyden family in its inverse form
(Urbán et al. 2025, Eq. 10; Al-Baali 1998):

    H⁺ = (1/τ) [H − (H y)(H y)ᵀ / (yᵀH y) + φ (yᵀH y) v vᵀ] + s sᵀ / (yᵀs),
    v = s / (yᵀs) − H y / (yᵀH y),

with s the step, y the change of the gradient, and the scalars h = yᵀH y / yᵀs,
b = −α sᵀg / yᵀs (g the gradient before the step, α the step length), a = b h − 1.
BFGS is τ = φ = 1; SSBFGS (Al-Baali's choice) τ = min(1, 1/b), φ = 1; SSBroyden chooses θ
(hence φ = (1 − θ)/(1 + a θ)) and τ per step (Urbán et al. 2025, Eqs. 13–17). The first
update scales H₀ = I by yᵀs / yᵀy (Nocedal & Wright, Eq. 6.20).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.optim.lbfgs import _strong_wolfe   # Moré–Thuente-style bracketing + cubic zoom

from .errors import TrainingError

__all__ = ["QuasiNewton", "BFGS", "SSBFGS", "SSBroyden", "OPTIMIZERS", "MAX_DENSE_PARAMETERS"]

#: the dense n × n inverse Hessian of more parameters would take over ~1.2 GB in float64
MAX_DENSE_PARAMETERS = 12000
_TINY = 1e-30


class QuasiNewton:
    """Dense quasi-Newton minimisation of ``fun`` from the current parameters ``x0`` with a
    strong-Wolfe line search (c1 = 1e-4, c2 = 0.9). ``run(k)`` does up to k iterations and
    returns how many it did; ``reason`` is None while it may continue, else why it stopped.
    A line search that finds no decrease restarts ``H`` from the scaled identity once; a
    second one in a row stops it."""

    name = "quasi-newton"

    def __init__(self, fun: Callable, x0: torch.Tensor, grad_tol: float = 0.0,
                 max_ls: int = 25) -> None:
        n = x0.numel()
        if n > MAX_DENSE_PARAMETERS:
            raise TrainingError(
                f"optimizer {self.name!r} keeps a dense {n} x {n} inverse Hessian "
                f"({n * n * x0.element_size() / 2**30:.1f} GiB) for this network's {n} "
                f"parameters; the limit is {MAX_DENSE_PARAMETERS}: use optimizer='lbfgs' "
                "or a smaller network")
        self.fun, self.x = fun, x0.detach().clone()
        self.grad_tol, self.max_ls = grad_tol, max_ls
        self.H: torch.Tensor | None = None     # None: the identity, scaled at the first update
        self.f: torch.Tensor | None = None
        self.g: torch.Tensor | None = None
        self.iterations = 0
        self.evaluations = 0
        self.restarts = 0
        self.updates = 0
        self.reason: str | None = None
        self._failed = False                   # the last line search found no decrease

    # -- the loop
    def _evaluate(self, x: torch.Tensor) -> tuple:
        f, g = self.fun(x)
        self.evaluations += 1
        return f.detach().reshape(()), g.detach().reshape(-1)

    def run(self, max_iter: int) -> int:
        """Up to ``max_iter`` iterations; the number done (fewer when it stopped)."""
        if self.f is None:
            self.f, self.g = self._evaluate(self.x)
        done = 0
        while done < max_iter and self.reason is None:
            if not math.isfinite(float(self.f)):
                self.reason = "non-finite loss"
                break
            if float(self.g.norm()) <= self.grad_tol:
                self.reason = f"gradient norm <= {self.grad_tol:g}"
                break
            if self._iterate():
                done += 1
        return done

    def _iterate(self) -> bool:
        """One step; False when the line search failed (H restarted, or stop)."""
        x, f, g = self.x, self.f, self.g
        d = -g if self.H is None else -(self.H @ g)
        gtd = float(g @ d)
        if not gtd < 0:        # H lost positive definiteness in rounding: steepest descent
            self.H, d = None, -g
            gtd = float(g @ d)
        # first step of a (re)start: unit length in the max norm, as torch's L-BFGS
        t = min(1.0, 1.0 / float(g.abs().sum())) if self.H is None else 1.0

        def along(x_, t_, d_):
            return self._evaluate(x_ + t_ * d_)
        # torch's default tolerance_change (1e-9, the bracket's width in parameter units) ends
        # the zoom without a decrease once the steps are small; float64 resolves far smaller
        f_new, g_new, t, _ = _strong_wolfe(along, x, t, d, f, g, gtd, max_ls=self.max_ls,
                                           tolerance_change=1e-14)
        f_new = torch.as_tensor(f_new, dtype=f.dtype)
        if not (t > 0 and math.isfinite(float(f_new)) and float(f_new) < float(f)):
            if self._failed or self.H is None:
                self.reason = "line search found no decrease along -H g nor along -g"
            self._failed, self.H = True, None
            self.restarts += 1
            return False
        s = t * d
        y = g_new - g
        self._update(s, y, t, g)
        self.x, self.f, self.g = x + s, f_new, g_new
        self.iterations += 1
        self._failed = False
        return True

    # -- the Hessian update (Broyden family in inverse form, module docstring)
    def _update(self, s: torch.Tensor, y: torch.Tensor, alpha: float, g: torch.Tensor) -> None:
        ys = float(y @ s)
        if not ys > _TINY:     # no curvature information (cannot keep H SPD): skip
            return
        first = self.H is None
        H = (ys / float(y @ y)) * torch.eye(len(s), dtype=s.dtype, device=s.device) if first else self.H
        Hy = H @ y
        yHy = float(y @ Hy)
        h = yHy / ys
        b = -alpha * float(s @ g) / ys
        tau, phi = (1.0, 1.0) if first else self._scaling(h, b, len(s))
        # the update is a symmetric rank-2 change in span{H y, s} (v expanded):
        #   H⁺ = H/τ + [Hy s] C [Hy s]ᵀ, C = [[(φ−1)/(τ yHy), −φ/(τ ys)],
        #                                      [−φ/(τ ys), φ yHy/(τ ys²) + 1/ys]]
        # applied in place by one BLAS product: the n × n matrix is read and written
        # once or twice per iteration instead of once per outer product
        c_hh, c_hs = (phi - 1.0) / (tau * yHy), -phi / (tau * ys)
        c_ss = phi * yHy / (tau * ys * ys) + 1.0 / ys
        U = torch.stack([Hy, s], dim=1)
        C = torch.tensor([[c_hh, c_hs], [c_hs, c_ss]], dtype=s.dtype, device=s.device)
        if tau != 1.0:
            H = H.mul_(1.0 / tau) if not first else H / tau
        H.addmm_(U @ C, U.T)
        self.updates += 1
        if self.updates % 50 == 0:   # rounding makes H drift from symmetric: project back
            H = 0.5 * (H + H.T)
        self.H = H

    def _scaling(self, h: float, b: float, n: int) -> tuple[float, float]:
        """(τ, φ) of this method."""
        raise NotImplementedError

    # -- state
    @property
    def grad_norm(self) -> float:
        return float(self.g.norm()) if self.g is not None else float("nan")

    def report(self) -> str:
        """One line: the reason it stopped, iterations, final loss and gradient norm."""
        return (f"{self.name} stopped after {self.iterations} iterations "
                f"({self.evaluations} loss evaluations, {self.restarts} restarts): "
                f"{self.reason or 'iteration budget spent'}; loss {float(self.f):.3e}, "
                f"gradient norm {self.grad_norm:.3e}")

    def state_dict(self) -> dict:
        return {"name": self.name, "x": self.x, "H": self.H, "iterations": self.iterations,
                "evaluations": self.evaluations, "restarts": self.restarts}

    def load_state_dict(self, state: dict) -> None:
        """Restore x, H and the counters; f and g are evaluated again at x."""
        self.x, self.H, self.f, self.g = state["x"], state["H"], None, None
        self.iterations, self.evaluations = state["iterations"], state["evaluations"]
        self.restarts = state["restarts"]


class BFGS(QuasiNewton):
    """BFGS (τ = φ = 1)."""

    name = "bfgs"

    def _scaling(self, h, b, n):
        return 1.0, 1.0


class SSBFGS(QuasiNewton):
    """Self-scaled BFGS with Al-Baali's τ = min(1, 1/b) (Urbán et al. 2025, Eq. 12)."""

    name = "ssbfgs"

    def _scaling(self, h, b, n):
        return (min(1.0, 1.0 / b) if b > _TINY else 1.0), 1.0


class SSBroyden(QuasiNewton):
    """Self-scaled Broyden (Urbán et al. 2025, Eqs. 13–17, their "SSBroyden2"): θ within the
    interval that keeps H SPD and bounded, pulled towards the SR1-like choice (1 − b)/b, and
    τ from it."""

    name = "ssbroyden"

    def _scaling(self, h, b, n):
        a = b * h - 1.0
        if abs(a) < 1e-12 or b <= _TINY:       # H already fits y: a BFGS step
            return min(1.0, 1.0 / b) if b > _TINY else 1.0, 1.0
        root = math.sqrt(max(abs(a) / (1.0 + a), 0.0)) if 1.0 + a > _TINY else 0.0
        rho_minus = min(1.0, h * (1.0 - root))
        theta_minus = (rho_minus - 1.0) / a
        theta_plus = 1.0 / rho_minus if abs(rho_minus) > _TINY else 0.0
        theta = max(theta_minus, min(theta_plus, (1.0 - b) / b))
        sigma = 1.0 + a * theta
        rho = min(1.0, 1.0 / b)
        sigma_n = abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 and abs(sigma) > _TINY else 1.0
        if theta > 0:
            tau = rho * min(sigma_n, 1.0 / theta)
        else:
            tau = min(rho * sigma_n, sigma) if sigma > 0 else rho * sigma_n
        if not (math.isfinite(tau) and tau > _TINY):
            tau = 1.0
        phi = (1.0 - theta) / sigma if abs(sigma) > _TINY else 0.0
        return tau, phi


#: the ``optimizer`` option's choices; "lbfgs" (torch's L-BFGS) has no class here
OPTIMIZERS: dict[str, type | None] = {"lbfgs": None, "bfgs": BFGS, "ssbfgs": SSBFGS,
                                       "ssbroyden": SSBroyden}
