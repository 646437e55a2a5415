"""gc.nn.functional: the fused dense layer and the loss functions."""

from __future__ import annotations

from gpuchain.nn._activations import ACTIVATIONS
from gpuchain.nn.dense_op import dense
from gpuchain.nn.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss

__all__ = ["ACTIVATIONS", "binary_cross_entropy_with_logits", "cross_entropy", "dense",
           "mse_loss"]
