"""Viscous Burgers equation with a shock.

Source: Raissi, Perdikaris & Karniadakis (2019), J. Comput. Phys. 378, 686-707, Sec. 3.1;
PINNacle (Hao et al., NeurIPS 2024) "Burgers1d-C".
u_t + u u_x = nu u_xx, nu = 0.01/pi, x in [-1, 1], t in [0, 1]; u(x, 0) = -sin(pi x); u(+-1, t) = 0.
Exact solution: the Cole-Hopf transform (`pinnkit.exact.burgers_sine`, Gauss-Hermite quadrature
in log space; agrees with Raissi's burgers_shock.mat to 3e-12).
"""
import math

import pinnkit as pk
from pinnkit.exact import burgers_sine

x, t = pk.coords("x t")
u = pk.field("u", x, t)
nu = 0.01 / math.pi

problem = pk.Problem(
    name="burgers",
    domain=pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) + u * u.diff(x) - nu * u.diff(x, 2)],
    conditions=[
        pk.Dirichlet(u, 0, on="boundary"),
        pk.Initial(u, -pk.sin(pk.pi * x)),
    ],
    exact={"u": lambda x, t: burgers_sine(x, t, nu)},
    # 4th-order FD on 2041 = 8*255 + 1 points contains the standard 256-point x grid; output
    # at the standard 100 times in [0, 0.99] (Raissi 2019's evaluation grid)
    reference={"resolution": {"x": 2041}, "order": 4, "times": [i * 0.01 for i in range(100)]},
)
# The first run (about 1.5 minutes on one CPU core, docs/benchmarks.md): 4x20 tanh, exact
# boundary/initial values, no Adam phase, 2500 iterations of self-scaled BFGS (Urbán et al.
# 2025) in float64 (compiled). Started from the initialisation, SSBFGS reached 4.7e-3 sooner
# than after 200 or 400 Adam steps on every seed 0-4 (median 14.7 vs 19.3 and 25.1 CPU s;
# docs/benchmarks.md 5.8), and sooner still than after the earlier default's 1000 steps.
options = {"steps": 0, "lbfgs_steps": 2500, "optimizer": "ssbfgs", "width": 20, "depth": 4,
           "interior_points": 6000, "hard_constraints": True}
# `--recipe accurate`: the previous defaults, 8x20 (Raissi 2019's depth), 10000 points, 3000
# Adam + 8000 float64 L-BFGS (median 2.6e-4 over seeds 0-4 in 1053-2850 s, docs/problems.md)
recipes = {"accurate": {"depth": 8, "interior_points": 10000, "steps": 3000, "lbfgs_steps": 8000,
                        "optimizer": "lbfgs"}}
