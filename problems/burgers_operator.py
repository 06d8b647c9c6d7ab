"""Burgers' equation as an operator-learning problem: initial value u0 -> u(., 1).

Source: Li et al. (2021), "Fourier neural operator for parametric partial differential
equations", ICLR, Sec. 5.1: u_t + (u²/2)_x = nu u_xx on the periodic x in [0, 1), nu = 0.1,
t in [0, 1]; u0 ~ N(0, 625 (-Δ + 25 I)^-2) without its constant mode, as the paper's data
generator draws it (GRF1.m in the authors' repository sets the k = 0 coefficient to the
prescribed mean, 0). The operator maps u0 to u(., 1).
`python scripts/operator.py problems/burgers_operator.py` makes the data with the
finite-difference reference of this same spec and trains a Fourier neural operator.
"""
import pinnkit as pk

x, t = pk.coords("x t")
u = pk.field("u", x, t)
u0 = pk.input_field("u0", x)
nu = 0.1

problem = pk.Problem(
    name="burgers_operator",
    domain=pk.Interval(x, 0, 1) * pk.TimeInterval(t, 0, 1),
    equations=[u.diff(t) + u * u.diff(x) - nu * u.diff(x, 2)],
    conditions=[pk.Periodic(u, x), pk.Initial(u, u0)],
    # 4th-order central differences in x; output at t = 1 (the operator's target)
    reference={"resolution": {"x": 1024}, "order": 4, "times": [0.0, 1.0],
               "rtol": 1e-8, "atol": 1e-10},
)
# zero_mean: the constant mode would have variance 625 / 25² = 1, more than all other modes
# together. Burgers conserves the mean c and is Galilean invariant, u(x, t) = c + v(x - c t, t),
# so with it u(., 1) is mostly the constant c, and the operator would have to learn a
# translation by c (a factor exp(-2πikc) per mode) of a remainder 1 % of the norm
samplers = {"u0": pk.GaussianRandomField(sigma=25.0, tau=5.0, alpha=2.0, zero_mean=True)}
options = {"n_train": 1000, "n_test": 200, "resolution": 1024, "modes": 16, "width": 64,
           "layers": 4, "epochs": 500, "batch_size": 20, "lr": 1e-3,
           "test_resolutions": [256, 1024, 4096]}
