"""Second-phase quasi-Newton optimizers (pinnkit/optim.py): convergence on problems with a
known minimiser, an SPD inverse Hessian, the Broyden-family update. (The trainer's
``optimizer=`` option that uses them is on branch issue-17, not merged yet.)"""
import pytest
import torch

from pinnkit.optim import OPTIMIZERS

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
