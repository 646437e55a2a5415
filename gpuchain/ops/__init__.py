"""The public op functions (NumPy signatures) and the Tensor methods built on them.

The registered primitives live in the family modules (elementwise, reduce, shape,
linalg, device); the functions here only normalize arguments (axes counted from the
right, vectors promoted for matmul) before applying one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.backend import device_of
from gpuchain.engine.op import REGISTRY
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.ops import device as _device
from gpuchain.ops import elementwise as _ew
from gpuchain.ops import linalg as _la
from gpuchain.ops import reduce as _red
from gpuchain.ops import shape as _shape
from gpuchain.ops._rules import neg_axes
from gpuchain.ops.elementwise import (
    abs,
    add,
    astype,
    cos,
    div,
    exp,
    gelu,
    gelu_tanh,
    log,
    maximum,
    minimum,
    mul,
    neg,
    power,
    relu,
    sigmoid,
    silu,
    sin,
    softplus,
    sqrt,
    sub,
    tan,
    tanh,
)
from gpuchain.ops.elementwise import erf_ as erf

__all__ = [
    "REGISTRY", "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "cos", "div",
    "erf", "exp", "gelu", "gelu_tanh", "leaky_relu", "log", "log_softmax", "logsumexp",
    "matmul", "max", "maximum", "mean", "minimum", "mul", "neg", "power", "relu", "reshape",
    "sigmoid", "silu", "sin", "softmax", "softplus", "sqrt", "stack", "sub", "sum", "tan",
    "tanh", "transpose", "where",
]


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else coerce_inputs((x,))[0]


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    x = _as_tensor(x)
    return _red.sum(x, axis=neg_axes(axis, x.ndim), keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    x = _as_tensor(x)
    axes = neg_axes(axis, x.ndim)
    count = x.size if axes is None else math.prod(x.shape[a] for a in axes)
    return _red.sum(x, axis=axes, keepdims=keepdims) / count


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum along ``axis``; tied maxima share the gradient equally."""
    x = _as_tensor(x)
    return _red.max(x, axis=neg_axes(axis, x.ndim), keepdims=keepdims)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    x = _as_tensor(x)
    return _red.logsumexp(x, axis=neg_axes(axis, x.ndim), keepdims=keepdims)


def _one_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of bounds for a tensor of {ndim} dims")
    return axis - ndim if axis >= 0 else axis


def softmax(x: Any, axis: int = -1) -> Tensor:
    x = _as_tensor(x)
    return _red.softmax(x, axis=_one_axis(axis, x.ndim, "softmax"))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    x = _as_tensor(x)
    return _red.log_softmax(x, axis=_one_axis(axis, x.ndim, "log_softmax"))


def _resolve_shape(size: int, shape: Sequence[int], old: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: at most one -1 allowed, got {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape {old} into {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {old} into {shape}")
    return shape


def reshape(x: Any, shape: Any) -> Tensor:
    x = _as_tensor(x)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = _resolve_shape(x.size, shape, x.shape)
    if shape == x.shape:
        return x
    return _shape.reshape(x, shape=shape)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    x = _as_tensor(x)
    if axes is None:
        axes = tuple(range(x.ndim))[::-1]
    axes = tuple(a % x.ndim if x.ndim else a for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation for shape {x.shape}")
    return _shape.transpose(x, axes=axes)


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    x = _as_tensor(x)
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return _shape.broadcast_to(x, shape=shape)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    ts = coerce_inputs(tuple(tensors))
    if not ts:
        raise ValueError("concatenate: need at least one tensor")
    return _shape.concatenate(*ts, axis=_one_axis(axis, ts[0].ndim, "concatenate"))


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    ts = coerce_inputs(tuple(tensors))
    if not ts:
        raise ValueError("stack: need at least one tensor")
    return _shape.stack(*ts, axis=_one_axis(axis, ts[0].ndim + 1, "stack"))


def matmul(a: Any, b: Any) -> Tensor:
    """NumPy's matmul; 1-D operands are promoted to matrices and the axis dropped after."""
    a, b = coerce_inputs((a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} "
                         f"and {b.shape}")
    squeeze_rows = a.ndim == 1
    squeeze_cols = b.ndim == 1
    if squeeze_rows:
        a = reshape(a, (1, a.shape[0]))
    if squeeze_cols:
        b = reshape(b, (b.shape[0], 1))
    out = _la.matmul(a, b)
    if squeeze_rows or squeeze_cols:
        shape = out.shape[:-2] + (() if squeeze_rows else out.shape[-2:-1]) + (
            () if squeeze_cols else out.shape[-1:])
        out = reshape(out, shape)
    return out


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elements of ``a`` where ``cond`` holds, else of ``b``; ``cond`` is not differentiated."""
    return _ew.where_(cond, a, b)


def clip(x: Any, lo: Any = None, hi: Any = None) -> Tensor:
    return _ew.clip(_as_tensor(x), lo=lo, hi=hi)


def leaky_relu(x: Any, slope: float = 0.01) -> Tensor:
    return _ew.leaky_relu(_as_tensor(x), slope=float(slope))


def getitem(x: Any, index: Any) -> Tensor:
    return _shape.getitem(_as_tensor(x), index=_shape.normalize_index(index))


def to(x: Any, device: str) -> Tensor:
    x = _as_tensor(x)
    source = device_of(x.data)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"to: unknown device {device!r}; expected 'cpu' or 'cuda'")
    if device == source:
        return x
    return _device.to_device(x, device=device, source=source)


# --- Tensor methods and operators ---------------------------------------------------

def _compare(fn):
    def method(self: Tensor, other: Any) -> Tensor:
        other = getattr(other, "data", other)
        return Tensor(fn(self.data, other))

    return method


def _install_methods() -> None:
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__pow__ = lambda a, b: power(a, b)
    T.__rpow__ = lambda a, b: power(b, a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pos__ = lambda a: a
    T.__abs__ = lambda a: abs(a)
    T.__getitem__ = getitem
    T.__lt__ = _compare(np.less)
    T.__le__ = _compare(np.less_equal)
    T.__gt__ = _compare(np.greater)
    T.__ge__ = _compare(np.greater_equal)
    T.__eq__ = _compare(lambda a, b: a == b)
    T.__ne__ = _compare(lambda a, b: a != b)
    T.sum = sum
    T.mean = mean
    T.max = max
    T.logsumexp = logsumexp
    T.softmax = softmax
    T.log_softmax = log_softmax
    T.reshape = lambda self, *shape: reshape(
        self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)
    T.transpose = lambda self, *axes: transpose(
        self, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None)
    T.swapaxes = _swapaxes
    T.T = property(lambda self: transpose(self))
    T.broadcast_to = broadcast_to
    T.astype = lambda self, dtype: self if np.dtype(dtype) == self.dtype else astype(
        self, dtype=np.dtype(dtype))
    T.to = to
    T.clip = clip
    for name in ("exp", "log", "sin", "cos", "tan", "sqrt", "tanh", "sigmoid", "relu"):
        setattr(T, name, getattr(_ew, name).__call__)


def _swapaxes(self: Tensor, a: int, b: int) -> Tensor:
    axes = list(range(self.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(self, axes)


_install_methods()
