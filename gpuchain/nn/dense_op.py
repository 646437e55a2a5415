"""The fused dense layer: a = act(x @ W + b) as ONE registered op ("dense").

Forward: one GEMM into a fresh buffer, then bias and activation (one CUDA epilogue
kernel on CuPy). Saved: the inputs, the output, and for activations whose derivative
needs it (those whose primitive does not save its output) the pre-activation z as a
residual, with the activation primitive's own residuals on NumPy (gelu: Φ(z), which its
raw backward reads instead of computing erf again). The activation's math is its
elementwise primitive's (forward, ``deriv`` and raw backward), used here on arrays and
on Tensors alike.

Backward:
- raw (the engine picks it when no graph is recorded, no forward level is active and the
  cotangent has no batch axes): dz = g * act' into one buffer, db = column sums,
  dW = xᵀ dz and dx = dz Wᵀ as GEMMs into preallocated outputs (a parameter's
  flat-buffer gradient slot when free, so the optimizer needs no copy);
- differentiable: the same formulas with gpuchain ops, so a Hessian through dense works.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.nn import _activations as act
from gpuchain.nn.parameter import input_grad_buffer
from gpuchain.ops import matmul
from gpuchain.ops._rules import lin


def _saves_output(name: str) -> bool:
    return name in act.SAVES_OUTPUT


@defop("dense", save="both", residuals=True)
def dense_op(xp: Any, x: Any, W: Any, *b: Any, activation: str = "identity",
             slope: float = 0.01) -> tuple[Any, Any]:
    z = xp.matmul(x, W)
    if b:
        z += b[0]
    a, act_res = act.forward_array(xp, z, activation, slope)
    # residuals: z when the derivative reads it, with the activation's own residuals
    return a, (None if _saves_output(activation) else (z, act_res))


@dense_op.cuda
def _(xp: Any, x: Any, W: Any, *b: Any, activation: str = "identity",
      slope: float = 0.01) -> tuple[Any, Any]:
    from gpuchain.cuda import kernels

    z = xp.matmul(x, W)
    bias = b[0] if b else None
    if _saves_output(activation):
        kernels.bias_act_forward(z, bias, activation, slope, z, False)
        return z, None
    a = xp.empty_like(z)
    kernels.bias_act_forward(z, bias, activation, slope, a, True)  # z <- z + b
    return a, (z, None)


def _preact(ctx: Any) -> Tensor:
    """z = x W + b as a differentiable Tensor (recomputed; only the composed paths need it)."""
    x, W = ctx.inputs[0], ctx.inputs[1]
    z = matmul(x, W)
    return z + ctx.inputs[2] if len(ctx.inputs) > 2 else z


def _act_deriv(name: str, saved: Tensor, slope: float) -> Tensor | None:
    """act'(z) from what the activation reads (the output a, or z); None means 1."""
    prim = act.primitive(name)
    return None if prim is None else prim.partials(saved, slope=slope)


def _deriv(ctx: Any, name: str, slope: float) -> Tensor | None:
    saved = ctx.out if _saves_output(name) else _preact(ctx)
    return _act_deriv(name, saved, slope)


@dense_op.vjp
def _(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
    name, slope = ctx.params["activation"], ctx.params["slope"]
    x, W = ctx.inputs[0], ctx.inputs[1]
    d = _deriv(ctx, name, slope)
    dz = g if d is None else g * d
    dx = matmul(dz, W.T) if ctx.needs_grad(0) else None
    dW = matmul(x.swapaxes(-1, -2), dz) if ctx.needs_grad(1) else None
    grads: tuple[Tensor | None, ...] = (dx, dW)
    if len(ctx.inputs) > 2:
        grads += (dz.sum(axis=-2) if ctx.needs_grad(2) else None,)
    return grads


@dense_op.raw_vjp(fresh=(0,))
def _(ctx: Any, g: Any) -> tuple[Any, ...]:
    name, slope = ctx.params["activation"], ctx.params["slope"]
    x, W = ctx.inputs[0], ctx.inputs[1]
    xp = array_module_of(g)
    n_in, n_out = W._data.shape
    g2 = g.reshape(-1, n_out)
    has_b = len(ctx.inputs) > 2
    db = input_grad_buffer(ctx.inputs[2], xp) if has_b and ctx.needs_grad(2) else None
    z, act_res = (None, None) if _saves_output(name) else ctx.residuals
    saved = (ctx.out._data if z is None else z).reshape(-1, n_out)
    # the node lets go of z, the activation's residuals and a (the locals hold what dz
    # needs; the GEMMs below need only x and W)
    ctx.drop_residuals()
    if xp is np:
        # a cotangent only the engine holds takes dz in place: one activation less
        dz = act.grad_array(name, saved, None if act_res is None else act_res.reshape(
            saved.shape), g2, slope, owned=ctx.grad_owned)
        if db is not None:
            np.sum(dz, axis=0, out=db)
    else:
        from gpuchain.cuda import kernels

        g2 = xp.ascontiguousarray(g2)
        dz = g2 if ctx.grad_owned else xp.empty_like(g2)  # the kernel allows dz = g
        kernels.act_grad_bias(g2, xp.ascontiguousarray(saved), name, slope, dz, db)
    del saved, z, act_res
    dx = dW = None
    if ctx.needs_grad(1):
        x2 = x._data.reshape(-1, n_in)
        dW = xp.matmul(x2.T, dz, out=input_grad_buffer(W, xp))
    if ctx.needs_grad(0):
        dx = xp.matmul(dz, W._data.T, out=xp.empty((dz.shape[0], n_in), dtype=dz.dtype))
        dx = dx.reshape(x._data.shape)
    return (dx, dW, db) if has_b else (dx, dW)


@dense_op.jvp
def _(ctx: Any, tangents: list[Tensor | None]) -> Tensor | None:
    x, W = ctx.inputs[0], ctx.inputs[1]
    xdot, Wdot = tangents[0], tangents[1]
    bdot = tangents[2] if len(tangents) > 2 else None
    if bdot is not None:  # (*batch, out) -> (*batch, 1, ..., out) to broadcast over rows
        bdot = bdot.reshape(bdot.shape[:-1] + (1,) * (x.ndim - 1) + bdot.shape[-1:])
    zdot = lin(None if xdot is None else matmul(xdot, W),
               None if Wdot is None else matmul(x, Wdot), bdot)
    if zdot is None:
        return None
    d = _deriv(ctx, ctx.params["activation"], ctx.params["slope"])
    return zdot if d is None else zdot * d


@dense_op.raw_jvp
def _(ctx: Any, tangents: list[Any]) -> Any:
    name, slope = ctx.params["activation"], ctx.params["slope"]
    x, W = ctx.inputs[0]._data, ctx.inputs[1]._data
    xp = array_module_of(x)
    parts = (xp.matmul(tangents[0], W) if tangents[0] is not None else None,
             xp.matmul(x, tangents[1]) if tangents[1] is not None else None,
             tangents[2] if len(tangents) > 2 else None)
    zdot = None
    for part in parts:
        if part is not None:
            zdot = part if zdot is None else zdot + part
    if zdot is None:
        return None
    z = None if _saves_output(name) else ctx.residuals[0]
    if xp is not np and z is not None:
        return _cuda_jvp_epilogue(z, xp.broadcast_to(zdot, ctx.out.shape), name, slope)
    saved = ctx.out._data if z is None else z
    d = _act_deriv(name, Tensor._from_op(saved, None), slope)
    return zdot if d is None else zdot * d._data


def _cuda_jvp_epilogue(z: Any, zdot: Any, name: str, slope: float) -> Any:
    """adot = act'(z) * zdot in one kernel; z is the saved pre-activation (bias included)."""
    import cupy

    from gpuchain.cuda import kernels

    zdot = cupy.ascontiguousarray(zdot)
    adot = cupy.empty_like(zdot)
    scratch = cupy.empty_like(z)  # the kernel also writes a = act(z); z must stay intact
    kernels.dense_jvp_epilogue(z, None, zdot, None, name, slope, scratch, adot)
    return adot


def dense(x: Any, W: Any, b: Any = None, activation: str | None = None,
          slope: float = 0.01) -> Tensor:
    """act(x @ W + b) as one fused op.

    Parameters
    ----------
    x : Tensor, shape (..., in)
        Inputs with at least one batch axis.
    W : Tensor, shape (in, out)
        Weights.
    b : Tensor, shape (out,), optional
        Bias.
    activation : str or None
        None/"identity", relu, leaky_relu (negative-side ``slope`` >= 0), sigmoid, tanh,
        gelu, gelu_tanh, silu or softplus.
    slope : float
        leaky_relu's negative-side slope.

    Returns
    -------
    Tensor, shape (..., out)
        The layer's output; differentiable in x, W and b, in both modes, to any order.
    """
    name = act.normalize(activation)
    inputs = coerce_inputs((x, W) if b is None else (x, W, b))
    _check(inputs, name, slope)
    return dense_op(*inputs, activation=name, slope=float(slope))


def _describe(inputs: tuple[Tensor, ...]) -> str:
    return ", ".join(f"{n} {t.dtype}{tuple(t.shape)}" for n, t in zip(("x", "W", "b"), inputs))


def _check(inputs: tuple[Tensor, ...], name: str, slope: float) -> None:
    # The message is built only when a check fails: this runs on every call.
    x, W = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    if W.ndim != 2 or x.ndim < 1 or x.shape[-1] != W.shape[0] or (
            b is not None and b.shape != (W.shape[1],)):
        raise ShapeError(f"dense: expected x (..., in), W (in, out), b (out,); got "
                         f"{_describe(inputs)}")
    if x.ndim == 1:
        raise ShapeError(f"dense: x must have a batch axis, (batch, in); got "
                         f"{_describe(inputs)} (use x.reshape(1, -1) for one sample)")
    dtype = W.dtype
    if dtype.kind != "f" or x.dtype != dtype or (b is not None and b.dtype != dtype):
        raise DTypeError(f"dense: x, W and b must share one floating dtype; got "
                         f"{_describe(inputs)}")
    if name == "leaky_relu" and not slope >= 0:
        raise ValueError(f"dense: leaky_relu needs slope >= 0 (its derivative is read from "
                         f"the output), got {slope}")
