"""Small helpers shared by op rules."""

from __future__ import annotations

from typing import Any

from gpuchain.engine.tensor import Tensor


def lin(*terms: Tensor | None) -> Tensor | None:
    """Sum of the tangent terms that exist (forward mode skips inputs without tangents)."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total


def neg_axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Axes counted from the right, so rules stay valid when cotangents or tangents carry
    extra leading batch axes."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(a - ndim if a >= 0 else a)
    return tuple(sorted(out))


def const_like(value: Any, like: Tensor) -> Tensor:
    """A constant (non-differentiable) tensor on ``like``'s device and dtype.

    Parameters
    ----------
    value : array_like
        The values.
    like : Tensor
        Gives the device and dtype.
    """
    from gpuchain.backend import array_module_of

    xp = array_module_of(like._data)
    return Tensor._from_op(xp.asarray(value, dtype=like.dtype), None)
