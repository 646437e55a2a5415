"""The activations the fused dense op accepts: the names of GC_ACTIVATION_TABLE in
kernels/common.cuh (the CUDA structs), each defined once as the elementwise primitive of
the same name (registered in :mod:`gpuchain.ops.activations`: forward and derivative).

Dense uses that primitive on its NumPy paths and its composed (differentiable) path, and
the CUDA struct on CuPy. An activation whose primitive saves its output takes its
derivative from the output a, the others from the pre-activation z; the CUDA table's
"saves output" flags must agree (checked at import and by a test). Adding an activation
is one CUDA struct, one table line and the elementwise primitive.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

import gpuchain.ops.activations  # noqa: F401  (registers the activation primitives)
from gpuchain.cuda.loader import activation_table
from gpuchain.engine.op import REGISTRY, Primitive
from gpuchain.engine.tensor import Tensor

_TABLE = activation_table()
ACTIVATIONS: tuple[str, ...] = tuple(name for name, _, _ in _TABLE)
SAVES_OUTPUT: frozenset[str] = frozenset(name for name, _, saves in _TABLE if saves)
# each CUDA activation is the primitive registered under the same name
_PRIMITIVES: dict[str, Primitive] = {name: REGISTRY[name] for name in ACTIVATIONS
                                     if name != "identity"}
_TAKES_SLOPE = frozenset(name for name, p in _PRIMITIVES.items()
                         if "slope" in inspect.signature(p.forward).parameters)


def _check_tables() -> None:
    for name, prim in _PRIMITIVES.items():
        if (prim.save == "output") != (name in SAVES_OUTPUT):
            raise RuntimeError(f"activation {name}: the CUDA table and the primitive disagree "
                               "on whether the derivative is read from the output")


_check_tables()


def normalize(activation: str | None) -> str:
    """The activation's name (``None`` means ``"identity"``); unknown names raise."""
    name = "identity" if activation is None else activation
    if name not in ACTIVATIONS:
        raise ValueError(f"dense: unknown activation {activation!r}; expected None or one of "
                         f"{', '.join(ACTIVATIONS)}")
    return name


def primitive(name: str) -> Primitive | None:
    """The elementwise primitive of activation ``name`` (None for identity)."""
    return _PRIMITIVES.get(name)


def forward_array(xp: Any, z: Any, name: str, slope: float) -> tuple[Any, Any]:
    """(act(z), its residuals) on arrays, by the activation primitive's own forward; the
    residuals are what the primitive's raw backward reads (None when it declares none)."""
    prim = _PRIMITIVES.get(name)
    if prim is None:
        return z, None
    out = prim.forward(xp, z, slope=slope) if name in _TAKES_SLOPE else prim.forward(xp, z)
    return out if prim.has_residuals else (out, None)


class _ArrayCtx:
    """What an activation primitive's raw backward reads, for an application the graph
    did not record (the dense op's activation): its input and its residuals."""

    __slots__ = ("inputs", "residuals", "params", "grad_owned")

    def __init__(self, z: Any, residuals: Any, params: dict[str, Any],
                 grad_owned: bool) -> None:
        self.inputs = (Tensor._from_op(z, None),)
        self.residuals = residuals
        self.params = params
        self.grad_owned = grad_owned

    def needs_grad(self, i: int) -> bool:
        return True


def grad_array(name: str, saved: Any, residuals: Any, g: Any, slope: float,
               owned: bool = False) -> Any:
    """g · act'(z) on NumPy arrays, ``saved`` being the output a (activations whose
    primitive saves its output) or z. An activation whose primitive has residuals and a
    raw backward (gelu: Φ(z)) takes that backward, fed the residuals its forward made;
    the others the primitive's ``deriv`` rule. ``owned``: the caller may overwrite ``g``,
    and the result goes there."""
    prim = _PRIMITIVES.get(name)
    if prim is None:
        return g
    if residuals is not None and prim.raw_vjp_rule is not None:
        params = {"slope": slope} if name in _TAKES_SLOPE else {}
        return prim.raw_vjp_rule(_ArrayCtx(saved, residuals, params, owned), g)[0]
    d = prim.partials(Tensor._from_op(saved, None), slope=slope)
    return np.multiply(g, d._data, out=g if owned else np.empty_like(g))
