"""Reductions, scans and the normalizations built on them.

Primitives (registry names ``sum``, ``max``, ``min``, ``logsumexp``, ``softmax``,
``log_softmax``, ``cumsum``) store their axes counted from the right, so the rules hold
when cotangents or tangents carry leading batch axes. ``prod`` and ``cumprod`` are
composed of multiplications (a pairwise tree and a Hillis–Steele scan), so their
derivatives are exact where inputs are zero and exist to any order.

Every public function takes NumPy's arguments; a list of Tensors given where an array is
expected is stacked first (``gc.mean([x, y])``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.ops._args import all_axes, as_tensor, axes, one_axis
from gpuchain.ops._rules import const_like

__all__ = [
    "all", "any", "argmax", "argmin", "average", "cumprod", "cumsum", "log_softmax",
    "logsumexp", "max", "mean", "min", "prod", "softmax", "std", "sum", "var",
]


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


def _reduced_shape(shape, axis, keepdims):
    core = all_axes(axis, len(shape))
    n = len(shape)
    if keepdims:
        return tuple(1 if i - n in core else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i - n not in core)


def _count(shape, axis):
    n = len(shape)
    return math.prod(shape[a + n] for a in all_axes(axis, n))


# --- primitives ----------------------------------------------------------------------

@defop("sum", save="none")
def sum_p(xp, x, axis=None, keepdims=False):
    return xp.sum(x, axis=axis, keepdims=keepdims)


@sum_p.vjp
def _(ctx, g):
    p = ctx.params
    return (_expand_full(g, ctx.in_shapes[0], p["axis"], p["keepdims"]),)


@sum_p.jvp
def _(ctx, t):
    p = ctx.params
    return sum_p(t[0], axis=all_axes(p["axis"], ctx.inputs[0].ndim), keepdims=p["keepdims"])


@defop("max", save="both")
def max_p(xp, x, axis=None, keepdims=False):
    return xp.max(x, axis=axis, keepdims=keepdims)


@defop("min", save="both")
def min_p(xp, x, axis=None, keepdims=False):
    return xp.min(x, axis=axis, keepdims=keepdims)


def _extreme_weights(ctx):
    # Ties share the gradient equally (as JAX and torch.amax do), so the rule is
    # symmetric in the tied entries.
    x = ctx.inputs[0]
    p = ctx.params
    out = ctx.out._data
    if not p["keepdims"] and p["axis"] is not None:
        out = _expand(ctx.out.detach(), p["axis"], False)._data
    mask = x._data == out
    count = mask.sum(axis=p["axis"], keepdims=True)
    return const_like(mask / count, x)


def _weighted_vjp(ctx, g, weights):
    """max, min and logsumexp are reductions whose derivative is a weighting of the
    inputs (the tied extremes; the softmax): the cotangent is spread back by it."""
    p = ctx.params
    return (_expand_full(g, ctx.in_shapes[0], p["axis"], p["keepdims"]) * weights,)


def _weighted_jvp(ctx, t, weights):
    p = ctx.params
    return sum_p(t[0] * weights, axis=all_axes(p["axis"], ctx.inputs[0].ndim),
                 keepdims=p["keepdims"])


for _extreme in (max_p, min_p):
    _extreme.vjp(lambda ctx, g: _weighted_vjp(ctx, g, _extreme_weights(ctx)))
    _extreme.jvp(lambda ctx, t: _weighted_jvp(ctx, t, _extreme_weights(ctx)))
del _extreme


@defop("logsumexp", save="both")
def logsumexp_p(xp, x, axis=None, keepdims=False):
    shape = _reduced_shape(x.shape, axis, keepdims)
    if _count(x.shape, axis) == 0:  # an empty sum: log 0 = -inf, as NumPy and PyTorch
        return xp.full(shape, -np.inf, dtype=x.dtype)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out.reshape(shape)


def _lse_softmax(ctx):
    from gpuchain.ops.elementwise import exp

    p = ctx.params
    out = ctx.out
    if not p["keepdims"] and p["axis"] is not None:
        out = _expand(out, p["axis"], False)
    return exp(ctx.inputs[0] - out)


@logsumexp_p.vjp
def _(ctx, g):
    return _weighted_vjp(ctx, g, _lse_softmax(ctx))


@logsumexp_p.jvp
def _(ctx, t):
    return _weighted_jvp(ctx, t, _lse_softmax(ctx))


@defop("softmax", save="output")
def softmax_p(xp, x, axis=-1):
    if x.shape[axis] == 0:
        return x.copy()
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


@softmax_p.vjp
def _(ctx, g):
    s = ctx.out
    ax = ctx.params["axis"]
    return (s * (g - sum_p(g * s, axis=(ax,), keepdims=True)),)


@softmax_p.jvp
def _(ctx, t):
    s = ctx.out
    ax = ctx.params["axis"]
    return s * (t[0] - sum_p(t[0] * s, axis=(ax,), keepdims=True))


@defop("log_softmax", save="output")
def log_softmax_p(xp, x, axis=-1):
    if x.shape[axis] == 0:
        return x.copy()
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


@log_softmax_p.vjp
def _(ctx, g):
    from gpuchain.ops.elementwise import exp

    ax = ctx.params["axis"]
    return (g - exp(ctx.out) * sum_p(g, axis=(ax,), keepdims=True),)


@log_softmax_p.jvp
def _(ctx, t):
    from gpuchain.ops.elementwise import exp

    ax = ctx.params["axis"]
    return t[0] - sum_p(exp(ctx.out) * t[0], axis=(ax,), keepdims=True)


_SCAN_BLOCK = 32
_TRIANGLES: dict = {}


def _blocked_cumsum(x, axis, reverse):
    """NumPy's (reversed) cumsum of a floating array as a blocked scan: sums within
    blocks of 32 by one GEMM with a triangular matrix, then each block's running offset
    added. About twice as fast as ``np.cumsum``'s sequential loop, with a smaller
    rounding error; the reversed scan needs no flipped copies."""
    b = _SCAN_BLOCK
    y = np.moveaxis(x, axis, -1)
    n = y.shape[-1]
    m = -(-n // b)
    if m * b != n:
        y = np.concatenate([y, np.zeros(y.shape[:-1] + (m * b - n,), dtype=y.dtype)], axis=-1)
    key = (y.dtype, reverse)
    if key not in _TRIANGLES:
        ones = np.ones((b, b), dtype=y.dtype)
        _TRIANGLES[key] = np.tril(ones) if reverse else np.triu(ones)
    within = (np.ascontiguousarray(y).reshape(-1, b) @ _TRIANGLES[key]).reshape(-1, m, b)
    totals = within[:, :, 0] if reverse else within[:, :, -1]
    if reverse:
        offsets = np.cumsum(totals[:, ::-1], axis=-1)[:, ::-1] - totals
    else:
        offsets = np.cumsum(totals, axis=-1) - totals
    within += offsets[:, :, None]
    return np.moveaxis(within.reshape(y.shape)[..., :n], -1, axis)


@defop("cumsum", save="none")
def cumsum_p(xp, x, axis=-1, reverse=False):
    """Cumulative sum along ``axis``; from the end when ``reverse`` (the adjoint)."""
    if xp is np and x.dtype.kind == "f" and x.shape[axis] >= 2 * _SCAN_BLOCK and x.size:
        return _blocked_cumsum(x, axis, reverse)
    if reverse:
        return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis), axis)
    return xp.cumsum(x, axis=axis)


@cumsum_p.vjp
def _(ctx, g):
    p = ctx.params
    return (cumsum_p(g, axis=p["axis"], reverse=not p.get("reverse", False)),)


@cumsum_p.jvp
def _(ctx, t):
    p = ctx.params
    return cumsum_p(t[0], axis=p["axis"], reverse=p.get("reverse", False))


# --- public functions ----------------------------------------------------------------

def _input(a: Any, dtype: Any) -> Tensor:
    x = as_tensor(a)
    if dtype is not None and np.dtype(dtype) != x.dtype:
        x = x.astype(dtype)
    return x


def sum(a: Any, axis: int | tuple[int, ...] | None = None, dtype: Any = None,  # noqa: A001
        keepdims: bool = False) -> Tensor:
    """Sum of the elements over the given axes.

    Parameters
    ----------
    a : Tensor or array_like
        The input; a list of Tensors is stacked first.
    axis : int, tuple of ints or None
        Axes to sum over; None sums every element.
    dtype : dtype, optional
        Cast the input to this dtype first.
    keepdims : bool
        Keep the reduced axes with length 1.

    Returns
    -------
    Tensor
        The sums; derivative: the cotangent broadcast back over the summed axes.
    """
    x = _input(a, dtype)
    return sum_p(x, axis=axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(a: Any, axis: int | tuple[int, ...] | None = None, dtype: Any = None,
         keepdims: bool = False) -> Tensor:
    """Arithmetic mean over the given axes (the sum divided by the element count).

    Arguments as for :func:`sum`. Integer inputs give a floating result, as in NumPy.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    dtype : dtype, optional
        Cast the input to this dtype first.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = _input(a, dtype)
    ax = axes(axis, x.ndim, "mean")
    return sum_p(x, axis=ax, keepdims=keepdims) / _count(x.shape, ax)


def max(a: Any, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        keepdims: bool = False) -> Tensor:
    """Maximum over the given axes.

    Derivative convention: tied maxima share the cotangent equally (as ``torch.amax``
    and JAX), so the gradient is symmetric in the tied entries.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = as_tensor(a)
    return max_p(x, axis=axes(axis, x.ndim, "max"), keepdims=keepdims)


def min(a: Any, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        keepdims: bool = False) -> Tensor:
    """Minimum over the given axes; tied minima share the cotangent equally.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = as_tensor(a)
    return min_p(x, axis=axes(axis, x.ndim, "min"), keepdims=keepdims)


def logsumexp(a: Any, axis: int | tuple[int, ...] | None = None,
              keepdims: bool = False) -> Tensor:
    """``log(sum(exp(a), axis))`` computed without overflow.

    A reduction over zero elements gives ``-inf`` (the log of an empty sum), as
    ``scipy.special.logsumexp`` and ``torch.logsumexp`` do. Derivative: ``softmax(a)``.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = as_tensor(a)
    return logsumexp_p(x, axis=axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x), axis)`` along one axis; an empty axis gives an empty result.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    axis : int
        The axis normalized over.
    """
    x = as_tensor(x)
    return softmax_p(x, axis=one_axis(axis, x.ndim, "softmax"))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """``x - logsumexp(x, axis, keepdims=True)``, computed stably along one axis.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    axis : int
        The axis normalized over.
    """
    x = as_tensor(x)
    return log_softmax_p(x, axis=one_axis(axis, x.ndim, "log_softmax"))


def _to_last(x: Tensor, ax: tuple[int, ...]) -> tuple[Tensor, tuple[int, ...]]:
    """``x`` with the axes ``ax`` moved to the end and merged into one; also the shape
    of the kept axes."""
    from gpuchain.ops.shape import reshape, transpose

    n = x.ndim
    kept = [i for i in range(n) if i - n not in ax]
    moved = [a + n for a in ax]
    kept_shape = tuple(x.shape[i] for i in kept)
    if kept + moved != list(range(n)):
        x = transpose(x, kept + moved)
    return reshape(x, kept_shape + (_count(x.shape[len(kept):], None),)), kept_shape


def _ones(shape: tuple[int, ...], like: Tensor) -> Tensor:
    return const_like(array_module_of(like._data).ones(shape, dtype=like.dtype), like)


def prod(a: Any, axis: int | tuple[int, ...] | None = None, dtype: Any = None,
         keepdims: bool = False) -> Tensor:
    """Product of the elements over the given axes.

    Computed as a pairwise tree of multiplications, so the derivative is exact where
    elements are zero (the product of the others), and exists to any order.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    dtype : dtype, optional
        Cast the input to this dtype first.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    from gpuchain.ops.shape import concatenate, reshape

    x = _input(a, dtype)
    ax = all_axes(axes(axis, x.ndim, "prod"), x.ndim)
    y, kept_shape = _to_last(x, ax)
    if y.shape[-1] == 0:
        y = _ones(kept_shape + (1,), y)
    while y.shape[-1] > 1:
        if y.shape[-1] % 2:
            y = concatenate([y, _ones(kept_shape + (1,), y)], axis=-1)
        y = y[..., 0::2] * y[..., 1::2]
    return reshape(y, _reduced_shape(x.shape, ax, keepdims))


def _scan_input(a: Any, axis: Any, dtype: Any, fn: str) -> tuple[Tensor, int]:
    from gpuchain.ops.shape import reshape

    x = _input(a, dtype)
    if axis is None:
        return reshape(x, (-1,)), -1
    return x, one_axis(axis, x.ndim, fn)


def cumsum(a: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Cumulative sum along ``axis`` (of the flattened input when ``axis`` is None).

    Derivative: the reversed cumulative sum of the cotangent.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or None
        The axis of the scan; None scans the flattened input.
    dtype : dtype, optional
        Cast the input to this dtype first.
    """
    x, ax = _scan_input(a, axis, dtype, "cumsum")
    return cumsum_p(x, axis=ax)


def cumprod(a: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Cumulative product along ``axis`` (of the flattened input when ``axis`` is None).

    Computed as a Hillis–Steele scan of multiplications (log2 n steps), so derivatives
    are exact at zeros and exist to any order.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or None
        The axis of the scan; None scans the flattened input.
    dtype : dtype, optional
        Cast the input to this dtype first.
    """
    from gpuchain.ops.shape import concatenate

    x, ax = _scan_input(a, axis, dtype, "cumprod")
    n = x.shape[ax]
    tail = (slice(None),) * (-ax - 1)
    shift = 1
    while shift < n:
        ones_shape = x.shape[:x.ndim + ax] + (shift,) + x.shape[x.ndim + ax + 1:]
        shifted = concatenate([_ones(ones_shape, x), x[(Ellipsis, slice(0, n - shift)) + tail]],
                              axis=ax)
        x = x * shifted
        shift *= 2
    return x


def var(a: Any, axis: int | tuple[int, ...] | None = None, dtype: Any = None,
        ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance ``sum((a - mean(a))**2) / (N - ddof)`` over the given axes.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    dtype : dtype, optional
        Cast the input to this dtype first.
    ddof : int
        Delta degrees of freedom: the divisor is ``N - ddof``.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = _input(a, dtype)
    ax = axes(axis, x.ndim, "var")
    d = x - mean(x, axis=ax, keepdims=True)
    return sum_p(d * d, axis=ax, keepdims=keepdims) / (_count(x.shape, ax) - ddof)


def std(a: Any, axis: int | tuple[int, ...] | None = None, dtype: Any = None,
        ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Standard deviation, the square root of :func:`var` (same arguments).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    dtype : dtype, optional
        Cast the input to this dtype first.
    ddof : int
        Delta degrees of freedom: the divisor is ``N - ddof``.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    from gpuchain.ops.elementwise import sqrt

    return sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def average(a: Any, axis: int | tuple[int, ...] | None = None, weights: Any = None,
            returned: bool = False, keepdims: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Weighted average ``sum(a * w) / sum(w)`` over the given axes (differentiable in
    both ``a`` and ``weights``); without weights, the mean.

    ``weights`` has ``a``'s shape, or is 1-D along a single ``axis``. With
    ``returned=True`` the sum of the weights is returned too.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    weights : Tensor or array_like, optional
        Weights, of ``a``'s shape or 1-D along a single ``axis``.
    returned : bool
        Also return the sum of the weights.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    from gpuchain.ops.shape import broadcast_to, reshape

    x = as_tensor(a)
    if weights is None:
        avg = mean(x, axis=axis, keepdims=keepdims)
        total = const_like(np.full(avg.shape, _count(x.shape, axes(axis, x.ndim, "average"))),
                           avg)
        return (avg, total) if returned else avg
    w = as_tensor(weights)
    if w.shape != x.shape:
        if axis is None or w.ndim != 1 or isinstance(axis, (tuple, list)):
            raise ValueError(f"average: weights of shape {w.shape} differ from a's {x.shape}; "
                             "1-D weights need a single axis")
        one = one_axis(axis, x.ndim, "average")
        if w.shape[0] != x.shape[one]:
            raise ValueError(f"average: {w.shape[0]} weights for an axis of length "
                             f"{x.shape[one]}")
        w = reshape(w, (w.shape[0],) + (1,) * (-one - 1))
    ax = axes(axis, x.ndim, "average")
    total = sum_p(broadcast_to(w, x.shape), axis=ax, keepdims=keepdims)
    avg = sum_p(x * w, axis=ax, keepdims=keepdims) / total
    return (avg, total) if returned else avg


def _no_grad_result(fn: str, a: Any, **kwargs: Any) -> Tensor:
    x = as_tensor(a)
    xp = array_module_of(x._data)
    return Tensor._from_op(xp.asarray(getattr(xp, fn)(x._data, **kwargs)), None)


def argmax(a: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Indices of the maxima along ``axis`` (of the flattened input when None); the
    first occurrence wins ties. Not differentiable: the result does not require grad.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or None
        The axis to search; None searches the flattened input.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    return _no_grad_result("argmax", a, axis=axis, keepdims=keepdims)


def argmin(a: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Indices of the minima along ``axis``; not differentiable (see :func:`argmax`).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or None
        The axis to search; None searches the flattened input.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    return _no_grad_result("argmin", a, axis=axis, keepdims=keepdims)


def all(a: Any, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        keepdims: bool = False) -> Tensor:
    """Whether every element along the axes is true; a boolean Tensor without grad.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = as_tensor(a)
    return _no_grad_result("all", x, axis=axes(axis, x.ndim, "all"), keepdims=keepdims)


def any(a: Any, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        keepdims: bool = False) -> Tensor:
    """Whether any element along the axes is true; a boolean Tensor without grad.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        The axes to reduce; None reduces every axis.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    x = as_tensor(a)
    return _no_grad_result("any", x, axis=axes(axis, x.ndim, "any"), keepdims=keepdims)
