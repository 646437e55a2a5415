"""Array-module selection: NumPy everywhere, CuPy where a usable CUDA device exists.

The backend decides where *new* tensors are created; an op always runs on the
module of the arrays it is given (the ``xp`` idiom), so tensors created before a
switch keep working.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from gpuchain.backend._cupy_env import apply_cache_dir, import_cupy
from gpuchain.errors import BackendUnavailableError, DeviceMismatchError

# CuPy reads CUPY_CACHE_DIR (and creates that directory) while it is imported, so the
# writable fallback must be in the environment before anything imports CuPy.
if "cupy" not in sys.modules:
    apply_cache_dir()


@dataclass(frozen=True)
class Backend:
    """An array backend: ``name`` ("numpy" or "cupy") and its array module ``xp``.

    Parameters
    ----------
    name : str
        "numpy" or "cupy".
    xp : module
        ``numpy`` or ``cupy``.
    """

    name: str
    xp: ModuleType

    @property
    def device(self) -> str:
        """'cuda' for the CuPy backend, else 'cpu'."""
        return "cuda" if self.name == "cupy" else "cpu"


_cupy: ModuleType | None = None
_cupy_probe: str | None = None  # None = not probed; "" = usable; otherwise why not
_lock = threading.Lock()


def _probe_cupy() -> str:
    """Import CuPy and check for a usable device; return '' or the reason it cannot run."""
    global _cupy, _cupy_probe
    with _lock:
        if _cupy_probe is not None:
            return _cupy_probe
        try:
            cupy = import_cupy()
            if not cupy.is_available():
                reason = "CuPy is installed but no usable CUDA device was found"
            else:
                reason = ""
            _cupy = cupy
        except Exception as exc:  # any failure while probing means "fall back to NumPy"
            reason = f"CuPy could not be imported ({type(exc).__name__}: {exc})"
        _cupy_probe = reason
    if not reason:
        _apply_matmul_precision()
    return reason


def cupy_unavailable_reason() -> str:
    """'' when CuPy can run here, else a sentence saying why not."""
    return _probe_cupy()


def _make(name: str) -> Backend:
    if name == "numpy":
        return Backend("numpy", np)
    if name == "cupy":
        reason = _probe_cupy()
        if reason:
            raise BackendUnavailableError(f"backend 'cupy' cannot run here: {reason}")
        assert _cupy is not None
        return Backend("cupy", _cupy)
    raise ValueError(f"unknown backend {name!r}; expected one of numpy, cupy, auto")


_CHOICES = ("numpy", "cupy", "auto")


def _wanted_from_environment() -> str:
    wanted = os.environ.get("GPUCHAIN_BACKEND", "auto").strip().lower() or "auto"
    if wanted not in _CHOICES:
        raise ValueError(f"the environment variable GPUCHAIN_BACKEND is "
                         f"{os.environ['GPUCHAIN_BACKEND']!r}; expected one of numpy, cupy, "
                         "auto (or unset)")
    return wanted


def _from_environment() -> tuple[Backend, str]:
    wanted = _wanted_from_environment()
    if wanted == "auto":
        reason = _probe_cupy()
        if reason:
            return _make("numpy"), f"auto: chose numpy because {reason}"
        return _make("cupy"), "auto: chose cupy (a CUDA device is usable)"
    return _make(wanted), f"GPUCHAIN_BACKEND={wanted}"


_current: Backend | None = None
_selection_note = ""
_wanted_from_environment()  # a bad value fails at import, naming the variable


def get_backend() -> Backend:
    """The backend new tensors are created on (``.name``, ``.xp``)."""
    global _current, _selection_note
    if _current is None:
        _current, _selection_note = _from_environment()
    return _current


def set_backend(name: str) -> Backend:
    """Select the backend new tensors are created on.

    Parameters
    ----------
    name : str
        'numpy', 'cupy' or 'auto' (CuPy when a CUDA device is usable, else NumPy).

    Returns
    -------
    Backend
        The backend now selected.

    Raises
    ------
    BackendUnavailableError
        'cupy' was asked for and cannot run here (the message says why).
    ValueError
        An unknown name.
    """
    global _current, _selection_note
    if not isinstance(name, str) or name.strip().lower() not in _CHOICES:
        raise ValueError(f"set_backend: unknown backend {name!r}; expected one of numpy, "
                         "cupy, auto")
    name = name.strip().lower()
    if name == "auto":
        reason = _probe_cupy()
        _current = _make("numpy" if reason else "cupy")
        _selection_note = "set_backend('auto')" + (f": {reason}" if reason else "")
    else:
        _current = _make(name)
        _selection_note = f"set_backend({name!r})"
    return _current


def selection_note() -> str:
    """How the current backend was chosen (shown by ``gpuchain info``)."""
    get_backend()
    return _selection_note


def is_cupy_array(a: Any) -> bool:
    """True when ``a`` is a ``cupy.ndarray`` (False, without importing CuPy, when CuPy was
    never found usable)."""
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def array_module_of(array: Any) -> ModuleType:
    """``numpy`` or ``cupy``, for one raw ``array`` (anything else counts as NumPy)."""
    if isinstance(array, np.ndarray) or _cupy is None or not isinstance(array, _cupy.ndarray):
        return np
    return _cupy


def get_array_module(*arrays: Any) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) of the arrays given.

    Parameters
    ----------
    *arrays : Tensor or array
        Tensors or raw arrays; other values are ignored.

    Returns
    -------
    module
        ``numpy`` or ``cupy``; the current backend's module when no array is given.

    Raises
    ------
    DeviceMismatchError
        Arrays from both modules were mixed.
    """
    xp = None
    for a in arrays:
        data = a._data if getattr(a, "_is_tensor", False) else a
        mod = _cupy if is_cupy_array(data) else (np if isinstance(data, np.ndarray) else None)
        if mod is None:
            continue
        if xp is None:
            xp = mod
        elif mod is not xp:
            raise DeviceMismatchError(
                "get_array_module: arrays from numpy (cpu) and cupy (cuda) were mixed"
            )
    return xp if xp is not None else get_backend().xp


def device_of(array: Any) -> str:
    """'cuda' for a CuPy ``array``, else 'cpu'."""
    return "cuda" if is_cupy_array(array) else "cpu"


def move_array(array: Any, device: str) -> Any:
    """Copy ``array`` to ``device``: 'cpu' (NumPy) or 'cuda' (CuPy); an array already
    there is returned unchanged.

    Raises
    ------
    BackendUnavailableError
        'cuda' was asked for and CuPy cannot run here.
    ValueError
        An unknown device.
    """
    if device == "cpu":
        return array.get() if is_cupy_array(array) else array
    if device == "cuda":
        reason = _probe_cupy()
        if reason:
            raise BackendUnavailableError(f"cannot move to 'cuda': {reason}")
        assert _cupy is not None
        return array if is_cupy_array(array) else _cupy.asarray(array)
    raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")


# --- default dtype and matmul precision ------------------------------------------------

_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype Python scalars and lists become (float32 unless changed).

    Parameters
    ----------
    dtype : dtype-like
        A floating dtype, e.g. ``np.float64``.

    Raises
    ------
    TypeError
        ``dtype`` is not a floating dtype.
    """
    global _default_dtype
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dt}")
    _default_dtype = dt


def get_default_dtype() -> np.dtype:
    """The dtype Python scalars and lists become (see :func:`set_default_dtype`)."""
    return _default_dtype


_matmul_precision = "fp32"


def set_matmul_precision(precision: str) -> None:
    """Choose how float32 matrix products run on CUDA.

    Parameters
    ----------
    precision : str
        'fp32' (full float32 GEMMs, the default) or 'tf32' (tensor-core TF32: operands
        rounded to a 10-bit mantissa, float32 accumulation; compute capability 8.0+).
        NumPy products are unaffected.

    Raises
    ------
    ValueError
        Any other value.
    """
    global _matmul_precision
    if precision not in ("fp32", "tf32"):
        raise ValueError(f"set_matmul_precision: expected 'fp32' or 'tf32', got {precision!r}")
    _matmul_precision = precision
    _apply_matmul_precision()


def _apply_matmul_precision() -> None:
    # CuPy takes CUPY_TF32 from the environment once; gpuchain's own setting decides
    # instead, so TF32 stays off unless asked for here (CuPy's per-dtype compute type).
    if _cupy is None or _cupy_probe != "":
        return  # applied when a usable CuPy is first found
    from cupy._core import _routines_linalg as linalg

    mode = linalg.COMPUTE_TYPE_TF32 if _matmul_precision == "tf32" else linalg.COMPUTE_TYPE_FP32
    linalg.set_compute_type(np.float32, mode)


def get_matmul_precision() -> str:
    """'fp32' or 'tf32': the setting of :func:`set_matmul_precision`."""
    return _matmul_precision
