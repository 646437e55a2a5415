"""gc.nn.functional: the fused dense layer, layer norm, dropout, the loss functions, and
the activations and softmax with ``torch.nn.functional``'s signatures (``dim=``,
``negative_slope=``, ``approximate=``; the same ops as ``gc.relu``, ``gc.softmax`` ...)."""

from __future__ import annotations

from typing import Any

from gpuchain.engine.tensor import Tensor
from gpuchain.nn._activations import ACTIVATIONS  # noqa: F401 - importable from here
from gpuchain.nn.dense_op import dense
from gpuchain.nn.dropout import dropout
from gpuchain.nn.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from gpuchain.nn.normalization import layer_norm
from gpuchain.ops import activations as _act
from gpuchain.ops import reduce as _reduce
from gpuchain.ops.activations import elu, relu, sigmoid, silu, softplus, tanh

# ACTIVATIONS (the fused dense activations' names) stays importable from here.
__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "dense", "dropout", "elu",
           "gelu", "layer_norm", "leaky_relu", "log_softmax", "mse_loss", "relu", "sigmoid",
           "silu", "softmax", "softplus", "tanh"]


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """x·Φ(x) of ``x``, as ``torch.nn.functional.gelu``; ``approximate="tanh"`` takes the
    tanh form of Φ."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _act.gelu_tanh(x) if approximate == "tanh" else _act.gelu(x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """``x`` where x > 0, else ``negative_slope``·x, as ``torch.nn.functional.leaky_relu``."""
    return _act.leaky_relu(x, negative_slope)


def softmax(x: Any, dim: int = -1) -> Tensor:
    """Softmax of ``x`` along ``dim``, as ``torch.nn.functional.softmax``
    (``gc.softmax(x, axis)``)."""
    return _reduce.softmax(x, axis=dim)


def log_softmax(x: Any, dim: int = -1) -> Tensor:
    """log(softmax(``x``)) along ``dim``, stably, as ``torch.nn.functional.log_softmax``."""
    return _reduce.log_softmax(x, axis=dim)
