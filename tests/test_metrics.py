"""Metrics (`pinnkit.metrics`, `pk.compare`): relative L2 and max errors of a known
perturbation, against the exact solution and against the reference, on the reference's grid."""
import numpy as np
import pytest
import sympy

import pinnkit as pk
from pinnkit.metrics import l2re


def test_l2re_definition_and_zero_base():
    assert l2re(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(1 / np.sqrt(2))
    assert l2re(np.zeros(3), np.zeros(3)) == 0.0
    assert l2re(np.ones(3), np.zeros(3)) == float("inf")


def test_compare_measures_a_known_perturbation_on_the_reference_grid():
    x = pk.coords("x")
    u = pk.field("u", x)
    exact = sympy.sin(sympy.pi * x)
    problem = pk.Problem("sine", pk.Interval(x, 0, 1), [u.diff(x, 2) + sympy.pi ** 2 * exact],
                         [pk.Dirichlet(u, 0)], exact={"u": exact})
    ref = pk.reference(problem, resolution=201)
    eps = 1e-3

    class Perturbed:            # a "PINN": the exact solution plus eps * x
        def __call__(self, pts):
            return {"u": np.sin(np.pi * pts["x"]) + eps * pts["x"]}

    m = pk.compare(Perturbed(), ref, problem)["u"]
    xs = np.linspace(0, 1, 201)
    assert m["l2re_exact"] == pytest.approx(np.linalg.norm(eps * xs) / np.linalg.norm(np.sin(np.pi * xs)),
                                            rel=1e-9)
    assert m["linf_exact"] == pytest.approx(eps, rel=1e-9)
    # against the second-order reference: the same up to its own error (h^2 pi^2/12 ~ 2e-5)
    assert m["l2re_reference"] == pytest.approx(m["l2re_exact"], rel=0.05)
    assert set(m) == {"l2re_exact", "l2re_reference", "linf_exact", "linf_reference"}
    with pytest.raises(ValueError, match="needs the problem"):
        pk.compare(None, ref)
