"""gc.data.batches: aligned minibatches of arrays, shuffled reproducibly, on the current
backend (a loop helper, not a DataLoader)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gpuchain.backend import get_backend, is_cupy_array, move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import ShapeError

__all__ = ["batches"]


def batches(*arrays: Any, batch_size: int, shuffle: bool = True,
            seed: int | np.random.Generator | None = None,
            drop_last: bool = False) -> Iterator[tuple[Tensor, ...]]:
    """Yield tuples of aligned minibatches (row ``i`` of every array stays together).

    Parameters
    ----------
    *arrays : arrays, Tensors or nested lists, all with the same first dimension
    batch_size : int
        Rows per batch (the last batch may be smaller unless ``drop_last``).
    shuffle : bool
        Visit the rows in a random order (drawn from ``seed``; pass a different seed per
        epoch, or one ``np.random.Generator`` reused across epochs, for new orders).
    seed : int, numpy Generator or None
    drop_last : bool
        Skip a last batch smaller than ``batch_size``.

    Yields
    ------
    tuple of Tensor
        One Tensor per input array (constants: they do not require grad), on the current
        backend's device, dtypes kept.
    """
    if not arrays:
        raise ValueError("batches: give at least one array")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
            batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    device = get_backend().device
    data = []
    for i, a in enumerate(arrays):
        raw = a._data if isinstance(a, Tensor) else a
        if not (isinstance(raw, np.ndarray) or is_cupy_array(raw)):
            raw = np.asarray(raw)
        if raw.ndim == 0:
            raise ShapeError(f"batches: array {i} is 0-d; expected rows along axis 0")
        data.append(move_array(raw, device))
    n = data[0].shape[0]
    bad = [f"array {i}: {d.shape[0]}" for i, d in enumerate(data) if d.shape[0] != n]
    if bad:
        raise ShapeError(f"batches: arrays must have the same number of rows; array 0 has "
                         f"{n}, " + ", ".join(bad))
    return _iterate(data, n, int(batch_size), shuffle, seed, drop_last)


def _iterate(data: list[Any], n: int, batch_size: int, shuffle: bool, seed: Any,
             drop_last: bool) -> Iterator[tuple[Tensor, ...]]:
    order = None
    if shuffle:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        order = rng.permutation(n)
    stop = n - n % batch_size if drop_last else n
    for lo in range(0, stop, batch_size):
        hi = min(lo + batch_size, n)
        if order is None:
            yield tuple(Tensor(d[lo:hi]) for d in data)
        else:
            idx = order[lo:hi]
            yield tuple(Tensor(d[move_array(idx, "cuda")] if is_cupy_array(d) else d[idx])
                        for d in data)
