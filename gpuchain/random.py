"""``gc.random``: explicitly seeded random numbers on the current backend.

``gc.random.default_rng(seed)`` returns a :class:`Generator` (NumPy's API subset:
``normal``, ``standard_normal``, ``uniform``, ``random``, ``integers``, ``permutation``).
Numbers are drawn on the host by NumPy's PCG64 and placed on the backend current at the
call (``gc.set_backend``), so one seed gives the same values on NumPy and CuPy; floating
draws are made in float64 and cast, so they do not depend on the dtype either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.backend import get_backend, get_default_dtype
from gpuchain.engine.tensor import Tensor

__all__ = ["Generator", "default_rng"]

Size = int | Sequence[int] | None


def _place(data: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    if dtype is not None:
        data = data.astype(np.dtype(dtype), copy=False)
    xp = get_backend().xp
    return Tensor(xp.asarray(data), requires_grad=requires_grad)


def _float(dtype: Any) -> np.dtype:
    dt = get_default_dtype() if dtype is None else np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"gc.random: expected a floating dtype, got {dt}")
    return dt


def _value(x: Any) -> Any:
    data = getattr(x, "data", x)
    return data.get() if hasattr(data, "get") else data


class Generator:
    """A seeded stream of random numbers (see the module docstring).

    Parameters
    ----------
    seed : int or None
        Seed of NumPy's PCG64 stream; fresh OS entropy when None.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"gc.random.Generator({self._rng.bit_generator.__class__.__name__})"

    def standard_normal(self, size: Size = None, dtype: Any = None,
                        requires_grad: bool = False) -> Tensor:
        """Samples of N(0, 1) of shape ``size`` (default float dtype)."""
        return _place(np.asarray(self._rng.standard_normal(size)), _float(dtype), requires_grad)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Size = None, dtype: Any = None,
               requires_grad: bool = False) -> Tensor:
        """Samples of N(loc, scale²); ``loc`` and ``scale`` broadcast with ``size``."""
        data = self._rng.normal(_value(loc), _value(scale), size)
        return _place(np.asarray(data), _float(dtype), requires_grad)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Size = None, dtype: Any = None,
                requires_grad: bool = False) -> Tensor:
        """Samples uniform on ``[low, high)``."""
        data = self._rng.uniform(_value(low), _value(high), size)
        return _place(np.asarray(data), _float(dtype), requires_grad)

    def random(self, size: Size = None, dtype: Any = None,
               requires_grad: bool = False) -> Tensor:
        """Samples uniform on ``[0, 1)``."""
        return _place(np.asarray(self._rng.random(size)), _float(dtype), requires_grad)

    def integers(self, low: int, high: int | None = None, size: Size = None,
                 dtype: Any = np.int64, endpoint: bool = False) -> Tensor:
        """Random integers in ``[low, high)`` (``[0, low)`` when ``high`` is None;
        ``high`` included when ``endpoint``)."""
        dt = np.dtype(dtype)
        if dt.kind not in "iu":
            raise TypeError(f"Generator.integers: expected an integer dtype, got {dt}")
        data = self._rng.integers(_value(low), _value(high), size, dtype=dt, endpoint=endpoint)
        return _place(np.asarray(data), None, False)

    def permutation(self, x: Any, axis: int = 0) -> Tensor:
        """A permuted ``arange(x)`` for an int ``x``; otherwise ``x`` with its entries
        along ``axis`` shuffled (differentiable in ``x``: a gather)."""
        if isinstance(x, (int, np.integer)):
            return _place(self._rng.permutation(int(x)), None, False)
        from gpuchain.ops._args import as_tensor, one_axis
        from gpuchain.ops.indexing import take

        t = as_tensor(x)
        if t.ndim == 0:
            raise ValueError("Generator.permutation: x must be an int or at least 1-D")
        ax = one_axis(axis, t.ndim, "Generator.permutation")
        return take(t, self._rng.permutation(t.shape[ax]), axis=ax)


def default_rng(seed: int | None = None) -> Generator:
    """A new :class:`Generator` seeded with ``seed`` (fresh OS entropy when None).

    Parameters
    ----------
    seed : int or None
        Seed of NumPy's PCG64 stream; fresh OS entropy when None.
    """
    return Generator(seed)
