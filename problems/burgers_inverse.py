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
options = {"steps": 5000, "lbfgs_steps": 3000, "width": 20, "depth": 8, "interior_points": 4000}
