"""Allen-Cahn equation with periodic boundaries.

Source: Raissi, Perdikaris & Karniadakis (2019), J. Comput. Phys. 378, 686-707, Sec. 4.1.2;
Wang, Sankaran, Wang & Perdikaris (2023), "An expert's guide to training physics-informed
neural networks" (JAX-PI). u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0, x in [-1, 1], t in [0, 1];
u(x, 0) = x^2 cos(pi x); periodic in x. No closed form: compare with Raissi's spectral data
(../shared/data/allen_cahn.npz) or pinnkit's finite-difference reference.
Published L2RE: JAX-PI 5.37e-5 (modified MLP, 1e5+ steps, GPU); PirateNet 2.24e-5.
"""
import pinnkit as pk

x, t = pk.coords("x t")
u = pk.field("u", x, t)

problem = pk.Problem(
    name="allen_cahn",
    domain=pk.Interval(x, -1, 1) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) - 1e-4 * u.diff(x, 2) + 5 * u**3 - 5 * u],
    conditions=[
        pk.Periodic(u, x),
        pk.Initial(u, x**2 * pk.cos(pk.pi * x)),
    ],
    # periodic grid of 512 points on [-1, 1) and 201 times: the grid of Raissi's data
    reference={"resolution": {"x": 512, "t": 201}, "order": 4},
)
# The first run (<= 5 min on one core): the accurate recipe below, shortened to 10000 steps with
# its learning-rate schedule scaled alike (x 0.8 every 667 steps). Measured on this machine,
# whose compiled step is slower than where the recipe was measured (docs/benchmarks.md 5.7):
# `--set steps=20000 --set lr_decay_steps=1333`: 1.95e-2 vs the FD reference in 481 s wall
# (470 s training, 23.5 ms per step); eager (`compile=false`) 35 ms per step. These options:
# `python scripts/solve.py problems/allen_cahn.py --out DIR` (OMP_NUM_THREADS=1,
# scripts/time_defaults.py): 4.07e-2 vs the FD reference in 231.6 s wall (229 s CPU).
options = {"steps": 10000, "lbfgs_steps": 0, "lr": 2e-3, "lr_decay": 0.8, "lr_decay_steps": 667,
           "network": "modified_mlp", "width": 64, "depth": 4, "interior_points": 1000,
           "initial_points": 512, "hard_constraints": True, "periodic_embedding": True,
           "causal_eps": 1.0, "causal_bins": 32, "resample_every": 1, "log_every": 500,
           "compile": True}
# `--recipe accurate` (the previous defaults), the CPU recipe: exact periodicity, exact initial
# condition (hard constraint), causal training (Wang, Sankaran & Perdikaris 2022), and many
# cheap Adam steps on 1000 collocation points redrawn at every step (lr 2e-3, x 0.8 every 13333
# steps): 7.3e-4 vs Raissi's data after 200000 steps in 1560 s on one thread of the shared
# 2-core machine (`python scripts/benchmark_accuracy.py allen_cahn --threads 1`, whole-step
# compile; docs/accuracy.md). Before the hard constraint's symbolic derivatives (loss-only
# compile): 7.9e-4 in 2004 s. With 2000 points: 100000 steps 2.5e-3 (1606 s), 60000 steps
# 5.4e-3 (935 s). The earlier recipe (4000 points redrawn every 500 steps, 6000 Adam + 1000
# L-BFGS) gave 2.3e-2 and 3.3e-2 in about 5 minutes. The published 5e-5 needs 1e5+ steps of a
# 4 x 256 network on a GPU.
recipes = {"accurate": {"steps": 200000, "lbfgs_steps": 0, "lr": 2e-3, "lr_decay": 0.8,
                        "lr_decay_steps": 13333, "network": "modified_mlp", "width": 64, "depth": 4,
                        "interior_points": 1000, "initial_points": 512, "hard_constraints": True,
                        "periodic_embedding": True, "causal_eps": 1.0, "causal_bins": 32,
                        "resample_every": 1, "log_every": 500, "compile": True}}
