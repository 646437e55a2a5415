"""Python launchers for the CUDA kernels in ``kernels/*.cu``.

All array arguments are C-contiguous CuPy arrays on the current device; every
launcher validates shapes and dtypes (errors name the kernel) and then launches
on the current stream without synchronizing.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from gpuchain.cuda import loader
from gpuchain.cuda.memory import translate_oom
from gpuchain.errors import DTypeError, ShapeError

__all__ = [
    "ACTIVATIONS",
    "SAVES_OUTPUT",
    "act_grad_bias",
    "adam_step",
    "bias_act_forward",
    "dense_jvp_epilogue",
    "sgd_step",
    "softmax_xent_backward",
    "softmax_xent_forward",
    "translate_oom",
]

_TABLE = loader.activation_table()
ACTIVATIONS: tuple[str, ...] = tuple(name for name, _, _ in _TABLE)
# Activations whose derivative is computed from the output a (else from z).
SAVES_OUTPUT: frozenset[str] = frozenset(name for name, _, saves in _TABLE if saves)
_ACT_ID = {name: ident for name, ident, _ in _TABLE}

_CTYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.float16): "__half",
}
_LABEL_CTYPES = {np.dtype(np.int32): "int", np.dtype(np.int64): "long long"}
_BLOCK = 256
_MAX_BLOCKS_2D = 4096  # rows x column-tiles blocks; the grid depends on the shape only
_MAX_BLOCKS_1D = 8192
_NULL = np.uint64(0)  # a null pointer argument


@functools.cache
def _fn(filename: str, expr: str) -> Any:
    return loader.get_function(filename, expr)


def _desc(a: Any) -> str:
    return "None" if a is None else f"{tuple(a.shape)} {a.dtype}"


def _check_array(
    kernel: str, name: str, a: Any, shape: tuple[int, ...] | None = None, dtype: Any = None
) -> None:
    import cupy

    if not isinstance(a, cupy.ndarray):
        raise DTypeError(f"{kernel}: {name} must be a cupy.ndarray, got {type(a).__name__}")
    if dtype is not None and a.dtype != dtype:
        raise DTypeError(f"{kernel}: {name} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ShapeError(f"{kernel}: {name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    if not a.flags.c_contiguous:
        raise ShapeError(f"{kernel}: {name} {_desc(a)} must be C-contiguous")


def _float_ctype(kernel: str, name: str, a: Any) -> str:
    ctype = _CTYPES.get(np.dtype(a.dtype))
    if ctype is None:
        raise DTypeError(
            f"{kernel}: {name} has dtype {a.dtype}; supported: float16, float32, float64"
        )
    return ctype


def _overlaps(a: Any, b: Any) -> bool:
    if a is None or b is None or a.size == 0 or b.size == 0:
        return False
    a0, b0 = a.data.ptr, b.data.ptr
    return a0 < b0 + b.nbytes and b0 < a0 + a.nbytes


def _same(a: Any, b: Any) -> bool:
    return a.data.ptr == b.data.ptr and a.nbytes == b.nbytes


def _check_outputs(kernel: str, outs: dict[str, tuple[Any, Any]], inputs: dict[str, Any]) -> None:
    """Each output may alias exactly its allowed input (or nothing) and no other operand."""
    names = list(outs)
    for i, oname in enumerate(names):
        out, allowed = outs[oname]
        for iname, arr in inputs.items():
            if arr is allowed and arr is not None and _same(out, arr):
                continue
            if _overlaps(out, arr):
                raise ValueError(f"{kernel}: output {oname} overlaps input {iname}")
        for other in names[i + 1 :]:
            if _overlaps(out, outs[other][0]):
                raise ValueError(f"{kernel}: outputs {oname} and {other} overlap")


def _act_id(kernel: str, activation: str, slope: float) -> int:
    if activation not in _ACT_ID:
        raise ValueError(
            f"{kernel}: unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}"
        )
    if activation == "leaky_relu" and not slope >= 0:
        raise ValueError(f"{kernel}: leaky_relu needs slope >= 0, got {slope}")
    return _ACT_ID[activation]


def _rows_cols(kernel: str, name: str, a: Any) -> tuple[int, int]:
    if a.ndim < 1:
        raise ShapeError(f"{kernel}: {name} must have at least 1 dimension, got {_desc(a)}")
    n = int(a.shape[-1])
    return (a.size // n if n else 0), n


def _grid_2d(rows: int, cols: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Block (bx, by): bx columns (power of two, 32..256), by = 256 / bx rows."""
    bx = min(_BLOCK, max(32, 1 << max(0, (cols - 1).bit_length())))
    by = _BLOCK // bx
    gx = math.ceil(cols / bx)
    gy = max(1, min(math.ceil(rows / by), max(1, _MAX_BLOCKS_2D // gx), 65535))
    return (gx, gy, 1), (bx, by, 1)


def _grid_1d(n: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    return (max(1, min(math.ceil(n / _BLOCK), _MAX_BLOCKS_1D)), 1, 1), (_BLOCK, 1, 1)


# ---------------------------------------------------------------------------
# Dense epilogues
# ---------------------------------------------------------------------------


def bias_act_forward(
    z: Any, b: Any, activation: str, slope: float, out: Any, store_preact: bool
) -> None:
    """out = act(z + b) over rows of z (..., n). With ``store_preact`` also z <- z + b
    (then ``out`` must not be ``z``). ``out`` may be ``z`` (in place)."""
    k = "bias_act_forward"
    _check_array(k, "z", z)
    ctype = _float_ctype(k, "z", z)
    rows, n = _rows_cols(k, "z", z)
    if b is not None:
        _check_array(k, "b", b, (n,), z.dtype)
    _check_array(k, "out", out, z.shape, z.dtype)
    act = _act_id(k, activation, slope)
    if store_preact and _overlaps(out, z):
        raise ValueError(f"{k}: store_preact=True needs out separate from z")
    _check_outputs(k, {"out": (out, z)}, {"z": z, "b": b})
    if rows == 0 or n == 0:
        return
    grid, block = _grid_2d(rows, n)
    _fn("dense.cu", f"bias_act_fwd<{ctype}, {act}>")(
        grid,
        block,
        (
            z,
            _NULL if b is None else b,
            out,
            np.int64(rows),
            np.int32(n),
            np.float64(slope),
            np.int32(bool(store_preact)),
        ),
    )


def act_grad_bias(
    g: Any, saved: Any, activation: str, slope: float, dz_out: Any, db_out: Any = None
) -> None:
    """dz = g * act'(saved) (saved = output a if activation in SAVES_OUTPUT else the
    pre-activation z+b); db = sum over rows of dz, deterministic. dz_out may be g."""
    k = "act_grad_bias"
    _check_array(k, "g", g)
    ctype = _float_ctype(k, "g", g)
    rows, n = _rows_cols(k, "g", g)
    _check_array(k, "saved", saved, g.shape, g.dtype)
    _check_array(k, "dz_out", dz_out, g.shape, g.dtype)
    if db_out is not None:
        _check_array(k, "db_out", db_out, (n,), g.dtype)
    act = _act_id(k, activation, slope)
    _check_outputs(k, {"dz_out": (dz_out, g), "db_out": (db_out, None)}, {"g": g, "saved": saved})
    if n == 0:
        return
    if rows == 0:
        if db_out is not None:
            db_out.fill(0)
        return
    import cupy

    grid, block = _grid_2d(rows, n)
    partial: Any = _NULL
    if db_out is not None:
        acc = np.float64 if ctype == "double" else np.float32
        with translate_oom(f"{k}: db workspace ({grid[1]}, {n}) {np.dtype(acc)}"):
            partial = cupy.empty((grid[1], n), dtype=acc)
    _fn("dense.cu", f"act_grad_bias<{ctype}, {act}>")(
        grid,
        block,
        (g, saved, dz_out, np.int64(rows), np.int32(n), np.float64(slope), partial),
    )
    if db_out is not None:
        grid1, block1 = _grid_1d(n)
        _fn("dense.cu", f"column_sum_finalize<{ctype}>")(
            grid1, block1, (partial, db_out, np.int32(grid[1]), np.int32(n))
        )


def dense_jvp_epilogue(
    z: Any, b: Any, zdot: Any, bdot: Any, activation: str, slope: float, a_out: Any, adot_out: Any
) -> None:
    """a = act(z + b); adot = act'(z + b) * (zdot + bdot). a_out may be z, adot_out may be
    zdot. b and bdot may be None."""
    k = "dense_jvp_epilogue"
    _check_array(k, "z", z)
    ctype = _float_ctype(k, "z", z)
    rows, n = _rows_cols(k, "z", z)
    for name, vec in (("b", b), ("bdot", bdot)):
        if vec is not None:
            _check_array(k, name, vec, (n,), z.dtype)
    for name, arr in (("zdot", zdot), ("a_out", a_out), ("adot_out", adot_out)):
        _check_array(k, name, arr, z.shape, z.dtype)
    act = _act_id(k, activation, slope)
    _check_outputs(
        k,
        {"a_out": (a_out, z), "adot_out": (adot_out, zdot)},
        {"z": z, "b": b, "zdot": zdot, "bdot": bdot},
    )
    if rows == 0 or n == 0:
        return
    grid, block = _grid_2d(rows, n)
    _fn("dense.cu", f"dense_jvp<{ctype}, {act}>")(
        grid,
        block,
        (
            z,
            _NULL if b is None else b,
            zdot,
            _NULL if bdot is None else bdot,
            a_out,
            adot_out,
            np.int64(rows),
            np.int32(n),
            np.float64(slope),
        ),
    )


# ---------------------------------------------------------------------------
# Softmax cross-entropy
# ---------------------------------------------------------------------------


def _xent_common(k: str, x: Any, xname: str, labels: Any) -> tuple[str, str, int, int]:
    _check_array(k, xname, x)
    ctype = _float_ctype(k, xname, x)
    if x.ndim != 2:
        raise ShapeError(f"{k}: {xname} must be 2-D (batch, classes), got {_desc(x)}")
    rows, cols = (int(s) for s in x.shape)
    _check_array(k, "labels", labels, (rows,))
    lctype = _LABEL_CTYPES.get(np.dtype(labels.dtype))
    if lctype is None:
        raise DTypeError(f"{k}: labels have dtype {labels.dtype}; supported: int32, int64")
    return ctype, lctype, rows, cols


def softmax_xent_forward(logits: Any, labels: Any, loss_out: Any, probs_out: Any) -> None:
    """Per row: probs = softmax(logits), loss = logsumexp(logits) - logits[label].
    A label outside [0, C) gives NaN. probs_out must not overlap logits."""
    k = "softmax_xent_forward"
    ctype, lctype, rows, cols = _xent_common(k, logits, "logits", labels)
    _check_array(k, "loss_out", loss_out, (rows,), logits.dtype)
    _check_array(k, "probs_out", probs_out, logits.shape, logits.dtype)
    _check_outputs(
        k,
        {"loss_out": (loss_out, None), "probs_out": (probs_out, None)},
        {"logits": logits, "labels": labels},
    )
    if rows == 0:
        return
    if cols == 0:
        raise ShapeError(f"{k}: logits {_desc(logits)} have no classes")
    block = min(_BLOCK, 32 * math.ceil(cols / 32))
    _fn("softmax_xent.cu", f"softmax_xent_fwd<{ctype}, {lctype}>")(
        (min(rows, 65535), 1, 1),
        (block, 1, 1),
        (logits, labels, loss_out, probs_out, np.int64(rows), np.int32(cols)),
    )


def softmax_xent_backward(probs: Any, labels: Any, g_loss: Any, dlogits_out: Any) -> None:
    """dlogits = g_loss[:, None] * (probs - onehot(labels)). dlogits_out may be probs."""
    k = "softmax_xent_backward"
    ctype, lctype, rows, cols = _xent_common(k, probs, "probs", labels)
    _check_array(k, "g_loss", g_loss, (rows,), probs.dtype)
    _check_array(k, "dlogits_out", dlogits_out, probs.shape, probs.dtype)
    _check_outputs(
        k,
        {"dlogits_out": (dlogits_out, probs)},
        {"probs": probs, "labels": labels, "g_loss": g_loss},
    )
    if rows == 0 or cols == 0:
        return
    grid, block = _grid_2d(rows, cols)
    _fn("softmax_xent.cu", f"softmax_xent_bwd<{ctype}, {lctype}>")(
        grid, block, (probs, labels, g_loss, dlogits_out, np.int64(rows), np.int32(cols))
    )


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------


def _state_ctype(k: str, param: Any, name: str, state: Any) -> str:
    """State may match the parameter dtype, or be float32 for a float16 parameter."""
    _check_array(k, name, state, param.shape)
    ok = state.dtype == param.dtype or (param.dtype == np.float16 and state.dtype == np.float32)
    if not ok:
        raise DTypeError(
            f"{k}: {name} has dtype {state.dtype}; expected {param.dtype}"
            + (" or float32" if param.dtype == np.float16 else "")
        )
    return _CTYPES[np.dtype(state.dtype)]


def sgd_step(
    param: Any,
    grad: Any,
    momentum_buf: Any,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    nesterov: bool,
) -> None:
    """In-place SGD step (dampening 0). momentum_buf (zero-initialised) is required
    when momentum != 0 and ignored otherwise."""
    k = "sgd_step"
    _check_array(k, "param", param)
    ctype = _float_ctype(k, "param", param)
    _check_array(k, "grad", grad, param.shape, param.dtype)
    if nesterov and momentum <= 0:
        raise ValueError(f"{k}: nesterov needs momentum > 0, got {momentum}")
    buf: Any = _NULL
    sctype = ctype
    if momentum != 0:
        if momentum_buf is None:
            raise ValueError(f"{k}: momentum={momentum} needs a momentum_buf")
        sctype = _state_ctype(k, param, "momentum_buf", momentum_buf)
        _check_outputs(
            k, {"param": (param, None), "momentum_buf": (momentum_buf, None)}, {"grad": grad}
        )
        buf = momentum_buf
    else:
        _check_outputs(k, {"param": (param, None)}, {"grad": grad})
    if param.size == 0:
        return
    grid, block = _grid_1d(param.size)
    _fn("optim.cu", f"sgd_step<{ctype}, {sctype}>")(
        grid,
        block,
        (
            param,
            grad,
            buf,
            np.int64(param.size),
            np.float64(lr),
            np.float64(momentum),
            np.float64(weight_decay),
            np.int32(bool(nesterov)),
        ),
    )


def adam_step(
    param: Any,
    grad: Any,
    m: Any,
    v: Any,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    step: int,
    decoupled: bool,
) -> None:
    """In-place Adam (decoupled=False, L2 added to the gradient) or AdamW
    (decoupled=True, p *= 1 - lr*wd) step with bias correction; ``step`` is 1-based."""
    k = "adam_step"
    _check_array(k, "param", param)
    ctype = _float_ctype(k, "param", param)
    _check_array(k, "grad", grad, param.shape, param.dtype)
    sctype = _state_ctype(k, param, "m", m)
    if _state_ctype(k, param, "v", v) != sctype:
        raise DTypeError(f"{k}: m {_desc(m)} and v {_desc(v)} must share a dtype")
    if int(step) < 1:
        raise ValueError(f"{k}: step is 1-based, got {step}")
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise ValueError(f"{k}: betas must lie in [0, 1), got ({beta1}, {beta2})")
    _check_outputs(k, {"param": (param, None), "m": (m, None), "v": (v, None)}, {"grad": grad})
    if param.size == 0:
        return
    bc1 = 1.0 - beta1 ** int(step)
    bc2 = 1.0 - beta2 ** int(step)
    grid, block = _grid_1d(param.size)
    _fn("optim.cu", f"adam_step<{ctype}, {sctype}>")(
        grid,
        block,
        (
            param,
            grad,
            m,
            v,
            np.int64(param.size),
            np.float64(lr),
            np.float64(beta1),
            np.float64(beta2),
            np.float64(eps),
            np.float64(weight_decay),
            np.float64(lr / bc1),
            np.float64(1.0 / math.sqrt(bc2)),
            np.int32(bool(decoupled)),
        ),
    )
