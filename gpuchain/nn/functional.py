"""gc.nn.functional: the fused dense layer, layer norm, dropout and the loss functions."""

from __future__ import annotations

from gpuchain.nn._activations import ACTIVATIONS  # noqa: F401 - importable from here
from gpuchain.nn.dense_op import dense
from gpuchain.nn.dropout import dropout
from gpuchain.nn.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from gpuchain.nn.normalization import layer_norm

# ACTIVATIONS (the fused dense activations' names) stays importable from here.
__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "dense", "dropout",
           "layer_norm", "mse_loss"]
