"""Finite-difference weights on arbitrary 1-D point sets (pure numpy).

`fornberg` gives the weights of the m-th derivative at x0 from values at the points xs
(Fornberg 1988, Math. Comp. 51, 699, "Generation of finite difference formulas on
arbitrarily spaced grids"). On uniform points it reproduces the classical central and
one-sided formulas; next to a curved boundary (a point at distance θh) the 3-point
second-derivative weights are exactly the Shortley–Weller scheme.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fornberg", "stencil_indices"]


def fornberg(x0: float, xs: np.ndarray, m: int) -> np.ndarray:
    """Weights w with sum_j w_j f(xs_j) ≈ f^(m)(x0); exact for polynomials of degree < len(xs)."""
    xs = np.asarray(xs, dtype=float)
    n = len(xs)
    if n <= m:
        raise ValueError(f"{n} points cannot give a derivative of order {m}")
    c = np.zeros((n, m + 1))
    c1, c4 = 1.0, xs[0] - x0
    c[0, 0] = 1.0
    for i in range(1, n):
        mn = min(i, m)
        c2, c5, c4 = 1.0, c4, xs[i] - x0
        for j in range(i):
            c3 = xs[i] - xs[j]
            c2 *= c3
            if j == i - 1:
                for k in range(mn, 0, -1):
                    c[i, k] = c1 * (k * c[i - 1, k - 1] - c5 * c[i - 1, k]) / c2
                c[i, 0] = -c1 * c5 * c[i - 1, 0] / c2
            for k in range(mn, 0, -1):
                c[j, k] = (c4 * c[j, k] - k * c[j, k - 1]) / c3
            c[j, 0] = c4 * c[j, 0] / c3
        c1 = c2
    return c[:, m]


def stencil_indices(i: int, n: int, m: int, order: int, periodic: bool) -> np.ndarray:
    """Positions (into a line of n points) of the stencil for derivative m at position i.

    Central with ``m + order - 1`` points (rounded up to odd) where it fits, shifted to a
    one-sided stencil of ``m + order`` points near the ends; periodic lines wrap around.
    """
    width = m + order - 1
    width += 1 - width % 2  # central stencils have an odd number of points
    half = width // 2
    if periodic:
        if width > n:
            raise ValueError(f"a periodic line of {n} points is too short for this stencil")
        return np.arange(i - half, i + half + 1) % n
    if i - half >= 0 and i + half < n:
        return np.arange(i - half, i + half + 1)
    width = m + order  # one-sided: one more point keeps the order of accuracy
    if width > n:
        raise ValueError(f"a line of {n} points is too short for derivative order {m} at "
                         f"accuracy order {order}")
    start = 0 if i - half < 0 else n - width
    return np.arange(start, start + width)
