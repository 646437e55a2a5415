"""Extending gpuchain: new primitives, and user functions with their own derivatives.

Defining a primitive
--------------------
``defop(name, save=..., residuals=..., broadcasts=...)`` registers a forward written on
arrays (``forward(xp, *arrays, **params)``, ``xp`` being NumPy or CuPy). Then give it
derivatives, written with gpuchain ops on Tensors so they are differentiable again:

- ``@prim.deriv`` for an elementwise op: return the partial derivative with respect to
  each input (one Tensor for a unary op, a tuple otherwise; ``1``/``-1`` for constant
  partials, ``None`` for zero ones), from the saved values (the output ``y`` for
  ``save="output"``, the inputs for ``"inputs"``, ``y`` then the inputs for ``"both"``;
  op parameters arrive as keyword arguments, and a ``wrt`` keyword tells which partials
  are needed). The engine makes both the VJP and the JVP from it.
- ``@prim.vjp`` (``rule(ctx, g) -> one cotangent per input``) and ``@prim.jvp``
  (``rule(ctx, tangents) -> tangent``) for any other op. ``ctx.inputs``, ``ctx.out``,
  ``ctx.params``, ``ctx.residuals``, ``ctx.in_shapes`` and ``ctx.needs_grad(i)`` are what a
  rule reads. Cotangents and tangents may carry extra leading batch axes: index axes
  from the right.
- ``@prim.cuda``: an optional faster forward for CuPy arrays (same signature).
- ``@prim.raw_vjp``: an optional array-level backward (``rule(ctx, g_array) -> arrays``),
  used only when no graph is recorded, no forward-mode level is active and the
  cotangent carries no batch axes.
- ``@prim.raw_jvp``: an optional array-level JVP (``rule(ctx, tangent_arrays) -> array``),
  used only for the oldest forward-mode level, when no tangent has batch axes and no
  graph is recorded through the inputs or the tangents.

An op without a VJP rule raises :class:`~gpuchain.MissingRuleError` when a gradient must
flow through it. Defining a name again replaces the old primitive with a warning.

Custom derivatives of Python functions
--------------------------------------
:func:`custom_vjp` and :func:`custom_jvp` follow JAX's contract.

Examples
--------
>>> import gpuchain as gc
>>> from gpuchain.extend import custom_vjp
>>> @custom_vjp
... def clipped_identity(x):
...     return x
>>> def fwd(x):
...     return x, None
>>> def bwd(residuals, g):
...     return (gc.clip(g, -1.0, 1.0),)
>>> clipped_identity.defvjp(fwd, bwd)
>>> gc.grad(lambda x: (clipped_identity(x) * 5.0).sum())(gc.tensor([1.0, 2.0]))
tensor([1., 1.], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from gpuchain.backend import array_module_of
from gpuchain.engine.backward import backward
from gpuchain.engine.mode import enable_grad, no_grad, paused_forward
from gpuchain.engine.op import Primitive, apply, defop
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import MissingRuleError, ShapeError
from gpuchain.ops._rules import const_like

__all__ = ["Primitive", "const_like", "custom_jvp", "custom_vjp", "defop"]


def _constants(arrays: Sequence[Any]) -> list[Tensor]:
    return [Tensor._from_op(a, None) for a in arrays]


def _single_output(out: Any, fn: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{fn}: the function must return one Tensor, got "
                        f"{type(out).__name__}")
    return out


def _fun_name(fun: Any) -> str:
    return getattr(fun, "__name__", "f")  # a functools.partial, say, has none


class custom_vjp:  # noqa: N801 - JAX's name
    """A function with a user-defined reverse-mode derivative (JAX's ``custom_vjp``).

    Decorate ``fun(*args) -> Tensor``, then call ``defvjp(fwd, bwd)``:
    ``fwd(*args) -> (output, residuals)`` and ``bwd(residuals, g) -> tuple`` of one
    cotangent per argument (``None`` for zero). ``bwd`` written with gpuchain ops is
    differentiable again (Hessians through it work). Forward mode through a
    ``custom_vjp`` function raises :class:`~gpuchain.MissingRuleError`; use
    :func:`custom_jvp` for that.

    Parameters
    ----------
    fun : callable
        The function (positional Tensor arguments, one Tensor result).
    """

    def __init__(self, fun: Callable[..., Tensor]) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self._fwd: Callable[..., tuple[Tensor, Any]] | None = None
        self._prim: Primitive | None = None

    def defvjp(self, fwd: Callable[..., tuple[Tensor, Any]],
               bwd: Callable[[Any, Tensor], Sequence[Tensor | None]]) -> None:
        """Set the forward (output and residuals) and backward (cotangents) rules."""
        name = f"custom_vjp({_fun_name(self.fun)})"

        def forward(xp: Any, *arrays: Any, precomputed: list) -> tuple[Any, Any]:
            out, residuals = precomputed.pop()
            return _single_output(out, name)._data, residuals

        prim = Primitive(name, forward, save="none", residuals=True)

        @prim.vjp
        def _(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
            grads = tuple(bwd(ctx.residuals, g))
            if len(grads) != len(ctx.in_shapes):
                raise ShapeError(f"{name}: bwd returned {len(grads)} cotangents for "
                                 f"{len(ctx.in_shapes)} arguments")
            return grads

        self._fwd = fwd
        self._prim = prim

    def __call__(self, *args: Any) -> Tensor:
        if self._prim is None or self._fwd is None:  # defvjp sets both
            raise MissingRuleError(f"custom_vjp function {_fun_name(self.fun)}: call defvjp(fwd, "
                                   "bwd) before using it")
        inputs = coerce_inputs(args)
        # fwd runs on the inputs themselves, recording when they require grad, so
        # residuals computed from them keep their graph: bwd is differentiable again.
        with paused_forward():
            out, residuals = self._fwd(*inputs)
        return apply(self._prim, inputs, {"precomputed": [(out, residuals)]})


class custom_jvp:  # noqa: N801 - JAX's name
    """A function with a user-defined forward-mode derivative (JAX's ``custom_jvp``).

    Decorate ``fun(*args) -> Tensor``, then register ``jvp(primals, tangents) ->
    (output, tangent_out)`` with ``defjvp`` (``tangents`` holds zeros for arguments
    without a tangent). The rule must be linear in the tangents; reverse mode is
    derived from it by transposing that linear map, so ``grad`` works too.

    Parameters
    ----------
    fun : callable
        The function (positional Tensor arguments, one Tensor result).
    """

    def __init__(self, fun: Callable[..., Tensor]) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self._prim: Primitive | None = None

    def defjvp(self, jvp: Callable[[tuple[Tensor, ...], tuple[Tensor, ...]],
                                   tuple[Tensor, Tensor]]) -> Callable[..., Any]:
        """Set the JVP rule; usable as a decorator."""
        name = f"custom_jvp({_fun_name(self.fun)})"
        fun = self.fun

        def forward(xp: Any, *arrays: Any) -> Any:
            with no_grad(), paused_forward():
                return _single_output(fun(*_constants(arrays)), name)._data

        prim = Primitive(name, forward, save="inputs")

        def zeros(like: Tensor) -> Tensor:
            return const_like(array_module_of(like._data).zeros(like.shape), like)

        @prim.jvp
        def _(ctx: Any, tangents: list[Tensor | None]) -> Tensor:
            full = tuple(zeros(x) if t is None else t for x, t in zip(ctx.inputs, tangents))
            return jvp(tuple(ctx.inputs), full)[1]

        @prim.vjp
        def _(ctx: Any, g: Tensor) -> list[Tensor | None]:
            # the cotangent is the transpose of the (linear) tangent map, applied to g
            seeds = [zeros(x).requires_grad_(x.dtype.kind == "f") for x in ctx.inputs]
            with enable_grad():
                tan_out = jvp(tuple(ctx.inputs), tuple(seeds))[1]
            if g.shape != tan_out.shape:
                raise ShapeError(f"{name}: batched cotangents are not supported "
                                 f"(got {g.shape}, output {tan_out.shape})")
            return backward([tan_out], [g], targets=seeds, create_graph=True)

        self._prim = prim
        return jvp

    def __call__(self, *args: Any) -> Tensor:
        if self._prim is None:
            raise MissingRuleError(f"custom_jvp function {_fun_name(self.fun)}: register a rule "
                                   "with defjvp before using it")
        return apply(self._prim, coerce_inputs(args), {})
