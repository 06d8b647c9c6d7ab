"""Inverse Burgers: recover the viscosity from 2,000 noisy samples of the exact solution.

Source: Raissi, Perdikaris & Karniadakis (2019), J. Comput. Phys. 378, 686-707, Sec. 4.1.1
(data-driven discovery, 2,000 points, 1% noise). u_t + u u_x = nu u_xx on [-1, 1] x [0, 1],
true nu = 0.01/pi. nu is learned as exp(log_nu) (positive, and well scaled for Adam);
the initial/boundary data of the forward problem are also known and used.
Data: 2,000 points drawn uniformly (seed 1234) from the exact Cole-Hopf solution, plus 1%
Gaussian noise (relative to the data's standard deviation, as in Raissi 2019).
"""
import math

import numpy as np

import pinnkit as pk
from pinnkit.exact import burgers_sine

TRUE_NU = 0.01 / math.pi

x, t = pk.coords("x t")
u = pk.field("u", x, t)
log_nu = pk.parameter("log_nu", init=math.log(0.05))

rng = np.random.default_rng(1234)
xs = rng.uniform(-1, 1, 2000)
ts = rng.uniform(0, 1, 2000)
us = burgers_sine(xs, ts, TRUE_NU)
us = us + 0.01 * np.std(us) * rng.standard_normal(us.shape)

problem = pk.Problem(
    name="burgers_inverse",
    domain=pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) + u * u.diff(x) - pk.exp(log_nu) * u.diff(x, 2)],
    conditions=[
        pk.Data(u, points={"x": xs, "t": ts}, values=us),
        pk.Dirichlet(u, 0, on="boundary"),
        pk.Initial(u, -pk.sin(pk.pi * x)),
    ],
    exact={"u": lambda x, t: burgers_sine(x, t, TRUE_NU)},
)
# The first run (under 5 minutes on one core): as problems/burgers.py, a 4 x 20 network with
# exact boundary/initial values, 1000 Adam steps, then 2000 self-scaled BFGS iterations
# (Urbán et al. 2025) in float64. `python scripts/time_defaults.py burgers_inverse` with these
# options: 5.5e-4 vs exact in 111 s (one thread, nothing else running).
options = {"steps": 1000, "lbfgs_steps": 2000, "optimizer": "ssbfgs", "width": 20, "depth": 4,
           "interior_points": 4000, "hard_constraints": True}
# `--recipe accurate`: the previous defaults, 8 x 20, 5000 Adam + 3000 L-BFGS (7.9e-4 vs exact
# in 429 s, docs/benchmarks.md "Every problem's default run")
recipes = {"accurate": {"steps": 5000, "lbfgs_steps": 3000, "optimizer": "lbfgs", "depth": 8,
                        "hard_constraints": False}}
