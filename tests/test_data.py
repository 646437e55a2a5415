"""gc.data.batches: aligned, reproducible, complete minibatches; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.data import batches
from gpuchain.errors import ShapeError


def test_batches_are_aligned_and_cover_every_row_once():
    x = np.arange(23 * 2).reshape(23, 2).astype(np.float32)
    y = np.arange(23)
    seen = []
    for xb, yb in batches(x, y, batch_size=5, seed=0):
        assert isinstance(xb, gc.Tensor) and not xb.requires_grad
        assert xb.dtype == np.float32 and yb.dtype == y.dtype
        np.testing.assert_array_equal(xb.numpy()[:, 0] // 2, yb.numpy())
        seen += yb.numpy().tolist()
    assert sorted(seen) == list(range(23)) and seen != list(range(23))
    sizes = [len(b[0]) for b in batches(x, y, batch_size=5, drop_last=True, shuffle=False)]
    assert sizes == [5, 5, 5, 5]
    first = [b[1].numpy().tolist() for b in batches(x, y, batch_size=5, seed=3)]
    again = [b[1].numpy().tolist() for b in batches(x, y, batch_size=5, seed=3)]
    assert first == again
    ordered = [b[0].numpy().tolist() for b in batches(y, batch_size=10, shuffle=False)]
    assert ordered == [list(range(10)), list(range(10, 20)), [20, 21, 22]]


def test_batches_errors():
    with pytest.raises(ShapeError, match="array 0 has 3, array 1: 2"):
        batches(np.zeros(3), np.zeros(2), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        batches(np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="at least one array"):
        batches(batch_size=2)
