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
# The first run (<= 5 min on one core): a 3 x 30 network small enough for self-scaled BFGS
# (Urbán et al. 2025) after 1000 Adam steps (the boundary is a mesh: no exact constraints).
# Error along one run (one thread, vs exact): 5.0e-3 after 1000 SSBFGS iterations (96 s of
# training), 1.1e-3 after 3000 (192 s), 8.0e-4 after 4000 (233 s).
options = {"steps": 1000, "lbfgs_steps": 3000, "optimizer": "ssbfgs", "width": 30, "depth": 3,
           "interior_points": 6000, "boundary_points": 1000, "initial_points": 1000,
           "mesh_vertices": True}
# `--recipe accurate`: the previous defaults, 40 x 4, 3000 Adam + 3000 L-BFGS (5.0e-3 vs exact
# in 448 s, docs/benchmarks.md "Every problem's default run"); the short default above is better
recipes = {"accurate": {"steps": 3000, "lbfgs_steps": 3000, "optimizer": "lbfgs", "width": 40,
                        "depth": 4, "interior_points": 6000, "boundary_points": 1000,
                        "initial_points": 1000, "mesh_vertices": True}}
