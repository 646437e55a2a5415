"""Python launchers for the layer-norm kernels in ``kernels/layernorm.cu``.

Arrays are C-contiguous CuPy arrays on the current device; every launcher validates
shapes and dtypes (errors name the kernel) and launches on the current stream without
synchronizing. The module is compiled once per process from the same inlined source the
NVRTC compile check builds (``python -m gpuchain.cuda compile``), by the loader.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.cuda import loader
from gpuchain.cuda.memory import translate_oom
from gpuchain.errors import DTypeError, ShapeError

__all__ = ["layernorm_backward", "layernorm_forward"]

FILE = "layernorm.cu"
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
           np.dtype(np.float16): "__half"}
_BLOCK = 256  # gc::kBlock; a power of two (the block reductions need it)
_MAX_ROW_BLOCKS = 1024


def _fn(kernel: str, ctype: str) -> Any:
    return loader.get_function(FILE, f"{kernel}<{ctype}>")


def _check(kernel: str, name: str, a: Any, shape: tuple[int, ...], dtype: Any) -> None:
    import cupy

    if not isinstance(a, cupy.ndarray):
        raise DTypeError(f"{kernel}: {name} must be a cupy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise DTypeError(f"{kernel}: {name} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if tuple(a.shape) != tuple(shape):
        raise ShapeError(f"{kernel}: {name} has shape {tuple(a.shape)}, expected {shape}")
    if not a.flags.c_contiguous:
        raise ShapeError(f"{kernel}: {name} {tuple(a.shape)} must be C-contiguous")


def _rows_n(kernel: str, x: Any) -> tuple[str, int, int]:
    ctype = _CTYPES.get(np.dtype(x.dtype))
    if ctype is None:
        raise DTypeError(f"{kernel}: dtype {x.dtype}; supported: float16, float32, float64")
    if x.ndim != 2:
        raise ShapeError(f"{kernel}: expected a 2-D (rows, n) array, got {tuple(x.shape)}")
    return ctype, int(x.shape[0]), int(x.shape[1])


def _block(n: int) -> int:
    b = 32
    while b < n and b < _BLOCK:
        b <<= 1
    return b


def layernorm_forward(x: Any, w: Any, b: Any, eps: float, y_out: Any, mean_out: Any,
                      rstd_out: Any) -> None:
    """Per row of x (rows, n): y = (x - mean) * rstd * w + b, with the row's mean and
    rstd = 1/sqrt(var + eps) written to mean_out / rstd_out (rows,)."""
    k = "layernorm_forward"
    _check(k, "x", x, tuple(x.shape), x.dtype)
    ctype, rows, n = _rows_n(k, x)
    for name, a, shape in (("w", w, (n,)), ("b", b, (n,)), ("y_out", y_out, (rows, n)),
                           ("mean_out", mean_out, (rows,)), ("rstd_out", rstd_out, (rows,))):
        _check(k, name, a, shape, x.dtype)
    if not eps > 0:
        raise ValueError(f"{k}: eps must be > 0, got {eps}")
    if rows == 0 or n == 0:
        return
    grid = (min(rows, _MAX_ROW_BLOCKS), 1, 1)
    _fn("layernorm_fwd", ctype)(grid, (_block(n), 1, 1),
                                (x, w, b, y_out, mean_out, rstd_out, np.int64(rows),
                                 np.int32(n), np.float64(eps)))


def layernorm_backward(g: Any, x: Any, w: Any, mean: Any, rstd: Any, dx_out: Any,
                       dw_out: Any, db_out: Any) -> None:
    """From the forward's mean and rstd: dx (rows, n), and dw, db (n,) summed over rows
    (deterministic: per-block partial sums, then one reduction)."""
    k = "layernorm_backward"
    _check(k, "g", g, tuple(g.shape), g.dtype)
    ctype, rows, n = _rows_n(k, g)
    for name, a, shape in (("x", x, (rows, n)), ("w", w, (n,)), ("mean", mean, (rows,)),
                           ("rstd", rstd, (rows,)), ("dx_out", dx_out, (rows, n)),
                           ("dw_out", dw_out, (n,)), ("db_out", db_out, (n,))):
        _check(k, name, a, shape, g.dtype)
    if n == 0:
        return
    if rows == 0:
        dw_out.fill(0)
        db_out.fill(0)
        return
    import cupy

    parts = min(rows, _MAX_ROW_BLOCKS)
    acc = np.float64 if ctype == "double" else np.float32
    with translate_oom(f"{k}: partial sums ({parts}, {n}) x2 {np.dtype(acc)}"):
        pdw = cupy.empty((parts, n), dtype=acc)
        pdb = cupy.empty((parts, n), dtype=acc)
    _fn("layernorm_bwd", ctype)((parts, 1, 1), (_block(n), 1, 1),
                                (g, x, w, mean, rstd, dx_out, pdw, pdb, np.int64(rows),
                                 np.int32(n)))
    fin = (max(1, min((n + _BLOCK - 1) // _BLOCK, 1024)), 1, 1)
    _fn("layernorm_bwd_finalize", ctype)(fin, (_BLOCK, 1, 1),
                                         (pdw, pdb, dw_out, db_out, np.int32(parts),
                                          np.int32(n)))
