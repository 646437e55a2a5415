"""Ops that move or select elements: reshape, transpose, broadcast_to, indexing,
concatenate and stack."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.ops._rules import const_like


@defop("reshape", save="none")
def reshape(xp, x, shape=()):
    return x.reshape(shape)


@reshape.vjp
def _(ctx, g):
    nb = g.ndim - len(ctx.params["shape"])
    return (g.reshape(g.shape[:nb] + tuple(ctx.in_shapes[0])),)


@reshape.jvp
def _(ctx, t):
    nb = t[0].ndim - ctx.inputs[0].ndim
    return t[0].reshape(t[0].shape[:nb] + tuple(ctx.params["shape"]))


@defop("transpose", save="none")
def transpose(xp, x, axes=()):
    return xp.transpose(x, axes)


def _batched_perm(perm, nb):
    return tuple(range(nb)) + tuple(nb + a for a in perm)


@transpose.vjp
def _(ctx, g):
    axes = ctx.params["axes"]
    inverse = tuple(int(i) for i in np.argsort(axes))
    return (transpose(g, axes=_batched_perm(inverse, g.ndim - len(axes))),)


@transpose.jvp
def _(ctx, t):
    axes = ctx.params["axes"]
    return transpose(t[0], axes=_batched_perm(axes, t[0].ndim - len(axes)))


@defop("broadcast_to", save="none", elementwise=True)
def broadcast_to(xp, x, shape=()):
    return xp.broadcast_to(x, shape)


@broadcast_to.vjp
def _(ctx, g):
    return (g,)  # summing over the broadcast axes is the engine's un-broadcast step


@broadcast_to.jvp
def _(ctx, t):
    shape = tuple(ctx.params["shape"])
    nb = t[0].ndim - len(shape)
    return t[0].broadcast_to(t[0].shape[:nb] + shape)


def _has_advanced(index: tuple) -> bool:
    return any(not isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis)))
               for i in index)


def _batched_index(index: tuple, nb: int) -> tuple:
    if nb == 0:
        return index
    if _has_advanced(index):
        positions = [k for k, i in enumerate(index)
                     if not isinstance(i, (slice, type(None), type(Ellipsis)))]
        if positions != list(range(positions[0], positions[-1] + 1)):
            raise NotImplementedError(
                "getitem: batched (vectorized) differentiation of an index whose array "
                "indices are separated by slices is not supported; index in two steps")
    return (slice(None),) * nb + index


@defop("getitem", save="none")
def getitem(xp, x, index=()):
    return x[index]


@getitem.vjp
def _(ctx, g):
    index = ctx.params["index"]
    in_shape = tuple(ctx.in_shapes[0])
    nb = g.ndim - _core_ndim(in_shape, index)
    return (scatter_add(g, index=_batched_index(index, nb), shape=g.shape[:nb] + in_shape),)


@getitem.jvp
def _(ctx, t):
    nb = t[0].ndim - ctx.inputs[0].ndim
    return getitem(t[0], index=_batched_index(ctx.params["index"], nb))


def _core_ndim(in_shape: tuple[int, ...], index: tuple) -> int:
    return np.empty(in_shape, dtype=np.bool_)[_host_index(index)].ndim


def _host_index(index: tuple) -> tuple:
    return tuple(i.get() if hasattr(i, "get") else i for i in index)  # CuPy index arrays


@defop("scatter_add", save="none")
def scatter_add(xp, g, index=(), shape=()):
    """zeros(shape) with g added at ``index`` (repeated indices accumulate): the adjoint
    of getitem."""
    out = xp.zeros(shape, dtype=g.dtype)
    if _has_advanced(index):
        if xp is np:
            np.add.at(out, index, g)
        else:
            import cupyx

            cupyx.scatter_add(out, index, g)
    else:
        out[index] = g
    return out


@scatter_add.vjp
def _(ctx, g):
    shape = ctx.params["shape"]
    nb = g.ndim - len(shape)
    return (getitem(g, index=_batched_index(ctx.params["index"], nb)),)


@scatter_add.jvp
def _(ctx, t):
    shape = tuple(ctx.params["shape"])
    nb = t[0].ndim - ctx.inputs[0].ndim
    return scatter_add(t[0], index=_batched_index(ctx.params["index"], nb),
                       shape=t[0].shape[:nb] + shape)


@defop("concatenate", save="none")
def concatenate(xp, *arrays, axis=0):
    return xp.concatenate(arrays, axis=axis)


@concatenate.vjp
def _(ctx, g):
    axis = ctx.params["axis"]  # negative
    grads, start = [], 0
    for shape in ctx.in_shapes:
        stop = start + shape[axis]
        index = (Ellipsis, slice(start, stop)) + (slice(None),) * (-axis - 1)
        grads.append(getitem(g, index=index))
        start = stop
    return tuple(grads)


def _fill_missing(tangents: list, inputs: tuple) -> list:
    """Zero tangents for inputs without one, with the batch axes of those that have one."""
    k = next(i for i, t in enumerate(tangents) if t is not None)
    present, ref = tangents[k], inputs[k]
    batch = present.shape[:present.ndim - ref.ndim]
    out = []
    for tan, x in zip(tangents, inputs):
        if tan is None:
            xp = array_module_of(x.data)
            tan = const_like(xp.zeros(batch + x.shape, dtype=x.dtype), x)
        out.append(tan)
    return out


@concatenate.jvp
def _(ctx, t):
    return concatenate(*_fill_missing(t, ctx.inputs), axis=ctx.params["axis"])


@defop("stack", save="none")
def stack(xp, *arrays, axis=0):
    return xp.stack(arrays, axis=axis)


@stack.vjp
def _(ctx, g):
    axis = ctx.params["axis"]  # negative, counted in the output
    tail = (slice(None),) * (-axis - 1)
    return tuple(getitem(g, index=(Ellipsis, k) + tail) for k in range(len(ctx.in_shapes)))


@stack.jvp
def _(ctx, t):
    return stack(*_fill_missing(t, ctx.inputs), axis=ctx.params["axis"])


def normalize_index(index: Any) -> tuple:
    """A tuple index with Tensors replaced by their arrays and lists by arrays."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if getattr(i, "_is_tensor", False):
            i = i.data
        elif isinstance(i, list):
            i = np.asarray(i)
        out.append(i)
    return tuple(out)


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
