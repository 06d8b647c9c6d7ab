"""Robertson's stiff chemical kinetics (Hairer & Wanner, Solving ODEs II, Sec. IV.1).

y1' = −k1 y1 + k3 y2 y3, y2' = k1 y1 − k3 y2 y3 − k2 y2², y3' = k2 y2², y(0) = (1, 0, 0),
k1 = 0.04, k2 = 3e7, k3 = 1e4. Published values at t = 40: y1 = 0.7158271, y2 = 9.185535e-6,
y3 = 0.2841637. The rates are pk.parameters in log form (k = exp(log_k), positive and well
scaled), started at their true values: the reference integrates the known system; data of 1 %
relative noise at 40 log-spaced times (seed 7) are included for rate recovery.
Explicit solvers need millions of steps on [0, 40]; SciPy's Radau/BDF/LSODA with the sympy
Jacobian a few hundred; pinnkit's differentiable Rosenbrock solver (``ode_solver=
"rosenbrock23"``, `pinnkit.ode.stiff`) about 600 steps, and it fits the rates: the default run
(L-BFGS on the relative misfit, the maximum-likelihood loss for relative noise) starts at the
published rates and ends at the rates the noisy data support; started 2x, 0.5x and 3x off they
come back within 1 % (`python scripts/ode_bench.py robertson`, docs/ode.md).
"""
import math

import numpy as np
from scipy.integrate import solve_ivp

import pinnkit as pk

K1, K2, K3 = 0.04, 3e7, 1e4
PUBLISHED_T40 = {"y1": 0.7158271, "y2": 9.185535e-6, "y3": 0.2841637}


def true_rhs(s, v):
    return [-K1 * v[0] + K3 * v[1] * v[2], K1 * v[0] - K3 * v[1] * v[2] - K2 * v[1] ** 2,
            K2 * v[1] ** 2]


ts = np.geomspace(1e-3, 40.0, 40)
TRUE = solve_ivp(true_rhs, (0.0, 40.0), [1.0, 0.0, 0.0], method="Radau", rtol=1e-11, atol=1e-15,
                 t_eval=ts)
rng = np.random.default_rng(7)
observations = TRUE.y.T * (1 + 0.01 * rng.standard_normal(TRUE.y.T.shape))

t = pk.coords("t")
y1, y2, y3 = pk.fields("y1 y2 y3", t)
log_k1 = pk.parameter("log_k1", init=math.log(K1))
log_k2 = pk.parameter("log_k2", init=math.log(K2))
log_k3 = pk.parameter("log_k3", init=math.log(K3))
k1, k2, k3 = pk.exp(log_k1), pk.exp(log_k2), pk.exp(log_k3)

problem = pk.Problem(
    name="robertson",
    domain=pk.TimeInterval(t, 0, 40),
    equations={"y1": y1.diff(t) - (-k1 * y1 + k3 * y2 * y3),
               "y2": y2.diff(t) - (k1 * y1 - k3 * y2 * y3 - k2 * y2 ** 2),
               "y3": y3.diff(t) - k2 * y2 ** 2},
    conditions=[pk.Initial(y1, 1.0), pk.Initial(y2, 0.0), pk.Initial(y3, 0.0),
                pk.Data([y1, y2, y3], points={"t": ts}, values=observations)],
    reference={"method": "Radau", "rtol": 1e-10, "atol": 1e-14,
               "times": np.concatenate([[0.0], np.geomspace(1e-4, 40.0, 200)])},
)
options = {"method": "ode", "ode_solver": "rosenbrock23", "data_loss": "relative",
           "dtype": "float64", "steps": 0, "lbfgs_steps": 30, "rtol": 1e-6, "atol": 1e-10}
