"""2D Poisson equation on a square with a circular hole: Dirichlet outside, Neumann on the hole.

Source: manufactured solution (Roache 2002, J. Fluids Eng. 124, 4) on a CSG domain.
-Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on [0, 1]^2 minus the disk |p - (0.5, 0.5)| <= 0.2;
u = exact on the square's edges; du/dn = exact normal derivative on the hole, whose outward
normal (out of the domain) points into the disk: n = -(p - c)/r.
Exact: u = sin(pi x) sin(pi y).
"""
import pinnkit as pk

x, y = pk.coords("x y")
u = pk.field("u", x, y)
exact = pk.sin(pk.pi * x) * pk.sin(pk.pi * y)
cx, cy, r = 0.5, 0.5, 0.2
dudn_hole = -((x - cx) * exact.diff(x) + (y - cy) * exact.diff(y)) / r

problem = pk.Problem(
    name="poisson2d",
    domain=pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), (cx, cy), r, name="hole"),
    equations=[-pk.laplacian(u) - 2 * pk.pi**2 * exact],
    conditions=[
        pk.Dirichlet(u, exact, on=["x_min", "x_max", "y_min", "y_max"]),
        pk.Neumann(u, dudn_hole, on="hole"),
    ],
    exact={"u": exact},
)
options = {"steps": 3000, "lbfgs_steps": 1500, "width": 40, "depth": 4, "interior_points": 3000,
           "boundary_points": 400}
