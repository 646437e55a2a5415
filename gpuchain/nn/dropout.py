"""Dropout: zero each element with probability p in training, scale the rest by 1/(1-p);
the identity in ``eval()``. Reproducible from a seed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import StateDictError
from gpuchain.nn import init
from gpuchain.nn.module import Module


def dropout(x: Any, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """``x * mask / (1 - p)`` with a Bernoulli(1 - p) ``mask``; ``x`` itself when not
    training or p = 0. The gradient is ``g * mask / (1 - p)`` (the mask is a constant).

    Parameters
    ----------
    x : Tensor or array
    p : float
        Probability of zeroing an element, in [0, 1].
    training : bool
        Apply dropout (False: return ``x``).
    rng : numpy Generator, int or None
        Where the mask is drawn from (it then moves to x's device).
    """
    _check_p(p, "dropout")
    if not isinstance(x, Tensor):
        x = coerce_inputs((x,))[0]
    if not training or p == 0:
        return x
    xp = array_module_of(x._data)
    if p == 1:
        return x * Tensor(xp.zeros(x.shape, dtype=x.dtype))
    scale = keep_mask(init.rng_from(rng), x.shape, p).astype(x.dtype)
    scale *= x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor(xp.asarray(scale) if xp is not np else scale)


def keep_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """A boolean array of ``shape``, each element True with probability 1 - p (to within
    2⁻³²): uniform 32-bit words, two from each of the generator's raw 64-bit draws (half
    the draws, and none of the float conversion, of ``rng.random``), compared with
    round(p·2³²)."""
    n = math.prod(shape)
    words = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
    threshold = np.uint32(min(round(p * 2.0 ** 32), 2 ** 32 - 1))
    return np.greater_equal(words, threshold).reshape(shape)


def _check_p(p: Any, where: str) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or \
            not 0 <= p <= 1:
        raise ValueError(f"{where}: p must be a probability in [0, 1], got {p!r}")


class Dropout(Module):
    """Dropout, as ``torch.nn.Dropout``: in training, zero each element with probability
    ``p`` and scale the rest by 1/(1-p); the identity in ``eval()``.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in [0, 1].
    seed : int, numpy Generator or None
        Seed of the generator the masks come from (each call draws a new mask; its state
        is part of ``state_dict``).
    """

    def __init__(self, p: float = 0.5, seed: init.SeedLike = None) -> None:
        super().__init__()
        _check_p(p, "Dropout")
        self.p = float(p)
        self.rng = init.rng_from(seed)

    def forward(self, x: Any) -> Tensor:
        return dropout(x, self.p, self.training, self.rng)

    def get_extra_state(self) -> dict[str, Any]:
        """The generator's state, so a checkpoint resumes with the same masks."""
        return dict(self.rng.bit_generator.state)

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or "bit_generator" not in state:
            raise StateDictError(f"Dropout.set_extra_state: expected a generator state "
                                 f"dict, got {type(state).__name__}")
        bitgen = getattr(np.random, str(state["bit_generator"]), None)
        if bitgen is None:
            raise StateDictError(f"Dropout.set_extra_state: unknown bit generator "
                                 f"{state['bit_generator']!r}")
        rng = np.random.Generator(bitgen())
        try:
            rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise StateDictError(f"Dropout.set_extra_state: invalid generator state ({exc})"
                                 ) from exc
        self.rng = rng

    def extra_repr(self) -> str:
        return f"p={self.p}"
