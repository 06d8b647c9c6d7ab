"""2D heat equation in an insulated square (homogeneous Neumann walls).

Source: classical separation-of-variables solution (Strauss, "Partial Differential Equations",
2nd ed., Sec. 4.2). u_t = a (u_xx + u_yy) on [0, 1]^2 x [0, 1], a = 0.05, du/dn = 0 on every
wall, u(x, y, 0) = 1 + cos(pi x) cos(pi y).
Exact: u = 1 + cos(pi x) cos(pi y) exp(-2 pi^2 a t).
"""
import pinnkit as pk

x, y, t = pk.coords("x y t")
u = pk.field("u", x, y, t)
a = 0.05

problem = pk.Problem(
    name="heat2d_neumann",
    domain=pk.Rectangle((x, y), (0, 0), (1, 1)) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) - a * pk.laplacian(u)],
    conditions=[
        pk.Neumann(u, 0, on="boundary"),
        pk.Initial(u, 1 + pk.cos(pk.pi * x) * pk.cos(pk.pi * y)),
    ],
    exact={"u": 1 + pk.cos(pk.pi * x) * pk.cos(pk.pi * y) * pk.exp(-2 * pk.pi**2 * a * t)},
)
options = {"steps": 3000, "lbfgs_steps": 1000, "width": 40, "depth": 4, "interior_points": 4000,
           "boundary_points": 800, "hard_constraints": True}
