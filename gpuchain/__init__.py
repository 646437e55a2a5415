"""gpuchain: automatic differentiation on NumPy and CuPy, with fused CUDA dense layers."""

from __future__ import annotations

from gpuchain import functional
from gpuchain import ops as _ops
from gpuchain.backend import (
    get_array_module,
    get_backend,
    get_default_dtype,
    get_matmul_precision,
    set_backend,
    set_default_dtype,
    set_matmul_precision,
)
from gpuchain.engine.mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from gpuchain.engine.op import REGISTRY, Op, defop
from gpuchain.engine.tensor import Tensor, tensor
from gpuchain.errors import (
    AnomalyError,
    BackendUnavailableError,
    DeviceMismatchError,
    DTypeError,
    GpuchainError,
    OutOfMemoryError,
    ShapeError,
)
from gpuchain.ops import (
    abs,
    broadcast_to,
    clip,
    concatenate,
    cos,
    erf,
    exp,
    gelu,
    gelu_tanh,
    leaky_relu,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    minimum,
    relu,
    reshape,
    sigmoid,
    silu,
    sin,
    softmax,
    softplus,
    sqrt,
    stack,
    sum,
    tan,
    tanh,
    transpose,
    where,
)

__version__ = "0.1.0"

__all__ = [
    "REGISTRY", "AnomalyError", "BackendUnavailableError", "DTypeError", "DeviceMismatchError",
    "GpuchainError", "Op", "OutOfMemoryError", "ShapeError", "Tensor", "abs", "broadcast_to",
    "clip", "concatenate", "cos", "defop", "detect_anomaly", "enable_grad", "erf", "exp",
    "gelu", "gelu_tanh", "get_array_module", "get_backend", "get_default_dtype",
    "get_matmul_precision", "is_grad_enabled", "leaky_relu", "log", "log_softmax",
    "logsumexp", "matmul", "max", "maximum", "mean", "minimum", "no_grad", "relu", "reshape",
    "set_backend", "set_default_dtype", "set_matmul_precision", "sigmoid", "silu", "sin",
    "softmax", "softplus", "sqrt", "stack", "sum", "tan", "tanh", "tensor", "transpose",
    "where",
]
from gpuchain.functional import (  # noqa: E402
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)
from gpuchain.testing import gradcheck  # noqa: E402

__all__ += ["functional", "grad", "gradcheck", "hessian", "hvp", "jacfwd", "jacobian", "jvp",
            "value_and_grad", "vjp"]
del _ops

from gpuchain import nn, optim  # noqa: E402
from gpuchain.serialization import load, save  # noqa: E402

__all__ += ["load", "nn", "optim", "save"]
