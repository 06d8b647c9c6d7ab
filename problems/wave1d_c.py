"""PINNacle Wave1d-C: 1D wave equation with two modes.

Source: Hao et al., "PINNacle: A Comprehensive Benchmark of Physics-Informed Neural Networks
for Solving PDEs", NeurIPS 2024 Datasets & Benchmarks (problem "Wave1d-C"); definition as in
../shared/BENCHMARKS.md. u_tt - 4 u_xx = 0, x in [0, 1], t in [0, 1]; u(0, t) = u(1, t) = 0;
u(x, 0) = sin(pi x) + 0.5 sin(4 pi x), u_t(x, 0) = 0.
Exact: u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t).
Published L2RE: vanilla PINN 5.88e-1, best 9.79e-2 (NTK weighting).
"""
import pinnkit as pk

x, t = pk.coords("x t")
u = pk.field("u", x, t)

problem = pk.Problem(
    name="wave1d_c",
    domain=pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t, 2) - 4 * u.diff(x, 2)],
    conditions=[
        pk.Dirichlet(u, 0, on="boundary"),
        pk.Initial(u, pk.sin(pk.pi * x) + 0.5 * pk.sin(4 * pk.pi * x)),
        pk.Initial(u, 0, order=1),
    ],
    exact={"u": pk.sin(pk.pi * x) * pk.cos(2 * pk.pi * t)
           + 0.5 * pk.sin(4 * pk.pi * x) * pk.cos(8 * pk.pi * t)},
    reference={"order": 4},  # finite-difference defaults
)
# The first run (<= 5 min on one core): a 3 x 30 network small enough for self-scaled BFGS
# (Urbán et al. 2025) after 1000 Adam steps, exact boundary/initial values. Measured:
# `python scripts/solve.py problems/wave1d_c.py --out DIR` (OMP_NUM_THREADS=1, via
# scripts/time_defaults.py): 1.52e-4 vs exact in 167.6 s wall (165.8 s CPU), the whole command.
options = {"steps": 1000, "lbfgs_steps": 4000, "optimizer": "ssbfgs", "width": 30, "depth": 3,
           "interior_points": 4000, "hard_constraints": True}
# `--recipe accurate`: the previous defaults (docs/accuracy.md): 64 x 4, 5000 Adam + 3000
# L-BFGS, 2.1e-3 vs exact (core issue run, 2019 s); the short default above is now better
recipes = {"accurate": {"steps": 5000, "lbfgs_steps": 3000, "optimizer": "lbfgs", "width": 64,
                        "depth": 4, "interior_points": 4000, "hard_constraints": True}}
