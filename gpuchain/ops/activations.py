"""Activation functions: elementwise primitives, each with its derivative written once.

Whether an activation's derivative is read from its output (and so what the fused dense
layer saves) is its primitive's ``save`` policy: ``"output"`` means act'(z) is a function
of a = act(z).
"""

from __future__ import annotations

import math
from typing import Any

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.ops._public import as_tensor, unary
from gpuchain.ops._rules import const_like
from gpuchain.ops._special import normal_cdf
from gpuchain.ops.elementwise import erf, exp

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = 0.044715

__all__ = ["elu", "gelu", "gelu_tanh", "leaky_relu", "relu", "sigmoid", "silu", "softplus", "tanh"]


@defop("tanh", save="output", broadcasts=True)
def tanh_p(xp, x):
    return xp.tanh(x)


@tanh_p.deriv
def _(y):
    return 1 - y * y


def sigmoid_array(xp: Any, x: Any) -> Any:
    """1/(1+e^-x) on arrays, stable for large |x| (never exponentiates a positive number)."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@defop("sigmoid", save="output", broadcasts=True)
def sigmoid_p(xp, x):
    return sigmoid_array(xp, x)


@sigmoid_p.deriv
def _(y):
    return y * (1 - y)


@defop("relu", save="output", broadcasts=True)
def relu_p(xp, x):
    return xp.maximum(x, 0)


@relu_p.deriv
def _(y):
    # relu'(0) = 0, read from the output: y > 0 exactly where x > 0
    return const_like(y._data > 0, y)


@defop("leaky_relu", save="output", broadcasts=True)
def leaky_relu_p(xp, x, slope=0.01):
    return xp.where(x > 0, x, x * x.dtype.type(slope))


@leaky_relu_p.deriv
def _(y, *, slope=0.01):
    # read from the output, which has the sign of the input because slope >= 0;
    # the derivative at 0 is the negative-side slope, as for relu
    return const_like(array_module_of(y._data).where(y._data > 0, 1.0, slope), y)


@defop("gelu", broadcasts=True, residuals=True)
def gelu_p(xp, x):
    # Φ(x) is the residual: the array backward reads it instead of computing erf again
    cdf = normal_cdf(xp, x)
    return (x * cdf).astype(x.dtype, copy=False), cdf


@gelu_p.deriv
def _(x):
    # differentiable (higher orders, forward mode): Φ recomputed from x
    return 0.5 * (1 + erf(x * _INV_SQRT_2)) + x * _INV_SQRT_2PI * exp(-0.5 * x * x)


@gelu_p.raw_vjp(fresh=(0,))
def _(ctx, g):
    # g·(Φ(x) + x·φ(x)), the deriv rule's formula on arrays, with Φ(x) saved by the forward
    x, cdf = ctx.inputs[0]._data, ctx.residuals
    xp = array_module_of(x)
    t = x.dtype.type
    d = xp.multiply(x, x, out=xp.empty_like(x))
    d *= t(-0.5)
    xp.exp(d, out=d)
    d *= x
    d *= t(_INV_SQRT_2PI)
    d += cdf
    if g.shape == d.shape and g.dtype == d.dtype:
        # into g when only the engine holds it (the temporary d is then freed at once)
        return (xp.multiply(d, g, out=g if ctx.grad_owned else d),)
    return (d * g,)


@defop("gelu_tanh", broadcasts=True)
def gelu_tanh_p(xp, x):
    t = x.dtype.type
    inner = t(_SQRT_2_OVER_PI) * (x + t(_GELU_TANH_C) * x * x * x)
    return (0.5 * x * (1 + xp.tanh(inner))).astype(x.dtype, copy=False)


@gelu_tanh_p.deriv
def _(x):
    th = tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x * x * x))
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * _SQRT_2_OVER_PI * (
        1 + 3 * _GELU_TANH_C * x * x)


@defop("silu", broadcasts=True)
def silu_p(xp, x):
    return x * sigmoid_array(xp, x)


@silu_p.deriv
def _(x):
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


@defop("softplus", broadcasts=True)
def softplus_p(xp, x):
    # log(1 + e^x) as max(x, 0) + log1p(e^-|x|): never overflows
    return (xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)


@softplus_p.deriv
def _(x):
    return sigmoid(x)


@defop("elu", save="output", broadcasts=True)
def elu_p(xp, x):
    return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)))


@elu_p.deriv
def _(y):
    # 1 where x > 0, else e^x = y + 1 (read from the output)
    return const_like(y._data > 0, y) + const_like(y._data <= 0, y) * (y + 1)


tanh = unary(tanh_p, "tanh", "Hyperbolic tangent, elementwise.", "1 - tanh(x)**2")
sigmoid = unary(sigmoid_p, "sigmoid", "The logistic function 1/(1 + e**-x), elementwise.",
                "sigmoid(x)·(1 - sigmoid(x))")
relu = unary(relu_p, "relu", "max(x, 0), elementwise.", "1 where x > 0, else 0 (0 at x = 0)")
gelu = unary(gelu_p, "gelu", "x·Φ(x) with the exact normal CDF Φ, elementwise.",
             "Φ(x) + x·φ(x)")
gelu_tanh = unary(gelu_tanh_p, "gelu_tanh", "The tanh approximation of GELU, "
                  "0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), elementwise.",
                  "of that formula")
silu = unary(silu_p, "silu", "x·sigmoid(x) (swish), elementwise.",
             "s·(1 + x·(1 - s)) with s = sigmoid(x)")
elu = unary(elu_p, "elu", "x where x > 0, else e**x - 1 (ELU with alpha 1), elementwise.",
            "1 where x > 0, else e**x")
softplus = unary(softplus_p, "softplus", "log(1 + e**x), elementwise, without overflow.",
                 "sigmoid(x)")


def leaky_relu(x: Any, slope: float = 0.01) -> Tensor:
    """x where x > 0, else slope·x, elementwise.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    slope : float
        The negative-side slope, >= 0 (the derivative is read from the output).

    Returns
    -------
    Tensor
        The activation. Derivative: 1 where x > 0, else ``slope`` (``slope`` at 0).
    """
    slope = float(slope)
    if not slope >= 0:
        raise ValueError(f"leaky_relu: slope must be >= 0, got {slope}")
    return leaky_relu_p(as_tensor(x), slope=slope)
