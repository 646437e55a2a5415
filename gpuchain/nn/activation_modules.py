"""Activation functions as modules, so a Sequential reads as in PyTorch."""

from __future__ import annotations

from typing import Any

from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.nn.module import Module
from gpuchain.ops import activations as gops


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else coerce_inputs((x,))[0]


class ReLU(Module):
    """Rectified linear unit, elementwise max(x, 0)."""

    def forward(self, x: Any) -> Tensor:
        return gops.relu(_t(x))


class Tanh(Module):
    """Hyperbolic tangent, elementwise tanh(x)."""

    def forward(self, x: Any) -> Tensor:
        return gops.tanh(_t(x))


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x: Any) -> Tensor:
        return gops.sigmoid(_t(x))


class SiLU(Module):
    """x · sigmoid(x)."""

    def forward(self, x: Any) -> Tensor:
        return gops.silu(_t(x))


class Softplus(Module):
    """log(1 + exp(x)) (``beta=1``, PyTorch's default)."""

    def forward(self, x: Any) -> Tensor:
        return gops.softplus(_t(x))


class GELU(Module):
    """Gaussian error linear unit x · Φ(x), as ``torch.nn.GELU``.

    Parameters
    ----------
    approximate : {"none", "tanh"}
        "tanh" uses the tanh approximation of Φ.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Any) -> Tensor:
        return (gops.gelu_tanh if self.approximate == "tanh" else gops.gelu)(_t(x))

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope · x`` otherwise.

    Parameters
    ----------
    negative_slope : float
        Slope for negative inputs (>= 0).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if not negative_slope >= 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        return gops.leaky_relu(_t(x), self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


__all__ = ["GELU", "LeakyReLU", "ReLU", "SiLU", "Sigmoid", "Softplus", "Tanh"]
