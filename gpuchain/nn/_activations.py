"""Activations of the fused dense op: array forms (forward in place, derivative into a
buffer) for the fast paths, and Tensor forms (gpuchain ops) for differentiable paths.

Activations in SAVES_OUTPUT take their derivative from the output a, the others from
the pre-activation z (kept as a residual). Mirrors GC_ACTIVATION_TABLE in
kernels/common.cuh; tests check the two agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import gpuchain.ops as gops
from gpuchain.engine.tensor import Tensor
from gpuchain.ops._rules import const_like
from gpuchain.ops._special import erf as _erf

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh",
               "silu", "softplus")
SAVES_OUTPUT = frozenset({"identity", "relu", "leaky_relu", "sigmoid", "tanh"})

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_C = 0.044715


def normalize(activation: str | None) -> str:
    name = "identity" if activation is None else activation
    if name not in ACTIVATIONS:
        raise ValueError(f"dense: unknown activation {activation!r}; expected None or one of "
                         f"{', '.join(ACTIVATIONS)}")
    return name


# --- arrays -----------------------------------------------------------------------------

def forward_array(xp: Any, z: Any, name: str, slope: float) -> Any:
    """act(z); in place (returns z) for SAVES_OUTPUT, else into a new array (z untouched)."""
    if name == "identity":
        return z
    if name == "relu":
        return xp.maximum(z, 0, out=z)
    if name == "leaky_relu":
        return xp.multiply(z, z.dtype.type(slope), out=z, where=z < 0)
    if name == "tanh":
        return xp.tanh(z, out=z)
    if name == "sigmoid":
        # 1 / (1 + e^-z): e^-z may overflow to inf for very negative z, giving exactly 0.
        with np.errstate(over="ignore"):
            xp.negative(z, out=z)
            xp.exp(z, out=z)
        z += 1
        return xp.reciprocal(z, out=z)
    if name == "gelu":
        a = _erf(xp, z * z.dtype.type(_INV_SQRT_2)).astype(z.dtype, copy=False)
        a += 1
        a *= z
        a *= 0.5
        return a
    if name == "gelu_tanh":
        a = xp.tanh(_SQRT_2_OVER_PI * (z + _C * z * z * z)).astype(z.dtype, copy=False)
        a += 1
        a *= z
        a *= 0.5
        return a
    if name == "silu":
        return z * _sigmoid(xp, z)
    # softplus, stable: max(z, 0) + log1p(e^-|z|)
    return (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))).astype(z.dtype, copy=False)


def _sigmoid(xp: Any, z: Any) -> Any:
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def grad_array(xp: Any, g: Any, saved: Any, name: str, slope: float, dz: Any) -> Any:
    """dz = g * act'(·) written into ``dz`` (which must not alias g or saved); ``saved``
    is the output a for SAVES_OUTPUT activations, else the pre-activation z."""
    if name == "identity":
        xp.copyto(dz, g)
    elif name == "relu":
        xp.multiply(g, saved > 0, out=dz)
    elif name == "leaky_relu":
        xp.copyto(dz, g)
        xp.multiply(dz, dz.dtype.type(slope), out=dz, where=saved <= 0)
    elif name == "sigmoid":
        xp.subtract(1, saved, out=dz)
        dz *= saved
        dz *= g
    elif name == "tanh":
        xp.multiply(saved, saved, out=dz)
        xp.subtract(1, dz, out=dz)
        dz *= g
    else:
        xp.multiply(g, _deriv_z(xp, saved, name), out=dz)
    return dz


def _deriv_z(xp: Any, z: Any, name: str) -> Any:
    t = z.dtype.type
    if name == "gelu":
        cdf = 0.5 * (1 + _erf(xp, z * t(_INV_SQRT_2)))
        return cdf + z * t(_INV_SQRT_2PI) * xp.exp(t(-0.5) * z * z)
    if name == "gelu_tanh":
        th = xp.tanh(t(_SQRT_2_OVER_PI) * (z + t(_C) * z * z * z))
        return 0.5 * (1 + th) + 0.5 * z * (1 - th * th) * t(_SQRT_2_OVER_PI) * (
            1 + t(3 * _C) * z * z)
    s = _sigmoid(xp, z)
    if name == "silu":
        return s * (1 + z * (1 - s))
    return s  # softplus


# --- Tensors (differentiable) ----------------------------------------------------------------

def forward_tensor(z: Tensor, name: str, slope: float) -> Tensor:
    if name == "identity":
        return z
    if name == "leaky_relu":
        return gops.leaky_relu(z, slope)
    return getattr(gops, name)(z)


def deriv_from_output(a: Tensor, name: str, slope: float) -> Tensor | None:
    """act'(z) from a = act(z) for SAVES_OUTPUT activations (None means 1)."""
    if name == "identity":
        return None
    if name == "relu":
        return const_like(a.data > 0, a)
    if name == "leaky_relu":
        xp = np if isinstance(a.data, np.ndarray) else __import__("cupy")
        return const_like(xp.where(a.data > 0, 1.0, slope), a)
    if name == "sigmoid":
        return a * (1 - a)
    return 1 - a * a  # tanh


def deriv_from_preact(z: Tensor, name: str) -> Tensor:
    """act'(z) with gpuchain ops, so it can be differentiated again."""
    if name == "gelu":
        return 0.5 * (1 + gops.erf(z * _INV_SQRT_2)) + z * _INV_SQRT_2PI * gops.exp(-0.5 * z * z)
    if name == "gelu_tanh":
        th = gops.tanh(_SQRT_2_OVER_PI * (z + _C * z * z * z))
        return 0.5 * (1 + th) + 0.5 * z * (1 - th * th) * _SQRT_2_OVER_PI * (
            1 + 3 * _C * z * z)
    s = gops.sigmoid(z)
    if name == "silu":
        return s * (1 + z * (1 - s))
    return s  # softplus
