"""PINNacle Heat2d-MS ("Heat2D_Multiscale"): anisotropic heat equation with a multiscale mode.

Source: Hao et al., "PINNacle: A Comprehensive Benchmark of Physics-Informed Neural Networks
for Solving PDEs", NeurIPS 2024 Datasets & Benchmarks (problem "Heat2d-MS"); definition as in
../shared/BENCHMARKS.md. u_t = 1/(500π)² u_xx + 1/π² u_yy on [0, 1]^2 x [0, 5], u = 0 on the
boundary, u(x, y, 0) = sin(20πx) sin(πy).
Exact: u = sin(20πx) sin(πy) exp(−(0.0016 + 1) t) (score against it; PINNacle's COMSOL data
differs from it by 1.3e-2).
"""
import pinnkit as pk

x, y, t = pk.coords("x y t")
u = pk.field("u", x, y, t)
exact = pk.sin(20 * pk.pi * x) * pk.sin(pk.pi * y) * pk.exp(-(0.0016 + 1) * t)

problem = pk.Problem(
    name="heat2d_ms",
    domain=pk.Rectangle((x, y), (0, 0), (1, 1)) * pk.TimeInterval(t, 0, 5),
    equations=[u.diff(t) - u.diff(x, 2) / (500 * pk.pi) ** 2 - u.diff(y, 2) / pk.pi**2],
    conditions=[
        pk.Dirichlet(u, 0, on="boundary"),
        pk.Initial(u, exact.subs(t, 0)),
    ],
    exact={"u": exact},
    reference={"resolution": {"x": 201, "y": 41, "t": 51}},
)
options = {"steps": 4000, "lbfgs_steps": 2000, "width": 64, "depth": 4, "interior_points": 6000,
           "boundary_points": 800, "initial_points": 2000, "hard_constraints": True,
           "fourier_features": 0}
