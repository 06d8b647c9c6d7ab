"""Learned terms: small networks declared in the spec (DESIGN.md §7), plain sympy.

``Ux, Uy = pk.network("U", inputs=(x, y), outputs=2)`` returns one sympy expression per
output, ``U_0(x(t), y(t))`` and ``U_1(x(t), y(t))``: applications of a `NetworkOutput`
function class that carries its `Network` (name, inputs, size). They enter equations like
any term; each solver evaluates them its own way (torch modules in training, numpy callables
taken from a trained solution in the reference). No torch here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import sympy

from .errors import SpecError

__all__ = ["Network", "NetworkOutput", "network", "network_calls", "polynomials",
           "ACTIVATIONS"]

#: activations a learned term may use (the torch side maps each name to a module)
ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "softplus", "sigmoid", "rbf")


@dataclass(frozen=True, eq=False)
class Network:
    """A learned function R^len(inputs) -> R^outputs: an MLP of ``depth`` hidden layers of
    ``width`` units with ``activation``. ``outputs`` holds the output expressions."""

    name: str
    inputs: tuple
    n_outputs: int
    width: int
    depth: int
    activation: str
    outputs: tuple = ()

    def output_names(self) -> list[str]:
        return [f.func.__name__ for f in self.outputs]

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        return (f"Network({self.name!r}, inputs=({ins}), outputs={self.n_outputs}, "
                f"width={self.width}, depth={self.depth}, activation={self.activation!r})")


class NetworkOutput(sympy.Function):
    """Base of the function classes of learned outputs; subclasses set ``network``/``index``.

    Not an undefined function (`AppliedUndef`), so the spec does not mistake it for a field."""

    network: Network
    index: int

    @classmethod
    def eval(cls, *args):  # stays unevaluated
        return None

    def fdiff(self, argindex=1):
        raise SpecError(f"learned term {self.func.__name__} cannot be differentiated in the spec "
                        "(the solvers evaluate networks, not their derivatives); use it "
                        "undifferentiated")


def _check_input(v: Any, name: str, k: int) -> sympy.Expr:
    if callable(v) and not isinstance(v, sympy.Basic):
        raise SpecError(f"network {name!r}: input {k} is a callable; inputs are expressions of "
                        "fields and coordinates, e.g. (x, y) or (u, u**2, t)")
    try:
        e = sympy.sympify(v, strict=True)
    except (sympy.SympifyError, TypeError):
        raise SpecError(f"network {name!r}: input {k} ({v!r}) is not an expression of fields "
                        "and coordinates") from None
    if not isinstance(e, sympy.Expr) or not (e.free_symbols or e.atoms(sympy.Function)):
        raise SpecError(f"network {name!r}: input {k} ({v!r}) is not an expression of fields "
                        "and coordinates (a constant carries no information)")
    if e.atoms(sympy.Derivative):
        raise SpecError(f"network {name!r}: input {k} ({e}) contains a derivative; inputs are "
                        "expressions of field values and coordinates")
    if e.atoms(NetworkOutput):
        raise SpecError(f"network {name!r}: input {k} ({e}) contains another learned term")
    return e


def network(name: str, inputs: Any, outputs: int = 1, width: int = 32, depth: int = 2,
            activation: str = "tanh") -> Any:
    """A learned term: an MLP of the ``inputs`` (expressions of fields/coordinates).

    Returns one sympy expression when ``outputs == 1``, else a tuple of them (named
    ``<name>_0``, ``<name>_1``, ...). Raises `SpecError` naming a bad input or option.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"network name must be an identifier, got {name!r}")
    ins = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not ins:
        raise SpecError(f"network {name!r} needs at least one input")
    ins = tuple(_check_input(v, name, k) for k, v in enumerate(ins))
    for opt, v in (("outputs", outputs), ("width", width), ("depth", depth)):
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if opt == "depth" else 1):
            raise SpecError(f"network {name!r}: {opt} must be a positive integer, got {v!r}")
    if activation not in ACTIVATIONS:
        raise SpecError(f"network {name!r}: unknown activation {activation!r}; choose from "
                        f"{', '.join(ACTIVATIONS)}")
    net = Network(name, ins, outputs, width, depth, activation)
    names = [name] if outputs == 1 else [f"{name}_{i}" for i in range(outputs)]
    classes = [type(n, (NetworkOutput,), {"network": net, "index": i, "nargs": len(ins)})
               for i, n in enumerate(names)]
    calls = tuple(c(*ins) for c in classes)
    object.__setattr__(net, "outputs", calls)
    return calls[0] if outputs == 1 else calls


def network_calls(expr: sympy.Basic) -> set:
    """Every learned-term application in ``expr``."""
    return set(expr.atoms(NetworkOutput))


def polynomials(degree: int = 2, include_constant: bool = True) -> "PolynomialLibrary":
    """A SINDy library: every monomial of a learned term's inputs up to ``degree``."""
    if not isinstance(degree, int) or degree < 1:
        raise SpecError(f"polynomials: degree must be a positive integer, got {degree!r}")
    return PolynomialLibrary(degree, include_constant)


@dataclass(frozen=True)
class PolynomialLibrary:
    """Monomials of the inputs up to ``degree`` (constant included unless told otherwise)."""

    degree: int
    include_constant: bool = True

    def terms(self, variables: Sequence[sympy.Expr]) -> list:
        out = [sympy.Integer(1)] if self.include_constant else []
        for d in range(1, self.degree + 1):
            for combo in itertools.combinations_with_replacement(variables, d):
                out.append(sympy.Mul(*combo))
        return out
