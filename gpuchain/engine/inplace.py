"""In-place updates of Tensors, with PyTorch's rules.

``w -= lr * w.grad`` (and ``+=``, ``*=``, ``/=``, ``w[...] = v``, ``w.zero_()``,
``w.copy_(v)``, ``w.fill_(v)``) writes into ``w._data`` itself, so ``w`` stays the same
leaf and keeps ``requires_grad``. Allowed:

- on any tensor that is not the result of a recorded op, when no graph is being
  recorded (inside ``gc.no_grad()``), e.g. the manual SGD update of a leaf;
- on tensors that do not require grad, anywhere (a later backward through an op that
  saved the tensor then raises, from its version counter).

Refused (RuntimeError, nothing changed): a tensor produced by a recorded op (part of a
graph: changing it would corrupt the gradient; write ``y = y + v``), and a leaf that
requires grad while a graph is being recorded (wrap the update in ``gc.no_grad()``).

Each successful change bumps the tensor's version counter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, is_cupy_array
from gpuchain.engine.mode import state
from gpuchain.engine.versions import mark_written
from gpuchain.errors import DeviceMismatchError, DTypeError, ShapeError

__all__ = ["copy_", "fill_", "iadd", "idiv", "imul", "isub", "setitem", "zero_"]

_UFUNCS = {"+=": "add", "-=": "subtract", "*=": "multiply", "/=": "true_divide"}


def _describe(t: Any) -> str:
    return f"{t.dtype}{tuple(t.shape)}"


def check_mutable(t: Any, what: str) -> None:
    """Raise unless ``t`` may be changed in place now (see the module docstring)."""
    node = getattr(t, "_node", None)
    if node is not None:
        raise RuntimeError(
            f"{what}: the {_describe(t)} tensor is the output of op '{node.op.name}' in a "
            "recorded graph; changing it in place would corrupt the gradient. Write "
            "`y = y + v` (a new tensor) instead")
    if t.requires_grad and state.grad_enabled:
        raise RuntimeError(
            f"{what}: the {_describe(t)} tensor is a leaf that requires grad and a graph is "
            "being recorded; do the update inside `with gc.no_grad():`")
    data = t._data
    flags = getattr(data, "flags", None)
    if flags is not None and not flags.writeable:
        raise ValueError(f"{what}: the {_describe(t)} tensor's array is read-only (a "
                         "broadcast view or a read-only buffer)")


def _operand(t: Any, value: Any, what: str) -> Any:
    v = value._data if getattr(value, "_is_tensor", False) else value
    if hasattr(v, "dtype") and hasattr(v, "shape"):
        if is_cupy_array(v) != is_cupy_array(t._data):
            raise DeviceMismatchError(f"{what}: the tensor is on {t.device} but the value is "
                                      f"on {'cuda' if is_cupy_array(v) else 'cpu'}")
        if v.dtype.kind in "c" or (t.dtype.kind in "iub" and v.dtype.kind == "f"):
            raise DTypeError(f"{what}: cannot write {v.dtype} values into a {_describe(t)} "
                             "tensor")
        return v
    if v is None or isinstance(v, (str, bytes, dict)):
        raise TypeError(f"{what}: expected a number, array or Tensor, got "
                        f"{type(v).__name__}")
    arr = np.asarray(v)
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"{what}: cannot write {arr.dtype} values into a {_describe(t)} "
                         "tensor")
    if t.dtype.kind in "iub" and arr.dtype.kind == "f":
        raise DTypeError(f"{what}: cannot write float values into a {_describe(t)} tensor")
    return v if arr.ndim == 0 and not isinstance(v, np.ndarray) else arr


def _augmented(t: Any, value: Any, symbol: str) -> Any:
    what = f"in-place {symbol}"
    check_mutable(t, what)
    v = _operand(t, value, what)
    xp = array_module_of(t._data)
    if symbol == "/=" and t.dtype.kind != "f":
        raise DTypeError(f"{what}: true division of a {_describe(t)} tensor needs a floating "
                         "dtype")
    shape = tuple(np.shape(v)) if not hasattr(v, "shape") else tuple(v.shape)
    try:
        np.broadcast_shapes(shape, tuple(t.shape))
        if np.broadcast_shapes(shape, tuple(t.shape)) != tuple(t.shape):
            raise ValueError
    except ValueError:
        raise ShapeError(f"{what}: a value of shape {shape} does not broadcast to the "
                         f"tensor's shape {tuple(t.shape)}") from None
    getattr(xp, _UFUNCS[symbol])(t._data, v, out=t._data, casting="unsafe")
    mark_written(t._data)
    return t


def iadd(t: Any, value: Any) -> Any:
    """``t += value`` in place; returns ``t``."""
    return _augmented(t, value, "+=")


def isub(t: Any, value: Any) -> Any:
    """``t -= value`` in place; returns ``t``."""
    return _augmented(t, value, "-=")


def imul(t: Any, value: Any) -> Any:
    """``t *= value`` in place; returns ``t``."""
    return _augmented(t, value, "*=")


def idiv(t: Any, value: Any) -> Any:
    """``t /= value`` in place; returns ``t``."""
    return _augmented(t, value, "/=")


def setitem(t: Any, index: Any, value: Any) -> None:
    """``t[index] = value`` in place."""
    what = "in-place t[index] = value"
    check_mutable(t, what)
    v = _operand(t, value, what)
    if isinstance(index, tuple):
        index = tuple(i._data if getattr(i, "_is_tensor", False) else i for i in index)
    elif getattr(index, "_is_tensor", False):
        index = index._data
    try:
        t._data[index] = v
    except (ValueError, IndexError) as exc:
        raise ShapeError(f"{what}: cannot assign a value of shape {tuple(np.shape(v))} to "
                         f"index {index!r} of a {_describe(t)} tensor ({exc})") from exc
    mark_written(t._data)


def zero_(t: Any) -> Any:
    """Set every element of ``t`` to 0 in place; returns ``t``."""
    check_mutable(t, "zero_")
    t._data.fill(0)
    mark_written(t._data)
    return t


def fill_(t: Any, value: Any) -> Any:
    """Set every element of ``t`` to the scalar ``value`` in place; returns ``t``."""
    check_mutable(t, "fill_")
    v = _operand(t, value, "fill_")
    if np.ndim(v) != 0:
        raise ShapeError(f"fill_: expected a scalar, got shape {tuple(np.shape(v))}")
    t._data.fill(v.item() if hasattr(v, "item") else v)
    mark_written(t._data)
    return t


def copy_(t: Any, src: Any) -> Any:
    """Copy ``src`` (broadcast to ``t``'s shape, cast to its dtype) into ``t``; returns
    ``t``. A source on another device is moved."""
    check_mutable(t, "copy_")
    v = src._data if getattr(src, "_is_tensor", False) else src
    xp = array_module_of(t._data)
    if hasattr(v, "dtype") and is_cupy_array(v) != is_cupy_array(t._data):
        v = v.get() if is_cupy_array(v) else xp.asarray(v)
    if not hasattr(v, "dtype"):
        v = _operand(t, v, "copy_")
    try:
        xp.copyto(t._data, v, casting="unsafe")
    except ValueError as exc:
        raise ShapeError(f"copy_: a source of shape {tuple(np.shape(v))} does not broadcast "
                         f"to {_describe(t)}") from exc
    mark_written(t._data)
    return t
