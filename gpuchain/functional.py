"""Function transforms: grad, value_and_grad, vjp, jvp, jacobian, jacfwd, hessian, hvp.

Each argument being differentiated gets its own fresh graph node, so a transform
computes partial derivatives with respect to its arguments even when they are
related outside ``f``, and transforms nest (``grad(grad(f))``, ``jacfwd(grad(f))``).
An inner reverse pass records its own graph only when an outer transform is
differentiating through it (an argument already requires grad).

Jacobians are vectorized: a whole batch of basis cotangents (reverse) or tangents
(forward) travels through the graph at once as an extra leading axis, so a matmul
turns it into one GEMM; ``chunk_size`` bounds the memory this takes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from gpuchain.backend import array_module_of
from gpuchain.engine.backward import backward
from gpuchain.engine.mode import enable_grad, forward_level, state
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.ops import concatenate, reshape, transpose
from gpuchain.ops.shape import identity

_MISSING = object()


def _argnums_tuple(argnums: int | Sequence[int], nargs: int, fn: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(f"{fn}: argnums={argnums!r} is out of range for a function "
                             f"called with {nargs} positional argument(s)")
    return tuple(n % nargs for n in nums)


def _fresh(x: Any) -> Tensor:
    """A new node for argument x: connected to x's graph and tangent if it has them."""
    (t,) = coerce_inputs((x,))
    if t.dtype.kind not in "fc":
        raise DTypeError(f"cannot differentiate with respect to an argument of dtype {t.dtype}"
                         f" (shape {t.shape}); pass a floating array")
    if t.requires_grad:
        return identity(t)
    fresh = Tensor._from_op(t.data, None)
    fresh.requires_grad = True
    fresh._fw = t._fw
    return fresh


def _needs_graph(args: Sequence[Tensor]) -> bool:
    """An outer transform is differentiating through this one."""
    return state.grad_enabled and any(a.requires_grad and not a.is_leaf for a in args)


def _zeros_like(x: Tensor, batch: tuple[int, ...] = ()) -> Tensor:
    xp = array_module_of(x.data)
    return Tensor(xp.zeros(batch + x.shape, dtype=x.dtype))


def _split_aux(result: Any, has_aux: bool, fn: str) -> tuple[Tensor, Any]:
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ValueError(f"{fn}(has_aux=True): f must return (output, aux)")
        return result
    return result, None


def _call_with_fresh(args: tuple, nums: tuple[int, ...]
                     ) -> tuple[list[Any], list[Tensor]]:
    args = list(args)
    fresh = []
    for n in nums:
        args[n] = _fresh(args[n])
        fresh.append(args[n])
    return args, fresh


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
                   ) -> Callable[..., tuple[Any, Any]]:
    """``f`` -> function returning ``(f(*args), gradient)``; f must return a scalar."""

    @functools.wraps(f)
    def wrapped(*args: Any) -> tuple[Any, Any]:
        nums = _argnums_tuple(argnums, len(args), "grad")
        call_args, fresh = _call_with_fresh(args, nums)
        with enable_grad():  # a transform records its own graph even inside no_grad
            out, aux = _split_aux(f(*call_args), has_aux, "grad")
        if not isinstance(out, Tensor) or out.size != 1:
            shape = getattr(out, "shape", type(out).__name__)
            raise ShapeError(f"grad: f must return a scalar Tensor, got {shape}; use vjp or "
                             "jacobian for non-scalar outputs")
        create = _needs_graph(fresh)
        grads = backward([out], [None], targets=fresh, create_graph=create,
                         retain_graph=create)
        grads = [g if g is not None else _zeros_like(x) for g, x in zip(grads, fresh)]
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = out if create else out.detach()
        return ((value, aux), g) if has_aux else (value, g)

    return wrapped


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
         ) -> Callable[..., Any]:
    """``f`` -> function returning the gradient of scalar ``f`` w.r.t. ``args[argnums]``."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        (value, g) = vg(*args)
        if has_aux:
            return g, value[1]
        return g

    return wrapped


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns one cotangent per primal
    and may be called any number of times."""
    call_args, fresh = _call_with_fresh(primals, tuple(range(len(primals))))
    with enable_grad():
        out, aux = _split_aux(f(*call_args), has_aux, "vjp")
    create = _needs_graph(fresh)

    def vjp_fn(cotangent: Any) -> tuple[Tensor, ...]:
        (ct,) = coerce_inputs((cotangent,)) if not isinstance(cotangent, Tensor) else (
            cotangent,)
        if ct.shape != out.shape:
            raise ShapeError(f"vjp: cotangent has shape {ct.shape} but the output has shape "
                             f"{out.shape}")
        grads = backward([out], [ct.astype(out.dtype)], targets=fresh, retain_graph=True,
                         create_graph=create)
        return tuple(g if g is not None else _zeros_like(x) for g, x in zip(grads, fresh))

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def _check_tangent(primal: Tensor, tangent: Any, batch: tuple[int, ...], fn: str) -> Tensor:
    (t,) = coerce_inputs((tangent,)) if not isinstance(tangent, Tensor) else (tangent,)
    if t.shape != batch + primal.shape or t.dtype != primal.dtype:
        raise ShapeError(
            f"{fn}: tangent {t.dtype}{tuple(t.shape)} does not match its primal "
            f"{primal.dtype}{tuple(primal.shape)}; a tangent must have the primal's shape and "
            "dtype")
    return t


def _forward_pass(f: Callable, primals: Sequence[Any], tangents: Sequence[Any],
                  batch: tuple[int, ...], fn: str) -> tuple[Any, Tensor]:
    if len(primals) != len(tangents):
        raise ValueError(f"{fn}: got {len(primals)} primals but {len(tangents)} tangents")
    with forward_level(batch_ndim=len(batch)) as level:
        args = []
        for p, tan in zip(primals, tangents):
            (pt,) = coerce_inputs((p,))
            tan = _check_tangent(pt, tan, batch, fn)
            x = identity(pt) if pt.requires_grad else Tensor._from_op(pt.data, None)
            x._fw = (level, tan)
            args.append(x)
        out = f(*args)
        if not isinstance(out, Tensor):
            raise TypeError(f"{fn}: f must return a Tensor, got {type(out).__name__}")
        tangent_out = out._fw[1] if out._fw is not None and out._fw[0] == level else None
    if tangent_out is None:
        tangent_out = _zeros_like(out, batch)
    elif tangent_out.shape != batch + out.shape:
        tangent_out = tangent_out.broadcast_to(batch + out.shape)
    out._fw = None
    return out, tangent_out


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Tensor, Tensor]:
    """``(f(*primals), J·tangents)`` in one forward pass: each op's JVP rule runs next to
    its forward and no tape is kept."""
    return _forward_pass(f, tuple(primals), tuple(tangents), (), "jvp")


def _basis(n: int, like: Tensor, start: int, stop: int) -> Any:
    xp = array_module_of(like.data)
    e = xp.zeros((stop - start, n), dtype=like.dtype)
    e[xp.arange(stop - start), xp.arange(start, stop)] = 1
    return e


def _chunks(n: int, chunk_size: int | None) -> list[tuple[int, int]]:
    step = n if not chunk_size else max(1, int(chunk_size))
    return [(i, min(n, i + step)) for i in range(0, n, step)] or [(0, 0)]


def _row_shapes(x: Tensor, out: Tensor, batch_axis: int | None, fn: str
                ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    if batch_axis is None:
        return (), x.shape, out.shape
    if batch_axis != 0:
        raise ValueError(f"{fn}: batch_axis must be 0 or None (move the batch axis first)")
    if out.ndim == 0 or out.shape[0] != x.shape[0]:
        raise ShapeError(f"{fn}(batch_axis=0): output shape {out.shape} has no batch axis "
                         f"matching the input's {x.shape[0]} rows")
    return x.shape[:1], x.shape[1:], out.shape[1:]


def jacobian(f: Callable, x: Any = _MISSING, *, chunk_size: int | None = None,
             batch_axis: int | None = None) -> Any:
    """Reverse-mode Jacobian of ``f`` at ``x``: shape ``out.shape + x.shape``.

    With ``batch_axis=0`` and a row-wise ``f``, the per-sample Jacobians, shape
    ``(B, *out_row, *in_row)``, without building the mostly-zero full Jacobian. Called
    without ``x`` it returns the Jacobian function.
    """
    if x is _MISSING:
        return lambda x: jacobian(f, x, chunk_size=chunk_size, batch_axis=batch_axis)
    (xt,) = coerce_inputs((x,))
    xf = _fresh(xt)
    with enable_grad():
        out = f(xf)
    batch, in_row, out_row = _row_shapes(xt, out, batch_axis, "jacobian")
    m = math.prod(out_row)
    create = _needs_graph([xf])
    blocks = []
    for start, stop in _chunks(m, chunk_size):
        seed = _basis(m, out, start, stop).reshape((stop - start,) + (1,) * len(batch) + out_row)
        xp = array_module_of(out.data)
        # contiguous, so the first products against it run as single GEMMs
        seed = Tensor(xp.ascontiguousarray(xp.broadcast_to(seed, (stop - start,) + out.shape)))
        (g,) = backward([out], [seed], batch_shape=(stop - start,), targets=[xf],
                        retain_graph=True, create_graph=create)
        blocks.append(g if g is not None else _zeros_like(xt, (stop - start,)))
    jac = blocks[0] if len(blocks) == 1 else concatenate(blocks, axis=0)
    if batch_axis is None:
        return reshape(jac, out.shape + xt.shape)
    # (m, B, *in_row) -> (B, *out_row, *in_row)
    jac = reshape(jac, out_row + xt.shape)
    k = len(out_row)
    return transpose(jac, (k,) + tuple(range(k)) + tuple(range(k + 1, jac.ndim)))


def jacfwd(f: Callable, x: Any = _MISSING, *, chunk_size: int | None = None,
           batch_axis: int | None = None) -> Any:
    """Forward-mode Jacobian of ``f`` at ``x`` (same shapes and options as ``jacobian``)."""
    if x is _MISSING:
        return lambda x: jacfwd(f, x, chunk_size=chunk_size, batch_axis=batch_axis)
    (xt,) = coerce_inputs((x,))
    batch = xt.shape[:1] if batch_axis == 0 else ()
    if batch_axis not in (None, 0):
        raise ValueError("jacfwd: batch_axis must be 0 or None (move the batch axis first)")
    in_row = xt.shape[len(batch):]
    n = math.prod(in_row)
    columns = []
    out = None
    for start, stop in _chunks(n, chunk_size):
        e = _basis(n, xt, start, stop).reshape((stop - start,) + (1,) * len(batch) + in_row)
        e = array_module_of(xt.data).broadcast_to(e, (stop - start,) + xt.shape)
        out, tan = _forward_pass(f, (xt,), (Tensor(e),), (stop - start,), "jacfwd")
        columns.append(tan)
    assert out is not None
    _, _, out_row = _row_shapes(xt, out, batch_axis, "jacfwd")
    jac = columns[0] if len(columns) == 1 else concatenate(columns, axis=0)
    # (n, *batch, *out_row) -> (*batch, *out_row, *in_row)
    jac = reshape(jac, in_row + out.shape)
    k, b = len(in_row), len(batch)
    perm = tuple(range(k, k + b + len(out_row))) + tuple(range(k))
    return transpose(jac, perm)


def hessian(f: Callable, x: Any = _MISSING, *, chunk_size: int | None = None) -> Any:
    """Hessian of scalar ``f`` at ``x``, forward over reverse: ``jacfwd(grad(f))``."""
    if x is _MISSING:
        return lambda x: hessian(f, x, chunk_size=chunk_size)
    return jacfwd(grad(f), x, chunk_size=chunk_size)


def hvp(f: Callable, x: Any, v: Any) -> Tensor:
    """Hessian-vector product H(x)·v of scalar ``f`` without forming H (forward over
    reverse: one forward-mode pass through the gradient)."""
    return jvp(grad(f), (x,), (v,))[1]


__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacobian", "jvp", "value_and_grad", "vjp"]
