"""Poisson equation on a plate with a circular hole, read from a gmsh mesh.

Source: manufactured solution (method of manufactured solutions, Roache, "Code Verification
by the Method of Manufactured Solutions", J. Fluids Eng. 124, 2002) on the classical
"plate with a hole" geometry: the square [-1, 1]^2 minus the disk of radius 0.3 at the
origin, meshed by meshes/make_meshes.py (boundaries "outer" and "hole").
-Δu = f with f = 3 sin(2x + 0.5) cosh(y); u = exact on "outer"; ∂u/∂n = exact flux on "hole"
(n the outward normal of the plate, pointing into the hole: n = -(x, y)/r).
Exact: u = sin(2x + 0.5) cosh(y) + x y / 2.
"""
from pathlib import Path

import pinnkit as pk

x, y = pk.coords("x y")
u = pk.field("u", x, y)
mesh = pk.Mesh.read(Path(__file__).resolve().parent.parent / "meshes" / "plate_with_hole.msh",
                     coords=(x, y))

exact = pk.sin(2 * x + 0.5) * pk.cosh(y) + x * y / 2
r = pk.sqrt(x**2 + y**2)
flux = -(x * exact.diff(x) + y * exact.diff(y)) / r          # ∂u/∂n on the hole

problem = pk.Problem(
    name="poisson_plate_hole",
    domain=mesh,
    equations=[-pk.laplacian(u) - 3 * pk.sin(2 * x + 0.5) * pk.cosh(y)],
    conditions=[
        pk.Dirichlet(u, exact, on="outer"),
        pk.Neumann(u, flux, on="hole"),
    ],
    exact={"u": exact},
)
options = {"steps": 3000, "lbfgs_steps": 1000, "width": 40, "depth": 4, "interior_points": 3000,
           "boundary_points": 600}
