#!/usr/bin/env python3
"""Curved Neumann/Robin boundaries of the finite-difference reference: observed orders and
the Richardson error estimate against exact solutions (docs/reference.md).

    python scripts/curved_bc_study.py

Problems: -Δu + u = f, u = sin(2x+1)cosh(y) + xy² on an off-centre disk (Neumann rim) and
on that disk minus an off-centre hole (Neumann rim, Robin hole) — the cases of
tests/test_reference.py — and forced heat on the unit disk with ∂u/∂n = 0 (the kind of
problem of issue 22), u = exp(-t)(r² - r⁴/2 + (x + y/2)(r² - 1)²).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import sympy

ROOT = Path(__file__).resolve().parents[1]
# the checkout on the path instead of scripts/: scripts/operator.py would shadow the standard
# library's `operator` in every subprocess that inherits the path (torch Inductor's SIMD
# probe then fails silently and compiles scalar kernels, 2.7x slower steps)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import pinnkit as pk  # noqa: E402
from pinnkit.metrics import evaluate, reference_errors  # noqa: E402
from test_reference import _curved  # noqa: E402


def true_error(problem, ref) -> float:
    return max(reference_errors(evaluate(problem, None, ref)).values())


def heat_disk():
    x, y, t = pk.coords("x y t")
    u = pk.field("u", x, y, t)
    r2 = x ** 2 + y ** 2
    # ∂u/∂r = 0 at r = 1 for every t: d/dr (r² - r⁴/2) = 0 and (r² - 1)² has a double root
    ex = sympy.exp(-t) * (r2 - r2 ** 2 / 2 + (x + y / 2) * (r2 - 1) ** 2)
    return pk.Problem("heat_disk", pk.Disk((x, y), (0, 0), 1, name="rim") * pk.TimeInterval(t, 0, 0.5),
                      [u.diff(t) - pk.laplacian(u) - (ex.diff(t) - pk.laplacian(ex))],
                      [pk.Neumann(u, 0, on="rim"), pk.Initial(u, ex.subs(t, 0))],
                      exact={"u": ex})


def main() -> None:
    print("| problem | n | FD L2RE vs exact | observed order | Richardson estimate | estimate / true |")
    print("|---|---|---|---|---|---|")
    cases = [("heat on the unit disk, ∂u/∂n = 0 (t ≤ 0.5)", heat_disk, 11),
             ("disk, Neumann rim", lambda: _curved(False), None),
             ("annulus, Neumann rim + Robin hole", lambda: _curved(True), None)]
    for label, make, nt in cases:
        ns = [17, 33, 65, 129, 257] if nt is None else [17, 33, 65, 129]
        errs = []
        for n in ns:
            problem = make()
            res = n if nt is None else {"x": n, "y": n, "t": nt}
            ref = pk.reference(problem, resolution=res, error_estimate=True)
            errs.append(true_error(problem, ref))
            est = max(ref.error_estimate.values())
            order = "" if len(errs) < 2 else f"{np.log2(errs[-2] / errs[-1]):.2f}"
            print(f"| {label} | {n} | {errs[-1]:.2e} | {order} | {est:.2e} | {est / errs[-1]:.2f} |",
                  flush=True)
        hs = [1.0 / (n - 1) for n in ns]
        print(f"| {label} | fit {ns[0]}..{ns[-1]} | | {np.polyfit(np.log(hs), np.log(errs), 1)[0]:.2f} | | |",
              flush=True)


if __name__ == "__main__":
    main()
