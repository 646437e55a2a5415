"""Layer normalization as one fused primitive ("layer_norm") and the LayerNorm module.

    y = (x - mean) / sqrt(var + eps) * weight + bias      over the last axis

Forward saves the inputs plus the per-row mean and 1/sqrt(var + eps). Backward:
- raw (no graph recorded): one pass per row, dx = rstd·(gw - mean(gw) - x̂·mean(gw·x̂))
  with gw = g·weight, and dweight = Σ g·x̂, dbias = Σ g over rows, written into the
  parameters' flat-buffer gradient slots when free; a CUDA kernel for each direction on
  CuPy (kernels/layernorm.cu);
- differentiable: the same formulas with gpuchain ops, so second derivatives work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, get_default_dtype
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import ShapeError
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter, input_grad_buffer


def _forward_np(xp: Any, x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any]:
    if x.dtype == np.float16:  # statistics in float32, as the CUDA kernel does
        y, (mean, rstd) = _forward_np(xp, x.astype(np.float32), w.astype(np.float32),
                                      b.astype(np.float32), eps)
        return y.astype(np.float16), (mean.astype(np.float16), rstd.astype(np.float16))
    inv_n = x.dtype.type(1.0 / x.shape[-1]) if x.shape[-1] else x.dtype.type(np.nan)
    mean = _row_sums(xp, x)[..., None]
    mean *= inv_n
    xc = x - mean
    var = xp.einsum("...j,...j->...", xc, xc)[..., None]  # no x² temporary
    var *= inv_n
    var += x.dtype.type(eps)
    rstd = xp.sqrt(var, out=var)
    xp.reciprocal(rstd, out=rstd)
    y = xc
    y *= rstd
    y *= w
    y += b
    return y, (mean, rstd)


@defop("layer_norm", save="inputs", residuals=True)
def layer_norm_p(xp: Any, x: Any, w: Any, b: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    return _forward_np(xp, x, w, b, eps)


@layer_norm_p.cuda
def _(xp: Any, x: Any, w: Any, b: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    from gpuchain.cuda import norm_kernels

    n = x.shape[-1]
    x2 = xp.ascontiguousarray(x).reshape(-1, n)
    y = xp.empty_like(x2)
    rows = x2.shape[0]
    mean = xp.empty(rows, dtype=x.dtype)
    rstd = xp.empty(rows, dtype=x.dtype)
    norm_kernels.layernorm_forward(x2, xp.ascontiguousarray(w), xp.ascontiguousarray(b),
                                   float(eps), y, mean, rstd)
    lead = x.shape[:-1] + (1,)
    return y.reshape(x.shape), (mean.reshape(lead), rstd.reshape(lead))


def _row_sums(xp: Any, x: Any) -> Any:
    """Sums over the last axis as a matrix-vector product (BLAS: about 3x NumPy's
    reduction along rows)."""
    return xp.matmul(x, xp.ones(x.shape[-1], dtype=x.dtype))


def _row_axes(ndim: int) -> tuple[int, ...]:
    """Every axis but the last, counted from the right (cotangents may carry batch axes)."""
    return tuple(range(-ndim, -1))


@layer_norm_p.vjp
def _(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
    x, w = ctx.inputs[0], ctx.inputs[1]
    eps = ctx.params["eps"]
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    rstd = ((xc * xc).mean(axis=-1, keepdims=True) + eps) ** -0.5
    xhat = xc * rstd
    dx = dw = db = None
    if ctx.needs_grad(0):
        gw = g * w
        dx = rstd * (gw - gw.mean(axis=-1, keepdims=True)
                     - xhat * (gw * xhat).mean(axis=-1, keepdims=True))
    axes = _row_axes(x.ndim)
    if ctx.needs_grad(1):
        dw = (g * xhat).sum(axis=axes) if axes else g * xhat
    if ctx.needs_grad(2):
        db = g.sum(axis=axes) if axes else g
    return dx, dw, db


@layer_norm_p.raw_vjp(fresh=(0,))
def _(ctx: Any, g: Any) -> tuple[Any, ...]:
    x, w, b = ctx.inputs
    mean, rstd = ctx.residuals
    xp = array_module_of(g)
    n = x.shape[-1]
    dw = input_grad_buffer(w, xp) if ctx.needs_grad(1) else None
    db = input_grad_buffer(b, xp) if ctx.needs_grad(2) else None
    if xp is not np:
        from gpuchain.cuda import norm_kernels

        g2 = xp.ascontiguousarray(g).reshape(-1, n)
        dx = xp.empty_like(g2)
        norm_kernels.layernorm_backward(g2, xp.ascontiguousarray(x._data).reshape(-1, n),
                                        xp.ascontiguousarray(w._data), mean.reshape(-1),
                                        rstd.reshape(-1), dx,
                                        xp.empty(n, g.dtype) if dw is None else dw,
                                        xp.empty(n, g.dtype) if db is None else db)
        return (dx.reshape(x.shape) if ctx.needs_grad(0) else None), dw, db
    xhat = x._data - mean
    xhat *= rstd
    g2 = g.reshape(-1, n)
    if db is not None:
        np.sum(g2, axis=0, out=db)
    if not ctx.needs_grad(0):
        if dw is not None:
            np.einsum("ij,ij->j", g2, xhat.reshape(-1, n), out=dw)
        return None, dw, db
    # g·x̂ once: its column sums are dweight, its rows times weight give mean(gw·x̂)
    gx = g * xhat
    if dw is not None:
        np.sum(gx.reshape(-1, n), axis=0, out=dw)
    wd = w._data
    c1 = np.matmul(gx, wd)[..., None]
    c1 *= 1.0 / n
    c2 = np.matmul(g, wd)[..., None]  # mean(gw) as a matrix-vector product
    c2 *= 1.0 / n
    xhat *= c1
    gw = np.multiply(g, wd, out=gx)
    gw -= c2
    gw -= xhat
    gw *= rstd
    return gw, dw, db


@layer_norm_p.jvp
def _(ctx: Any, tangents: list[Tensor | None]) -> Tensor | None:
    x, w = ctx.inputs[0], ctx.inputs[1]
    xdot, wdot, bdot = tangents
    eps = ctx.params["eps"]
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    rstd = ((xc * xc).mean(axis=-1, keepdims=True) + eps) ** -0.5
    xhat = xc * rstd
    out = None
    if xdot is not None:
        xhat_dot = rstd * (xdot - xdot.mean(axis=-1, keepdims=True)
                           - xhat * (xdot * xhat).mean(axis=-1, keepdims=True))
        out = xhat_dot * w
    if wdot is not None:
        term = xhat * _lift(wdot, x.ndim)
        out = term if out is None else out + term
    if bdot is not None:
        term = _lift(bdot, x.ndim)
        out = term if out is None else out + term
    return out


def _lift(t: Tensor, ndim: int) -> Tensor:
    """A (*batch, n) tangent of weight or bias, shaped to broadcast over x's rows."""
    return t.reshape(t.shape[:-1] + (1,) * (ndim - 1) + t.shape[-1:])


def layer_norm(x: Any, normalized_shape: int | Sequence[int], weight: Any = None,
               bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the trailing ``normalized_shape`` axes, as
    ``torch.nn.functional.layer_norm``.

    Parameters
    ----------
    x : Tensor or array of shape ``(..., *normalized_shape)``
    normalized_shape : int or tuple of int
    weight, bias : Tensor or array of shape ``normalized_shape``, optional
        Scale (default 1) and shift (default 0).
    eps : float
        Added to the variance.
    """
    if not isinstance(x, Tensor):
        x = coerce_inputs((x,))[0]
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
        tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[-k:]) != shape:
        raise ShapeError(f"layer_norm: input {x.dtype}{tuple(x.shape)} does not end in "
                         f"normalized_shape {shape}")
    n = math.prod(shape)
    xp = array_module_of(x._data)
    w = Tensor(xp.ones(n, dtype=x.dtype)) if weight is None else weight
    b = Tensor(xp.zeros(n, dtype=x.dtype)) if bias is None else bias
    w, b = coerce_inputs((w, b))
    for name, t in (("weight", w), ("bias", b)):
        if t.size != n:
            raise ShapeError(f"layer_norm: {name} {tuple(t.shape)} does not match "
                             f"normalized_shape {shape}")
    flat = k > 1
    if flat:
        x2 = x.reshape(tuple(x.shape[:-k]) + (n,))
        w, b = w.reshape((n,)), b.reshape((n,))
    else:
        x2 = x
        if w.ndim != 1:
            w, b = w.reshape((n,)), b.reshape((n,))
    y = layer_norm_p(x2, w, b, eps=float(eps))
    return y.reshape(tuple(x.shape)) if flat else y


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes, then scale and shift, as
    ``torch.nn.LayerNorm`` (weight starts at 1, bias at 0).

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing axes normalized over.
    eps : float
        Added to the variance.
    elementwise_affine : bool
        Learn a scale (``weight``) and, with ``bias``, a shift.
    bias : bool
        Learn the shift.
    dtype : dtype, optional
        Parameter dtype (default: ``gc.get_default_dtype()``).
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
            tuple(normalized_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                            or s < 1 for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got "
                             f"{normalized_shape!r}")
        if not (isinstance(eps, (int, float)) and eps > 0 and math.isfinite(eps)):
            raise ValueError(f"LayerNorm: eps must be a finite number > 0, got {eps!r}")
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps = float(eps)
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if \
            elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if \
            elementwise_affine and bias else None
        self.flat_buffers()

    def forward(self, x: Any) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
