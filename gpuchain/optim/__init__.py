"""gc.optim: SGD, Adam and AdamW as one vectorized update over flat parameter buffers."""

from __future__ import annotations

from gpuchain.optim.adam import Adam, AdamW
from gpuchain.optim.optimizer import NonFiniteGradError, Optimizer, OptimizerStateError
from gpuchain.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "NonFiniteGradError", "Optimizer", "OptimizerStateError"]
