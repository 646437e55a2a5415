"""gc.nn: modules (Dense, MLP, Sequential), the fused dense op, losses, initializers."""

from __future__ import annotations

from gpuchain.nn import functional, init
from gpuchain.nn.buffer import FlatBuffer, flatten
from gpuchain.nn.layers import MLP, Dense, Sequential
from gpuchain.nn.module import Module, StateDictError
from gpuchain.nn.parameter import Parameter

__all__ = ["MLP", "Dense", "FlatBuffer", "Module", "Parameter", "Sequential", "StateDictError",
           "flatten", "functional", "init"]
