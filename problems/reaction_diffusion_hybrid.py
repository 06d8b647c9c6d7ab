"""Fisher-KPP reaction-diffusion with a learned reaction term (a hybrid PDE, DESIGN.md §7).

u_t = D u_xx + R(u) on x in [-4, 6], t in [0, 4], D = 0.1. The true reaction is logistic,
R(u) = k u (1 - u) with k = 1, for which Fisher's equation has the exact travelling wave of
Ablowitz & Zeppetella (1979, "Explicit solutions of Fisher's equation for a special wave speed",
Bull. Math. Biol. 41, 835-840): u = (1 + exp(sqrt(k / (6 D)) x - 5 k t / 6))^-2, moving right at
speed 5 sqrt(k D / 6). Here the diffusion is known and R is a network of u alone (`pk.network`),
learned by the PINN jointly with u from sparse field data: 10 sensors x 10 times (100 values of
the exact wave, noise-free), with the exact values on the faces and at t = 0.

`TRUE_REACTION` is the logistic term; `problem.substitute({"R": TRUE_REACTION})` is Fisher's
equation itself, which `pk.reference` solves by finite differences (the field's reference).
"""
import numpy as np

import pinnkit as pk

D, K = 0.1, 1.0
X0, X1, T1 = -4.0, 6.0, 4.0

x, t = pk.coords("x t")
u = pk.field("u", x, t)
exact = (1 + pk.exp(pk.sqrt(K / (6 * D)) * x - 5 * K * t / 6)) ** -2


def exact_np(xs, ts):
    return (1 + np.exp(np.sqrt(K / (6 * D)) * xs - 5 * K * ts / 6)) ** -2


sensors = np.linspace(-3.5, 5.5, 10)
times = np.linspace(0.4, 4.0, 10)
XS, TS = (a.ravel() for a in np.meshgrid(sensors, times, indexing="ij"))
observations = exact_np(XS, TS)

R = pk.network("R", inputs=(u,), width=16, depth=2, activation="tanh")
TRUE_REACTION = K * u * (1 - u)

problem = pk.Problem(
    name="reaction_diffusion_hybrid",
    domain=pk.Interval(x, X0, X1) * pk.TimeInterval(t, 0, T1),
    equations={"fisher": u.diff(t) - D * u.diff(x, 2) - R},
    conditions=[
        pk.Dirichlet(u, exact, on="boundary"),
        pk.Initial(u, exact.subs(t, 0)),
        pk.Data(u, points={"x": XS, "t": TS}, values=observations, name="sensors"),
    ],
    exact={"u": exact},
)
options = {"steps": 4000, "lbfgs_steps": 1500, "width": 32, "depth": 3, "interior_points": 2000,
           "hard_constraints": True, "lr": 2e-3}
