"""Matrix products (cuBLAS on CuPy, BLAS on NumPy)."""

from __future__ import annotations

from gpuchain.engine.op import defop
from gpuchain.ops._rules import lin


def _swap(x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return x.transpose(*axes)


# Operands here are at least 2-D (gc.matmul promotes vectors with reshapes, so the rules
# never special-case them). Marked elementwise so forward mode aligns the stacking axes
# of a lower-rank operand's tangent with the output, as it does for broadcasting.
@defop("matmul", elementwise=True)
def matmul(xp, a, b):
    if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:
        # A stack of matrices times one matrix is one GEMM over the stacked rows (NumPy
        # would loop one GEMM per matrix): the shape batched cotangents and tangents take.
        return xp.matmul(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[1:])
    return xp.matmul(a, b)


@matmul.vjp
def _(ctx, g):
    a, b = ctx.inputs
    ga = g @ _swap(b) if ctx.needs_grad(0) else None
    gb = _swap(a) @ g if ctx.needs_grad(1) else None
    return ga, gb


@matmul.jvp
def _(ctx, t):
    a, b = ctx.inputs
    return lin(None if t[0] is None else t[0] @ b, None if t[1] is None else a @ t[1])
