"""Zero-copy exchange with other array libraries through DLPack.

``gc.from_dlpack(obj)`` wraps any object exporting ``__dlpack__`` (a NumPy or CuPy array,
a PyTorch or JAX array, ...) as a Tensor sharing its memory; ``Tensor.__dlpack__`` /
``__dlpack_device__`` (``tensor_dlpack`` / ``tensor_dlpack_device`` here) let
``torch.from_dlpack``, ``np.from_dlpack``, ``cupy.from_dlpack`` and ``jax.dlpack`` do the
same in the other direction. A write on one side is seen on the other.

What copies or refuses
----------------------
- CPU memory becomes a NumPy-backed Tensor, CUDA memory a CuPy-backed one (CUDA needs
  CuPy); other devices are refused with a DLPackError naming the device.
- dtypes NumPy cannot hold (bfloat16, complex) are refused; convert on the exporting side
  (e.g. ``t.float()`` in PyTorch) first. Nothing is copied silently.
- Exporting gives the values only: the autograd graph does not travel, and a tensor's
  later in-place changes are seen by the importer. NumPy cannot export a read-only array
  (a broadcast view): pass ``copy=True`` to ``__dlpack__`` (the importer asks for it) or
  export ``t.copy()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import is_cupy_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import GpuchainError

__all__ = ["DLPackError", "from_dlpack", "tensor_dlpack", "tensor_dlpack_device"]

_CPU, _CUDA, _CUDA_HOST, _CUDA_MANAGED = 1, 2, 3, 13
_DEVICE_NAMES = {1: "cpu", 2: "cuda", 3: "cuda_host", 4: "opencl", 7: "vulkan", 8: "metal",
                 9: "vpi", 10: "rocm", 11: "rocm_host", 13: "cuda_managed", 14: "oneapi"}


class DLPackError(GpuchainError, TypeError):
    """An object cannot be exchanged through DLPack (device, dtype or protocol)."""


def from_dlpack(obj: Any, requires_grad: bool = False) -> Tensor:
    """A Tensor sharing memory with ``obj`` (anything with ``__dlpack__``).

    Parameters
    ----------
    obj : object with ``__dlpack__`` and ``__dlpack_device__``
        E.g. a ``torch.Tensor``, ``jax.Array``, ``numpy.ndarray`` or ``cupy.ndarray``.
    requires_grad : bool
        Make the result a leaf that requires grad (floating dtypes only).

    Returns
    -------
    Tensor
        NumPy-backed for CPU memory, CuPy-backed for CUDA memory; same dtype and shape.
    """
    if isinstance(obj, Tensor):
        return Tensor(obj._data, requires_grad=requires_grad)
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise DLPackError(f"from_dlpack: a {type(obj).__name__} does not export DLPack "
                          "(__dlpack__ / __dlpack_device__); pass an array or tensor")
    device_type, device_id = (int(v) for v in obj.__dlpack_device__())
    if device_type == _CPU:
        try:
            arr = np.from_dlpack(obj)
        except (BufferError, TypeError, RuntimeError) as exc:
            raise DLPackError(f"from_dlpack: NumPy cannot take this {type(obj).__name__} "
                              f"({exc}); convert its dtype on the exporting side first "
                              "(bfloat16 and complex are not supported)") from exc
    elif device_type in (_CUDA, _CUDA_MANAGED):
        try:
            import cupy
        except ImportError as exc:
            raise DLPackError(f"from_dlpack: the {type(obj).__name__} lives on CUDA device "
                              f"{device_id}, which needs CuPy (not installed)") from exc
        arr = cupy.from_dlpack(obj)
    else:
        raise DLPackError(f"from_dlpack: the {type(obj).__name__} lives on device type "
                          f"{_DEVICE_NAMES.get(device_type, device_type)} (id {device_id}); "
                          "only cpu and cuda are supported")
    if arr.dtype.kind not in "biuf":
        raise DLPackError(f"from_dlpack: dtype {arr.dtype} is not supported by gpuchain")
    return Tensor(arr, requires_grad=requires_grad)


def tensor_dlpack(t: Tensor, *, stream: Any = None, max_version: Any = None,
                  dl_device: Any = None, copy: bool | None = None) -> Any:
    """``Tensor.__dlpack__``: the DLPack capsule of ``t.data`` (memory shared; values
    only, not the graph).

    Parameters
    ----------
    t : Tensor
    stream : int or None
        The consumer's CUDA stream (array API standard); passed to the array.
    max_version : tuple of int or None
        Highest DLPack version the consumer understands.
    dl_device : tuple of int or None
        Device the consumer wants the data on.
    copy : bool or None
        Whether the exporter must (True) or must not (False) copy.
    """
    data = t._data
    kwargs: dict[str, Any] = {}
    if stream is not None:
        kwargs["stream"] = stream
    if max_version is not None:
        kwargs["max_version"] = max_version
    if dl_device is not None:
        kwargs["dl_device"] = dl_device
    if copy is not None:
        kwargs["copy"] = copy
    try:
        return data.__dlpack__(**kwargs)
    except TypeError:
        if max_version is None and dl_device is None and copy is None:
            raise
        # an exporter without the newer keywords: the legacy call
        return data.__dlpack__(stream=stream) if stream is not None else data.__dlpack__()
    except BufferError as exc:
        if not is_cupy_array(data) and not data.flags.writeable:
            raise DLPackError(f"Tensor.__dlpack__: the {data.dtype}{tuple(data.shape)} array "
                              "is read-only, which NumPy cannot export; export t.copy() or "
                              "ask for copy=True") from exc
        raise


def tensor_dlpack_device(t: Tensor) -> tuple[int, int]:
    """``Tensor.__dlpack_device__``: (device type, device id) of ``t.data``.

    Parameters
    ----------
    t : Tensor
    """
    dev = t._data.__dlpack_device__()
    return int(dev[0]), int(dev[1])
