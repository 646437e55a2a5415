"""The loss functions as modules, as PyTorch's ``nn.CrossEntropyLoss`` and friends (no
parameters: each holds its ``reduction`` and calls the function of
:mod:`gpuchain.nn.losses`)."""

from __future__ import annotations

from typing import Any

from gpuchain.engine.tensor import Tensor
from gpuchain.nn import losses
from gpuchain.nn.module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        losses._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (batch, classes) against integer class labels
    (batch,), as ``torch.nn.CrossEntropyLoss`` without weights or label smoothing.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
    """

    def forward(self, logits: Any, labels: Any) -> Tensor:
        return losses.cross_entropy(logits, labels, self.reduction)


class MSELoss(_Loss):
    """Squared error (pred - target)², as ``torch.nn.MSELoss``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
    """

    def forward(self, pred: Any, target: Any) -> Tensor:
        return losses.mse_loss(pred, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits against probabilities, as
    ``torch.nn.BCEWithLogitsLoss`` without weights.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
    """

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return losses.binary_cross_entropy_with_logits(logits, targets, self.reduction)
