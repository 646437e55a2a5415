"""GPU telemetry through NVML (``pynvml`` from nvidia-ml-py, imported lazily).

Never raises: without nvidia-ml-py, without a driver, or on any NVML error,
:func:`device_info` returns ``[]`` and :func:`telemetry_status` says why. A
field that one device does not support (NVMLError_NotSupported, ...) is None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_PCI_RE = re.compile(r"^([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-9a-fA-F]+)$")


def normalize_pci_bus_id(bus_id: str | bytes) -> tuple[int, int, int, int] | None:
    """'00000000:3B:00.0' (NVML) and '0000:3b:00.0' (CUDA) -> (domain, bus, device, fn)."""
    if isinstance(bus_id, bytes):
        bus_id = bus_id.decode("ascii", "replace")
    m = _PCI_RE.match(bus_id.strip().rstrip("\x00"))
    return tuple(int(g, 16) for g in m.groups()) if m else None  # type: ignore[return-value]


def _text(x: Any) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def _cuda_index_by_pci() -> dict[tuple[int, int, int, int], int]:
    """PCI address -> CUDA device index, as CuPy sees devices (honours CUDA_VISIBLE_DEVICES)."""
    try:
        import cupy

        if not cupy.is_available():
            return {}
        out = {}
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            key = normalize_pci_bus_id(cupy.cuda.Device(i).pci_bus_id)
            if key is not None:
                out[key] = i
        return out
    except Exception:
        return {}


def _query() -> tuple[list[dict[str, Any]], str]:
    try:
        import pynvml
    except ImportError:
        return [], "unavailable: nvidia-ml-py not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return [], "unavailable: NVML library not found (no NVIDIA driver)"
    except pynvml.NVMLError_DriverNotLoaded:
        return [], "unavailable: NVIDIA driver not loaded"
    except pynvml.NVMLError as exc:
        return [], f"unavailable: NVML init failed: {exc}"
    except OSError as exc:
        return [], f"unavailable: NVML could not be loaded: {exc}"
    try:
        return _devices(pynvml)
    except pynvml.NVMLError as exc:
        return [], f"unavailable: NVML query failed: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _devices(pynvml: Any) -> tuple[list[dict[str, Any]], str]:
    def field(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except pynvml.NVMLError:
            return None

    def text(fn: Callable[..., Any], *args: Any) -> str | None:
        value = field(fn, *args)
        return None if value is None else _text(value)

    driver = text(pynvml.nvmlSystemGetDriverVersion)
    cuda_raw = field(pynvml.nvmlSystemGetCudaDriverVersion)
    cuda = f"{cuda_raw // 1000}.{cuda_raw % 1000 // 10}" if isinstance(cuda_raw, int) else None
    by_pci = _cuda_index_by_pci()
    devices = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        mem = field(pynvml.nvmlDeviceGetMemoryInfo, h)
        util = field(pynvml.nvmlDeviceGetUtilizationRates, h)
        info = field(pynvml.nvmlDeviceGetPciInfo, h)
        pci = None if info is None else _text(info.busId)
        key = normalize_pci_bus_id(pci) if pci else None
        devices.append(
            {
                "nvml_index": i,
                "cuda_index": by_pci.get(key) if key else None,
                "name": text(pynvml.nvmlDeviceGetName, h),
                "pci_bus_id": pci,
                "memory_total_bytes": getattr(mem, "total", None),
                "memory_used_bytes": getattr(mem, "used", None),
                "memory_free_bytes": getattr(mem, "free", None),
                "gpu_utilization_pct": getattr(util, "gpu", None),
                "memory_utilization_pct": getattr(util, "memory", None),
                "sm_clock_mhz": field(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM),
                "driver_version": driver,
                "cuda_driver_version": cuda,
            }
        )
    return devices, f"ok: {len(devices)} device(s), driver {driver}, CUDA {cuda}"


def device_info() -> list[dict[str, Any]]:
    """One dict per NVML device (see module doc); ``[]`` when NVML is unavailable."""
    try:
        return _query()[0]
    except Exception:
        return []


def telemetry_status() -> str:
    """'ok: ...' or 'unavailable: <reason>'."""
    try:
        return _query()[1]
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"
