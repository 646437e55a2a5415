"""Translate CuPy allocation failures into gpuchain.errors.OutOfMemoryError."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from gpuchain.errors import OutOfMemoryError

_REQ_RE = re.compile(r"allocating ([\d,]+) bytes")


def _requested_bytes(exc: BaseException) -> int | None:
    size = getattr(exc, "_size", None)
    if isinstance(size, int):
        return size
    m = _REQ_RE.search(str(exc))
    return int(m.group(1).replace(",", "")) if m else None


def _free_bytes(exc: BaseException) -> int | None:
    """Bytes still allocatable: under a CuPy pool limit, else what the device reports."""
    limit, total = getattr(exc, "_limit", 0), getattr(exc, "_total", None)
    if isinstance(limit, int) and limit > 0 and isinstance(total, int):
        return max(limit - total, 0)
    try:
        import cupy

        return int(cupy.cuda.runtime.memGetInfo()[0])
    except Exception:
        return None


def is_cupy_oom(exc: BaseException) -> bool:
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return False
    try:
        return isinstance(exc, cupy.cuda.memory.OutOfMemoryError)
    except AttributeError:
        return False


@contextmanager
def translate_oom(what: str = "CUDA allocation") -> Iterator[None]:
    """Re-raise ``cupy.cuda.memory.OutOfMemoryError`` raised inside the block as
    :class:`gpuchain.errors.OutOfMemoryError` naming ``what``, the bytes requested
    and the bytes free. Other exceptions pass through unchanged."""
    try:
        yield
    except Exception as exc:
        if not is_cupy_oom(exc):
            raise
        raise OutOfMemoryError(what, _requested_bytes(exc), _free_bytes(exc)) from exc
