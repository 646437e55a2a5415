"""gc.nn: modules (Dense, MLP, Sequential, LayerNorm, Dropout, Embedding, activations), the
fused dense op, losses, initializers and utilities (gradient clipping)."""

from __future__ import annotations

from gpuchain.errors import StateDictError
from gpuchain.nn import functional, init, utils
from gpuchain.nn.activation_modules import GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from gpuchain.nn.buffer import FlatBuffer, flatten
from gpuchain.nn.dropout import Dropout
from gpuchain.nn.embedding import Embedding
from gpuchain.nn.layers import MLP, Dense, Flatten, Identity, Sequential
from gpuchain.nn.loss_modules import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from gpuchain.nn.module import Module
from gpuchain.nn.normalization import LayerNorm
from gpuchain.nn.parameter import Parameter

__all__ = ["GELU", "MLP", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dense", "Dropout",
           "Embedding", "FlatBuffer", "Flatten", "Identity", "LayerNorm", "LeakyReLU",
           "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid",
           "Softplus", "StateDictError", "Tanh", "flatten", "functional", "init", "utils"]
