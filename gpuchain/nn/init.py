"""Weight initializers, reproducible from a seed (a NumPy Generator).

He (Kaiming) normal for the relu family, Glorot (Xavier) uniform for the saturating
activations and for linear layers. Weights have shape (fan_in, fan_out).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

RELU_FAMILY = frozenset({"relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "softplus"})

SeedLike = int | np.random.Generator | None


def rng_from(seed: SeedLike) -> np.random.Generator:
    """A NumPy Generator from ``seed`` (an int, None for fresh entropy, or a Generator,
    returned as it is so that successive draws continue its stream)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def he_normal(fan_in: int, fan_out: int, seed: SeedLike = None, dtype: DTypeLike = np.float32,
              slope: float = 0.0) -> np.ndarray:
    """He (Kaiming) normal weights N(0, 2 / ((1 + slope²) fan_in)), which keep the
    activations' variance through relu layers.

    Parameters
    ----------
    fan_in, fan_out : int
        The weight's shape (fan_in, fan_out).
    seed : int, numpy Generator or None
    dtype : dtype
        Of the result.
    slope : float
        Negative slope of a leaky relu (0 for relu).
    """
    std = math.sqrt(2.0 / ((1.0 + slope * slope) * fan_in))
    return (rng_from(seed).standard_normal((fan_in, fan_out)) * std).astype(dtype)


def glorot_uniform(fan_in: int, fan_out: int, seed: SeedLike = None,
                   dtype: DTypeLike = np.float32) -> np.ndarray:
    """Glorot (Xavier) uniform weights U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).

    Parameters
    ----------
    fan_in, fan_out : int
        The weight's shape (fan_in, fan_out).
    seed : int, numpy Generator or None
    dtype : dtype
        Of the result.
    """
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng_from(seed).uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)


def for_activation(activation: str | None, fan_in: int, fan_out: int, seed: SeedLike = None,
                   dtype: DTypeLike = np.float32, slope: float = 0.01) -> np.ndarray:
    """Initial weights for a layer followed by ``activation``: He normal for the relu
    family, Glorot uniform otherwise.

    Parameters
    ----------
    activation : str or None
        The activation's name.
    fan_in, fan_out : int
        The weight's shape (fan_in, fan_out).
    seed : int, numpy Generator or None
    dtype : dtype
        Of the result.
    slope : float
        Negative slope, used for "leaky_relu".
    """
    if activation in RELU_FAMILY:
        return he_normal(fan_in, fan_out, seed, dtype,
                         slope=slope if activation == "leaky_relu" else 0.0)
    return glorot_uniform(fan_in, fan_out, seed, dtype)
