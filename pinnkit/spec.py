"""The problem language: coordinates, fields, parameters, conditions and `Problem`.

Plain sympy; no torch, no solver. A `Problem` validates itself on construction and
compiles every equation and condition into `Term`s: sympy residual expressions that
must vanish on a region (interior, a named boundary, the initial slice, data points).
Both solvers (PINN and finite differences) consume these terms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, get_args

import numpy as np
import sympy
from sympy.core.function import AppliedUndef

from .errors import SpecError
from .expr import check_expr, compile_expr

__all__ = [
    "coords", "field", "fields", "parameter", "normal", "grad", "div", "laplacian",
    "Parameter", "NormalSymbol", "Dirichlet", "Neumann", "Robin", "Periodic", "Initial",
    "BoundaryEquation", "Data", "Problem", "Term", "DerivKey", "input_field", "InputField",
    "ConservativeDerivative",
]

#: Coordinate names treated as time by `grad`, `div` and `laplacian` (which act on space only).
TIME_NAMES = ("t", "time")

# A derivative of a field: (field name, order per problem coordinate), e.g. ("u", (2, 0)) = u_xx.
DerivKey = tuple  # tuple[str, tuple[int, ...]]


# --------------------------------------------------------------------------- symbols

def coords(names: str) -> Any:
    """Coordinate symbols, e.g. ``x, t = coords("x t")`` (real sympy Symbols)."""
    return sympy.symbols(names, real=True)


def field(name: str, *args: sympy.Symbol) -> sympy.Expr:
    """A field (unknown function) applied to coordinates: ``u = field("u", x, t)``."""
    if not args:
        raise SpecError(f"field {name!r} needs at least one coordinate argument")
    for a in args:
        if not isinstance(a, sympy.Symbol):
            raise SpecError(f"field {name!r}: argument {a!r} is not a coordinate symbol")
    return sympy.Function(name)(*args)


def fields(names: str, *args: sympy.Symbol) -> tuple:
    """Several fields with the same arguments: ``u, v, p = fields("u v p", x, y)``."""
    return tuple(field(n, *args) for n in names.replace(",", " ").split())


class Parameter(sympy.Symbol):
    """An unknown scalar (inverse problems), trained with the network. ``init`` is its start value."""

    init: float

    def __new__(cls, name: str, init: float = 1.0):
        # uncached: sympy caches Symbols by name, which would share ``init`` between problems
        obj = sympy.Symbol.__xnew__(cls, name, real=True)
        obj.init = float(init)
        return obj

    def __getnewargs_ex__(self):
        return (self.name, self.init), {}

    def _hashable_content(self):
        # two parameters of the same name but different start values must not compare
        # equal, or sympy's expression cache hands back one in place of the other
        return super()._hashable_content() + (self.init,)


def parameter(name: str, init: float = 1.0) -> Parameter:
    """An unknown parameter: ``k = parameter("k", init=1.0)``; use it like a constant."""
    return Parameter(name, init)


class NormalSymbol(sympy.Symbol):
    """Component of the outward unit normal along one coordinate (boundary terms only)."""

    coord_name: str

    def __new__(cls, coord: sympy.Symbol):
        obj = super().__new__(cls, f"n_{coord.name}", real=True)
        obj.coord_name = coord.name
        return obj


def normal(coord: sympy.Symbol) -> NormalSymbol:
    """``normal(x)`` is the x-component of the outward unit normal (in `BoundaryEquation`)."""
    return NormalSymbol(coord)


def _spatial_args(u: sympy.Expr, spatial: Sequence[sympy.Symbol] | None) -> tuple:
    if spatial is not None:
        return tuple(spatial)
    applied = sorted(sympy.sympify(u).atoms(AppliedUndef), key=str)
    if applied:
        return tuple(a for a in applied[0].args if a.name not in TIME_NAMES)
    # a plain expression (e.g. an exact solution): differentiate in each symbol it uses;
    # symbols it does not use contribute zero anyway
    return tuple(sorted((s for s in sympy.sympify(u).free_symbols
                         if not isinstance(s, (Parameter, NormalSymbol)) and s.name not in TIME_NAMES),
                        key=lambda s: s.name))


class InputField(sympy.Function):
    """Base class of input functions (`input_field`): known data of one problem instance
    (an initial value, a coefficient, a source), given to the reference as grid values."""


class ConservativeDerivative(sympy.Function):
    """``d/dx_k (a * du/dx_k)`` kept unevaluated: ``args = (a * Derivative(u, x_k), x_k)``.

    `div` makes one when a flux component has an input-field coefficient, so that the
    reference can discretize it in conservative form (fluxes at cell faces); sympy's product
    rule (``a_x u_x + a u_xx``) would need a derivative of a possibly discontinuous ``a``."""

    def _sympystr(self, printer) -> str:
        return f"D[{printer._print(self.args[0])}, {printer._print(self.args[1])}]"


def input_field(name: str, *args: sympy.Symbol) -> sympy.Expr:
    """An input function of spatial coordinates: ``u0 = input_field("u0", x)``.

    Used like a known function in equations and conditions; each problem instance gives its
    values (`pinnkit.reference(problem, inputs={"u0": ...})`, `pinnkit.dataset`)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"input_field name must be an identifier, got {name!r}")
    if not args:
        raise SpecError(f"input field {name!r} needs at least one coordinate argument")
    for a in args:
        if not isinstance(a, sympy.Symbol):
            raise SpecError(f"input field {name!r}: argument {a!r} is not a coordinate symbol")
        if a.name in TIME_NAMES:
            raise SpecError(f"input field {name!r}: inputs are functions of space; {a} is time")
    return type(name, (InputField,), {})(*args)


def _flux_component(v: sympy.Expr, c: sympy.Symbol) -> sympy.Expr:
    """``d v / d c``, unevaluated (conservative form) when ``v`` has an input-field coefficient."""
    v = sympy.sympify(v)
    if v.atoms(InputField):
        return ConservativeDerivative(v, c)
    return sympy.diff(v, c)


def grad(u: sympy.Expr, coords: Sequence[sympy.Symbol] | None = None) -> list:
    """Spatial gradient ``[u_x, u_y, ...]``; space = the field's arguments except time (t)."""
    return [sympy.diff(u, c) for c in _spatial_args(u, coords)]


def div(vector: Sequence[sympy.Expr], coords: Sequence[sympy.Symbol] | None = None) -> sympy.Expr:
    """Divergence ``sum_i d v_i / d x_i`` over the spatial coordinates of the first component."""
    cs = _spatial_args(vector[0], coords)
    if len(cs) != len(vector):
        raise SpecError(f"div: {len(vector)} components but {len(cs)} spatial coordinates {cs}")
    return sum((_flux_component(v, c) for v, c in zip(vector, cs)), sympy.Integer(0))


def laplacian(u: sympy.Expr, coords: Sequence[sympy.Symbol] | None = None) -> sympy.Expr:
    """Spatial Laplacian ``u_xx + u_yy + ...``."""
    return sum((sympy.diff(u, c, 2) for c in _spatial_args(u, coords)), sympy.Integer(0))


# --------------------------------------------------------------------------- conditions

def _field_name(u: Any, what: str) -> str:
    if not isinstance(u, AppliedUndef):
        raise SpecError(f"{what}: {u!r} is not a field (make one with pk.field('u', x, ...))")
    return u.func.__name__


def _on_list(on: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(on, str):
        return (on,)
    names = tuple(on)
    if not names or not all(isinstance(n, str) for n in names):
        raise SpecError(f"on= must be a boundary name or a list of names, got {on!r}")
    return names


@dataclass(frozen=True)
class _Condition:
    name: str | None = dc_field(default=None, kw_only=True)

    def term(self, problem: "Problem") -> "Term":
        """This condition's loss term / discrete equations in ``problem`` (checked against
        it: boundary names, fields, coordinates; `SpecError` naming the condition)."""
        raise NotImplementedError


@dataclass(frozen=True)
class _OnBoundary(_Condition):
    """A condition on the boundary part(s) ``on`` whose residual is `residual` of the field u."""

    def residual(self, problem: "Problem") -> sympy.Expr:
        raise NotImplementedError

    def term(self, problem: "Problem") -> "Term":
        kind = type(self).__name__
        fname = _field_name(self.u, kind)
        on = _on_list(self.on)
        label = self.name or f"{kind.lower()}_{fname}_{'_'.join(on)}"
        problem._check_on(on, f"condition {label!r}")
        return Term(label, "boundary", [self.residual(problem)], on=on, condition=self)


@dataclass(frozen=True)
class Dirichlet(_OnBoundary):
    """u = g on the boundary part(s) ``on``."""

    u: Any
    g: Any = 0
    on: str | Sequence[str] = "boundary"

    def residual(self, problem):
        return self.u - _sym(self.g, "Dirichlet g")


@dataclass(frozen=True)
class Neumann(_OnBoundary):
    """du/dn = g (n the outward unit normal) on ``on``."""

    u: Any
    g: Any = 0
    on: str | Sequence[str] = "boundary"

    def residual(self, problem):
        return problem._normal_derivative(self.u) - _sym(self.g, "Neumann g")


@dataclass(frozen=True)
class Robin(_OnBoundary):
    """a*u + b*du/dn = g on ``on``."""

    u: Any
    a: Any
    b: Any
    g: Any = 0
    on: str | Sequence[str] = "boundary"

    def residual(self, problem):
        return (_sym(self.a, "Robin a") * self.u + _sym(self.b, "Robin b")
                * problem._normal_derivative(self.u) - _sym(self.g, "Robin g"))


@dataclass(frozen=True)
class Periodic(_Condition):
    """u and du/dx equal on the ``x_min`` and ``x_max`` faces (``derivatives`` orders matched)."""

    u: Any
    x: Any
    derivatives: int = 1

    def term(self, problem):
        fname = _field_name(self.u, "Periodic")
        x = self.x
        label = self.name or f"periodic_{fname}_{getattr(x, 'name', x)}"
        if x not in problem.spatial_coords:
            raise SpecError(f"condition {label!r}: {x} is not a spatial coordinate "
                            f"({', '.join(map(str, problem.spatial_coords))})")
        missing = [n for n in (f"{x.name}_min", f"{x.name}_max")
                   if n not in problem.domain.boundary_names]
        if missing:
            raise SpecError(f"condition {label!r}: the domain has no face {missing[0]!r}; "
                            "Periodic needs an axis-aligned box in that coordinate")
        exprs = [sympy.diff(self.u, x, k) for k in range(self.derivatives + 1)]
        return Term(label, "periodic", exprs, coord=x.name, condition=self)


@dataclass(frozen=True)
class Initial(_Condition):
    """d^order u / dt^order = g at t = t0."""

    u: Any
    g: Any = 0
    order: int = 0

    def term(self, problem):
        fname = _field_name(self.u, "Initial")
        label = self.name or (f"initial_{fname}" if self.order == 0
                              else f"initial_{fname}_t{self.order}")
        if problem.time is None:
            raise SpecError(f"condition {label!r}: Initial needs a time interval; make the "
                            "domain with space * pk.TimeInterval(t, t0, t1)")
        if not isinstance(self.order, int) or self.order < 0:
            raise SpecError(f"condition {label!r}: order must be a non-negative int")
        expr = sympy.diff(self.u, problem.time, self.order) - _sym(self.g, "Initial g")
        return Term(label, "initial", [expr], condition=self)


@dataclass(frozen=True)
class BoundaryEquation(_Condition):
    """Any expression == 0 on ``on`` (may use ``pk.normal(x)``).

    ``field`` (optional): the field whose boundary values this equation determines in the
    finite-difference reference, when the expression involves several fields (e.g. a wall
    pressure condition written with the velocity); training ignores it."""

    expr: Any
    on: str | Sequence[str] = "boundary"
    field: Any = None

    def term(self, problem):
        on = _on_list(self.on)
        label = self.name or f"boundary_eq_{'_'.join(on)}"
        problem._check_on(on, f"condition {label!r}")
        fname = self.field if isinstance(self.field, str) or self.field is None else \
            _field_name(self.field, f"condition {label!r} field")
        if fname is not None and fname not in problem.fields:
            raise SpecError(f"condition {label!r}: field {self.field!r} is not a field of the "
                            f"problem ({', '.join(problem.fields)})")
        return Term(label, "boundary", [_as_residual(self.expr, label)], on=on, condition=self)


@dataclass(frozen=True, eq=False)
class Data(_Condition):
    """Observations of a field: ``points`` = {coordinate name: array}, ``values`` of equal shape.

    ``u`` may be a list of fields; ``values`` then has shape (n, n_fields), column k for u[k].

    ``initial`` (time-only problems): {field or its time derivative: number}, the initial values
    of the trajectory these observations belong to, for data from several trajectories
    (``method="ode"`` integrates each from its own initial values, in one batch); components
    left out take the problem's `Initial` values. None: the problem's own trajectory."""

    u: Any
    points: Mapping[str, Any]
    values: Any
    initial: Mapping[Any, Any] | None = None

    def term(self, problem):
        us = list(self.u) if isinstance(self.u, (list, tuple)) else [self.u]
        fnames = [_field_name(u, "Data") for u in us]
        label = self.name or f"data_{'_'.join(fnames)}"
        pts, vals = problem._check_data(self, label,
                                        len(us) if isinstance(self.u, (list, tuple)) else 0)
        initial = None
        if self.initial is not None:
            initial = problem.initial_values(self.initial, f"condition {label!r}: initial")
        return Term(label, "data", us, condition=self, data_points=pts, data_values=vals,
                    data_initial=initial)


# --------------------------------------------------------------------------- terms

#: what a term's expressions hold on (`Term.kind`)
TermKind = Literal["pde", "boundary", "initial", "periodic", "data"]
TERM_KINDS: tuple[str, ...] = get_args(TermKind)


@dataclass
class Term:
    """One loss term / set of discrete equations: ``exprs`` must vanish on ``region``.

    kind: "pde" (interior), "boundary" (``on`` = boundary names), "initial",
    "periodic" (``coord`` = periodic coordinate; each expr matched on both faces) or "data".
    """

    name: str
    kind: TermKind
    exprs: list
    on: tuple[str, ...] = ()
    coord: str | None = None
    condition: Any = None
    data_points: dict | None = None
    data_values: np.ndarray | None = None
    data_initial: dict | None = None      # Data(initial=): {(field, order): value}, else None

    def __post_init__(self) -> None:
        if self.kind not in TERM_KINDS:
            raise ValueError(f"term {self.name!r}: kind {self.kind!r} is not one of "
                             f"{', '.join(TERM_KINDS)}")


def _sym(v: Any, what: str) -> sympy.Expr:
    if callable(v) and not isinstance(v, sympy.Basic):
        raise SpecError(f"{what} must be a number or a sympy expression, got a callable")
    try:
        return sympy.sympify(v)
    except (sympy.SympifyError, TypeError) as exc:
        raise SpecError(f"{what} must be a number or a sympy expression, got {v!r}") from exc


def _as_residual(eq: Any, what: str) -> sympy.Expr:
    if isinstance(eq, sympy.Equality):
        return eq.lhs - eq.rhs
    if isinstance(eq, (bool, sympy.logic.boolalg.BooleanAtom)):
        raise SpecError(f"{what} evaluated to {eq}: write pk.Eq(lhs, rhs) instead of lhs == rhs")
    return _sym(eq, what)


# --------------------------------------------------------------------------- problem

class Problem:
    """A PDE problem: domain, equations (each == 0) and conditions. Validated on construction.

    Attributes after construction: ``coords`` (domain coordinate symbols, space first, time
    last), ``time`` (time symbol or None), ``fields`` (name -> applied function),
    ``parameters`` (list of `Parameter`), ``equations`` (name -> residual expr),
    ``terms`` (list of `Term`), ``exact`` (field name -> sympy expr or callable),
    ``reference_options`` (defaults for `pinnkit.reference`, e.g. {"resolution": ..., "order": 4}),
    ``inputs`` (input-field name -> applied `InputField`, see `input_field`).
    """

    def __init__(self, name: str, domain: Any, equations: Sequence | Mapping,
                 conditions: Iterable = (), exact: Mapping[str, Any] | None = None,
                 description: str = "", reference: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise SpecError("Problem name must be a non-empty string")
        self.name = name
        self.description = description
        # defaults for pk.reference (resolution, order, times, method, rtol, atol, advection)
        self.reference_options = dict(reference or {})
        if not hasattr(domain, "coords") or not hasattr(domain, "boundary_names"):
            raise SpecError(f"problem {name!r}: domain must be a pinnkit domain, got {domain!r}")
        self.domain = domain
        self.coords: tuple = tuple(domain.coords)
        self.time = getattr(domain, "time", None)
        self.equations = self._parse_equations(equations)
        self.conditions = list(conditions)
        self.fields = self._collect_fields()
        self.parameters: list[Parameter] = []
        self.terms: list[Term] = []
        for eq_name, expr in self.equations.items():
            self._add_term(Term(eq_name, "pde", [expr]))
        for cond in self.conditions:
            self._add_term(self._condition_term(cond))
        self.networks = self._collect_networks()
        self._check_symbols()
        self.inputs = self._collect_inputs()
        self.exact = self._parse_exact(exact or {})
        self._check_translatable()

    # -- parsing
    def _parse_equations(self, equations: Any) -> dict:
        if isinstance(equations, Mapping):
            items = [(str(k), v) for k, v in equations.items()]
        elif isinstance(equations, (list, tuple)):
            single = len(equations) == 1
            items = [("pde" if single else f"pde{i}", v) for i, v in enumerate(equations)]
        else:
            items = [("pde", equations)]
        if not items:
            raise SpecError(f"problem {self.name!r} has no equations")
        return {k: _as_residual(v, f"equation {k!r}") for k, v in items}

    def _collect_fields(self) -> dict:
        found: dict = {}
        coord_set = set(self.coords)
        for expr in self.equations.values():
            # a use with coordinate arguments is the declaration; others are checked later
            for f in sorted(expr.atoms(AppliedUndef),
                            key=lambda f: (not set(f.args) <= coord_set, str(f))):
                found.setdefault(f.func.__name__, f)
        if not found:
            raise SpecError(f"problem {self.name!r}: the equations contain no field")
        return found

    def _check_field_uses(self, expr: sympy.Expr, where: str) -> None:
        coord_set = set(self.coords)
        for f in expr.atoms(AppliedUndef):
            fname = f.func.__name__
            if fname not in self.fields:
                raise SpecError(f"{where}: field {fname!r} is not in the problem's equations "
                                f"(fields: {', '.join(self.fields)})")
            declared = self.fields[fname]
            if f.args != declared.args:
                raise SpecError(f"{where}: field {fname} is used as {f} but declared as {declared}"
                                " (evaluate fields through conditions, not by substituting values)")
        for d in expr.atoms(sympy.Derivative):
            for v, _ in d.variable_count:
                if v not in coord_set:
                    raise SpecError(f"{where}: derivative with respect to {v}, which is not a "
                                    f"coordinate of the domain ({', '.join(map(str, self.coords))})")

    def _check_symbols(self) -> None:
        coord_set = set(self.coords)
        for f in self.fields.values():
            if set(f.args) != coord_set or len(f.args) != len(self.coords):
                raise SpecError(
                    f"field {f} must take every coordinate of the domain once: "
                    f"({', '.join(map(str, self.coords))})")
        params: dict = {}
        for term in self.terms:
            for expr in term.exprs:
                where = f"{'equation' if term.kind == 'pde' else 'condition'} {term.name!r}"
                self._check_field_uses(expr, where)
                for s in expr.free_symbols:
                    if s in coord_set:
                        continue
                    if isinstance(s, Parameter):
                        params[s.name] = s
                    elif isinstance(s, NormalSymbol) and term.kind == "boundary":
                        if s.coord_name not in self.space_names:
                            raise SpecError(f"{where}: normal component {s} along a non-spatial "
                                            "coordinate")
                    elif isinstance(s, NormalSymbol):
                        raise SpecError(f"{where}: {s} (an outward normal) is only defined on "
                                        "boundary conditions")
                    else:
                        raise SpecError(
                            f"{where}: symbol {s} is neither a coordinate "
                            f"({', '.join(map(str, self.coords))}) nor a declared parameter "
                            f"(use {s} = pk.parameter({str(s)!r}, init=...) for an unknown)")
        self.parameters = [params[k] for k in sorted(params)]

    def _collect_inputs(self) -> dict:
        found: dict = {}
        spatial = set(self.spatial_coords)
        for term in self.terms:
            for expr in term.exprs:
                for a in sorted(sympy.sympify(expr).atoms(InputField), key=str):
                    name = type(a).__name__
                    if name in self.fields:
                        raise SpecError(f"input field {name!r} has the name of a field")
                    if not set(a.args) <= spatial or len(set(a.args)) != len(a.args):
                        raise SpecError(f"input field {a} must take spatial coordinates of the "
                                        f"domain ({', '.join(map(str, self.spatial_coords))}), "
                                        "each once")
                    if name in found and found[name] != a:
                        raise SpecError(f"input field {name!r} is used as {a} and as {found[name]}")
                    found[name] = a
        return dict(sorted(found.items()))

    def _collect_networks(self) -> dict:
        """{name: `Network`} of every learned term used; each input must be an expression of
        the problem's fields and coordinates (checked here, with the network's name)."""
        from .learned import network_calls
        nets: dict = {}
        coord_set = set(self.coords)
        for term in self.terms:
            for expr in term.exprs:
                for call in network_calls(expr):
                    net = call.func.network
                    other = nets.setdefault(net.name, net)
                    if other is not net:
                        raise SpecError(f"two different networks are named {net.name!r}")
        for net in nets.values():
            for k, e in enumerate(net.inputs):
                extra = [s for s in e.free_symbols if s not in coord_set]
                unknown = [f.func.__name__ for f in e.atoms(AppliedUndef)
                           if f.func.__name__ not in self.fields]
                if extra or unknown:
                    bad = ", ".join(sorted(map(str, extra)) + sorted(unknown))
                    raise SpecError(
                        f"network {net.name!r}: input {k} ({e}) is not an expression of the fields "
                        f"({', '.join(self.fields)}) and coordinates "
                        f"({', '.join(map(str, self.coords))}): it uses {bad}")
        return dict(sorted(nets.items()))

    def substitute(self, found: Mapping[Any, Any]) -> "Problem":
        """The same problem with learned outputs replaced by expressions (e.g. `pinnkit.discover`'s).

        ``found``: {output name (``"U_0"``) or output expression: sympy expression of the
        fields/coordinates}. Networks left out stay learned terms."""
        outputs = {f.func.__name__: f for net in self.networks.values() for f in net.outputs}
        repl = {}
        for key, value in found.items():
            name = key if isinstance(key, str) else getattr(getattr(key, "func", None), "__name__", None)
            if name not in outputs:
                raise SpecError(f"substitute: {key!r} is not a learned output of problem "
                                f"{self.name!r} (outputs: {', '.join(outputs) or 'none'})")
            repl[outputs[name]] = _sym(value, f"substitute[{name!r}]")

        def sub(v: Any) -> Any:
            return v.xreplace(repl) if isinstance(v, sympy.Basic) else v
        conditions = [dataclasses.replace(c, **{f.name: sub(getattr(c, f.name))
                                                for f in dataclasses.fields(c)
                                                if isinstance(getattr(c, f.name), sympy.Basic)})
                      for c in self.conditions]
        return Problem(self.name, self.domain, {k: sub(v) for k, v in self.equations.items()},
                       conditions, exact=self.exact or None, description=self.description,
                       reference=self.reference_options)

    def check_initial(self) -> None:
        """Raise `SpecError` unless every field with time derivatives up to order q in the
        equations has initial conditions of orders 0 .. q-1 (else the time-dependent problem
        is not determined), or observations (`Data`) of that field that may determine it.
        The solvers call it (a problem may be built in parts, e.g. in tests)."""
        if self.time is None:
            return
        k = self.coords.index(self.time)
        order: dict = {}
        for expr in self.equations.values():
            for f, orders in self.derivative_keys(expr):
                order[f] = max(order.get(f, 0), orders[k])
        given = {(t.condition.u.func.__name__, t.condition.order)
                 for t in self.terms if t.kind == "initial"}
        observed = set()
        for t in self.terms:
            if t.kind == "data":
                us = t.condition.u if isinstance(t.condition.u, (list, tuple)) else [t.condition.u]
                observed |= {v.func.__name__ for v in us if isinstance(v, AppliedUndef)}
        for f, q in order.items():
            missing = [o for o in range(q) if (f, o) not in given]
            if missing and f not in observed:
                o = missing[0]
                raise SpecError(f"problem {self.name!r}: field {f} has a time derivative of order "
                                f"{q} but no initial condition of order {o}; add pk.Initial({f}, g"
                                f"{f', order={o}' if o else ''}) (or pk.Data observations of {f})")

    def _parse_exact(self, exact: Mapping[str, Any]) -> dict:
        out = {}
        for fname, e in exact.items():
            if fname not in self.fields:
                raise SpecError(f"exact solution given for {fname!r}, which is not a field "
                                f"(fields: {', '.join(self.fields)})")
            if callable(e) and not isinstance(e, sympy.Basic):
                out[fname] = e
                continue
            expr = _sym(e, f"exact[{fname!r}]")
            extra = expr.free_symbols - set(self.coords)
            if extra:
                raise SpecError(f"exact[{fname!r}] uses {', '.join(sorted(map(str, extra)))}, "
                                "which are not coordinates")
            out[fname] = expr
        return out

    def _check_translatable(self) -> None:
        """Every residual and exact solution must compile for both solvers (`pinnkit.expr`):
        an untranslatable subexpression is a SpecError now, never a failure inside training."""
        for term in self.terms:
            where = f"{'equation' if term.kind == 'pde' else 'condition'} {term.name!r}"
            for expr in term.exprs:
                # input fields and conservative flux terms are arguments of the compiled
                # functions (values the reference computes), opaque here
                # (a derivative of an input is the reference's to refuse, with its advice);
                # so are learned terms (network calls, evaluated by their networks)
                from .learned import network_calls
                opaque = {n: sympy.Dummy(f"opaque{i}") for i, n in enumerate(sorted(
                    expr.atoms(ConservativeDerivative) | set(network_calls(expr))
                    | {d for d in expr.atoms(sympy.Derivative)
                       if isinstance(d.expr, InputField)}, key=str))}
                expr = expr.xreplace(opaque)
                opaque.update({f: sympy.Dummy(type(f).__name__) for f in expr.atoms(InputField)})
                sub, keys, syms, normals = self.placeholders(expr.xreplace(opaque))
                shown = {ph: self._key_expr(k) for k, ph in zip(keys, syms)}
                shown.update({d: n for n, d in opaque.items()})
                check_expr(list(self.coords) + normals + self.parameters + syms
                           + list(opaque.values()), sub, where, display=shown)
        for fname, e in self.exact.items():
            if isinstance(e, sympy.Basic):
                check_expr(list(self.coords), e, f"exact[{fname!r}]")

    def _key_expr(self, key: DerivKey) -> sympy.Expr:
        """The field derivative a derivative key stands for (for messages)."""
        f = self.fields[key[0]]
        orders = [(c, n) for c, n in zip(self.coords, key[1]) if n]
        return sympy.Derivative(f, *orders) if orders else f

    # -- conditions -> terms
    @property
    def coord_names(self) -> list[str]:
        """The coordinates' names, in the order of `coords` (the columns of point arrays)."""
        return [c.name for c in self.coords]

    @property
    def space_names(self) -> list[str]:
        """The spatial coordinates' names (all but time)."""
        return [c.name for c in self.spatial_coords]

    @property
    def space(self) -> Any:
        """The spatial domain: the space factor of a space-time domain, else the domain."""
        return getattr(self.domain, "space", self.domain)

    @property
    def spatial_coords(self) -> tuple:
        return tuple(c for c in self.coords if c != self.time)

    def _normal_derivative(self, u: sympy.Expr) -> sympy.Expr:
        return sum((normal(c) * sympy.diff(u, c) for c in self.spatial_coords), sympy.Integer(0))

    def _check_on(self, on: tuple[str, ...], what: str) -> None:
        names = list(self.domain.boundary_names)
        for n in on:
            if n != "boundary" and n not in names:
                raise SpecError(f"{what}: unknown boundary {n!r}; boundaries of this domain: "
                                f"{', '.join(['boundary'] + names)}")
        ambiguous = getattr(self.domain, "ambiguous_names", dict)()
        for n in on:
            if n in ambiguous:
                raise SpecError(f"{what}: {ambiguous[n]}")

    def _condition_term(self, c: Any) -> Term:
        if isinstance(c, _Condition):
            return c.term(self)
        raise SpecError(f"unknown condition {c!r}; expected one of Dirichlet, Neumann, Robin, "
                        "Periodic, Initial, BoundaryEquation, Data")

    def _check_data(self, c: Data, label: str, n_fields: int = 0) -> tuple[dict, np.ndarray]:
        """(points, values): values (n,) for one field, (n, n_fields) for a list of fields."""
        names = self.coord_names
        keys = set(map(str, c.points))
        if keys != set(names):
            raise SpecError(f"condition {label!r}: points must give every coordinate "
                            f"({', '.join(names)}), got ({', '.join(sorted(keys))})")
        pts = {str(k): np.asarray(v, dtype=float).ravel() for k, v in c.points.items()}
        try:
            vals = np.asarray(c.values, dtype=float)
        except (TypeError, ValueError):
            raise SpecError(f"condition {label!r}: values are not an array of numbers") from None
        if n_fields:
            if vals.ndim == 1 and n_fields == 1:
                vals = vals[:, None]
            if vals.ndim != 2 or vals.shape[1] != n_fields:
                raise SpecError(f"condition {label!r}: values must have shape (n, {n_fields}) "
                                f"for {n_fields} field(s), got {vals.shape}")
        else:
            vals = vals.ravel()
        sizes = {len(v) for v in pts.values()} | {len(vals)}
        if len(sizes) != 1:
            raise SpecError(f"condition {label!r}: points and values differ in size ({sorted(sizes)})")
        if not all(np.all(np.isfinite(v)) for v in pts.values()):
            raise SpecError(f"condition {label!r}: points contain NaN or Inf")
        if not np.all(np.isfinite(vals)):
            raise SpecError(f"condition {label!r}: values contain NaN or Inf")
        return pts, vals

    def initial_values(self, initial: Mapping[Any, Any], what: str) -> dict:
        """{(field name, time-derivative order): float} of a trajectory's initial values given
        as {field or its time derivative (or a field name): number}; `SpecError` naming ``what``
        unless the problem is time-only and every key and value is valid."""
        if self.time is None or self.spatial_coords:
            raise SpecError(f"{what}: initial values of a trajectory need a time-only problem (an "
                            "ODE system, method='ode'); this one has coordinates "
                            f"{', '.join(map(str, self.coords))}")
        if not isinstance(initial, Mapping) or not initial:
            raise SpecError(f"{what} must be a non-empty dict {{field: value}}, got {initial!r}")
        out: dict = {}
        for key, value in initial.items():
            k = self.fields.get(key) if isinstance(key, str) else key
            if isinstance(k, AppliedUndef) and k.func.__name__ in self.fields:
                name, order = k.func.__name__, 0
            elif (isinstance(k, sympy.Derivative) and isinstance(k.expr, AppliedUndef)
                  and k.expr.func.__name__ in self.fields
                  and {v for v, _ in k.variable_count} == {self.time}):
                name, order = k.expr.func.__name__, int(k.derivative_count)
            else:
                raise SpecError(f"{what}: {key!r} is not a field of the problem "
                                f"({', '.join(self.fields)}) or a time derivative of one")
            label = name if order == 0 else f"d^{order}{name}/d{self.time}^{order}"
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise SpecError(f"{what}: the value of {label} must be a number, got {value!r}") from None
            if not np.isfinite(v):
                raise SpecError(f"{what}: the value of {label} is {v}")
            out[(name, order)] = v
        return out

    def _add_term(self, term: Term) -> None:
        if any(t.name == term.name for t in self.terms):
            base, k = term.name, 2
            while any(t.name == f"{base}_{k}" for t in self.terms):
                k += 1
            term.name = f"{base}_{k}"
        self.terms.append(term)

    # -- helpers shared by both solvers
    def derivative_key(self, expr: sympy.Expr) -> DerivKey:
        """Key ``(field, orders per coordinate)`` of a field or one of its derivatives."""
        if isinstance(expr, AppliedUndef):
            return (expr.func.__name__, (0,) * len(self.coords))
        if isinstance(expr, sympy.Derivative) and isinstance(expr.expr, AppliedUndef):
            orders = dict.fromkeys(self.coords, 0)
            for v, n in expr.variable_count:
                orders[v] += int(n)
            return (expr.expr.func.__name__, tuple(orders[c] for c in self.coords))
        raise SpecError(f"{expr} is not a field or a derivative of a field")

    def derivative_keys(self, expr: sympy.Expr) -> list[DerivKey]:
        """Every field value/derivative an expression needs (sorted, unique)."""
        atoms = {self.derivative_key(d) for d in expr.atoms(sympy.Derivative)
                 if isinstance(d.expr, AppliedUndef)}
        stripped = expr.replace(lambda e: isinstance(e, sympy.Derivative), lambda e: sympy.Dummy())
        atoms |= {self.derivative_key(f) for f in stripped.atoms(AppliedUndef)}
        return sorted(atoms)

    def placeholders(self, expr: sympy.Expr) -> tuple:
        """``expr`` with every field value/derivative replaced by a placeholder symbol.

        Returns (substituted expr, derivative keys, placeholder symbols aligned with the keys,
        normal symbols used sorted by coordinate). Both solvers evaluate residuals this way.
        """
        keys = self.derivative_keys(expr)
        ph = {k: sympy.Dummy(f"{k[0]}_{''.join(map(str, k[1]))}") for k in keys}
        sub = expr.xreplace({d: ph[self.derivative_key(d)] for d in expr.atoms(sympy.Derivative)
                             if isinstance(d.expr, AppliedUndef)})
        sub = sub.xreplace({f: ph[self.derivative_key(f)] for f in sub.atoms(AppliedUndef)})
        normals = sorted((s for s in sub.free_symbols if isinstance(s, NormalSymbol)),
                         key=lambda s: s.coord_name)
        return sub, keys, [ph[k] for k in keys], normals

    def exact_function(self, fname: str) -> Callable | None:
        """The exact solution of ``fname`` as ``f(**{coord: array}) -> array``, or None."""
        e = self.exact.get(fname)
        if e is None:
            return None
        names = self.coord_names
        if isinstance(e, sympy.Basic):
            fn = compile_expr(list(self.coords), e, "numpy", where=f"exact[{fname!r}]")

            def evaluate(**pts):
                arrays = [np.asarray(pts[n], dtype=float) for n in names]
                shape = np.broadcast(*arrays).shape
                return np.broadcast_to(np.asarray(fn(*arrays), dtype=float), shape).copy()
            return evaluate

        def evaluate_callable(**pts):
            return np.asarray(e(*[np.asarray(pts[n], dtype=float) for n in names]), dtype=float)
        return evaluate_callable

    def __repr__(self) -> str:
        eqs = "; ".join(f"{k}: {v} = 0" for k, v in self.equations.items())
        return f"Problem({self.name!r}, fields={list(self.fields)}, {eqs})"
