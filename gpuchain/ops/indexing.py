"""Indexing: reading (``getitem``, ``take``, ``take_along_axis``), out-of-place writing
(``index_update``, ``put_along_axis``, ``At(x)[i].set/add``) and sorting.

The primitives are ``getitem``, its adjoint ``scatter_add`` (repeated indices
accumulate) and ``index_update``; ``take``, ``take_along_axis``, ``put_along_axis`` and
``sort`` are built on them, so every one is differentiable in both modes to any order.
``argsort`` gives indices and no gradient.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.ops._args import as_tensor, as_tensors, one_axis
from gpuchain.ops._rules import const_like

__all__ = [
    "argsort", "getitem", "index_update", "put_along_axis", "sort", "take",
    "take_along_axis",
]


def _has_advanced(index: tuple) -> bool:
    return builtins.any(
        not isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) for i in index)


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


def _device_index(xp: Any, index: tuple) -> tuple:
    """Index arrays on the indexed array's device (rules and callers build them with
    NumPy)."""
    if xp is np:
        return index
    return tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)


@defop("getitem", save="none")
def getitem_p(xp, x, index=()):
    return x[_device_index(xp, index)]


@getitem_p.vjp
def _(ctx, g):
    index = ctx.params["index"]
    in_shape = tuple(ctx.in_shapes[0])
    nb = g.ndim - _core_ndim(in_shape, index)
    return (scatter_add_p(g, index=_batched_index(index, nb), shape=g.shape[:nb] + in_shape),)


@getitem_p.jvp
def _(ctx, t):
    nb = t[0].ndim - ctx.inputs[0].ndim
    return getitem_p(t[0], index=_batched_index(ctx.params["index"], nb))


def _core_ndim(in_shape: tuple[int, ...], index: tuple) -> int:
    return np.empty(in_shape, dtype=np.bool_)[_host_index(index)].ndim


def _host_index(index: tuple) -> tuple:
    return tuple(i.get() if hasattr(i, "get") else i for i in index)  # CuPy index arrays


@defop("scatter_add", save="none")
def scatter_add_p(xp, g, index=(), shape=()):
    """zeros(shape) with g added at ``index`` (repeated indices accumulate): the adjoint
    of getitem."""
    out = xp.zeros(shape, dtype=g.dtype)
    index = _device_index(xp, index)
    if _has_advanced(index):
        if xp is np:
            np.add.at(out, index, g)
        else:
            import cupyx

            cupyx.scatter_add(out, index, g)
    else:
        out[index] = g
    return out


@scatter_add_p.vjp
def _(ctx, g):
    shape = ctx.params["shape"]
    nb = g.ndim - len(shape)
    return (getitem_p(g, index=_batched_index(ctx.params["index"], nb)),)


@scatter_add_p.jvp
def _(ctx, t):
    shape = tuple(ctx.params["shape"])
    nb = t[0].ndim - ctx.inputs[0].ndim
    return scatter_add_p(t[0], index=_batched_index(ctx.params["index"], nb),
                         shape=t[0].shape[:nb] + shape)


@defop("index_update", save="none")
def index_update_p(xp, x, v, index=()):
    """A copy of ``x`` with ``x[index] = v`` (``v`` already has ``x[index]``'s shape)."""
    out = x.copy()
    out[_device_index(xp, index)] = v
    return out


def _zeros_const(shape: tuple[int, ...], like: Tensor) -> Tensor:
    return const_like(array_module_of(like._data).zeros(shape, dtype=like.dtype), like)


@index_update_p.vjp
def _(ctx, g):
    nb = g.ndim - len(ctx.in_shapes[0])
    index = _batched_index(ctx.params["index"], nb)
    gv = getitem_p(g, index=index) if ctx.needs_grad(1) else None
    gx = None
    if ctx.needs_grad(0):
        hole = getitem_p(g.detach(), index=index)
        gx = index_update_p(g, _zeros_const(hole.shape, g), index=index)
    return gx, gv


@index_update_p.jvp
def _(ctx, t):
    tx, tv = _fill_missing(t, ctx.inputs)
    nb = tx.ndim - ctx.inputs[0].ndim
    return index_update_p(tx, tv, index=_batched_index(ctx.params["index"], nb))


def _fill_missing(tangents: list, inputs: tuple) -> list:
    """Zero tangents for inputs without one, with the batch axes of those that have one."""
    k = next(i for i, t in enumerate(tangents) if t is not None)
    present, ref = tangents[k], inputs[k]
    batch = present.shape[:present.ndim - ref.ndim]
    return [_zeros_const(batch + x.shape, x) if tan is None else tan
            for tan, x in zip(tangents, inputs)]


# --- public functions ----------------------------------------------------------------

def normalize_index(index: Any) -> tuple:
    """A tuple index with Tensors replaced by their arrays and lists by arrays.

    Parameters
    ----------
    index : index
        A NumPy index: ints, slices, None, Ellipsis, integer or boolean arrays (Tensors allowed).
    """
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if getattr(i, "_is_tensor", False):
            i = i._data
        elif isinstance(i, list):
            i = np.asarray(i)
        out.append(i)
    return tuple(out)


def getitem(a: Any, index: Any) -> Tensor:
    """``a[index]`` with NumPy's basic and advanced indexing. Derivative: the cotangent
    added back at the indexed positions (repeated indices accumulate).

    Parameters
    ----------
    a : Tensor or array_like
        The tensor indexed.
    index : index
        A NumPy index: ints, slices, None, Ellipsis, integer or boolean arrays (Tensors allowed).
    """
    return getitem_p(as_tensor(a), index=normalize_index(index))


def index_update(x: Any, index: Any, values: Any) -> Tensor:
    """A copy of ``x`` with ``x[index] = values`` (out of place; ``x`` is unchanged).

    Differentiable in both ``x`` (the cotangent with zeros at the assigned positions) and
    ``values`` (the cotangent read at those positions, summed over broadcasting). With
    repeated array indices NumPy keeps one of the writes; which one, and hence the
    derivative with respect to ``values``, is then unspecified (as in JAX).

    Parameters
    ----------
    x : Tensor or array_like
        The tensor to update (left unchanged).
    index : index
        Where to write (NumPy indexing).
    values : Tensor or array_like
        The new values, broadcast to ``x[index]``'s shape.
    """
    from gpuchain.ops.shape import broadcast_to

    x, v = as_tensors(x, values)
    idx = normalize_index(index)
    target = np.empty(x.shape, dtype=np.bool_)[_host_index(idx)].shape
    if v.shape != target:
        v = broadcast_to(v, target)
    if v.dtype != x.dtype:
        v = v.astype(x.dtype)
    return index_update_p(x, v, index=idx)


class At:
    """JAX-style out-of-place updates: ``At(x)[idx].set(v)``, ``.add(v)``, ``.get()``.

    ``Tensor.at`` returns one, so ``x.at[0, 1:].set(0.0)`` reads as in JAX.
    """

    __slots__ = ("_x",)

    def __init__(self, x: Any) -> None:
        self._x = as_tensor(x)

    def __getitem__(self, index: Any) -> _AtIndex:
        return _AtIndex(self._x, index)


class _AtIndex:
    __slots__ = ("_x", "_index")

    def __init__(self, x: Tensor, index: Any) -> None:
        self._x = x
        self._index = index

    def get(self) -> Tensor:
        """``x[idx]``."""
        return getitem(self._x, self._index)

    def set(self, values: Any) -> Tensor:
        """A copy of ``x`` with ``x[idx] = values`` (see :func:`index_update`)."""
        return index_update(self._x, self._index, values)

    def add(self, values: Any) -> Tensor:
        """A copy of ``x`` with ``values`` added at ``idx`` (repeated indices accumulate)."""
        from gpuchain.ops.shape import broadcast_to

        x, v = as_tensors(self._x, values)
        idx = normalize_index(self._index)
        target = np.empty(x.shape, dtype=np.bool_)[_host_index(idx)].shape
        return x + scatter_add_p(broadcast_to(v.astype(x.dtype), target), index=idx,
                                 shape=x.shape)


def _along(axis: int, item: Any) -> tuple:
    return (Ellipsis, item) + (slice(None),) * (-axis - 1)


def take(a: Any, indices: Any, axis: int | None = None) -> Tensor:
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened ``a`` when None).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    indices : int or array_like of ints
        Indices to take (negative ones count from the end).
    axis : int or None
        The axis to index; None indexes the flattened input.
    """
    from gpuchain.ops.shape import ravel

    x = as_tensor(a)
    if axis is None:
        x, axis = ravel(x), 0
    ax = one_axis(axis, x.ndim, "take")
    idx = normalize_index(indices)[0]
    return getitem_p(x, index=_along(ax, idx))


def _along_axis_index(shape: tuple[int, ...], indices: Any, axis: int, fn: str) -> tuple:
    idx = np.asarray(getattr(indices, "data", indices))
    if hasattr(idx, "get"):
        idx = idx.get()
    if idx.ndim != len(shape):
        raise ValueError(f"{fn}: indices of {idx.ndim} dims for an array of {len(shape)} "
                         "dims (they must match)")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: indices must be integers, got {idx.dtype}")
    n = len(shape)
    pos = axis + n
    out = []
    for i in range(n):
        if i == pos:
            out.append(idx)
        else:
            out.append(np.arange(shape[i]).reshape((-1,) + (1,) * (n - 1 - i)))
    return tuple(out)


def take_along_axis(arr: Any, indices: Any, axis: int | None) -> Tensor:
    """``arr`` indexed by ``indices`` along ``axis``, the other axes matched elementwise
    (``np.take_along_axis``); ``axis=None`` works on the flattened ``arr``.

    Parameters
    ----------
    arr : Tensor or array_like
        Input.
    indices : array_like of ints
        Indices with ``arr``'s number of dims (broadcast against it off ``axis``).
    axis : int or None
        The axis indexed; None works on the flattened ``arr``.
    """
    from gpuchain.ops.shape import ravel

    x = as_tensor(arr)
    if axis is None:
        x, axis = ravel(x), 0
    ax = one_axis(axis, x.ndim, "take_along_axis")
    return getitem_p(x, index=_along_axis_index(x.shape, indices, ax, "take_along_axis"))


def put_along_axis(arr: Any, indices: Any, values: Any, axis: int | None) -> Tensor:
    """A copy of ``arr`` with ``values`` written at ``indices`` along ``axis``
    (``np.put_along_axis``, out of place); differentiable in ``arr`` and ``values``.

    Parameters
    ----------
    arr : Tensor or array_like
        Input.
    indices : array_like of ints
        Indices with ``arr``'s number of dims.
    values : Tensor or array_like
        Values to write, broadcast to ``indices``' shape.
    axis : int or None
        The axis indexed; None works on the flattened ``arr``.
    """
    from gpuchain.ops.shape import ravel, reshape

    x = as_tensor(arr)
    shape = x.shape
    if axis is None:
        x, axis = ravel(x), 0
    ax = one_axis(axis, x.ndim, "put_along_axis")
    idx = _along_axis_index(x.shape, indices, ax, "put_along_axis")
    return reshape(index_update(x, idx, values), shape)


def argsort(a: Any, axis: int | None = -1, kind: str | None = None) -> Tensor:
    """Indices that sort ``a`` along ``axis`` (flattened when None); no grad.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or None
        The axis to sort along; None sorts the flattened input.
    kind : str, optional
        NumPy's sorting algorithm (NumPy backend only; CuPy picks its own).
    """
    x = as_tensor(a)
    xp = array_module_of(x._data)
    data = x._data.ravel() if axis is None else x._data
    ax = -1 if axis is None else one_axis(axis, x.ndim, "argsort")
    if xp is np:
        # NumPy validates kind itself; its stubs want one of the Literal names
        return Tensor._from_op(np.argsort(data, axis=ax, kind=kind),  # type: ignore[arg-type]
                               None)
    return Tensor._from_op(xp.argsort(data, axis=ax), None)


def sort(a: Any, axis: int | None = -1, kind: str | None = None) -> Tensor:
    """``a`` sorted along ``axis`` (flattened when None). Derivative: the cotangent
    permuted back (tied elements take their cotangents in sorted order).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    axis : int or None
        The axis to sort along; None sorts the flattened input.
    kind : str, optional
        NumPy's sorting algorithm (NumPy backend only; CuPy picks its own).
    """
    from gpuchain.ops.shape import ravel

    x = as_tensor(a)
    if axis is None:
        x, axis = ravel(x), -1
    return take_along_axis(x, argsort(x, axis=axis, kind=kind), axis)
