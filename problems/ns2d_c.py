"""PINNacle NS2d-C ("NS2D_LidDriven"): steady lid-driven cavity flow, Re = 100.

Source: Hao et al., "PINNacle: A Comprehensive Benchmark of Physics-Informed Neural Networks
for Solving PDEs", NeurIPS 2024 Datasets & Benchmarks (problem "NS2d-C"); definition as in
../shared/BENCHMARKS.md. On [0, 1]^2 with nu = 0.01:
    u u_x + v u_y + p_x - nu Δu = 0,   u v_x + v v_y + p_y - nu Δv = 0,   u_x + v_y = 0;
lid (y = 1): u = 4x(1 - x), v = 0; other walls u = v = 0; p(0, 0) = 0.
No closed form: compare with pinnkit's finite-difference reference and with PINNacle's COMSOL
solution (../shared/data/pinnacle_ns2d_c.npz, 101 x 101 nodes).
Published L2RE: vanilla PINN 4.70e-2, best 3.60e-2 (LAAF).

The velocity data is one Dirichlet condition per field: g = 4x(1 - x)·y equals the lid profile
on y = 1 and vanishes on the other three walls, so it is the benchmark's data on every wall.
The wall-pressure conditions state that the momentum equation normal to each wall holds on
it (true of the exact solution); the finite-difference reference uses them as the pressure's
boundary rows (``field=p``), and its collocated grid needs the documented pressure-Laplacian
stabilisation of the continuity equation (``stabilize``, see docs/reference.md).
"""
import pinnkit as pk

nu = 0.01
x, y = pk.coords("x y")
u, v, p = pk.fields("u v p", x, y)
momentum_x = u * u.diff(x) + v * u.diff(y) + p.diff(x) - nu * (u.diff(x, 2) + u.diff(y, 2))
momentum_y = u * v.diff(x) + v * v.diff(y) + p.diff(y) - nu * (v.diff(x, 2) + v.diff(y, 2))

problem = pk.Problem(
    name="ns2d_c",
    domain=pk.Rectangle((x, y), (0, 0), (1, 1)),
    equations={"momentum_x": momentum_x, "momentum_y": momentum_y,
               "continuity": u.diff(x) + v.diff(y)},
    conditions=[
        pk.Dirichlet(u, 4 * x * (1 - x) * y, on="boundary"),
        pk.Dirichlet(v, 0, on="boundary"),
        pk.BoundaryEquation(momentum_x, on=["x_min", "x_max"], field=p, name="wall_pressure_x"),
        pk.BoundaryEquation(momentum_y, on=["y_min", "y_max"], field=p, name="wall_pressure_y"),
        pk.Data(p, points={"x": [0.0], "y": [0.0]}, values=[0.0], name="pressure_level"),
    ],
    reference={"resolution": 257,
               "stabilize": {"equation": "continuity", "field": "p", "coefficient": 0.25}},
)
# The first run (<= 5 min on one core, of which the 257² reference takes about 54 s): hard wall
# velocities, NTK-trace weighting in 2000 Adam steps, then self-scaled BFGS (Urbán et al. 2025)
# on a 3 x 30 network. Measured vs the FD reference, largest field error, along one run (one
# thread, training seconds): 500 SSBFGS iterations 5.0e-2 (122 s), 1500 1.25e-2 (169 s), 3000
# 9.1e-3 (235 s); 4 x 40 instead (132 ms per iteration against 44): 1000 iterations 1.5e-2
# (249 s).
# `python scripts/solve.py problems/ns2d_c.py --out DIR` (OMP_NUM_THREADS=1,
# scripts/time_defaults.py): u 3.1e-3, v 4.0e-3, p 1.5e-2 vs the FD reference in 294.9 s wall
# (284 s CPU; training 220 s, reference 64 s), the whole command; the Adam step's compile
# failed there and ran eagerly (a one-line note).
options = {"steps": 2000, "lbfgs_steps": 1500, "optimizer": "ssbfgs", "width": 30, "depth": 3,
           "interior_points": 4000, "boundary_points": 800, "hard_constraints": True,
           "loss_weighting": "ntk", "compile": True}
# `--recipe accurate` (the previous defaults, docs/accuracy.md): hard wall velocities, NTK-trace
# weighting of the remaining terms (PDE, wall pressure, pressure level): 5.0e-3 stacked vs the
# FD reference (u 3.0e-3, v 3.9e-3, p 1.7e-2) and 1.2e-2 vs COMSOL in 1134 s on one thread;
# fixed weights gave 6.5e-3 / 1.29e-2 (1014 s).
recipes = {"accurate": {"steps": 20000, "lbfgs_steps": 5000, "optimizer": "lbfgs", "width": 64,
                        "depth": 4, "interior_points": 4000, "boundary_points": 800,
                        "hard_constraints": True, "loss_weighting": "ntk", "compile": True}}
