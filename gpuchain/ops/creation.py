"""Array creation: zeros, ones, full, empty and their ``*_like`` forms, arange, linspace
and eye, as leaf Tensors on the current backend (``gc.set_backend``).

Floating results default to ``gc.get_default_dtype()``; ``dtype=`` overrides, and
``requires_grad=True`` makes the result a leaf that collects gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, get_backend, get_default_dtype
from gpuchain.engine.tensor import Tensor

__all__ = [
    "arange", "empty", "empty_like", "eye", "full", "full_like", "linspace", "ones",
    "ones_like", "zeros", "zeros_like",
]

Shape = int | Sequence[int]


def _dtype(dtype: Any) -> np.dtype:
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def _leaf(data: Any, requires_grad: bool) -> Tensor:
    return Tensor(data, requires_grad=requires_grad)


def _shape(shape: Shape, fn: str) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    out = []
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{fn}: shape entries must be integers, got {shape!r}")
        if s < 0:
            raise ValueError(f"{fn}: negative dimensions are not allowed, got {shape!r}")
        out.append(int(s))
    return tuple(out)


def zeros(shape: Shape, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A Tensor of ``shape`` filled with 0 (default float dtype unless ``dtype``).

    Parameters
    ----------
    shape : int or tuple of ints
        Shape of the result.
    dtype : dtype, optional
        Dtype of the result (the default float dtype when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp = get_backend().xp
    return _leaf(xp.zeros(_shape(shape, "zeros"), dtype=_dtype(dtype)), requires_grad)


def ones(shape: Shape, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A Tensor of ``shape`` filled with 1 (default float dtype unless ``dtype``).

    Parameters
    ----------
    shape : int or tuple of ints
        Shape of the result.
    dtype : dtype, optional
        Dtype of the result (the default float dtype when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp = get_backend().xp
    return _leaf(xp.ones(_shape(shape, "ones"), dtype=_dtype(dtype)), requires_grad)


def empty(shape: Shape, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A Tensor of ``shape`` with unspecified contents (default float dtype).

    Parameters
    ----------
    shape : int or tuple of ints
        Shape of the result.
    dtype : dtype, optional
        Dtype of the result (the default float dtype when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp = get_backend().xp
    return _leaf(xp.empty(_shape(shape, "empty"), dtype=_dtype(dtype)), requires_grad)


def _fill_dtype(fill_value: Any, dtype: Any) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    value = getattr(fill_value, "data", fill_value)
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return np.dtype(np.int64)
    if isinstance(value, np.generic) or hasattr(value, "dtype"):
        return np.dtype(value.dtype)
    return get_default_dtype()


def full(shape: Shape, fill_value: Any, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A Tensor of ``shape`` filled with ``fill_value``.

    The dtype follows NumPy: an int fill gives int64, a bool fill bool, and a float fill
    the default float dtype (``dtype=`` overrides).

    Parameters
    ----------
    shape : int or tuple of ints
        Shape of the result.
    fill_value : scalar
        The value of every element.
    dtype : dtype, optional
        Dtype of the result (from ``fill_value`` when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp = get_backend().xp
    value = getattr(fill_value, "data", fill_value)
    data = xp.full(_shape(shape, "full"), value, dtype=_fill_dtype(fill_value, dtype))
    return _leaf(data, requires_grad)


def _like(a: Any, dtype: Any, shape: Any) -> tuple[Any, np.dtype, tuple[int, ...]]:
    data = getattr(a, "data", a)
    if not hasattr(data, "dtype"):
        data = np.asarray(data)
    xp = array_module_of(data) if hasattr(data, "shape") else get_backend().xp
    dt = np.dtype(dtype) if dtype is not None else np.dtype(data.dtype)
    if dtype is None and not isinstance(a, Tensor) and not hasattr(a, "dtype") \
            and dt.kind == "f":
        dt = get_default_dtype()  # Python data: as gc.tensor would have made it
    return xp, dt, tuple(data.shape) if shape is None else _shape(shape, "like")


def zeros_like(a: Any, dtype: Any = None, shape: Shape | None = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with the shape, dtype and device of ``a`` (each overridable).

    Parameters
    ----------
    a : Tensor or array_like
        The template.
    dtype : dtype, optional
        Dtype of the result (``a``'s when None).
    shape : int or tuple of ints, optional
        Shape of the result (``a``'s when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp, dt, sh = _like(a, dtype, shape)
    return _leaf(xp.zeros(sh, dtype=dt), requires_grad)


def ones_like(a: Any, dtype: Any = None, shape: Shape | None = None,
              requires_grad: bool = False) -> Tensor:
    """Ones with the shape, dtype and device of ``a`` (each overridable).

    Parameters
    ----------
    a : Tensor or array_like
        The template.
    dtype : dtype, optional
        Dtype of the result (``a``'s when None).
    shape : int or tuple of ints, optional
        Shape of the result (``a``'s when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp, dt, sh = _like(a, dtype, shape)
    return _leaf(xp.ones(sh, dtype=dt), requires_grad)


def empty_like(a: Any, dtype: Any = None, shape: Shape | None = None,
               requires_grad: bool = False) -> Tensor:
    """An uninitialized Tensor with the shape, dtype and device of ``a``.

    Parameters
    ----------
    a : Tensor or array_like
        The template.
    dtype : dtype, optional
        Dtype of the result (``a``'s when None).
    shape : int or tuple of ints, optional
        Shape of the result (``a``'s when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp, dt, sh = _like(a, dtype, shape)
    return _leaf(xp.empty(sh, dtype=dt), requires_grad)


def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Shape | None = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` with the shape, dtype and device of ``a`` (each overridable).

    Parameters
    ----------
    a : Tensor or array_like
        The template.
    fill_value : scalar
        The value of every element.
    dtype : dtype, optional
        Dtype of the result (``a``'s when None).
    shape : int or tuple of ints, optional
        Shape of the result (``a``'s when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp, dt, sh = _like(a, dtype, shape)
    return _leaf(xp.full(sh, getattr(fill_value, "data", fill_value), dtype=dt),
                 requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in ``[start, stop)`` (``arange(n)`` counts 0 to n-1).

    As in NumPy, integer arguments give int64 values; any float argument gives the
    default float dtype (``dtype=`` overrides).

    Parameters
    ----------
    start : number
        Start of the interval (the stop when ``stop`` is None).
    stop : number, optional
        End of the interval.
    step : number
        Spacing between values.
    dtype : dtype, optional
        Dtype of the result (from the arguments when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    args = (start, stop, step)
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in args)
        dtype = np.int64 if ints else get_default_dtype()
    xp = get_backend().xp
    return _leaf(xp.arange(start, stop, step, dtype=np.dtype(dtype)), requires_grad)


def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True,
             dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when
    ``endpoint``), in the default float dtype unless ``dtype``.

    Parameters
    ----------
    start : number
        The first value.
    stop : number
        The last value (when ``endpoint``).
    num : int
        Number of values.
    endpoint : bool
        Include ``stop``.
    dtype : dtype, optional
        Dtype of the result (the default float dtype when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    if num < 0:
        raise ValueError(f"linspace: num must be non-negative, got {num}")
    xp = get_backend().xp
    data = xp.linspace(start, stop, int(num), endpoint=endpoint, dtype=np.float64)
    return _leaf(data.astype(_dtype(dtype)), requires_grad)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None,
        requires_grad: bool = False) -> Tensor:
    """An ``N x M`` matrix (square when ``M`` is None) with ones on the ``k``-th diagonal.

    Parameters
    ----------
    N : int
        Number of rows.
    M : int, optional
        Number of columns (``N`` when None).
    k : int
        Diagonal offset (positive: above the main diagonal).
    dtype : dtype, optional
        Dtype of the result (the default float dtype when None).
    requires_grad : bool
        Make the result a leaf that collects gradients.
    """
    xp = get_backend().xp
    return _leaf(xp.eye(int(N), None if M is None else int(M), k=int(k), dtype=_dtype(dtype)),
                 requires_grad)
