"""The activations the fused dense op accepts, derived from the activation primitives.

Each activation is defined once, as an elementwise primitive in
:mod:`gpuchain.ops.activations` (forward and derivative); dense uses that definition on
its NumPy paths and its composed (differentiable) path. An activation whose primitive
saves its output takes its derivative from the output a, the others from the
pre-activation z. Mirrors GC_ACTIVATION_TABLE in kernels/common.cuh; a test checks the
two agree.
"""

from __future__ import annotations

import inspect
from typing import Any

from gpuchain.engine.op import Primitive
from gpuchain.ops.activations import ACTIVATIONS as _PRIMITIVES

ACTIVATIONS: tuple[str, ...] = ("identity", *_PRIMITIVES)
SAVES_OUTPUT: frozenset[str] = frozenset(
    ["identity", *(name for name, p in _PRIMITIVES.items() if p.save == "output")])
_TAKES_SLOPE = frozenset(name for name, p in _PRIMITIVES.items()
                         if "slope" in inspect.signature(p.forward).parameters)


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


def forward_array(xp: Any, z: Any, name: str, slope: float) -> Any:
    """act(z) on arrays, by the activation primitive's own forward."""
    prim = _PRIMITIVES.get(name)
    if prim is None:
        return z
    return prim.forward(xp, z, slope=slope) if name in _TAKES_SLOPE else prim.forward(xp, z)
