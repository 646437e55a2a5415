"""The public op functions, NumPy-style, gathered from the op families.

Each family module defines its primitives (``*_p``, registered by ``defop``) next to the
public functions built on them, and lists the public ones in ``__all__``; this package
re-exports them all. A new family is one more entry in ``FAMILIES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpuchain.backend import device_of
from gpuchain.ops import (
    activations,
    contraction,
    creation,
    device,
    elementwise,
    indexing,
    linalg,
    reduce,
    shape,
)
from gpuchain.ops._args import as_tensor

FAMILIES = (elementwise, activations, reduce, shape, indexing, linalg, contraction, creation)

if TYPE_CHECKING:  # the names gathered below, spelled out for type checkers and IDEs
    from gpuchain.ops.activations import *  # noqa: F403
    from gpuchain.ops.contraction import *  # noqa: F403
    from gpuchain.ops.creation import *  # noqa: F403
    from gpuchain.ops.elementwise import *  # noqa: F403
    from gpuchain.ops.indexing import *  # noqa: F403
    from gpuchain.ops.linalg import *  # noqa: F403
    from gpuchain.ops.reduce import *  # noqa: F403
    from gpuchain.ops.shape import *  # noqa: F403

__all__: list[str] = ["to"]
for _family in FAMILIES:
    globals().update({_name: getattr(_family, _name) for _name in _family.__all__})
    __all__ += _family.__all__
del _family


def to(x: Any, device: str) -> Any:  # noqa: F811 - the ``device`` argument, not the module
    """``x`` on ``device`` (``"cpu"`` for NumPy, ``"cuda"`` for CuPy), differentiably.

    Parameters
    ----------
    x : Tensor or array_like
        Input.
    device : {"cpu", "cuda"}
        Target device.

    Returns
    -------
    Tensor
        ``x`` itself when it is already there; otherwise a copy whose cotangent is moved
        back to ``x``'s device.
    """
    x = as_tensor(x)
    source = device_of(x._data)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"to: unknown device {device!r}; expected 'cpu' or 'cuda'")
    if device == source:
        return x
    return _device_ops.to_device(x, device=device, source=source)


_device_ops = device
del device
