"""Ops that move or assemble elements: reshaping, transposing, broadcasting, joining,
splitting, tiling, padding, rolling and flipping (indexing and sorting live in
:mod:`gpuchain.ops.indexing`).

The primitives are ``reshape``, ``transpose``, ``broadcast_to``, ``concatenate``,
``stack``, ``pad``, ``copy`` and ``identity``; every other public function here is
composed of them and of indexing, so it is differentiable in both modes to any order
without rules of its own.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.ops._args import as_tensor, as_tensors, index, one_axis
from gpuchain.ops.indexing import _along, _fill_missing, getitem_p, take

__all__ = [
    "array_split", "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_to", "column_stack",
    "concatenate", "copy", "dsplit", "dstack", "expand_dims", "flatten", "flip", "fliplr",
    "flipud", "hsplit", "hstack", "moveaxis", "pad", "ravel", "repeat", "reshape", "roll",
    "rot90", "split", "squeeze", "stack", "swapaxes", "tile", "transpose", "vsplit", "vstack",
]

# --- primitives ----------------------------------------------------------------------

@defop("reshape", save="none")
def reshape_p(xp, x, shape=()):
    return x.reshape(shape)


@reshape_p.vjp
def _(ctx, g):
    nb = g.ndim - len(ctx.params["shape"])
    return (reshape_p(g, shape=g.shape[:nb] + tuple(ctx.in_shapes[0])),)


@reshape_p.jvp
def _(ctx, t):
    nb = t[0].ndim - ctx.inputs[0].ndim
    return reshape_p(t[0], shape=t[0].shape[:nb] + tuple(ctx.params["shape"]))


@defop("transpose", save="none")
def transpose_p(xp, x, axes=()):
    return xp.transpose(x, axes)


def _batched_perm(perm, nb):
    return tuple(range(nb)) + tuple(nb + a for a in perm)


@transpose_p.vjp
def _(ctx, g):
    axes = ctx.params["axes"]
    inverse = tuple(int(i) for i in np.argsort(axes))
    return (transpose_p(g, axes=_batched_perm(inverse, g.ndim - len(axes))),)


@transpose_p.jvp
def _(ctx, t):
    axes = ctx.params["axes"]
    return transpose_p(t[0], axes=_batched_perm(axes, t[0].ndim - len(axes)))


@defop("broadcast_to", save="none", broadcasts=True)
def broadcast_to_p(xp, x, shape=()):
    return xp.broadcast_to(x, shape)


@broadcast_to_p.vjp
def _(ctx, g):
    return (g,)  # summing over the broadcast axes is the engine's un-broadcast step


@broadcast_to_p.jvp
def _(ctx, t):
    shape = tuple(ctx.params["shape"])
    nb = t[0].ndim - len(shape)
    return broadcast_to_p(t[0], shape=t[0].shape[:nb] + shape)


@defop("concatenate", save="none")
def concatenate_p(xp, *arrays, axis=0):
    return xp.concatenate(arrays, axis=axis)


@concatenate_p.vjp
def _(ctx, g):
    axis = ctx.params["axis"]  # negative
    grads, start = [], 0
    for shape in ctx.in_shapes:
        stop = start + shape[axis]
        index = (Ellipsis, slice(start, stop)) + (slice(None),) * (-axis - 1)
        grads.append(getitem_p(g, index=index))
        start = stop
    return tuple(grads)


@concatenate_p.jvp
def _(ctx, t):
    return concatenate_p(*_fill_missing(t, ctx.inputs), axis=ctx.params["axis"])


@defop("stack", save="none")
def stack_p(xp, *arrays, axis=0):
    return xp.stack(arrays, axis=axis)


@stack_p.vjp
def _(ctx, g):
    axis = ctx.params["axis"]  # negative, counted in the output
    tail = (slice(None),) * (-axis - 1)
    return tuple(getitem_p(g, index=(Ellipsis, k) + tail) for k in range(len(ctx.in_shapes)))


@stack_p.jvp
def _(ctx, t):
    return stack_p(*_fill_missing(t, ctx.inputs), axis=ctx.params["axis"])


@defop("pad", save="none")
def pad_p(xp, x, pad_width=(), value=0):
    """Constant padding; ``pad_width`` has one (before, after) pair per axis of ``x``."""
    return xp.pad(x, pad_width, mode="constant", constant_values=value)


@pad_p.vjp
def _(ctx, g):
    widths = ctx.params["pad_width"]
    nb = g.ndim - len(widths)
    index = (slice(None),) * nb + tuple(slice(b, b + n) for (b, _), n in
                                        zip(widths, ctx.in_shapes[0]))
    return (getitem_p(g, index=index),)


@pad_p.jvp
def _(ctx, t):
    widths = ctx.params["pad_width"]
    nb = t[0].ndim - len(widths)
    return pad_p(t[0], pad_width=((0, 0),) * nb + tuple(widths), value=0)


@defop("copy", save="none")
def copy_p(xp, x):
    return x.copy()


@copy_p.vjp
def _(ctx, g):
    return (g,)


@copy_p.jvp
def _(ctx, t):
    return t[0]


@defop("identity", save="none")
def identity(xp, x):
    """A new graph node for the same values: gives each transform argument its own node."""
    return x


@identity.vjp
def _(ctx, g):
    return (g,)


@identity.jvp
def _(ctx, t):
    return t[0]


identity_p = identity


# --- reshaping and transposing -------------------------------------------------------

def _resolve_shape(size: int, shape: Sequence[int], old: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(index(s, "shape entry", "reshape") for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: at most one -1 allowed, got {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {old} into {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size or builtins.any(s < 0 for s in shape):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {old} into {shape}")
    return shape


def reshape(a: Any, shape: int | Sequence[int]) -> Tensor:
    """``a`` with a new shape and the same elements in C order (one entry may be -1).

    Parameters
    ----------
    a : Tensor or array_like
        Input.
    shape : int or tuple of ints
        The new shape; one entry may be -1.
    """
    x = as_tensor(a)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = _resolve_shape(x.size, shape, x.shape)
    if shape == x.shape:
        return x
    return reshape_p(x, shape=shape)


def ravel(a: Any) -> Tensor:
    """The elements of ``a`` as a 1-D Tensor (C order).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    return reshape(a, (-1,))


def flatten(a: Any) -> Tensor:
    """The elements of ``a`` as a 1-D Tensor, like ``ndarray.flatten()``.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    return reshape(a, (-1,))


def transpose(a: Any, axes: Sequence[int] | None = None) -> Tensor:
    """``a`` with its axes permuted (reversed when ``axes`` is None).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axes : sequence of ints, optional
        The permutation; reversed axes when None.
    """
    x = as_tensor(a)
    n = x.ndim
    if axes is None:
        perm = tuple(range(n))[::-1]
    else:
        seq: Sequence[Any] = (axes,) if isinstance(axes, (int, np.integer)) else axes
        perm = tuple(one_axis(a, n, "transpose") + n for a in seq)
        if sorted(perm) != list(range(n)):
            raise ValueError(f"transpose: axes {tuple(seq)} are not a permutation of the "
                             f"{n} axes of a tensor of shape {x.shape}")
    if perm == tuple(range(n)):
        return x
    return transpose_p(x, axes=perm)


def moveaxis(a: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """``a`` with the axes ``source`` moved to the positions ``destination``.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    source : int or sequence of ints
        Axes to move.
    destination : int or sequence of ints
        Their positions in the result.
    """
    x = as_tensor(a)
    n = x.ndim
    src = [one_axis(s, n, "moveaxis") + n for s in np.atleast_1d(source).tolist()]
    dst = [one_axis(d, n, "moveaxis") + n for d in np.atleast_1d(destination).tolist()]
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must be "
                         "the same number of distinct axes")
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def swapaxes(a: Any, axis1: int, axis2: int) -> Tensor:
    """``a`` with axes ``axis1`` and ``axis2`` interchanged.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis1 : int
        First axis.
    axis2 : int
        Second axis.
    """
    x = as_tensor(a)
    perm = list(range(x.ndim))
    i, j = one_axis(axis1, x.ndim, "swapaxes"), one_axis(axis2, x.ndim, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(x, perm)


def broadcast_to(array: Any, shape: int | Sequence[int]) -> Tensor:
    """``array`` broadcast to ``shape`` (NumPy rules). Derivative: the cotangent summed
    over the broadcast axes.

    Parameters
    ----------
    array : Tensor or array_like
        Input.
    shape : int or tuple of ints
        The target shape.
    """
    x = as_tensor(array)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    shape = tuple(index(s, "shape entry", "broadcast_to") for s in shape)
    if shape == x.shape:
        return x
    try:
        np.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim:
            raise ValueError("fewer dimensions than the input")
    except ValueError as exc:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}: "
                         f"{exc}") from None
    return broadcast_to_p(x, shape=shape)


def squeeze(a: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    """``a`` without the given length-1 axes (all length-1 axes when ``axis`` is None).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int, tuple of ints or None
        Length-1 axes to drop; all of them when None.
    """
    x = as_tensor(a)
    n = x.ndim
    if axis is None:
        drop = {i for i, s in enumerate(x.shape) if s == 1}
    else:
        items = axis if isinstance(axis, (tuple, list)) else (axis,)
        drop = {one_axis(i, n, "squeeze") + n for i in items}
        bad = [i for i in sorted(drop) if x.shape[i] != 1]
        if bad:
            raise ValueError(f"squeeze: cannot select axes {bad} of length "
                             f"{[x.shape[i] for i in bad]} from shape {x.shape} (length 1 "
                             "needed)")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in drop))


def expand_dims(a: Any, axis: int | Sequence[int]) -> Tensor:
    """``a`` with new length-1 axes at the positions ``axis`` of the result.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or tuple of ints
        Positions of the new axes in the result.
    """
    x = as_tensor(a)
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    n = x.ndim + len(items)
    new = {one_axis(i, n, "expand_dims") + n for i in items}
    if len(new) != len(items):
        raise ValueError(f"expand_dims: repeated axis in {axis!r}")
    it = iter(x.shape)
    return reshape(x, tuple(1 if i in new else next(it) for i in range(n)))


def _atleast(arys: tuple, fn: str, lift: Any) -> Tensor | list[Tensor]:
    out = [lift(as_tensor(a)) for a in arys]
    return out[0] if len(out) == 1 else out


@overload
def atleast_1d(ary: Any, /) -> Tensor: ...


@overload
def atleast_1d(ary0: Any, ary1: Any, /, *arys: Any) -> list[Tensor]: ...


def atleast_1d(*arys: Any) -> Tensor | list[Tensor]:
    """Each input viewed with at least one dimension (a list when several are given).

    Parameters
    ----------
    arys : Tensors or array_like
        One or more inputs.
    """
    return _atleast(arys, "atleast_1d", lambda x: reshape(x, (1,)) if x.ndim == 0 else x)


@overload
def atleast_2d(ary: Any, /) -> Tensor: ...


@overload
def atleast_2d(ary0: Any, ary1: Any, /, *arys: Any) -> list[Tensor]: ...


def atleast_2d(*arys: Any) -> Tensor | list[Tensor]:
    """Each input with at least two dimensions; a 1-D input ``(n,)`` becomes ``(1, n)``.

    Parameters
    ----------
    arys : Tensors or array_like
        One or more inputs.
    """
    return _atleast(arys, "atleast_2d",
                    lambda x: reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x)


def _lift_3d(x: Tensor) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1, 1, 1))
    if x.ndim == 1:
        return reshape(x, (1, x.shape[0], 1))
    if x.ndim == 2:
        return reshape(x, x.shape + (1,))
    return x


@overload
def atleast_3d(ary: Any, /) -> Tensor: ...


@overload
def atleast_3d(ary0: Any, ary1: Any, /, *arys: Any) -> list[Tensor]: ...


def atleast_3d(*arys: Any) -> Tensor | list[Tensor]:
    """Each input with at least three dimensions: ``(n,)`` → ``(1, n, 1)``, ``(m, n)`` →
    ``(m, n, 1)``, as in NumPy.

    Parameters
    ----------
    arys : Tensors or array_like
        One or more inputs.
    """
    return _atleast(arys, "atleast_3d", _lift_3d)


def copy(a: Any) -> Tensor:
    """A copy of ``a`` in new memory (differentiable: the identity map).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    """
    return copy_p(as_tensor(a))


# --- joining and splitting -----------------------------------------------------------

def concatenate(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    """The tensors joined along an existing ``axis``.

    Parameters
    ----------
    arrays : sequence of Tensors or array_like
        The tensors to join.
    axis : int
        The axis to join along.
    """
    ts = as_tensors(*arrays)
    if not ts:
        raise ValueError("concatenate: need at least one tensor")
    if ts[0].ndim == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated")
    return concatenate_p(*ts, axis=one_axis(axis, ts[0].ndim, "concatenate"))


def stack(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new ``axis``.

    Parameters
    ----------
    arrays : sequence of Tensors or array_like
        The tensors to join.
    axis : int
        The new axis in the result.
    """
    ts = as_tensors(*arrays)
    if not ts:
        raise ValueError("stack: need at least one tensor")
    return stack_p(*ts, axis=one_axis(axis, ts[0].ndim + 1, "stack"))


def hstack(tup: Sequence[Any]) -> Tensor:
    """Join horizontally: along axis 1, or axis 0 for 1-D inputs.

    Parameters
    ----------
    tup : sequence of Tensors or array_like
        The tensors to join.
    """
    ts = [atleast_1d(t) for t in tup]
    return concatenate(ts, axis=0 if ts and ts[0].ndim == 1 else 1)


def vstack(tup: Sequence[Any]) -> Tensor:
    """Join vertically (axis 0) after :func:`atleast_2d`.

    Parameters
    ----------
    tup : sequence of Tensors or array_like
        The tensors to join.
    """
    return concatenate([atleast_2d(t) for t in tup], axis=0)


def dstack(tup: Sequence[Any]) -> Tensor:
    """Join depth-wise (axis 2) after :func:`atleast_3d`.

    Parameters
    ----------
    tup : sequence of Tensors or array_like
        The tensors to join.
    """
    return concatenate([atleast_3d(t) for t in tup], axis=2)


def column_stack(tup: Sequence[Any]) -> Tensor:
    """1-D inputs as columns (and 2-D as they are), joined along axis 1.

    Parameters
    ----------
    tup : sequence of Tensors or array_like
        The tensors to join.
    """
    ts = [as_tensor(t) for t in tup]
    return concatenate([reshape(t, (-1, 1)) if t.ndim < 2 else t for t in ts], axis=1)


def _split_points(n: int, sections: Any, fn: str, equal: bool) -> list[int]:
    if isinstance(sections, (int, np.integer)):
        k = int(sections)
        if k <= 0:
            raise ValueError(f"{fn}: number of sections must be positive, got {k}")
        if equal and n % k:
            raise ValueError(f"{fn}: an axis of length {n} does not split into {k} equal "
                             "sections (use array_split)")
        size, extra = divmod(n, k)
        bounds, start = [], 0
        for i in range(k):
            start += size + (1 if i < extra else 0)
            bounds.append(start)
        return bounds[:-1]
    return [index(p, "split index", fn) for p in sections]


def _split(a: Any, sections: Any, axis: int, fn: str, equal: bool) -> list[Tensor]:
    x = as_tensor(a)
    ax = one_axis(axis, x.ndim, fn)
    n = x.shape[ax]
    points = _split_points(n, sections, fn, equal)
    edges = [0] + points + [n]
    return [getitem_p(x, index=_along(ax, slice(lo, hi))) for lo, hi in zip(edges, edges[1:])]


def split(ary: Any, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split into equal sections (an int) or at the given indices along ``axis``.

    Parameters
    ----------
    ary : Tensor or array_like
        The tensor to split.
    indices_or_sections : int or sequence of ints
        A number of equal sections, or the indices where the axis is split.
    axis : int
        The axis to split.
    """
    return _split(ary, indices_or_sections, axis, "split", equal=True)


def array_split(ary: Any, indices_or_sections: int | Sequence[int],
                axis: int = 0) -> list[Tensor]:
    """Like :func:`split`, but ``n`` sections of an axis of length ``l`` need not divide
    it: the first ``l % n`` sections get one element more.

    Parameters
    ----------
    ary : Tensor or array_like
        The tensor to split.
    indices_or_sections : int or sequence of ints
        A number of equal sections, or the indices where the axis is split.
    axis : int
        The axis to split.
    """
    return _split(ary, indices_or_sections, axis, "array_split", equal=False)


def _split_min(ary: Any, k: Any, axis: int, ndim: int, fn: str) -> list[Tensor]:
    x = as_tensor(ary)
    if x.ndim < ndim:
        raise ValueError(f"{fn}: needs a tensor of at least {ndim} dims, got shape {x.shape}")
    return _split(x, k, axis, fn, equal=True)


def hsplit(ary: Any, indices_or_sections: int | Sequence[int]) -> list[Tensor]:
    """Split along axis 1 (axis 0 for 1-D tensors).

    Parameters
    ----------
    ary : Tensor or array_like
        The tensor to split.
    indices_or_sections : int or sequence of ints
        A number of equal sections, or the indices where the axis is split.
    """
    x = as_tensor(ary)
    return _split_min(x, indices_or_sections, 0 if x.ndim == 1 else 1, 1, "hsplit")


def vsplit(ary: Any, indices_or_sections: int | Sequence[int]) -> list[Tensor]:
    """Split along axis 0 (at least 2-D tensors).

    Parameters
    ----------
    ary : Tensor or array_like
        The tensor to split.
    indices_or_sections : int or sequence of ints
        A number of equal sections, or the indices where the axis is split.
    """
    return _split_min(ary, indices_or_sections, 0, 2, "vsplit")


def dsplit(ary: Any, indices_or_sections: int | Sequence[int]) -> list[Tensor]:
    """Split along axis 2 (at least 3-D tensors).

    Parameters
    ----------
    ary : Tensor or array_like
        The tensor to split.
    indices_or_sections : int or sequence of ints
        A number of equal sections, or the indices where the axis is split.
    """
    return _split_min(ary, indices_or_sections, 2, 3, "dsplit")


# --- tiling, padding, rolling, flipping ----------------------------------------------

def tile(A: Any, reps: int | Sequence[int]) -> Tensor:
    """``A`` repeated ``reps`` times along each axis (``np.tile``).

    Parameters
    ----------
    A : Tensor or array_like
        The tensor to tile.
    reps : int or tuple of ints
        Repetitions per axis.
    """
    x = as_tensor(A)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    reps = tuple(index(r, "reps entry", "tile") for r in reps)
    d = builtins.max(x.ndim, len(reps))
    shape = (1,) * (d - x.ndim) + x.shape
    reps = (1,) * (d - len(reps)) + reps
    inter = tuple(v for s in shape for v in (1, s))
    target = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    y = broadcast_to(reshape(x, inter), target)
    return reshape(y, tuple(r * s for r, s in zip(reps, shape)))


def repeat(a: Any, repeats: int | Sequence[int], axis: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times along ``axis`` (flattened when None).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    repeats : int or sequence of ints
        Repetitions of each element (one per element along ``axis``, or one for all).
    axis : int or None
        The axis to repeat along; None repeats the flattened input.
    """
    x = as_tensor(a)
    if axis is None:
        x, axis = ravel(x), 0
    ax = one_axis(axis, x.ndim, "repeat") + x.ndim
    reps = np.asarray(getattr(repeats, "data", repeats))
    if reps.ndim == 0 or reps.size == 1:
        r = index(reps.reshape(()).item(), "repeats", "repeat")
        if r < 0:
            raise ValueError(f"repeat: repeats must be non-negative, got {r}")
        shape = x.shape
        y = reshape(x, shape[:ax + 1] + (1,) + shape[ax + 1:])
        y = broadcast_to(y, shape[:ax + 1] + (r,) + shape[ax + 1:])
        return reshape(y, shape[:ax] + (shape[ax] * r,) + shape[ax + 1:])
    if reps.shape != (x.shape[ax],):
        raise ValueError(f"repeat: {reps.size} repeats for an axis of length {x.shape[ax]}")
    return take(x, np.repeat(np.arange(x.shape[ax]), reps), axis=ax)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad_widths(pad_width: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    w = np.asarray(pad_width)
    if w.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    try:
        w = np.broadcast_to(w, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of {ndim} "
                         "dims") from None
    if (w < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative, got {pad_width!r}")
    return tuple((int(b), int(e)) for b, e in w)


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Tensor:
    """``array`` padded with ``pad_width`` ((before, after) per axis, NumPy broadcasting).

    ``mode``: ``"constant"`` (``constant_values``, a scalar), ``"edge"``, ``"reflect"``,
    ``"symmetric"`` or ``"wrap"``. Derivative: the cotangent of the original region
    (plus, for the other modes, the cotangents of the copied border elements).

    Parameters
    ----------
    array : Tensor or array_like
        Input.
    pad_width : int or sequence
        ``(before, after)`` widths per axis, broadcast as NumPy does.
    mode : str
        ``'constant'``, ``'edge'``, ``'reflect'``, ``'symmetric'`` or ``'wrap'``.
    constant_values : scalar
        The fill value of ``'constant'`` mode.
    """
    x = as_tensor(array)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not supported; expected one of {_PAD_MODES}")
    widths = _pad_widths(pad_width, x.ndim)
    if mode == "constant":
        value = np.asarray(getattr(constant_values, "data", constant_values))
        if value.ndim:
            raise ValueError("pad: constant_values must be a scalar")
        return pad_p(x, pad_width=widths, value=value.item())
    for i, (b, e) in enumerate(widths):
        if b or e:
            n = x.shape[i]
            if n == 0:
                raise ValueError(f"pad: cannot pad an empty axis {i} in mode {mode!r}")
            # mode is one of _PAD_MODES (checked above); NumPy's stubs want a Literal
            x = take(x, np.pad(np.arange(n), (b, e), mode=mode),  # type: ignore[call-overload]
                     axis=i)
    return x


def roll(a: Any, shift: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Tensor:
    """Elements rolled by ``shift`` along ``axis`` (flattened and restored when None).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    shift : int or tuple of ints
        Number of places to roll (per axis).
    axis : int, tuple of ints or None
        The axes to roll along; None rolls the flattened input.
    """
    x = as_tensor(a)
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), x.shape)
    shifts, axes_ = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    for s, ax in zip(shifts.ravel().tolist(), axes_.ravel().tolist()):
        ax = one_axis(ax, x.ndim, "roll")
        n = x.shape[ax]
        s = s % n if n else 0
        if s:
            x = concatenate([getitem_p(x, index=_along(ax, slice(n - s, n))),
                             getitem_p(x, index=_along(ax, slice(0, n - s)))], axis=ax)
    return x


def flip(m: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    """``m`` with the order of elements reversed along ``axis`` (all axes when None).

    Parameters
    ----------
    m : Tensor or array_like
        Input.
    axis : int, tuple of ints or None
        Axes to reverse; every axis when None.
    """
    x = as_tensor(m)
    n = x.ndim
    if axis is None:
        rev = set(range(n))
    else:
        items = axis if isinstance(axis, (tuple, list)) else (axis,)
        rev = {one_axis(i, n, "flip") + n for i in items}
    if not rev:
        return x
    return getitem_p(x, index=tuple(slice(None, None, -1) if i in rev else slice(None)
                                    for i in range(n)))


def fliplr(m: Any) -> Tensor:
    """Reverse along axis 1 (needs at least 2-D).

    Parameters
    ----------
    m : Tensor or array_like
        Input.
    """
    x = as_tensor(m)
    if x.ndim < 2:
        raise ValueError(f"fliplr: needs at least 2 dims, got shape {x.shape}")
    return flip(x, 1)


def flipud(m: Any) -> Tensor:
    """Reverse along axis 0 (needs at least 1-D).

    Parameters
    ----------
    m : Tensor or array_like
        Input.
    """
    x = as_tensor(m)
    if x.ndim < 1:
        raise ValueError("flipud: needs at least 1 dim, got a 0-d tensor")
    return flip(x, 0)


def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Tensor:
    """``m`` rotated by 90° ``k`` times in the plane of ``axes`` (from the first axis
    towards the second), as ``np.rot90``.

    Parameters
    ----------
    m : Tensor or array_like
        Input.
    k : int
        Number of quarter turns.
    axes : pair of ints
        The plane of the rotation.
    """
    x = as_tensor(m)
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must be two axes, got {axes}")
    a0, a1 = (one_axis(a, x.ndim, "rot90") + x.ndim for a in axes)
    if a0 == a1:
        raise ValueError(f"rot90: axes must differ, got {axes}")
    k = index(k, "k", "rot90") % 4
    if k == 0:
        return x
    if k == 2:
        return flip(x, (a0, a1))
    perm = list(range(x.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return transpose(flip(x, a1), perm)
    return flip(transpose(x, perm), a1)
