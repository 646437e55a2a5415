"""Matrix products and matrix-structure functions: matmul, trace, diagonal, diag, triu,
tril (cuBLAS on CuPy, BLAS on NumPy).

The one primitive is ``matmul``; the others are composed of indexing and products.
The decompositions and solvers live in :mod:`gpuchain.linalg` (``gc.linalg``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import ShapeError
from gpuchain.ops._args import as_tensor, as_tensors, index, one_axis
from gpuchain.ops._rules import const_like, lin

__all__ = ["diag", "diagonal", "matmul", "trace", "tril", "triu"]


def _swap(x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return x.transpose(*axes)


# Operands here are at least 2-D (matmul promotes vectors with reshapes, so the rules
# never special-case them). Marked as broadcasting so forward mode aligns the stacking
# axes of a lower-rank operand's tangent with the output.
@defop("matmul", broadcasts=True)
def matmul_p(xp, a, b):
    if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:
        # A stack of matrices times one matrix is one GEMM over the stacked rows (NumPy
        # would loop one GEMM per matrix): the shape batched cotangents and tangents take.
        rows = math.prod(a.shape[:-1])
        return xp.matmul(a.reshape(rows, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[1:])
    return xp.matmul(a, b)


@matmul_p.vjp
def _(ctx, g):
    a, b = ctx.inputs
    ga = g @ _swap(b) if ctx.needs_grad(0) else None
    gb = _swap(a) @ g if ctx.needs_grad(1) else None
    return ga, gb


@matmul_p.jvp
def _(ctx, t):
    a, b = ctx.inputs
    return lin(None if t[0] is None else t[0] @ b, None if t[1] is None else a @ t[1])


def matmul(x1: Any, x2: Any) -> Tensor:
    """Matrix product with NumPy's rules: stacks of matrices broadcast, and a 1-D operand
    is promoted to a matrix (a row on the left, a column on the right) whose added axis
    is dropped from the result. A contracted axis of length 0 gives zeros.

    Parameters
    ----------
    x1 : Tensor or array_like
        Left operand.
    x2 : Tensor or array_like
        Right operand.
    """
    from gpuchain.ops.shape import reshape

    a, b = as_tensors(x1, x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} "
                         f"and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ShapeError(f"matmul: contracted axes differ in length: shapes {a.shape} and "
                         f"{b.shape}")
    squeeze_rows = a.ndim == 1
    squeeze_cols = b.ndim == 1
    if squeeze_rows:
        a = reshape(a, (1, a.shape[0]))
    if squeeze_cols:
        b = reshape(b, (b.shape[0], 1))
    out = matmul_p(a, b)
    if squeeze_rows or squeeze_cols:
        shape = out.shape[:-2] + (() if squeeze_rows else out.shape[-2:-1]) + (
            () if squeeze_cols else out.shape[-1:])
        out = reshape(out, shape)
    return out


def _diag_index(n: int, m: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    if offset >= 0:
        k = max(0, min(n, m - offset))
        rows = np.arange(k)
        return rows, rows + offset
    k = max(0, min(n + offset, m))
    cols = np.arange(k)
    return cols - offset, cols


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal (``offset`` above it when positive) of the 2-D slices in the plane
    ``axis1``, ``axis2``; that plane is removed and the diagonal becomes the last axis.

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    offset : int
        Diagonal offset: positive above the main diagonal, negative below.
    axis1 : int
        First axis of the 2-D planes.
    axis2 : int
        Second axis of the 2-D planes.
    """
    from gpuchain.ops.indexing import getitem_p
    from gpuchain.ops.shape import moveaxis

    x = as_tensor(a)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dims, got shape {x.shape}")
    i, j = one_axis(axis1, x.ndim, "diagonal"), one_axis(axis2, x.ndim, "diagonal")
    if i == j:
        raise ValueError(f"diagonal: axis1 and axis2 cannot be the same ({axis1})")
    x = moveaxis(x, (i, j), (-2, -1))
    rows, cols = _diag_index(x.shape[-2], x.shape[-1], index(offset, "offset", "diagonal"))
    return getitem_p(x, index=(Ellipsis, rows, cols))


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Sum along the diagonal (see :func:`diagonal` for the arguments).

    Parameters
    ----------
    a : Tensor or array_like
        Input (a list of Tensors is stacked first).
    offset : int
        Diagonal offset: positive above the main diagonal, negative below.
    axis1 : int
        First axis of the 2-D planes.
    axis2 : int
        Second axis of the 2-D planes.
    """
    from gpuchain.ops.reduce import sum_p

    return sum_p(diagonal(a, offset, axis1, axis2), axis=(-1,), keepdims=False)


def diag(v: Any, k: int = 0) -> Tensor:
    """A 1-D ``v``: the square matrix with ``v`` on its ``k``-th diagonal; a 2-D ``v``:
    its ``k``-th diagonal.

    Parameters
    ----------
    v : Tensor or array_like
        A 1-D or 2-D input.
    k : int
        Diagonal offset (positive: above the main diagonal).
    """
    from gpuchain.ops.indexing import scatter_add_p

    x = as_tensor(v)
    k = index(k, "k", "diag")
    if x.ndim == 2:
        return diagonal(x, k)
    if x.ndim != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {x.shape}")
    n = x.shape[0] + abs(k)
    rows, cols = _diag_index(n, n, k)
    return scatter_add_p(x, index=(rows, cols), shape=(n, n))


def _triangle(m: Any, k: int, upper: bool, fn: str) -> Tensor:
    x = as_tensor(m)
    if x.ndim < 2:
        raise ValueError(f"{fn}: needs at least 2 dims, got shape {x.shape}")
    k = index(k, "k", fn)
    ones = np.ones(x.shape[-2:], dtype=bool)
    mask = np.triu(ones, k) if upper else np.tril(ones, k)
    xp = array_module_of(x._data)
    return x * const_like(xp.asarray(mask), x)


def triu(m: Any, k: int = 0) -> Tensor:
    """``m`` with the elements below the ``k``-th diagonal zeroed (last two axes).

    Parameters
    ----------
    m : Tensor or array_like
        Input of at least 2 dims.
    k : int
        Diagonal offset (positive: above the main diagonal).
    """
    return _triangle(m, k, True, "triu")


def tril(m: Any, k: int = 0) -> Tensor:
    """``m`` with the elements above the ``k``-th diagonal zeroed (last two axes).

    Parameters
    ----------
    m : Tensor or array_like
        Input of at least 2 dims.
    k : int
        Diagonal offset (positive: above the main diagonal).
    """
    return _triangle(m, k, False, "tril")
