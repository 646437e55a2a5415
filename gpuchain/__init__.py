"""gpuchain: automatic differentiation on NumPy and CuPy, with fused CUDA dense layers.

The top level holds the NumPy-style functions (``gc.sin``, ``gc.sum``, ``gc.matmul``, ...),
the Tensor, the function transforms (``gc.grad``, ``gc.jvp``, ``gc.jacobian``, ...), the
grad-mode switches, the error classes and the subpackages ``nn``, ``optim``,
``functional``, ``extend`` and ``testing``.
"""

from typing import TYPE_CHECKING

from gpuchain import errors as _errors
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
from gpuchain.engine.tensor import Tensor, tensor

if TYPE_CHECKING:  # the names attached below, spelled out for type checkers and IDEs
    from gpuchain.errors import *  # noqa: F403
    from gpuchain.ops import to  # noqa: F401
    from gpuchain.ops.activations import *  # noqa: F403
    from gpuchain.ops.contraction import *  # noqa: F403
    from gpuchain.ops.creation import *  # noqa: F403
    from gpuchain.ops.elementwise import *  # noqa: F403
    from gpuchain.ops.indexing import *  # noqa: F403
    from gpuchain.ops.linalg import *  # noqa: F403
    from gpuchain.ops.reduce import *  # noqa: F403
    from gpuchain.ops.shape import *  # noqa: F403

_ERRORS = [name for name in dir(_errors) if name.endswith("Error")]
globals().update({name: getattr(_errors, name) for name in _ERRORS})
globals().update({name: getattr(_ops, name) for name in _ops.__all__})

from gpuchain import (  # noqa: E402
    data,
    extend,
    functional,
    linalg,
    nn,
    optim,
    pytree,
    random,
    testing,
)
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
from gpuchain.interop import from_dlpack  # noqa: E402
from gpuchain.serialization import load, save  # noqa: E402
from gpuchain.testing import gradcheck  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "data", "detect_anomaly", "enable_grad", "extend", "from_dlpack", "functional",
    "get_array_module",
    "get_backend", "get_default_dtype", "get_matmul_precision", "grad", "gradcheck", "hessian",
    "hvp", "is_grad_enabled", "jacfwd", "jacobian", "jvp", "linalg", "load", "nn", "no_grad",
    "optim", "random",
    "pytree", "save", "set_backend", "set_default_dtype", "set_matmul_precision", "tensor",
    "testing", "value_and_grad", "vjp",
]
__all__ += _ERRORS + _ops.__all__

del _errors, _ops, _ERRORS
