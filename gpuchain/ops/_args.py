"""Argument normalization shared by the public op functions (NumPy conventions).

``as_tensor`` turns what a NumPy user passes (a Tensor, an array, a scalar, or a list of
Tensors) into one Tensor; ``axes``/``one_axis`` turn NumPy axis arguments (ints, NumPy
integers, tuples) into the negative axes the primitives store.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from gpuchain.engine.tensor import Tensor, coerce_inputs


def as_tensor(x: Any) -> Tensor:
    """``x`` as a Tensor. A list or tuple that contains Tensors (at any depth) is stacked
    with ``gc.stack``, so ``gc.mean([x, x + 2])`` differentiates through both entries;
    other data becomes a constant Tensor as in ``gc.tensor`` (the engine's
    ``coerce_inputs``, which every op applies)."""
    return x if isinstance(x, Tensor) else coerce_inputs((x,))[0]


def as_tensors(*xs: Any) -> tuple[Tensor, ...]:
    """Several arguments as Tensors sharing dtype conventions (Python scalars take the
    dtype of the Tensor arguments), each list of Tensors stacked."""
    return coerce_inputs(xs)


def index(value: Any, what: str, fn: str) -> int:
    """A Python int from an int-like (NumPy integers included); bools and floats raise."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {what} must be an integer, got {type(value).__name__} "
                        f"{value!r}") from None


def one_axis(axis: Any, ndim: int, fn: str) -> int:
    """One axis of a tensor of ``ndim`` dims, as a negative int."""
    a = index(axis, "axis", fn)
    if not -ndim <= a < ndim:
        raise ValueError(f"{fn}: axis {a} is out of bounds for a tensor of {ndim} dims")
    return a - ndim if a >= 0 else a


def axes(axis: Any, ndim: int, fn: str) -> tuple[int, ...] | None:
    """NumPy's ``axis`` argument (None, an int or a tuple) as sorted negative axes;
    None stays None (all axes). Repeated axes raise."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = tuple(sorted(one_axis(a, ndim, fn) for a in items))
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: repeated axis in {axis!r}")
    return out


def all_axes(axis: tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """The reduced axes as negative ints, with None meaning every axis."""
    return tuple(range(-ndim, 0)) if axis is None else axis
