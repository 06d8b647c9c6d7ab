"""1D Poisson equation with Robin conditions at both ends (manufactured solution).

Source: manufactured solution (method of manufactured solutions, Roache 2002,
J. Fluids Eng. 124, 4). -u'' = f on [0, 1] with u = cos(pi x) + x^2, so f = pi^2 cos(pi x) - 2,
and u + du/dn = g at x = 0 and x = 1 (n the outward normal: -1 at x = 0, +1 at x = 1).
"""
import pinnkit as pk

x, = pk.coords("x,")
u = pk.field("u", x)
exact = pk.cos(pk.pi * x) + x**2

problem = pk.Problem(
    name="poisson_robin1d",
    domain=pk.Interval(x, 0, 1),
    equations=[-u.diff(x, 2) - (pk.pi**2 * pk.cos(pk.pi * x) - 2)],
    conditions=[
        pk.Robin(u, 1, 1, exact - exact.diff(x), on="x_min"),
        pk.Robin(u, 1, 1, exact + exact.diff(x), on="x_max"),
    ],
    exact={"u": exact},
)
options = {"steps": 2000, "lbfgs_steps": 500, "width": 32, "depth": 3, "interior_points": 256,
           "boundary_points": 16}
