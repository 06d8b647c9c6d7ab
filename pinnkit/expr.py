"""One expression compiler for both solvers: sympy -> array function (torch or numpy).

The PINN path (torch tensors) and the finite-difference reference (numpy arrays) evaluate the
same sympy expressions. Both go through `compile_expr`, which

1. folds every constant subexpression (``sqrt(2)``, ``cos(1)``, ``2*pi``, ``Rational(1, 3)``)
   into one float, evaluated once to 30 digits, so no array function ever sees a Python
   number where it needs an array;
2. prints the expression once, as Python source whose every function call goes through a
   backend namespace ``_F`` (``_F.sin(x)``, ``_F.where(c, a, b, _r)``, ...);
3. executes that source with the torch or the numpy namespace.

The printed text is the same for both backends, so what one can evaluate the other can too,
and `check_expr` (printing only, no torch import) rejects what neither can at `pk.Problem`
time with a `SpecError` naming the subexpression. Python float constants take the dtype and
device of the tensors they meet; the few helpers that must build a tensor from a number
(``where``, ``maximum``, ``atan2``, ``heaviside``) take dtype and device from ``_r``, the
first array argument of the call, so a float64 or CUDA run never sees a float32 CPU constant.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import sympy
from sympy.printing.pycode import PythonCodePrinter

from .errors import SpecError

__all__ = ["compile_expr", "compile_exprs", "check_expr", "fold_constants", "SUPPORTED_FUNCTIONS"]

# sympy function name -> backend namespace name (one argument, elementwise)
_UNARY = {
    "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "asinh", "acosh": "acosh",
    "atanh": "atanh", "exp": "exp", "log": "log", "Abs": "abs", "sign": "sign", "erf": "erf",
    "erfc": "erfc", "floor": "floor", "ceiling": "ceil",
    # reciprocal functions: through the backend's own primitives
    "cot": "cot", "sec": "sec", "csc": "csc", "coth": "coth", "sech": "sech", "csch": "csch",
    "acot": "acot",
}
#: every sympy function (and construct) the compiler translates
SUPPORTED_FUNCTIONS = tuple(sorted(set(_UNARY) | {
    "atan2", "Min", "Max", "Heaviside", "Piecewise", "sqrt", "Pow", "And", "Or", "Not"}))

_RELATIONAL_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}


class CompileError(SpecError):
    """An expression the compiler cannot translate; ``sub`` is the offending subexpression."""

    def __init__(self, reason: str, sub: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.sub = reason, sub

    def describe(self, names: dict) -> str:
        """The message with the subexpression written in the caller's symbols."""
        if self.sub is None:
            return self.reason
        sub = self.sub.xreplace(names) if isinstance(self.sub, sympy.Basic) else self.sub
        return self.reason.replace("{sub}", str(sub))


# --------------------------------------------------------------------------- constants

def fold_constants(expr: sympy.Basic) -> sympy.Basic:
    """``expr`` with every maximal constant subexpression replaced by a 30-digit Float.

    Integers stay integers (exact integer powers); a constant that is not a finite real
    number (``sqrt(-1)``, ``1/0``, ``log(0)``) is a `SpecError` naming it.
    """
    if isinstance(expr, sympy.logic.boolalg.Boolean) and not isinstance(expr, sympy.Expr):
        if not expr.free_symbols or expr in (sympy.true, sympy.false):
            return expr
        return expr.func(*[fold_constants(a) for a in expr.args])
    if not isinstance(expr, sympy.Expr):
        return expr
    if expr.is_Integer or expr.is_Float:
        return expr
    if not expr.free_symbols:
        if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            raise CompileError("constant {sub} is not a finite number", expr)
        value = expr.evalf(30)
        if not value.is_Number or value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            if value.is_Number is False and value.as_real_imag()[1] != 0:
                raise CompileError("constant {sub} is not a real number", expr)
            raise CompileError("constant {sub} does not evaluate to a finite real number", expr)
        return value if not value.is_Integer else sympy.Integer(value)
    if not expr.args:
        return expr
    if isinstance(expr, sympy.Piecewise):
        return sympy.Piecewise(*[(fold_constants(e), fold_constants(c)) for e, c in expr.args])
    args = [fold_constants(a) for a in expr.args]
    return expr.func(*args) if args != list(expr.args) else expr


# --------------------------------------------------------------------------- printer

class _ArrayPrinter(PythonCodePrinter):
    """Prints an expression as Python source over a backend namespace ``_F``.

    Raises `CompileError` on any construct without a translation, so the caller can name the
    offending subexpression before any array is touched.
    """

    def __init__(self, delta_zero: bool = False) -> None:
        super().__init__({"fully_qualified_modules": False, "strict": True})
        self.delta_zero = delta_zero

    def _unsupported(self, expr):
        raise CompileError("{sub} cannot be evaluated by the PINN and reference solvers "
                           f"(supported functions: {', '.join(SUPPORTED_FUNCTIONS)})", expr)

    emptyPrinter = _unsupported
    _print_not_supported = _unsupported

    def _print_Symbol(self, expr):
        if not expr.name.startswith("_a"):
            raise CompileError(f"symbol {expr} is not an argument of the compiled expression")
        return expr.name

    _print_Dummy = _unsupported

    # numbers: plain float literals (adopt the dtype of the arrays they meet)
    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Float(self, expr):
        v = float(expr)
        if not math.isfinite(v):
            raise CompileError(f"constant {expr} is not finite")
        return repr(v)

    def _print_Rational(self, expr):
        return repr(float(expr.p) / float(expr.q)) if abs(expr.p) < 2**53 and abs(expr.q) < 2**53 \
            else repr(float(expr))

    def _print_NumberSymbol(self, expr):
        return repr(float(expr))

    _print_Pi = _print_Exp1 = _print_EulerGamma = _print_GoldenRatio = _print_NumberSymbol

    def _print_ImaginaryUnit(self, expr):
        raise CompileError("the imaginary unit I: expressions must be real")

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    # arithmetic
    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        b = self.parenthesize(base, sympy.printing.precedence.PRECEDENCE["Pow"])
        if exp == sympy.Rational(1, 2):
            return f"_F.sqrt({self._print(base)})"
        if exp == -sympy.Rational(1, 2):
            return f"(1.0/_F.sqrt({self._print(base)}))"
        if exp.is_Integer:
            if int(exp) == -1:
                return f"(1.0/{b})"
            return f"{b}**{int(exp)}"
        return f"{b}**({self._print(exp)})"

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in _UNARY and len(expr.args) == 1:
            return f"_F.{_UNARY[name]}({self._print(expr.args[0])})"
        self._unsupported(expr)

    _print_Abs = _print_sign = _print_floor = _print_ceiling = _print_Function
    _print_erf = _print_erfc = _print_Function
    _print_sin = _print_cos = _print_tan = _print_cot = _print_sec = _print_csc = _print_Function
    _print_asin = _print_acos = _print_atan = _print_acot = _print_Function
    _print_sinh = _print_cosh = _print_tanh = _print_coth = _print_sech = _print_csch = \
        _print_Function
    _print_asinh = _print_acosh = _print_atanh = _print_Function

    def _print_exp(self, expr):
        return f"_F.exp({self._print(expr.args[0])})"

    def _print_log(self, expr):
        if len(expr.args) != 1:
            self._unsupported(expr)
        return f"_F.log({self._print(expr.args[0])})"

    def _print_atan2(self, expr):
        y, x = expr.args
        return f"_F.atan2({self._print(y)}, {self._print(x)}, _r)"

    def _minmax(self, expr, op):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"_F.{op}({out}, {a}, _r)"
        return out

    def _print_Max(self, expr):
        return self._minmax(expr, "maximum")

    def _print_Min(self, expr):
        return self._minmax(expr, "minimum")

    def _print_Heaviside(self, expr):
        h0 = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
        if not h0.is_Number:
            raise CompileError("{sub}: the value at zero must be a number", expr)
        return f"_F.heaviside({self._print(expr.args[0])}, {self._print(h0)}, _r)"

    def _print_DiracDelta(self, expr):
        # only in derivatives of Heaviside/sign/Abs (Newton Jacobians of the reference):
        # zero almost everywhere, the generalized derivative's pointwise value
        if not self.delta_zero:
            self._unsupported(expr)
        return f"_F.zeros({self._print(expr.args[0])}, _r)"

    # logic
    def _print_Relational(self, expr):
        op = expr.rel_op
        lhs, rhs = self._print(expr.lhs), self._print(expr.rhs)
        if op in _RELATIONAL_OPS:
            return f"({lhs} {op} {rhs})"
        if op == "==":
            return f"_F.eq({lhs}, {rhs}, _r)"
        if op == "!=":
            return f"_F.ne({lhs}, {rhs}, _r)"
        self._unsupported(expr)

    def _logic(self, expr, op):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"_F.{op}({out}, {a}, _r)"
        return out

    def _print_And(self, expr):
        return self._logic(expr, "logical_and")

    def _print_Or(self, expr):
        return self._logic(expr, "logical_or")

    def _print_Not(self, expr):
        return f"_F.logical_not({self._print(expr.args[0])}, _r)"

    def _print_Piecewise(self, expr):
        out = "_F.nan"           # sympy's value where no condition holds
        for e, c in reversed(expr.args):
            if c == sympy.true:
                out = self._print(e)
            elif c != sympy.false:
                out = f"_F.where({self._print(c)}, {self._print(e)}, {out}, _r)"
        return out


_ArrayPrinter._print_Half = _ArrayPrinter._print_Rational
# Everything sympy's printers could print that is not translated above (gamma, Mod, Sum,
# Integral, matrices, infinities, ...) is unsupported: whitelist, never a silent fallback.
_PRINTED_BY_BASE = {"Add", "Mul", "Zero", "One", "NegativeOne"}
for _name in dir(PythonCodePrinter):
    if (_name.startswith("_print_") and _name not in _ArrayPrinter.__dict__
            and _name[7:] not in _PRINTED_BY_BASE):
        setattr(_ArrayPrinter, _name, _ArrayPrinter._unsupported)


# --------------------------------------------------------------------------- backends

class _NumpyOps:
    """numpy namespace of the printed code (the finite-difference reference)."""

    def __init__(self) -> None:
        import numpy as np
        from scipy import special
        self.np = np
        for name in ("sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log", "abs", "sign",
                     "floor", "ceil", "sqrt"):
            setattr(self, name, getattr(np, name))
        self.asin, self.acos, self.atan = np.arcsin, np.arccos, np.arctan
        self.asinh, self.acosh, self.atanh = np.arcsinh, np.arccosh, np.arctanh
        self.erf, self.erfc = special.erf, special.erfc
        self.nan = math.nan

    def cot(self, x):
        return 1.0 / self.np.tan(x)

    def sec(self, x):
        return 1.0 / self.np.cos(x)

    def csc(self, x):
        return 1.0 / self.np.sin(x)

    def coth(self, x):
        return 1.0 / self.np.tanh(x)

    def sech(self, x):
        return 1.0 / self.np.cosh(x)

    def csch(self, x):
        return 1.0 / self.np.sinh(x)

    def acot(self, x):
        return self.np.arctan(1.0 / self.np.asarray(x, dtype=float))

    def atan2(self, y, x, _r):
        return self.np.arctan2(y, x)

    def maximum(self, a, b, _r):
        return self.np.maximum(a, b)

    def minimum(self, a, b, _r):
        return self.np.minimum(a, b)

    def heaviside(self, x, h0, _r):
        return self.np.heaviside(x, h0)

    def zeros(self, x, _r):
        return self.np.zeros_like(self.np.asarray(x, dtype=float))

    def where(self, c, a, b, _r):
        return self.np.where(c, a, b)

    def eq(self, a, b, _r):
        return self.np.equal(a, b)

    def ne(self, a, b, _r):
        return self.np.not_equal(a, b)

    def logical_and(self, a, b, _r):
        return self.np.logical_and(a, b)

    def logical_or(self, a, b, _r):
        return self.np.logical_or(a, b)

    def logical_not(self, a, _r):
        return self.np.logical_not(a)

    @staticmethod
    def ref(args):
        return None


class _TorchOps:
    """torch namespace of the printed code (the PINN path). Numbers become tensors only in the
    helpers that need tensors, with the dtype and device of ``_r``."""

    def __init__(self) -> None:
        import torch
        self.torch = torch
        for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                     "asinh", "acosh", "atanh", "exp", "log", "abs", "sign", "erf", "erfc",
                     "floor", "ceil", "sqrt"):
            setattr(self, name, getattr(torch, name))
        self.nan = math.nan

    def cot(self, x):
        return 1.0 / self.torch.tan(x)

    def sec(self, x):
        return 1.0 / self.torch.cos(x)

    def csc(self, x):
        return 1.0 / self.torch.sin(x)

    def coth(self, x):
        return 1.0 / self.torch.tanh(x)

    def sech(self, x):
        return 1.0 / self.torch.cosh(x)

    def csch(self, x):
        return 1.0 / self.torch.sinh(x)

    def acot(self, x):
        return self.torch.atan(1.0 / x)

    def _t(self, v, _r):
        if isinstance(v, self.torch.Tensor):
            return v
        if _r is None:
            return self.torch.as_tensor(v, dtype=self.torch.get_default_dtype())
        return self.torch.as_tensor(v, dtype=_r.dtype, device=_r.device)

    def atan2(self, y, x, _r):
        return self.torch.atan2(self._t(y, _r), self._t(x, _r))

    def maximum(self, a, b, _r):
        return self.torch.maximum(self._t(a, _r), self._t(b, _r))

    def minimum(self, a, b, _r):
        return self.torch.minimum(self._t(a, _r), self._t(b, _r))

    def heaviside(self, x, h0, _r):
        x = self._t(x, _r)
        return self.torch.heaviside(x, self.torch.as_tensor(h0, dtype=x.dtype, device=x.device))

    def zeros(self, x, _r):
        return self.torch.zeros_like(self._t(x, _r))

    def where(self, c, a, b, _r):
        return self.torch.where(self._t(c, None) if not isinstance(c, self.torch.Tensor) else c,
                                self._t(a, _r), self._t(b, _r))

    def eq(self, a, b, _r):
        return self.torch.eq(self._t(a, _r), self._t(b, _r))

    def ne(self, a, b, _r):
        return self.torch.ne(self._t(a, _r), self._t(b, _r))

    def logical_and(self, a, b, _r):
        return self.torch.logical_and(self._t(a, _r), self._t(b, _r))

    def logical_or(self, a, b, _r):
        return self.torch.logical_or(self._t(a, _r), self._t(b, _r))

    def logical_not(self, a, _r):
        return self.torch.logical_not(self._t(a, _r))

    def ref(self, args):
        for a in args:
            if isinstance(a, self.torch.Tensor) and a.is_floating_point():
                return a
        return None


_BACKENDS: dict[str, Any] = {"numpy": _NumpyOps, "torch": _TorchOps}
_OPS: dict[str, Any] = {}


def _ops(backend: str):
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(_BACKENDS)}")
    ops = _OPS.get(backend)
    if ops is None:
        ops = _OPS[backend] = _BACKENDS[backend]()
    return ops


# --------------------------------------------------------------------------- compile

def _source(args: Sequence[sympy.Symbol], expr: Any, delta_zero: bool,
            display: dict | None = None) -> str:
    names = {a: sympy.Symbol(f"_a{i}") for i, a in enumerate(args)}
    try:
        expr = fold_constants(sympy.sympify(expr))
        body = _ArrayPrinter(delta_zero).doprint(expr.xreplace(names))
    except CompileError as exc:
        back = {v: k for k, v in names.items()}
        back = {k: v.xreplace(display) if display else v for k, v in back.items()}
        sub = exc.sub.xreplace(back) if isinstance(exc.sub, sympy.Basic) else exc.sub
        raise CompileError(CompileError(exc.reason, sub).describe(display or {}), sub) from None
    params = ", ".join(str(s) for s in names.values())
    uses_r = "_r)" in body
    lines = [f"def _compiled({params}):"]
    if uses_r:
        lines.append(f"    _r = _F.ref(({params}{',' if len(names) == 1 else ''}))")
    lines.append(f"    return {body}")
    return "\n".join(lines)


def check_expr(args: Sequence[sympy.Symbol], expr: Any, where: str = "expression",
               delta_zero: bool = False, display: dict | None = None) -> None:
    """Raise `SpecError` (naming ``where`` and the subexpression) if `compile_expr` could not
    translate ``expr``; prints only (imports neither torch nor numpy). ``display`` maps
    symbols of ``expr`` (e.g. derivative placeholders) to what the message should show."""
    try:
        _source(args, expr, delta_zero, display)
    except CompileError as exc:
        raise SpecError(f"{where}: {exc}") from None


def compile_expr(args: Sequence[sympy.Symbol], expr: Any, backend: str = "numpy",
                 delta_zero: bool = False, where: str = "expression") -> Callable:
    """``expr`` as a function of ``args`` (symbols, in order) over numpy arrays or torch tensors.

    The result may be a Python float when ``expr`` is constant; callers broadcast it. Raises
    `SpecError` naming the subexpression it cannot translate. ``delta_zero`` evaluates
    DiracDelta (from derivatives of Heaviside, sign, Abs) as 0, its value almost everywhere.
    """
    try:
        src = _source(args, expr, delta_zero)
    except CompileError as exc:
        raise SpecError(f"{where}: {exc}") from None
    namespace = {"_F": _ops(backend)}
    exec(compile(src, f"<pinnkit {backend} expression>", "exec"), namespace)
    fn = namespace["_compiled"]
    fn.source = src
    return fn


def compile_exprs(args: Sequence[sympy.Symbol], exprs: Sequence, backend: str = "numpy",
                  **kw: Any) -> Callable:
    """Several expressions of the same arguments: a function returning the list of values."""
    fns = [compile_expr(args, e, backend, **kw) for e in exprs]

    def evaluate(*values):
        return [fn(*values) for fn in fns]
    return evaluate
