"""Version counters of array storage: how backward notices values changed in place.

A counter belongs to a *storage*, not to a Tensor: the root of an array's ``base`` chain
(the array that owns the memory). Views, ``detach()``, ``.data`` and the parameters laid
out in one flat buffer therefore share one counter, as PyTorch's views share theirs.

All counters read one global clock. A write stamps its storage with the clock's next value,
so a node remembers a single number (the clock when it saved its inputs) and backward
inspects a node's inputs only if anything anywhere was written since. Storage that was
never written has version 0 and costs nothing: stamps live in a dict keyed by the root's
id, entered on the first write and dropped when the root is freed.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from gpuchain.backend import is_cupy_array

__all__ = ["mark_written", "storage_root", "version_of"]

_clock = 0
_stamps: dict[int, int] = {}


def storage_root(arr: Any) -> Any:
    """The array at the end of ``arr``'s ``base`` chain (the owner of its memory)."""
    base = getattr(arr, "base", None)
    while base is not None and (isinstance(base, np.ndarray) or is_cupy_array(base)):
        arr = base
        base = arr.base
    return arr


def mark_written(arr: Any) -> None:
    """Record that ``arr``'s memory was (or may have been) changed in place."""
    global _clock
    _clock += 1
    root = storage_root(arr)
    key = id(root)
    if key not in _stamps:
        weakref.finalize(root, _stamps.pop, key, None)
    _stamps[key] = _clock


def version_of(arr: Any) -> int:
    """The clock value of the latest write to ``arr``'s storage (0 if never written)."""
    if not _stamps:
        return 0
    return _stamps.get(id(storage_root(arr)), 0)
