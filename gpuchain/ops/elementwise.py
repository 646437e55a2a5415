"""Elementwise ops: arithmetic, transcendental functions and activations.

Each op's forward, VJP and JVP stand together. Activations whose derivative is a
function of the output (exp, tanh, sigmoid, relu, sqrt, tan) save the output instead
of the input: backward then needs no recomputation and the input can be freed.
"""

from __future__ import annotations

import math
from typing import Any

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.ops._rules import const_like, lin
from gpuchain.ops._special import erf as _erf

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = 0.044715


# --- arithmetic ---------------------------------------------------------------------

@defop("add", save="none", elementwise=True)
def add(xp, a, b):
    return a + b


@add.vjp
def _(ctx, g):
    return g, g


@add.jvp
def _(ctx, t):
    return lin(t[0], t[1])


@defop("sub", save="none", elementwise=True)
def sub(xp, a, b):
    return a - b


@sub.vjp
def _(ctx, g):
    return g, -g


@sub.jvp
def _(ctx, t):
    return lin(t[0], None if t[1] is None else -t[1])


@defop("mul", elementwise=True)
def mul(xp, a, b):
    return a * b


@mul.vjp
def _(ctx, g):
    a, b = ctx.inputs
    return (g * b if ctx.needs_grad(0) else None), (g * a if ctx.needs_grad(1) else None)


@mul.jvp
def _(ctx, t):
    a, b = ctx.inputs
    return lin(None if t[0] is None else t[0] * b, None if t[1] is None else a * t[1])


@defop("div", elementwise=True)
def div(xp, a, b):
    return a / b


@div.vjp
def _(ctx, g):
    a, b = ctx.inputs
    ga = g / b
    return ga, (-ga * a / b if ctx.needs_grad(1) else None)


@div.jvp
def _(ctx, t):
    a, b = ctx.inputs
    return lin(None if t[0] is None else t[0] / b,
               None if t[1] is None else -t[1] * a / (b * b))


@defop("neg", save="none", elementwise=True)
def neg(xp, a):
    return -a


@neg.vjp
def _(ctx, g):
    return (-g,)


@neg.jvp
def _(ctx, t):
    return -t[0]


@defop("power", save="both", elementwise=True)
def power(xp, a, b):
    return a ** b


@power.vjp
def _(ctx, g):
    a, b = ctx.inputs
    ga = g * b * a ** (b - 1) if ctx.needs_grad(0) else None
    # d/db a^b = a^b log a; defined as 0 where a == 0 (the limit for b > 0)
    gb = g * ctx.out * log(where(a, 1, cond=a.data > 0)) if ctx.needs_grad(1) else None
    return ga, gb


@power.jvp
def _(ctx, t):
    a, b = ctx.inputs
    return lin(None if t[0] is None else t[0] * b * a ** (b - 1),
               None if t[1] is None else t[1] * ctx.out * log(where(a, 1, cond=a.data > 0)))


# --- transcendental functions -----------------------------------------------------------

@defop("sin", elementwise=True)
def sin(xp, x):
    return xp.sin(x)


@sin.vjp
def _(ctx, g):
    return (g * cos(ctx.inputs[0]),)


@sin.jvp
def _(ctx, t):
    return t[0] * cos(ctx.inputs[0])


@defop("cos", elementwise=True)
def cos(xp, x):
    return xp.cos(x)


@cos.vjp
def _(ctx, g):
    return (-g * sin(ctx.inputs[0]),)


@cos.jvp
def _(ctx, t):
    return -t[0] * sin(ctx.inputs[0])


@defop("tan", save="output", elementwise=True)
def tan(xp, x):
    return xp.tan(x)


@tan.vjp
def _(ctx, g):
    y = ctx.out
    return (g * (1 + y * y),)


@tan.jvp
def _(ctx, t):
    y = ctx.out
    return t[0] * (1 + y * y)


@defop("exp", save="output", elementwise=True)
def exp(xp, x):
    return xp.exp(x)


@exp.vjp
def _(ctx, g):
    return (g * ctx.out,)


@exp.jvp
def _(ctx, t):
    return t[0] * ctx.out


@defop("log", elementwise=True)
def log(xp, x):
    return xp.log(x)


@log.vjp
def _(ctx, g):
    return (g / ctx.inputs[0],)


@log.jvp
def _(ctx, t):
    return t[0] / ctx.inputs[0]


@defop("sqrt", save="output", elementwise=True)
def sqrt(xp, x):
    return xp.sqrt(x)


@sqrt.vjp
def _(ctx, g):
    return (g / (2 * ctx.out),)


@sqrt.jvp
def _(ctx, t):
    return t[0] / (2 * ctx.out)


@defop("abs", elementwise=True)
def abs(xp, x):  # noqa: A001 - the NumPy name
    return xp.abs(x)


@abs.vjp
def _(ctx, g):
    # sign(0) = 0: the subgradient of |x| at 0 chosen by NumPy, PyTorch and JAX alike
    return (g * _sign(ctx.inputs[0]),)


@abs.jvp
def _(ctx, t):
    return t[0] * _sign(ctx.inputs[0])


def _sign(x):
    return const_like(array_module_of(x.data).sign(x.data), x)


# --- activations ---------------------------------------------------------------------

@defop("tanh", save="output", elementwise=True)
def tanh(xp, x):
    return xp.tanh(x)


@tanh.vjp
def _(ctx, g):
    y = ctx.out
    return (g * (1 - y * y),)


@tanh.jvp
def _(ctx, t):
    y = ctx.out
    return t[0] * (1 - y * y)


def _sigmoid_array(xp, x):
    # Stable for large |x|: never exponentiates a positive number.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@defop("sigmoid", save="output", elementwise=True)
def sigmoid(xp, x):
    return _sigmoid_array(xp, x)


@sigmoid.vjp
def _(ctx, g):
    y = ctx.out
    return (g * (y * (1 - y)),)


@sigmoid.jvp
def _(ctx, t):
    y = ctx.out
    return t[0] * (y * (1 - y))


@defop("relu", save="output", elementwise=True)
def relu(xp, x):
    return xp.maximum(x, 0)


def _relu_mask(y):
    # relu'(0) = 0, read from the output: y > 0 exactly where x > 0.
    return const_like(y.data > 0, y)


@relu.vjp
def _(ctx, g):
    return (g * _relu_mask(ctx.out),)


@relu.jvp
def _(ctx, t):
    return t[0] * _relu_mask(ctx.out)


@defop("leaky_relu", elementwise=True)
def leaky_relu(xp, x, slope=0.01):
    return xp.where(x > 0, x, x * x.dtype.type(slope))


def _leaky_slope(x, slope):
    # the derivative at 0 is the negative-side slope, as for relu
    return const_like(array_module_of(x.data).where(x.data > 0, 1.0, slope), x)


@leaky_relu.vjp
def _(ctx, g):
    return (g * _leaky_slope(ctx.inputs[0], ctx.params.get("slope", 0.01)),)


@leaky_relu.jvp
def _(ctx, t):
    return t[0] * _leaky_slope(ctx.inputs[0], ctx.params.get("slope", 0.01))


@defop("gelu", elementwise=True)
def gelu(xp, x):
    """x·Φ(x) with the exact normal CDF."""
    return (0.5 * x * (1 + _erf(xp, x * _INV_SQRT_2))).astype(x.dtype, copy=False)


def _gelu_grad(x):
    cdf = 0.5 * (1 + erf_(x * _INV_SQRT_2))
    return cdf + x * _INV_SQRT_2PI * exp(-0.5 * x * x)


@gelu.vjp
def _(ctx, g):
    return (g * _gelu_grad(ctx.inputs[0]),)


@gelu.jvp
def _(ctx, t):
    return t[0] * _gelu_grad(ctx.inputs[0])


@defop("erf", elementwise=True)
def erf_(xp, x):
    return _erf(xp, x)


@erf_.vjp
def _(ctx, g):
    x = ctx.inputs[0]
    return (g * (2 / math.sqrt(math.pi)) * exp(-x * x),)


@erf_.jvp
def _(ctx, t):
    x = ctx.inputs[0]
    return t[0] * (2 / math.sqrt(math.pi)) * exp(-x * x)


@defop("gelu_tanh", elementwise=True)
def gelu_tanh(xp, x):
    """The tanh approximation 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    inner = _SQRT_2_OVER_PI * (x + _GELU_TANH_C * x * x * x)
    return (0.5 * x * (1 + xp.tanh(inner))).astype(x.dtype, copy=False)


def _gelu_tanh_grad(x):
    th = tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x * x * x))
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * _SQRT_2_OVER_PI * (
        1 + 3 * _GELU_TANH_C * x * x)


@gelu_tanh.vjp
def _(ctx, g):
    return (g * _gelu_tanh_grad(ctx.inputs[0]),)


@gelu_tanh.jvp
def _(ctx, t):
    return t[0] * _gelu_tanh_grad(ctx.inputs[0])


@defop("silu", elementwise=True)
def silu(xp, x):
    return x * _sigmoid_array(xp, x)


def _silu_grad(x):
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


@silu.vjp
def _(ctx, g):
    return (g * _silu_grad(ctx.inputs[0]),)


@silu.jvp
def _(ctx, t):
    return t[0] * _silu_grad(ctx.inputs[0])


@defop("softplus", elementwise=True)
def softplus(xp, x):
    """log(1 + eˣ), computed as max(x, 0) + log1p(e^{-|x|}) so it never overflows."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


@softplus.vjp
def _(ctx, g):
    return (g * sigmoid(ctx.inputs[0]),)


@softplus.jvp
def _(ctx, t):
    return t[0] * sigmoid(ctx.inputs[0])


# --- selection -----------------------------------------------------------------------

def _tie_split(a, b, greater):
    """Weights of a and b in maximum/minimum: 1 for the winner, ½ each on a tie."""
    xp = array_module_of(a.data)
    ad, bd = xp.broadcast_arrays(a.data, b.data)
    win = (ad > bd) if greater else (ad < bd)
    wa = xp.where(win, 1.0, xp.where(ad == bd, 0.5, 0.0))
    return const_like(wa, a), const_like(1.0 - wa, a)


@defop("maximum", elementwise=True)
def maximum(xp, a, b):
    return xp.maximum(a, b)


@maximum.vjp
def _(ctx, g):
    wa, wb = _tie_split(*ctx.inputs, greater=True)
    return g * wa, g * wb


@maximum.jvp
def _(ctx, t):
    wa, wb = _tie_split(*ctx.inputs, greater=True)
    return lin(None if t[0] is None else t[0] * wa, None if t[1] is None else t[1] * wb)


@defop("minimum", elementwise=True)
def minimum(xp, a, b):
    return xp.minimum(a, b)


@minimum.vjp
def _(ctx, g):
    wa, wb = _tie_split(*ctx.inputs, greater=False)
    return g * wa, g * wb


@minimum.jvp
def _(ctx, t):
    wa, wb = _tie_split(*ctx.inputs, greater=False)
    return lin(None if t[0] is None else t[0] * wa, None if t[1] is None else t[1] * wb)


@defop("where", save="none", elementwise=True)
def where(xp, a, b, cond=None):
    return xp.where(cond, a, b)


@where.vjp
def _(ctx, g):
    cond = ctx.params["cond"]
    zero = const_like(0, g)
    return where(g, zero, cond=cond), where(zero, g, cond=cond)


@where.jvp
def _(ctx, t):
    cond = ctx.params["cond"]
    ta, tb = t
    if ta is None:
        ta = const_like(0, tb)
    if tb is None:
        tb = const_like(0, ta)
    return where(ta, tb, cond=cond)


@defop("clip", elementwise=True)
def clip(xp, x, lo=None, hi=None):
    return xp.clip(x, lo, hi)


def _clip_mask(x, lo, hi):
    # The gradient passes where lo <= x <= hi (boundaries included), as in PyTorch.
    inside = array_module_of(x.data).ones(x.shape, dtype=bool)
    if lo is not None:
        inside &= x.data >= lo
    if hi is not None:
        inside &= x.data <= hi
    return const_like(inside, x)


@clip.vjp
def _(ctx, g):
    return (g * _clip_mask(ctx.inputs[0], ctx.params.get("lo"), ctx.params.get("hi")),)


@clip.jvp
def _(ctx, t):
    return t[0] * _clip_mask(ctx.inputs[0], ctx.params.get("lo"), ctx.params.get("hi"))


@defop("astype", save="none")
def astype(xp, x, dtype=None):
    return x.astype(dtype, copy=False)


@astype.vjp
def _(ctx, g):
    return (g,)  # the engine casts the cotangent back to the input's dtype


@astype.jvp
def _(ctx, t):
    return astype(t[0], dtype=ctx.params["dtype"])


def where_(cond: Any, a: Any, b: Any):
    """gc.where(cond, a, b): cond a boolean array or Tensor (not differentiated)."""
    cond = getattr(cond, "data", cond)
    return where(a, b, cond=cond)
