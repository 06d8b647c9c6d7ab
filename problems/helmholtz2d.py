"""2D Helmholtz equation with a sin*sin source.

Source: DeepXDE example "Helmholtz equation over a 2D square domain" (Lu et al. 2021, SIAM Rev.
63, 208; examples/pinn_forward/Helmholtz_Dirichlet_2d.py). -u_xx - u_yy - k^2 u = f on [0, 1]^2,
k = 4 pi (two wavelengths per side), f = k^2 sin(k x) sin(k y), u = 0 on the boundary.
Exact: u = sin(k x) sin(k y).
"""
import pinnkit as pk

x, y = pk.coords("x y")
u = pk.field("u", x, y)
k = 4 * pk.pi

problem = pk.Problem(
    name="helmholtz2d",
    domain=pk.Rectangle((x, y), (0, 0), (1, 1)),
    equations=[-pk.laplacian(u) - k**2 * u - k**2 * pk.sin(k * x) * pk.sin(k * y)],
    conditions=[pk.Dirichlet(u, 0, on="boundary")],
    exact={"u": pk.sin(k * x) * pk.sin(k * y)},
    reference={"resolution": 129, "order": 4},  # finite-difference defaults
)
options = {"steps": 5000, "lbfgs_steps": 2000, "width": 64, "depth": 3, "activation": "sin",
           "interior_points": 4000, "boundary_points": 400, "hard_constraints": True}
