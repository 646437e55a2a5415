"""Reductions and the normalizations built on them (softmax, log_softmax, logsumexp).

Axes are stored counted from the right so the rules hold when cotangents or tangents
carry leading batch axes.
"""

from __future__ import annotations

from gpuchain.engine.op import defop
from gpuchain.ops._rules import const_like
from gpuchain.ops.elementwise import exp


def _expand(g, axes, keepdims):
    """Re-insert reduced axes (negative positions) so ``g`` broadcasts against the input."""
    if keepdims or axes is None:
        return g
    shape = list(g.shape)
    for a in sorted(axes, reverse=True):
        pos = len(shape) + a + 1 if a < 0 else a
        shape.insert(pos, 1)
    return g.reshape(tuple(shape))


def _expand_full(g, in_shape, axes, keepdims):
    """``g`` (with any batch axes) broadcast to batch + in_shape."""
    core_out = len(in_shape) if keepdims else (0 if axes is None else len(in_shape) - len(axes))
    nb = g.ndim - core_out
    if axes is None and not keepdims:
        g = g.reshape(g.shape + (1,) * len(in_shape))
    else:
        g = _expand(g, axes, keepdims)
    return g.broadcast_to(g.shape[:nb] + tuple(in_shape))


def _core_axes(axes, ndim):
    return tuple(range(-ndim, 0)) if axes is None else axes


@defop("sum", save="none")
def sum(xp, x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    return xp.sum(x, axis=axis, keepdims=keepdims)


@sum.vjp
def _(ctx, g):
    p = ctx.params
    return (_expand_full(g, ctx.in_shapes[0], p["axis"], p["keepdims"]),)


@sum.jvp
def _(ctx, t):
    p = ctx.params
    return t[0].sum(axis=_core_axes(p["axis"], ctx.inputs[0].ndim), keepdims=p["keepdims"])


@defop("max", save="both")
def max(xp, x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    return xp.max(x, axis=axis, keepdims=keepdims)


def _max_weights(ctx):
    # Ties share the gradient equally (as JAX and torch.amax do), so the rule is
    # symmetric in the tied entries.
    x = ctx.inputs[0]
    p = ctx.params
    out = ctx.out.data
    if not p["keepdims"] and p["axis"] is not None:
        out = _expand(ctx.out.detach(), p["axis"], False).data
    mask = x.data == out
    count = mask.sum(axis=p["axis"], keepdims=True)
    return const_like(mask / count, x)


def _weighted_vjp(ctx, g, weights):
    """max and logsumexp are reductions whose derivative is a weighting of the inputs
    (the tied maxima; the softmax): the cotangent is spread back by those weights."""
    p = ctx.params
    return (_expand_full(g, ctx.in_shapes[0], p["axis"], p["keepdims"]) * weights,)


def _weighted_jvp(ctx, t, weights):
    p = ctx.params
    axes = _core_axes(p["axis"], ctx.inputs[0].ndim)
    return (t[0] * weights).sum(axis=axes, keepdims=p["keepdims"])


@max.vjp
def _(ctx, g):
    return _weighted_vjp(ctx, g, _max_weights(ctx))


@max.jvp
def _(ctx, t):
    return _weighted_jvp(ctx, t, _max_weights(ctx))


@defop("logsumexp", save="both")
def logsumexp(xp, x, axis=None, keepdims=False):
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = out.reshape(xp.sum(x, axis=axis, keepdims=False).shape)
    return out


def _lse_softmax(ctx):
    p = ctx.params
    out = ctx.out
    if not p["keepdims"] and p["axis"] is not None:
        out = _expand(out, p["axis"], False)
    return exp(ctx.inputs[0] - out)


@logsumexp.vjp
def _(ctx, g):
    return _weighted_vjp(ctx, g, _lse_softmax(ctx))


@logsumexp.jvp
def _(ctx, t):
    return _weighted_jvp(ctx, t, _lse_softmax(ctx))


@defop("softmax", save="output")
def softmax(xp, x, axis=-1):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


@softmax.vjp
def _(ctx, g):
    s = ctx.out
    ax = ctx.params["axis"]
    return (s * (g - (g * s).sum(axis=ax, keepdims=True)),)


@softmax.jvp
def _(ctx, t):
    s = ctx.out
    ax = ctx.params["axis"]
    return s * (t[0] - (t[0] * s).sum(axis=ax, keepdims=True))


@defop("log_softmax", save="output")
def log_softmax(xp, x, axis=-1):
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


@log_softmax.vjp
def _(ctx, g):
    ax = ctx.params["axis"]
    return (g - exp(ctx.out) * g.sum(axis=ax, keepdims=True),)


@log_softmax.jvp
def _(ctx, t):
    ax = ctx.params["axis"]
    return t[0] - (exp(ctx.out) * t[0]).sum(axis=ax, keepdims=True)
