"""Elementwise ops: arithmetic and transcendental functions.

Each primitive (``*_p``) is its forward array code and its partial derivatives, written
once with ``@deriv``; the engine derives both the VJP and the JVP from them. Ops whose
derivative is a function of the output (exp, sqrt, tan, reciprocal, ...) save the output
instead of the input: backward then needs no recomputation and the input can be freed.
The public functions follow NumPy's names and signatures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, get_default_dtype
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DTypeError
from gpuchain.ops._public import binary, unary
from gpuchain.ops._rules import const_like
from gpuchain.ops._special import erf as _erf

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

__all__ = [
    "abs", "absolute", "add", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2",
    "arctanh", "astype", "cbrt", "ceil", "clip", "cos", "cosh", "divide", "erf", "exp", "exp2",
    "expm1", "floor", "fmod", "hypot", "log", "log1p", "log2", "log10", "logaddexp",
    "maximum", "minimum", "mod", "multiply", "negative", "power", "reciprocal", "remainder",
    "round", "sign", "sin", "sinh", "sqrt", "square", "subtract", "tan", "trunc",
    "true_divide", "where",
]


def _const(mask: Any, like: Tensor) -> Tensor:
    return const_like(mask, like)


def _float_dtype(*tensors: Tensor) -> np.dtype:
    dt = np.result_type(*[t.dtype for t in tensors])
    return dt if dt.kind == "f" else get_default_dtype()


# --- arithmetic -----------------------------------------------------------------------------

@defop("add", save="none", broadcasts=True)
def add_p(xp, a, b):
    return a + b


@add_p.deriv
def _():
    return 1, 1


@defop("sub", save="none", broadcasts=True)
def sub_p(xp, a, b):
    return a - b


@sub_p.deriv
def _():
    return 1, -1


@defop("mul", broadcasts=True)
def mul_p(xp, a, b):
    return a * b


@mul_p.deriv
def _(a, b):
    return b, a


@defop("div", save="both", broadcasts=True)
def div_p(xp, a, b):
    return a / b


@div_p.deriv
def _(y, a, b, wrt):
    # ∂/∂b = -a/b² written as -y/b, which neither under- nor overflows where y is finite
    return (1 / b if wrt[0] else None), (-y / b if wrt[1] else None)


@defop("neg", save="none")
def neg_p(xp, a):
    return -a


@neg_p.deriv
def _():
    return -1


@defop("power", save="both", broadcasts=True)
def power_p(xp, a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and (b < 0).any():
        raise DTypeError(f"power: integers to negative integer powers are not allowed "
                         f"({a.dtype} ** {b.dtype} with a negative exponent); cast the base "
                         "to a floating dtype first")
    return a ** b


@power_p.deriv
def _(y, a, b, wrt):
    da = db = None
    if wrt[0]:
        # b·a^(b-1), with 0 where b == 0 (the function is constant there); the base is
        # made 1 where b == 0 and a == 0 so no 0·inf arises, at any order
        base = where((b._data == 0) & (a._data == 0), 1, a) if (b._data == 0).any() else a
        da = b * base ** (b - 1)
    if wrt[1]:
        # a^b·log a, defined as 0 where a <= 0 (the limit for a -> 0+ with b > 0)
        db = y * log(where(a._data > 0, a, 1))
    return da, db


def _check_fmod_args(name: str, a: Tensor, b: Tensor) -> None:
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        raise DTypeError(f"{name}: complex operands are not supported")


@defop("mod", save="inputs", broadcasts=True)
def mod_p(xp, a, b):
    return xp.mod(a, b)


@mod_p.deriv
def _(a, b, wrt):
    # a mod b = a - floor(a/b)·b: piecewise linear in a (slope 1) and b (slope -floor(a/b))
    return 1, (_const(array_module_of(a._data).floor(a._data / b._data), b) * -1
               if wrt[1] else None)


@defop("fmod", save="inputs", broadcasts=True)
def fmod_p(xp, a, b):
    return xp.fmod(a, b)


@fmod_p.deriv
def _(a, b, wrt):
    # fmod(a, b) = a - trunc(a/b)·b (the sign of a, as C's fmod)
    return 1, (_const(array_module_of(a._data).trunc(a._data / b._data), b) * -1
               if wrt[1] else None)


add = binary(add_p, "add", "x1 + x2, elementwise (broadcasting).", "1 and 1")
subtract = binary(sub_p, "subtract", "x1 - x2, elementwise (broadcasting).", "1 and -1")
multiply = binary(mul_p, "multiply", "x1 * x2, elementwise (broadcasting).", "x2 and x1")
divide = binary(div_p, "divide", "x1 / x2, elementwise (broadcasting).",
                "1/x2 and -x1/x2**2")
true_divide = divide
power = binary(power_p, "power", "x1 ** x2, elementwise (broadcasting).",
               "x2·x1**(x2-1) (0 where x2 == 0) and x1**x2·log(x1) (0 where x1 <= 0)")
mod = binary(mod_p, "mod", "The remainder of x1 / x2 with the sign of x2 (NumPy's mod, "
             "Python's %).", "1 and -floor(x1/x2); the jumps at multiples of x2 are ignored")
remainder = mod
fmod = binary(fmod_p, "fmod", "The remainder of x1 / x2 with the sign of x1 (C's fmod).",
              "1 and -trunc(x1/x2)")
negative = unary(neg_p, "negative", "-x, elementwise.", "-1")


# --- transcendental functions --------------------------------------------------------------

@defop("sin", broadcasts=True)
def sin_p(xp, x):
    return xp.sin(x)


@sin_p.deriv
def _(x):
    return cos(x)


@defop("cos", broadcasts=True)
def cos_p(xp, x):
    return xp.cos(x)


@cos_p.deriv
def _(x):
    return -sin(x)


@defop("tan", save="output", broadcasts=True)
def tan_p(xp, x):
    return xp.tan(x)


@tan_p.deriv
def _(y):
    return 1 + y * y


@defop("exp", save="output", broadcasts=True)
def exp_p(xp, x):
    return xp.exp(x)


@exp_p.deriv
def _(y):
    return y


@defop("exp2", save="output", broadcasts=True)
def exp2_p(xp, x):
    return xp.exp2(x)


@exp2_p.deriv
def _(y):
    return y * _LN2


@defop("expm1", save="output", broadcasts=True)
def expm1_p(xp, x):
    return xp.expm1(x)


@expm1_p.deriv
def _(y):
    return y + 1


@defop("log", broadcasts=True)
def log_p(xp, x):
    return xp.log(x)


@log_p.deriv
def _(x):
    return 1 / x


@defop("log2", broadcasts=True)
def log2_p(xp, x):
    return xp.log2(x)


@log2_p.deriv
def _(x):
    return 1 / (x * _LN2)


@defop("log10", broadcasts=True)
def log10_p(xp, x):
    return xp.log10(x)


@log10_p.deriv
def _(x):
    return 1 / (x * _LN10)


@defop("log1p", broadcasts=True)
def log1p_p(xp, x):
    return xp.log1p(x)


@log1p_p.deriv
def _(x):
    return 1 / (1 + x)


@defop("sqrt", save="output", broadcasts=True)
def sqrt_p(xp, x):
    return xp.sqrt(x)


@sqrt_p.deriv
def _(y):
    return 0.5 / y


@defop("cbrt", save="output", broadcasts=True)
def cbrt_p(xp, x):
    return xp.cbrt(x)


@cbrt_p.deriv
def _(y):
    return 1 / (3 * y * y)


cbrt = unary(cbrt_p, "cbrt", "The cube root, elementwise.", "1/(3·cbrt(x)**2)")


@defop("square", broadcasts=True)
def square_p(xp, x):
    return xp.square(x)


@square_p.deriv
def _(x):
    return 2 * x


@defop("reciprocal", save="output", broadcasts=True)
def reciprocal_p(xp, x):
    return xp.reciprocal(x)


@reciprocal_p.deriv
def _(y):
    return -(y * y)


@defop("abs", broadcasts=True)
def abs_p(xp, x):
    return xp.abs(x)


@abs_p.deriv
def _(x):
    # sign(0) = 0: the subgradient of |x| at 0 chosen by NumPy, PyTorch and JAX alike
    return _const(array_module_of(x._data).sign(x._data), x)


@defop("sinh", broadcasts=True)
def sinh_p(xp, x):
    return xp.sinh(x)


@sinh_p.deriv
def _(x):
    return cosh(x)


@defop("cosh", broadcasts=True)
def cosh_p(xp, x):
    return xp.cosh(x)


@cosh_p.deriv
def _(x):
    return sinh(x)


@defop("arcsin", broadcasts=True)
def arcsin_p(xp, x):
    return xp.arcsin(x)


@arcsin_p.deriv
def _(x):
    return 1 / sqrt(1 - x * x)


@defop("arccos", broadcasts=True)
def arccos_p(xp, x):
    return xp.arccos(x)


@arccos_p.deriv
def _(x):
    return -1 / sqrt(1 - x * x)


@defop("arctan", broadcasts=True)
def arctan_p(xp, x):
    return xp.arctan(x)


@arctan_p.deriv
def _(x):
    return 1 / (1 + x * x)


@defop("arcsinh", broadcasts=True)
def arcsinh_p(xp, x):
    return xp.arcsinh(x)


@arcsinh_p.deriv
def _(x):
    return 1 / sqrt(x * x + 1)


@defop("arccosh", broadcasts=True)
def arccosh_p(xp, x):
    return xp.arccosh(x)


@arccosh_p.deriv
def _(x):
    return 1 / sqrt(x * x - 1)


@defop("arctanh", broadcasts=True)
def arctanh_p(xp, x):
    return xp.arctanh(x)


@arctanh_p.deriv
def _(x):
    return 1 / (1 - x * x)


@defop("arctan2", broadcasts=True)
def arctan2_p(xp, a, b):
    return xp.arctan2(a, b)


@arctan2_p.deriv
def _(a, b):
    # at the origin, where the angle is undefined, the derivative is taken as 0 (as
    # PyTorch's reverse mode does, and as abs'(0) = 0)
    r2 = a * a + b * b
    r2 = where(r2._data == 0, 1, r2) if (r2._data == 0).any() else r2
    return b / r2, -a / r2


@defop("hypot", save="both", broadcasts=True)
def hypot_p(xp, a, b):
    return xp.hypot(a, b)


@hypot_p.deriv
def _(y, a, b):
    return a / y, b / y


@defop("logaddexp", save="both", broadcasts=True)
def logaddexp_p(xp, a, b):
    return xp.logaddexp(a, b)


@logaddexp_p.deriv
def _(y, a, b, wrt):
    return (exp(a - y) if wrt[0] else None), (exp(b - y) if wrt[1] else None)


@defop("erf", broadcasts=True)
def erf_p(xp, x):
    return _erf(xp, x)


@erf_p.deriv
def _(x):
    return _TWO_OVER_SQRT_PI * exp(-x * x)


sin = unary(sin_p, "sin", "Trigonometric sine, elementwise.", "cos(x)")
cos = unary(cos_p, "cos", "Trigonometric cosine, elementwise.", "-sin(x)")
tan = unary(tan_p, "tan", "Trigonometric tangent, elementwise.", "1 + tan(x)**2")
exp = unary(exp_p, "exp", "e**x, elementwise.", "exp(x)")
exp2 = unary(exp2_p, "exp2", "2**x, elementwise.", "2**x·log(2)")
expm1 = unary(expm1_p, "expm1", "e**x - 1, elementwise, accurate for small x.", "exp(x)")
log = unary(log_p, "log", "Natural logarithm, elementwise.", "1/x")
log2 = unary(log2_p, "log2", "Base-2 logarithm, elementwise.", "1/(x·log(2))")
log10 = unary(log10_p, "log10", "Base-10 logarithm, elementwise.", "1/(x·log(10))")
log1p = unary(log1p_p, "log1p", "log(1 + x), elementwise, accurate for small x.",
              "1/(1 + x)")
sqrt = unary(sqrt_p, "sqrt", "Square root, elementwise.", "1/(2·sqrt(x))")
square = unary(square_p, "square", "x**2, elementwise.", "2x")
reciprocal = unary(reciprocal_p, "reciprocal", "1/x, elementwise.", "-1/x**2")
abs = unary(abs_p, "abs", "The absolute value of x, elementwise.", "sign(x), 0 at x = 0")
absolute = abs
sinh = unary(sinh_p, "sinh", "Hyperbolic sine, elementwise.", "cosh(x)")
cosh = unary(cosh_p, "cosh", "Hyperbolic cosine, elementwise.", "sinh(x)")
arcsin = unary(arcsin_p, "arcsin", "Inverse sine, elementwise.", "1/sqrt(1 - x**2)")
arccos = unary(arccos_p, "arccos", "Inverse cosine, elementwise.", "-1/sqrt(1 - x**2)")
arctan = unary(arctan_p, "arctan", "Inverse tangent, elementwise.", "1/(1 + x**2)")
arcsinh = unary(arcsinh_p, "arcsinh", "Inverse hyperbolic sine, elementwise.",
                "1/sqrt(x**2 + 1)")
arccosh = unary(arccosh_p, "arccosh", "Inverse hyperbolic cosine, elementwise.",
                "1/sqrt(x**2 - 1)")
arctanh = unary(arctanh_p, "arctanh", "Inverse hyperbolic tangent, elementwise.",
                "1/(1 - x**2)")
arctan2 = binary(arctan2_p, "arctan2", "The angle of the point (x2, x1), elementwise "
                 "(x1 is y, x2 is x).", "x2/(x1²+x2²) and -x1/(x1²+x2²), 0 at the origin")
hypot = binary(hypot_p, "hypot", "sqrt(x1**2 + x2**2), elementwise, without overflow.",
               "x1/hypot and x2/hypot")
logaddexp = binary(logaddexp_p, "logaddexp", "log(exp(x1) + exp(x2)), elementwise, stably.",
                   "exp(x1 - out) and exp(x2 - out)")
erf = unary(erf_p, "erf", "The error function, elementwise.", "2/sqrt(pi)·exp(-x**2)")


# --- piecewise constant: derivative 0 ------------------------------------------------------

def _rounding(name: str, fn: Any, summary: str) -> Any:
    prim = defop(name, save="none", broadcasts=True)(fn)
    prim.deriv(lambda: None)
    return unary(prim, name, summary, "0 (the jumps are ignored)")


sign = _rounding("sign", lambda xp, x: xp.sign(x), "The sign of x (-1, 0 or 1), elementwise.")
floor = _rounding("floor", lambda xp, x: xp.floor(x), "The largest integer <= x, elementwise.")
ceil = _rounding("ceil", lambda xp, x: xp.ceil(x), "The smallest integer >= x, elementwise.")
trunc = _rounding("trunc", lambda xp, x: xp.trunc(x), "x rounded towards 0, elementwise.")


@defop("round", save="none", broadcasts=True)
def round_p(xp, x, decimals=0):
    return xp.round(x, decimals)


round_p.deriv(lambda **_: None)


def round(x: Any, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round to ``decimals`` decimal places (half to even, as NumPy), elementwise.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    decimals : int
        Number of decimal places.

    Returns
    -------
    Tensor
        The rounded values. The derivative is taken as 0 (the jumps are ignored).
    """
    return round_p(x, decimals=int(decimals))


# --- selection ------------------------------------------------------------------------------

def _tie_split(a: Tensor, b: Tensor, greater: bool) -> tuple[Tensor, Tensor]:
    """Weights of a and b in maximum/minimum: 1 for the winner, ½ each on a tie."""
    xp = array_module_of(a._data)
    dtype = _float_dtype(a, b)
    ad, bd = xp.broadcast_arrays(a._data, b._data)
    win = (ad > bd) if greater else (ad < bd)
    wa = xp.asarray(xp.where(win, 1.0, xp.where(ad == bd, 0.5, 0.0)), dtype=dtype)
    return Tensor._from_op(wa, None), Tensor._from_op(xp.asarray(1 - wa), None)


@defop("maximum", broadcasts=True)
def maximum_p(xp, a, b):
    return xp.maximum(a, b)


@maximum_p.deriv
def _(a, b):
    return _tie_split(a, b, greater=True)


@defop("minimum", broadcasts=True)
def minimum_p(xp, a, b):
    return xp.minimum(a, b)


@minimum_p.deriv
def _(a, b):
    return _tie_split(a, b, greater=False)


maximum = binary(maximum_p, "maximum", "The larger of x1 and x2, elementwise.",
                 "1 to the larger operand, ½ to each on a tie")
minimum = binary(minimum_p, "minimum", "The smaller of x1 and x2, elementwise.",
                 "1 to the smaller operand, ½ to each on a tie")


@defop("clip", broadcasts=True)
def clip_p(xp, x, lo, hi):
    return xp.minimum(xp.maximum(x, lo), hi)


@clip_p.deriv
def _(x, lo, hi, wrt):
    # As torch.clamp: the gradient goes to x where lo <= x <= hi (boundaries included),
    # else to the bound that is active.
    xd, lod, hid = x._data, lo._data, hi._data
    below, above = xd < lod, xd > hid
    dx = _const(~(below | above), x) if wrt[0] else None
    dlo = _const(below & ~above, lo) if wrt[1] else None
    dhi = _const(above, hi) if wrt[2] else None
    return dx, dlo, dhi


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Tensor:
    """Limit the values of ``x`` to [a_min, a_max], elementwise.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    a_min, a_max : scalar, Tensor or None
        The bounds (broadcast against ``x``); None for no bound on that side. Tensor
        bounds are differentiable, as in ``torch.clamp``.

    Returns
    -------
    Tensor
        The clipped values. The derivative is 1 with respect to ``x`` where
        ``a_min <= x <= a_max`` (boundaries included) and 1 with respect to the active
        bound elsewhere.
    """
    from gpuchain.ops._public import as_tensor

    x = as_tensor(x)
    xp = array_module_of(x._data)
    big = np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).max
    lo = Tensor._from_op(xp.asarray(-big, dtype=x.dtype), None) if a_min is None else a_min
    hi = Tensor._from_op(xp.asarray(big, dtype=x.dtype), None) if a_max is None else a_max
    return clip_p(x, lo, hi)


@defop("where", save="none", broadcasts=True)
def where_p(xp, a, b, cond=None):
    return xp.where(cond, a, b)


@where_p.vjp
def _(ctx, g):
    cond = ctx.params["cond"]
    zero = const_like(0, g)
    return where_p(g, zero, cond=cond), where_p(zero, g, cond=cond)


@where_p.jvp
def _(ctx, t):
    cond = ctx.params["cond"]
    ta, tb = t
    if ta is None:
        ta = const_like(0, tb)
    if tb is None:
        tb = const_like(0, ta)
    return where_p(ta, tb, cond=cond)


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elements of ``x`` where ``condition`` holds, else of ``y`` (broadcasting).

    Parameters
    ----------
    condition : bool array or Tensor
        Not differentiated.
    x, y : Tensor or array_like
        The values to choose from.

    Returns
    -------
    Tensor
        The chosen elements; the cotangent flows to ``x`` where ``condition`` holds and
        to ``y`` elsewhere.
    """
    return where_p(x, y, cond=getattr(condition, "data", condition))


@defop("astype", save="none")
def astype_p(xp, x, dtype=None):
    return x.astype(dtype, copy=False)


@astype_p.vjp
def _(ctx, g):
    return (g,)  # the engine casts the cotangent back to the input's dtype


@astype_p.jvp
def _(ctx, t):
    return astype_p(t[0], dtype=ctx.params["dtype"])


def astype(x: Any, dtype: Any) -> Tensor:
    """``x`` cast to ``dtype``; gradients flow back cast to ``x``'s dtype.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    dtype : dtype
        Target dtype.

    Returns
    -------
    Tensor
        ``x`` itself when it already has ``dtype``.
    """
    from gpuchain.ops._public import as_tensor

    x = as_tensor(x)
    dtype = np.dtype(dtype)
    return x if dtype == x.dtype else astype_p(x, dtype=dtype)
