"""The spiral of torchdiffeq's ode_demo as a fully neural ODE.

True dynamics dy/dt = (y³)A (elementwise cube), A = [[-0.1, 2.0], [-2.0, -0.1]], y(0) = (2, 0),
observed without noise at 1,000 equally spaced times on [0, 25] (Chen et al. 2018; torchdiffeq
examples/ode_demo.py). As in the demo, the network sees (x³, y³) and has one hidden layer of 50
tanh units; it is fitted on random sub-trajectories of 10 observations (batch_size 20). The
exact solution (SciPy DOP853, rtol 1e-12) covers [0, 35], so extrapolation past the data can
be measured.
"""
import numpy as np
from scipy.integrate import solve_ivp

import pinnkit as pk

A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
T_DATA, T_EXTRAPOLATE = 25.0, 35.0
TRUE = solve_ivp(lambda s, v: (v ** 3) @ A, (0.0, T_EXTRAPOLATE), [2.0, 0.0], method="DOP853",
                 rtol=1e-12, atol=1e-12, dense_output=True)
ts = np.linspace(0.0, T_DATA, 1000)
observations = TRUE.sol(ts).T                       # (1000, 2)


def exact(k):
    return lambda s: TRUE.sol(np.ravel(s))[k].reshape(np.shape(s))


t = pk.coords("t")
x, y = pk.fields("x y", t)
Fx, Fy = pk.network("F", inputs=(x ** 3, y ** 3), outputs=2, width=50, depth=1, activation="tanh")

problem = pk.Problem(
    name="spiral_node",
    domain=pk.TimeInterval(t, 0, T_DATA),
    equations={"x": x.diff(t) - Fx, "y": y.diff(t) - Fy},
    conditions=[pk.Initial(x, 2.0), pk.Initial(y, 0.0),
                pk.Data([x, y], points={"t": ts}, values=observations)],
    exact={"x": exact(0), "y": exact(1)},
)
# the demo's settings (Adam in place of RMSprop); a whole-trajectory L-BFGS phase after 1,000
# batch steps measured worse (docs/ode.md)
options = {"method": "ode", "steps": 2000, "batch_time": 10, "batch_size": 20, "lr": 1e-3,
           "data_loss": "mae", "log_every": 100}
# `--recipe accurate` (docs/ode.md): 500 batch steps in float64, then L-BFGS on every
# sub-trajectory of 20 observations from its observed start (multiple shooting), then on the
# whole trajectory from there; the whole-trajectory fit alone, from the batch-trained start,
# falls into a phase-shifted minimum
recipes = {"accurate": {"steps": 500, "batch_time": 20, "dtype": "float64", "lbfgs_steps": 400,
                        "lbfgs_loss": "windows,trajectory"}}
