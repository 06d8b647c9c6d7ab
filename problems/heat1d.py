"""1D heat equation with two decaying modes.

Source: classical separation-of-variables solution (e.g. Strauss, "Partial Differential
Equations", 2nd ed., Sec. 4.1). u_t = a u_xx on x in [0, 1], t in [0, 1], a = 0.1,
u(0, t) = u(1, t) = 0, u(x, 0) = sin(pi x) + 0.5 sin(3 pi x).
Exact: u = exp(-a pi^2 t) sin(pi x) + 0.5 exp(-9 a pi^2 t) sin(3 pi x).
"""
import pinnkit as pk

x, t = pk.coords("x t")
u = pk.field("u", x, t)
a = 0.1
exact = pk.exp(-a * pk.pi**2 * t) * pk.sin(pk.pi * x) + 0.5 * pk.exp(-9 * a * pk.pi**2 * t) * pk.sin(3 * pk.pi * x)

problem = pk.Problem(
    name="heat1d",
    domain=pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) - a * u.diff(x, 2)],
    conditions=[
        pk.Dirichlet(u, 0, on="boundary"),
        pk.Initial(u, pk.sin(pk.pi * x) + 0.5 * pk.sin(3 * pk.pi * x)),
    ],
    exact={"u": exact},
)
options = {"steps": 3000, "lbfgs_steps": 1000, "width": 32, "depth": 3}
