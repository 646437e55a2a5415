"""gc.optim: SGD, Adam, AdamW, RMSprop and Adagrad as vectorized updates over flat
parameter buffers, with parameter groups and ``gc.optim.lr_scheduler``."""

from __future__ import annotations

from gpuchain.errors import NonFiniteGradError, OptimizerStateError
from gpuchain.optim import lr_scheduler
from gpuchain.optim.adagrad import Adagrad
from gpuchain.optim.adam import Adam, AdamW
from gpuchain.optim.optimizer import Optimizer
from gpuchain.optim.rmsprop import RMSprop
from gpuchain.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "NonFiniteGradError", "Optimizer",
           "OptimizerStateError", "RMSprop", "lr_scheduler"]
