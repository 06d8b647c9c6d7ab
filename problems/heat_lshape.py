"""Heat equation on the L-shaped domain, with the re-entrant corner singularity.

Source: the L-shaped domain of the finite-element adaptivity literature (e.g. Verfürth,
"A Posteriori Error Estimation Techniques for Finite Element Methods", OUP 2013, Sec. 1.3),
where r^(2/3) sin(2θ/3) is the harmonic corner singularity, plus a decaying Fourier mode.
Domain: [-1, 1]^2 minus [0, 1] x [-1, 0] from meshes/lshape.msh, t in [0, 1].
u_t = a Δu, a = 0.05; u = exact on the whole boundary; u(x, y, 0) = exact at t = 0.
Exact: u = exp(-2 π² a t) sin(πx) sin(πy) + r^(2/3) sin(2θ/3), θ in [0, 3π/2] measured from
the edge along the positive x-axis (θ = atan2(-x - y, y - x) + 3π/4 keeps the branch cut in
the missing quadrant).
"""
from pathlib import Path

import pinnkit as pk

x, y, t = pk.coords("x y t")
u = pk.field("u", x, y, t)
a = 0.05
mesh = pk.Mesh.read(Path(__file__).resolve().parent.parent / "meshes" / "lshape.msh", coords=(x, y))

theta = pk.atan2(-x - y, y - x) + 3 * pk.pi / 4
corner = (x**2 + y**2) ** pk.Rational(1, 3) * pk.sin(2 * theta / 3)
exact = pk.exp(-2 * pk.pi**2 * a * t) * pk.sin(pk.pi * x) * pk.sin(pk.pi * y) + corner

problem = pk.Problem(
    name="heat_lshape",
    domain=mesh * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) - a * pk.laplacian(u)],
    conditions=[
        pk.Dirichlet(u, exact, on="boundary"),
        pk.Initial(u, exact.subs(t, 0)),
    ],
    exact={"u": exact},
)
options = {"steps": 3000, "lbfgs_steps": 3000, "width": 40, "depth": 4, "interior_points": 6000,
           "boundary_points": 1000, "initial_points": 1000, "mesh_vertices": True}
