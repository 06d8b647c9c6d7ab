"""ODE systems from time-only problems (DESIGN.md §7).

`system` (plain sympy) turns a problem into y' = F(t, y); the SciPy reference
(`pinnkit.fd.ode`) and the torchdiffeq trainer (`pinnkit.ode.trainer`, loaded on first
use: torch) both start from it.
"""

from __future__ import annotations

from .system import DataSet, ODESystem, ode_system, split_networks

__all__ = ["ODESystem", "DataSet", "ode_system", "split_networks"]
