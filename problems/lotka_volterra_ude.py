"""Lotka-Volterra as a universal differential equation (Rackauckas et al. 2020, "Universal
Differential Equations for Scientific Machine Learning", arXiv:2001.04385, Sec. 2.1).

x' = αx − βxy, y' = γxy − δy with α = 1.3, β = 0.9, γ = 0.8, δ = 1.8, (x, y)(0) =
(0.44249296, 4.6280594). The known growth/decay terms αx and −δy are kept; the interactions are
learned by a network U(x, y) of three hidden layers of 5 RBF units (the paper's). Data: the true
solution every 0.01 on [0, 3] (301 times) plus Gaussian noise of 5 % of each component's mean
(the paper's noise model; seed 1234). `pk.discover` then recovers U symbolically.

The paper samples every 0.1 (31 times; `POINTS = 31` below). From 31 points with 5 % noise even
the true model, refit by maximum likelihood, comes within 5 % of the true system on [0, 10] on
only 19 of 50 noise draws; from 301 points on 46 of 50 (docs/ode.md §2,
`python scripts/ode_bench.py lv_limit --draws 50 --points N`).
"""
import numpy as np
from scipy.integrate import solve_ivp

import pinnkit as pk

ALPHA, BETA, GAMMA, DELTA = 1.3, 0.9, 0.8, 1.8
X0 = (0.44249296, 4.6280594)
T_DATA, T_EXTRAPOLATE = 3.0, 10.0
POINTS = 301           # observation times on [0, T_DATA]


def true_rhs(s, v):
    return [ALPHA * v[0] - BETA * v[0] * v[1], GAMMA * v[0] * v[1] - DELTA * v[1]]


TRUE = solve_ivp(true_rhs, (0.0, T_EXTRAPOLATE), X0, method="DOP853", rtol=1e-12, atol=1e-12,
                 dense_output=True)
ts = np.linspace(0.0, T_DATA, POINTS)
clean = TRUE.sol(ts).T
rng = np.random.default_rng(1234)
observations = clean + 0.05 * clean.mean(axis=0) * rng.standard_normal(clean.shape)


def exact(k):
    return lambda s: TRUE.sol(np.ravel(s))[k].reshape(np.shape(s))


t = pk.coords("t")
x, y = pk.fields("x y", t)
Ux, Uy = pk.network("U", inputs=(x, y), outputs=2, width=5, depth=3, activation="rbf")

problem = pk.Problem(
    name="lotka_volterra_ude",
    domain=pk.TimeInterval(t, 0, T_DATA),
    equations={"x": x.diff(t) - (ALPHA * x + Ux), "y": y.diff(t) - (-DELTA * y + Uy)},
    conditions=[pk.Initial(x, X0[0]), pk.Initial(y, X0[1]),
                pk.Data([x, y], points={"t": ts}, values=observations)],
    exact={"x": exact(0), "y": exact(1)},
)
options = {"method": "ode", "steps": 800, "lbfgs_steps": 200, "lr": 1e-2, "dtype": "float64",
           "log_every": 50}
