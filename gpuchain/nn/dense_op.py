"""The fused dense layer: a = act(x @ W + b) as ONE registered op ("dense").

Forward: one GEMM into a fresh buffer, then bias and activation in place (one CUDA
epilogue kernel on CuPy). Saved: the inputs, the output, and for activations whose
derivative needs it (gelu, gelu_tanh, silu, softplus) the pre-activation z as a residual.

Backward has two paths:
- fast (no graph being recorded, no forward-mode level, no batch axes on the cotangent):
  raw arrays, dz = g * act' into one buffer, db = column sums, dW = xᵀ dz and
  dx = dz Wᵀ as GEMMs into preallocated outputs (a parameter's flat-buffer gradient slot
  when free, so the optimizer needs no copy);
- composed: the same formulas with gpuchain ops, so a Hessian through dense works.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.mode import state
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.nn import _activations as act
from gpuchain.nn.parameter import grad_out_buffer
from gpuchain.ops import matmul
from gpuchain.ops._rules import const_like, lin


@defop("dense", save="both", residuals=True)
def dense_op(xp: Any, x: Any, W: Any, *b: Any, activation: str = "identity",
             slope: float = 0.01) -> tuple[Any, Any]:
    z = xp.matmul(x, W)
    if b:
        z += b[0]
    if activation in act.SAVES_OUTPUT:
        return act.forward_array(xp, z, activation, slope), None
    return act.forward_array(xp, z, activation, slope), z


@dense_op.cuda
def _(xp: Any, x: Any, W: Any, *b: Any, activation: str = "identity",
      slope: float = 0.01) -> tuple[Any, Any]:
    from gpuchain.cuda import kernels

    z = xp.matmul(x, W)
    bias = b[0] if b else None
    if activation in kernels.SAVES_OUTPUT:
        kernels.bias_act_forward(z, bias, activation, slope, z, False)
        return z, None
    a = xp.empty_like(z)
    kernels.bias_act_forward(z, bias, activation, slope, a, True)  # z <- z + b
    return a, z


def _fast_path_ok(g: Tensor, out_shape: tuple[int, ...]) -> bool:
    return not state.grad_enabled and state.fw_level is None and g.shape == out_shape


def _preact(ctx: Any) -> Tensor:
    """z = x W + b as a differentiable Tensor (recomputed; only the composed paths need it)."""
    x, W = ctx.inputs[0], ctx.inputs[1]
    z = matmul(x, W)
    return z + ctx.inputs[2] if len(ctx.inputs) > 2 else z


def _deriv(ctx: Any, name: str, slope: float) -> Tensor | None:
    if name in act.SAVES_OUTPUT:
        return act.deriv_from_output(ctx.out, name, slope)
    return act.deriv_from_preact(_preact(ctx), name)


@dense_op.vjp
def _(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
    name, slope = ctx.params["activation"], ctx.params["slope"]
    out = ctx.out
    if _fast_path_ok(g, out.shape):
        return _fast_vjp(ctx, g.data, out.data, name, slope)
    x, W = ctx.inputs[0], ctx.inputs[1]
    d = _deriv(ctx, name, slope)
    dz = g if d is None else g * d
    dx = matmul(dz, W.T) if ctx.needs_grad(0) else None
    dW = matmul(x.swapaxes(-1, -2), dz) if ctx.needs_grad(1) else None
    grads = (dx, dW)
    if len(ctx.inputs) > 2:
        grads += (dz.sum(axis=-2) if ctx.needs_grad(2) else None,)
    return grads


def _fast_vjp(ctx: Any, g: Any, a: Any, name: str, slope: float) -> tuple[Any, ...]:
    x, W = ctx.inputs[0], ctx.inputs[1]
    xp = array_module_of(g)
    n_in, n_out = W.data.shape
    g2 = g.reshape(-1, n_out)
    has_b = len(ctx.inputs) > 2
    db = grad_out_buffer(ctx.inputs[2], xp) if has_b and ctx.needs_grad(2) else None
    saved = a if name in act.SAVES_OUTPUT else ctx.residuals
    saved = saved.reshape(-1, n_out)
    if xp is np:
        dz = g2 if name == "identity" else act.grad_array(np, g2, saved, name, slope,
                                                           np.empty_like(g2))
        if db is not None:
            np.sum(dz, axis=0, out=db)
    else:
        from gpuchain.cuda import kernels

        g2 = xp.ascontiguousarray(g2)
        dz = xp.empty_like(g2)
        kernels.act_grad_bias(g2, xp.ascontiguousarray(saved), name, slope, dz, db)
    dx = dW = None
    if ctx.needs_grad(1):
        x2 = x.data.reshape(-1, n_in)
        dW = Tensor(xp.matmul(x2.T, dz, out=grad_out_buffer(W, xp)))
    if ctx.needs_grad(0):
        dx = xp.matmul(dz, W.data.T, out=xp.empty((dz.shape[0], n_in), dtype=dz.dtype))
        dx = Tensor(dx.reshape(x.data.shape))
    grads = (dx, dW)
    if has_b:
        grads += (None if db is None else Tensor(db),)
    return grads


@dense_op.jvp
def _(ctx: Any, tangents: list[Tensor | None]) -> Tensor | None:
    name, slope = ctx.params["activation"], ctx.params["slope"]
    x, W = ctx.inputs[0], ctx.inputs[1]
    xdot, Wdot = tangents[0], tangents[1]
    bdot = tangents[2] if len(tangents) > 2 else None
    if bdot is not None:  # (*batch, out) -> (*batch, 1, ..., out) to broadcast over rows
        bdot = bdot.reshape(bdot.shape[:-1] + (1,) * (x.ndim - 1) + bdot.shape[-1:])
    zdot = lin(None if xdot is None else matmul(xdot, W),
               None if Wdot is None else matmul(x, Wdot), bdot)
    if zdot is None:
        return None
    recording = state.grad_enabled and any(t.requires_grad for t in ctx.inputs)
    if (not recording and name not in act.SAVES_OUTPUT and state.fw_batch_ndim == 0
            and zdot.shape == ctx.residuals.shape
            and array_module_of(ctx.residuals) is not np):
        return _cuda_jvp_epilogue(ctx.residuals, zdot.data, name, slope)
    if name in act.SAVES_OUTPUT or recording:
        d = _deriv(ctx, name, slope)
    else:
        d = act.deriv_from_preact(const_like(ctx.residuals, zdot), name)
    adot = zdot if d is None else zdot * d
    out_shape = ctx.out.shape
    if adot.shape[adot.ndim - len(out_shape):] != out_shape:  # only bdot contributed
        adot = adot.broadcast_to(adot.shape[:adot.ndim - len(out_shape)] + out_shape)
    return adot


def _cuda_jvp_epilogue(z: Any, zdot: Any, name: str, slope: float) -> Tensor:
    """adot = act'(z) * zdot in one kernel; z is the saved pre-activation (bias included)."""
    import cupy

    from gpuchain.cuda import kernels

    zdot = cupy.ascontiguousarray(zdot)
    adot = cupy.empty_like(zdot)
    scratch = cupy.empty_like(z)  # the kernel also writes a = act(z); z must stay intact
    kernels.dense_jvp_epilogue(z, None, zdot, None, name, slope, scratch, adot)
    return Tensor(adot)


def dense(x: Any, W: Any, b: Any = None, activation: str | None = None,
          slope: float = 0.01) -> Tensor:
    """act(x @ W + b) as one fused op. ``x``: (..., in), ``W``: (in, out), ``b``: (out,) or
    None. ``activation``: None/"identity", relu, leaky_relu (negative-side ``slope`` >= 0),
    sigmoid, tanh, gelu, gelu_tanh, silu, softplus."""
    name = act.normalize(activation)
    inputs = coerce_inputs((x, W) if b is None else (x, W, b))
    _check(inputs, name, slope)
    return dense_op(*inputs, activation=name, slope=float(slope))


def _check(inputs: tuple[Tensor, ...], name: str, slope: float) -> None:
    x, W = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    desc = ", ".join(f"{n} {t.dtype}{tuple(t.shape)}"
                     for n, t in zip(("x", "W", "b"), inputs, strict=False))
    if W.ndim != 2 or x.ndim < 1 or x.shape[-1] != W.shape[0] or (
            b is not None and b.shape != (W.shape[1],)):
        raise ShapeError(f"dense: expected x (..., in), W (in, out), b (out,); got {desc}")
    if x.ndim == 1:
        raise ShapeError(f"dense: x must have a batch axis, (batch, in); got {desc} "
                         "(use x.reshape(1, -1) for one sample)")
    dtypes = {t.dtype for t in inputs}
    if len(dtypes) != 1 or W.dtype.kind != "f":
        raise DTypeError(f"dense: x, W and b must share one floating dtype; got {desc}")
    if name == "leaky_relu" and not slope >= 0:
        raise ValueError(f"dense: leaky_relu needs slope >= 0 (its derivative is read from "
                         f"the output), got {slope}")
