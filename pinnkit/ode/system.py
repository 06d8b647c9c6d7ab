"""A time-only `Problem` as a first-order ODE system y' = F(t, y) (plain sympy, no torch).

Each field's equations are solved for its highest time derivative (they must be linear in
them; a clear `SpecError` otherwise); a field of order q becomes q state components
(u, u', ..., u^(q-1)). Learned terms stay in F as `NetworkOutput` applications whose inputs
are rewritten in the state symbols; each solver evaluates them its own way
(`split_networks`). Shared by the SciPy reference and the torchdiffeq trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy
from sympy.solvers.solveset import NonlinearError

from ..errors import SpecError
from ..learned import Network, NetworkOutput
from ..spec import Initial, Problem

__all__ = ["ODESystem", "ode_system", "split_networks", "DataSet", "trajectory_state"]


@dataclass
class DataSet:
    """One Data condition: times (n,), values (n, k), the state columns they observe and the
    trajectory they belong to (an index into `ODESystem.trajectories`; 0: the problem's own)."""

    name: str
    times: np.ndarray
    values: np.ndarray
    columns: list
    trajectory: int = 0


@dataclass
class ODESystem:
    """y' = rhs(t, y) with y(t0) = y0.

    ``state``: names of the state components ("u", "u_t", "u_tt" for higher orders);
    ``symbols``: their sympy symbols (aligned); ``rhs``/``y0``: sympy expressions (rhs of the
    state symbols, ``t``, parameters and learned terms; y0 of parameters only);
    ``fields``: {field: its state column}; ``networks``: {name: `Network`};
    ``data``: the Data conditions as `DataSet`s; ``trajectories``: the initial states (lists
    like ``y0``) of the observed trajectories, ``trajectories[0] == y0`` (Data(initial=...)
    adds the others)."""

    problem: Problem
    t: sympy.Symbol
    t0: float
    t1: float
    state: list
    symbols: list
    rhs: list
    y0: list
    fields: dict
    parameters: list
    networks: dict
    data: list
    trajectories: list = field(default_factory=list)

    def orders(self) -> dict:
        """{field: order of its equation} (its number of state components)."""
        cols = sorted(self.fields.items(), key=lambda kv: kv[1])
        ends = [c for _, c in cols[1:]] + [len(self.state)]
        return {f: end - c for (f, c), end in zip(cols, ends)}

    def jacobian(self) -> sympy.Matrix:
        """d rhs / d y (symbolic; learned terms are opaque and must be split off first)."""
        return sympy.Matrix(self.rhs).jacobian(self.symbols)


def _state_name(field: str, k: int, t: str) -> str:
    return field if k == 0 else f"{field}_{t * k}"


def ode_system(problem: Problem, what: str = "an ODE solver") -> ODESystem:
    """The first-order system of a time-only problem; `SpecError` saying why not otherwise."""
    if problem.time is None:
        raise SpecError(f"problem {problem.name!r}: {what} needs a time coordinate; the domain "
                        "is pk.TimeInterval(t, t0, t1)")
    if problem.spatial_coords:
        raise SpecError(f"problem {problem.name!r} has space coordinate(s) "
                        f"{', '.join(map(str, problem.spatial_coords))}: {what} integrates systems "
                        "whose only coordinate is time (use method='pinn' or the finite-difference "
                        "reference for PDEs)")
    t = problem.time
    orders: dict = {}
    for name, eq in problem.equations.items():
        for f, (q,) in problem.derivative_keys(eq):
            orders[f] = max(orders.get(f, 0), q)
    fields = list(problem.fields)
    for f in fields:
        if orders.get(f, 0) == 0:
            raise SpecError(f"problem {problem.name!r}: field {f} has no time derivative in the "
                            "equations (an algebraic equation); an ODE system needs one for each field")
    if len(problem.equations) != len(fields):
        raise SpecError(f"problem {problem.name!r}: {len(problem.equations)} equation(s) for "
                        f"{len(fields)} field(s) ({', '.join(fields)}); an ODE system needs one "
                        "equation per field")
    state, symbols, columns, lower = [], [], {}, {}
    for f in fields:
        columns[f] = len(state)
        for k in range(orders[f]):
            name = _state_name(f, k, t.name)
            sym = sympy.Symbol(f"__y_{name}", real=True)
            state.append(name)
            symbols.append(sym)
            u = problem.fields[f]
            lower[u if k == 0 else sympy.Derivative(u, (t, k))] = sym
    top = {f: sympy.Dummy(f"d{f}") for f in fields}
    targets = {sympy.Derivative(problem.fields[f], (t, orders[f])): top[f] for f in fields}
    eqs = []
    for name, eq in problem.equations.items():
        e = eq.xreplace(targets).xreplace({d: s for d, s in lower.items()
                                           if isinstance(d, sympy.Derivative)})
        e = e.xreplace({u: s for u, s in lower.items() if not isinstance(u, sympy.Derivative)})
        eqs.append(e)
    unknowns = [top[f] for f in fields]
    highest = ", ".join(f"d^{orders[f]}{f}/d{t}^{orders[f]}" if orders[f] > 1 else f"d{f}/d{t}"
                        for f in fields)
    try:
        A, b = sympy.linear_eq_to_matrix(eqs, unknowns)
    except NonlinearError:
        raise SpecError(f"problem {problem.name!r}: the equations cannot be solved for the highest "
                        f"derivative(s) {highest}: they are not linear in them") from None
    if A.free_symbols & set(unknowns) or A.det() == 0:
        raise SpecError(f"problem {problem.name!r}: the equations cannot be solved for the highest "
                        f"derivative(s) {highest} (their coefficient matrix is singular)")
    sol = list(A.LUsolve(b)) if not A.is_diagonal() else [b[i] / A[i, i] for i in range(len(b))]
    rhs: list = []
    for i, f in enumerate(fields):
        k0 = columns[f]
        rhs += [symbols[k0 + k + 1] for k in range(orders[f] - 1)] + [sympy.sympify(sol[i])]
    y0 = _initial_values(problem, fields, orders)
    trajectories = [y0]
    data = _data_sets(problem, columns, orders, trajectories)
    return ODESystem(problem, t, float(problem.domain.t0), float(problem.domain.t1), state,
                     symbols, rhs, y0, columns, list(problem.parameters), dict(problem.networks), data,
                     trajectories)


def _initial_values(problem: Problem, fields: list, orders: dict) -> list:
    t = problem.time
    given: dict = {}
    for term in problem.terms:
        if term.kind in ("boundary", "periodic"):
            raise SpecError(f"problem {problem.name!r}: condition {term.name!r} needs a spatial "
                            "boundary, which an ODE system does not have")
        c = term.condition
        if isinstance(c, Initial):
            g = sympy.sympify(c.g).subs(t, problem.domain.t0)
            bad = [s for s in g.free_symbols if s not in problem.parameters] + \
                [str(f) for f in g.atoms(sympy.Function)]
            if bad:
                raise SpecError(f"problem {problem.name!r}: initial value of {c.u} is {g}; it may "
                                "use numbers and pk.parameters only")
            given[(c.u.func.__name__, c.order)] = g
    y0 = []
    for f in fields:
        for k in range(orders[f]):
            if (f, k) not in given:
                what = f"{f}" if k == 0 else f"d^{k}{f}/dt^{k}"
                raise SpecError(f"problem {problem.name!r}: no initial value for {what}; add "
                                f"pk.Initial({f}, value{'' if k == 0 else f', order={k}'})")
            y0.append(given[(f, k)])
    return y0


def trajectory_state(problem: Problem, y0: list, columns: dict, orders: dict, initial: dict,
                     what: str) -> list:
    """The initial state ``y0`` with the components given by ``initial`` ({(field, order):
    value}, `Problem.initial_values`) replaced; `SpecError` for an order the state lacks."""
    out = list(y0)
    for (f, k), v in initial.items():
        if k >= orders[f]:
            have = ", ".join(_state_name(f, j, problem.time.name) for j in range(orders[f]))
            raise SpecError(f"{what}: an initial value of d^{k}{f}/d{problem.time.name}^{k}, but "
                            f"the state of {f} is ({have}) (its equation is of order {orders[f]})")
        out[columns[f] + k] = sympy.Float(v)
    return out


def _data_sets(problem: Problem, columns: dict, orders: dict, trajectories: list) -> list:
    """The Data conditions; each ``Data(initial=...)`` with new initial values appends its
    initial state to ``trajectories`` (equal initial states share one trajectory)."""
    out = []
    tname = problem.time.name
    for term in problem.terms:
        if term.kind != "data":
            continue
        vals = np.asarray(term.data_values, float)
        vals = vals[:, None] if vals.ndim == 1 else vals
        cols = [columns[e.func.__name__] for e in term.exprs]
        k = 0
        if term.data_initial is not None:
            y0 = trajectory_state(problem, trajectories[0], columns, orders, term.data_initial,
                                  f"condition {term.name!r}: initial")
            same = [i for i, other in enumerate(trajectories)
                    if all(sympy.sympify(a - b) == 0 for a, b in zip(y0, other))]
            k = same[0] if same else len(trajectories)
            if not same:
                trajectories.append(y0)
        out.append(DataSet(term.name, np.asarray(term.data_points[tname], float), vals, cols, k))
    return out


def split_networks(exprs: list) -> tuple[list, list]:
    """Replace learned-term applications by placeholder symbols.

    Returns (expressions with placeholders, [(network, input expressions, [(output index,
    placeholder)])]): a solver evaluates each network once on its inputs (expressions in the
    same symbols as ``exprs``) and puts output k into its placeholder."""
    calls = sorted({c for e in exprs for c in sympy.sympify(e).atoms(NetworkOutput)}, key=str)
    per_net: dict = {}
    repl = {}
    for c in calls:
        ph = sympy.Dummy(f"net_{c.func.__name__}")
        repl[c] = ph
        net: Network = c.func.network
        per_net.setdefault(net.name, (net, c.args, []))[2].append((c.func.index, ph))
    return [sympy.sympify(e).xreplace(repl) for e in exprs], list(per_net.values())
