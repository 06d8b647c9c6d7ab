"""2D Poisson equation on a square with a circular hole: Dirichlet and Neumann mixed.

Source: manufactured solution (Roache 2002, J. Fluids Eng. 124, 4) on a CSG domain.
-Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on [0, 1]^2 minus the disk |p - (0.55, 0.45)| <= 0.2;
u = exact on the hole and on the left and bottom edges; du/dn = exact normal derivative
(-pi cos(pi) sin(pi y) = pi sin(pi y) on x = 1, likewise on y = 1) on the right and top edges.
Exact: u = sin(pi x) sin(pi y).
"""
import pinnkit as pk

x, y = pk.coords("x y")
u = pk.field("u", x, y)
exact = pk.sin(pk.pi * x) * pk.sin(pk.pi * y)
cx, cy, r = 0.55, 0.45, 0.2

problem = pk.Problem(
    name="poisson2d",
    domain=pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), (cx, cy), r, name="hole"),
    equations=[-pk.laplacian(u) - 2 * pk.pi**2 * exact],
    conditions=[
        pk.Dirichlet(u, exact, on=["x_min", "y_min", "hole"]),
        pk.Neumann(u, exact.diff(x), on="x_max"),
        pk.Neumann(u, exact.diff(y), on="y_max"),
    ],
    exact={"u": exact},
)
options = {"steps": 3000, "lbfgs_steps": 1500, "width": 40, "depth": 4, "interior_points": 3000,
           "boundary_points": 400}
