"""Second-phase quasi-Newton optimizers (pinnkit/optim.py): convergence on problems with a
known minimiser, an SPD inverse Hessian, the stopping report, and a tiny PINN."""
import numpy as np
import pytest
import torch

import pinnkit as pk
from pinnkit.cli import load_problem_file
from pinnkit.errors import TrainingError
from pinnkit.optim import MAX_DENSE_PARAMETERS, OPTIMIZERS

from conftest import ROOT

METHODS = [name for name, cls in OPTIMIZERS.items() if cls is not None]


def rosenbrock(x):
    x = x.detach().requires_grad_(True)
    f = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    g, = torch.autograd.grad(f, x)
    return f.detach(), g


@pytest.mark.parametrize("name", METHODS)
def test_rosenbrock_minimiser_with_spd_inverse_hessian(name):
    x0 = torch.tensor([-1.2, 1.0, -0.5, 0.8, 1.5, 0.3], dtype=torch.float64)
    opt = OPTIMIZERS[name](rosenbrock, x0, grad_tol=1e-10)
    while opt.reason is None and opt.iterations < 400:
        opt.run(1)
        if opt.H is not None:    # symmetric positive definite after every update
            assert torch.allclose(opt.H, opt.H.T, rtol=0, atol=1e-11 * opt.H.abs().max())
            assert torch.linalg.eigvalsh(opt.H).min() > 0, (name, opt.iterations)
    assert opt.reason == "gradient norm <= 1e-10", opt.report()
    assert torch.max(torch.abs(opt.x - 1)) < 1e-8
    assert opt.iterations < 150     # superlinear: BFGS needs ~50 here, gradient descent thousands
    report = opt.report()
    assert report.startswith(f"{name} stopped after {opt.iterations} iterations")
    assert "gradient norm" in report and "gradient norm <= 1e-10" in report


@pytest.mark.parametrize("name", METHODS)
def test_update_is_the_broyden_family_formula(name):
    """The in-place rank-2 update equals Urbán et al.'s Eq. 10 written out, and the new H
    satisfies the secant equation H y = s."""
    g = torch.Generator().manual_seed(1)
    n = 9
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    H0 = A @ A.T + n * torch.eye(n, dtype=torch.float64)
    s = torch.randn(n, generator=g, dtype=torch.float64)
    y = s + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    grad = -torch.randn(n, generator=g, dtype=torch.float64)
    opt = OPTIMIZERS[name](lambda x: (x.sum(), x), torch.zeros(n, dtype=torch.float64))
    opt.H = H0.clone()
    Hy, ys = H0 @ y, float(y @ s)
    yHy = float(y @ Hy)
    tau, phi = opt._scaling(yHy / ys, -0.7 * float(s @ grad) / ys, n)
    opt._update(s, y, 0.7, grad)
    v = s / ys - Hy / yHy
    ref = (H0 - torch.outer(Hy, Hy) / yHy + phi * yHy * torch.outer(v, v)) / tau + torch.outer(s, s) / ys
    assert torch.allclose(opt.H, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(opt.H @ y, s, rtol=1e-12, atol=1e-12)
    if name == "bfgs":
        assert (tau, phi) == (1.0, 1.0)


@pytest.mark.parametrize("name", METHODS)
def test_quadratic_minimiser_and_curvature(name):
    """f = (x - x*)'A(x - x*)/2 with cond(A) = 1e3 (minimum 0, so that decreases stay above
    round-off down to a tiny gradient): converges to x*, H stays SPD."""
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    A = Q @ torch.diag(torch.logspace(0, 3, 12, dtype=torch.float64)) @ Q.T
    xs = torch.randn(12, generator=g, dtype=torch.float64)

    def quad(x):
        return 0.5 * (x - xs) @ A @ (x - xs), A @ (x - xs)
    opt = OPTIMIZERS[name](quad, torch.zeros(12, dtype=torch.float64), grad_tol=1e-11)
    opt.run(200)
    assert opt.reason == "gradient norm <= 1e-11", opt.report()
    assert torch.linalg.norm(opt.x - xs) <= 1e-11 * torch.linalg.norm(xs)
    assert torch.linalg.eigvalsh(opt.H).min() > 0


def test_budget_and_too_many_parameters():
    opt = OPTIMIZERS["ssbfgs"](rosenbrock, torch.tensor([-1.2, 1.0], dtype=torch.float64))
    assert opt.run(5) == 5 and opt.reason is None
    assert "iteration budget spent" in opt.report()
    with pytest.raises(TrainingError, match="dense .* inverse Hessian.*optimizer='lbfgs'"):
        OPTIMIZERS["bfgs"](rosenbrock, torch.zeros(MAX_DENSE_PARAMETERS + 1, dtype=torch.float64))
    problem, _ = load_problem_file(ROOT / "problems" / "poisson_robin1d.py")
    with pytest.raises(TrainingError, match="option optimizer must be one of lbfgs, bfgs, ssbfgs"):
        pk.train(problem, optimizer="newton", steps=1)


def _robin_error(sol, problem):
    xs = np.linspace(0, 1, 201)
    exact = np.cos(np.pi * xs) + xs ** 2
    return np.linalg.norm(sol({"x": xs})["u"] - exact) / np.linalg.norm(exact)


@pytest.mark.parametrize("name", ["ssbfgs", "ssbroyden"])
def test_tiny_pinn_to_the_exact_solution(name):
    """1-D Poisson with Robin ends (exact solution), 1 x 16 tanh, 300 Adam steps then 300
    iterations: the error vs the exact solution falls below 1e-4 (Adam alone: above 1e-2),
    as with L-BFGS, and every accepted step lowers the loss."""
    problem, _ = load_problem_file(ROOT / "problems" / "poisson_robin1d.py")
    kw = dict(steps=300, lbfgs_steps=300, width=16, depth=1, interior_points=64,
              boundary_points=1, seed=0, quiet=True, compile=False, log_every=50)
    lbfgs = pk.train(problem, optimizer="lbfgs", **kw)
    qn = pk.train(problem, optimizer=name, **kw)
    e_l, e_q = _robin_error(lbfgs, problem), _robin_error(qn, problem)
    adam = pk.train(problem, **{**kw, "lbfgs_steps": 0})
    assert _robin_error(adam, problem) > 1e-2
    assert e_q < 1e-4 and e_l < 1e-4, (name, e_q, e_l)
    # the phase's losses never rise (every accepted step decreases the loss)
    phase2 = [v for v, p in zip(qn.history["loss"], qn.history["phase"]) if p == 1]
    assert all(b <= a for a, b in zip(phase2, phase2[1:]))
    assert any(m.startswith(f"{name} stopped after ") and "gradient norm" in m for m in qn.messages)
    assert any(m.startswith("L-BFGS stopped after") for m in lbfgs.messages)


def test_quasi_newton_resumes_exactly(tmp_path):
    """A checkpointed run stopped mid-phase resumes to the uninterrupted run's parameters."""
    problem, _ = load_problem_file(ROOT / "problems" / "poisson_robin1d.py")
    kw = dict(steps=50, width=8, depth=1, interior_points=32, boundary_points=1, seed=1,
              quiet=True, compile=False, log_every=10, optimizer="ssbroyden", dtype="float64",
              checkpoint_every=10)
    full = pk.train(problem, lbfgs_steps=40, **kw)
    ck = str(tmp_path / "checkpoint.pt")
    pk.train(problem, lbfgs_steps=20, checkpoint=ck, **kw)
    resumed = pk.train(problem, lbfgs_steps=40, checkpoint=ck, resume=True, **kw)
    a = torch.cat([p.detach().reshape(-1) for p in full.model.parameters()])
    b = torch.cat([p.detach().reshape(-1) for p in resumed.model.parameters()])
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
