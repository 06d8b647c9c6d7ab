"""Laplace equation in a cube with a spherical cavity, read from a gmsh tetrahedral mesh.

Source: the exterior-of-a-sphere potential problem (Kellogg, "Foundations of Potential
Theory", 1929, Ch. VI) on a bounded 3-D domain: [-1, 1]^3 minus the ball of radius 0.4 at
the origin (meshes/box_with_hole.msh, boundaries "outer" and "hole").
Δu = 0; u = exact on "outer"; ∂u/∂n = exact flux on "hole" (n = -(x, y, z)/r, into the cavity).
Exact (harmonic): u = 0.4/r + (x² - z²)/2 + x y z, r = |(x, y, z)|.
"""
from pathlib import Path

import pinnkit as pk

x, y, z = pk.coords("x y z")
u = pk.field("u", x, y, z)
mesh = pk.Mesh.read(Path(__file__).resolve().parent.parent / "meshes" / "box_with_hole.msh",
                    coords=(x, y, z))

r = pk.sqrt(x**2 + y**2 + z**2)
exact = 0.4 / r + (x**2 - z**2) / 2 + x * y * z
flux = -(x * exact.diff(x) + y * exact.diff(y) + z * exact.diff(z)) / r

problem = pk.Problem(
    name="laplace3d",
    domain=mesh,
    equations=[pk.laplacian(u)],
    conditions=[
        pk.Dirichlet(u, exact, on="outer"),
        pk.Neumann(u, flux, on="hole"),
    ],
    exact={"u": exact},
)
options = {"steps": 3000, "lbfgs_steps": 2500, "width": 40, "depth": 4, "interior_points": 4000,
           "boundary_points": 1000, "mesh_vertices": True}
