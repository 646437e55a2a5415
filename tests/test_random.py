"""gc.random: seeded, reproducible streams with NumPy's Generator API on the current
backend; dtypes; the differentiable permutation of a Tensor."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import random as grandom


def test_same_seed_same_numbers_and_numpy_stream():
    a = grandom.default_rng(5).normal(size=(3, 4), dtype="float64")
    b = grandom.default_rng(5).normal(size=(3, 4), dtype="float64")
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(a.numpy(), np.random.default_rng(5).normal(size=(3, 4)))
    c = grandom.default_rng(6).normal(size=(3, 4), dtype="float64")
    assert not np.array_equal(a.numpy(), c.numpy())


def test_dtype_does_not_change_the_stream():
    a = grandom.default_rng(1).standard_normal(5, dtype="float32")
    b = grandom.default_rng(1).standard_normal(5, dtype="float64")
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert grandom.default_rng(0).random(3).dtype == gc.get_default_dtype()


def test_distributions_shapes_and_ranges():
    rng = grandom.default_rng(0)
    u = rng.uniform(-2.0, 3.0, size=1000, dtype="float64").numpy()
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.2
    n = rng.normal(10.0, 0.5, size=(2000,), dtype="float64").numpy()
    assert abs(n.mean() - 10.0) < 0.05 and abs(n.std() - 0.5) < 0.05
    i = rng.integers(3, 7, size=(50,))
    assert i.dtype == np.int64 and i.numpy().min() >= 3 and i.numpy().max() < 7
    assert rng.integers(2, 3, size=4, endpoint=True).numpy().max() <= 3
    assert rng.normal(size=None).shape == ()
    with pytest.raises(TypeError, match="integer dtype"):
        rng.integers(3, dtype="float32")
    with pytest.raises(TypeError, match="floating dtype"):
        rng.normal(size=2, dtype="int32")


def test_requires_grad_leaf():
    w = grandom.default_rng(0).normal(size=(2, 2), requires_grad=True)
    assert w.requires_grad and w.is_leaf


def test_permutation():
    rng = grandom.default_rng(3)
    p = rng.permutation(6).numpy()
    assert sorted(p.tolist()) == list(range(6))
    x = gc.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    y = grandom.default_rng(3).permutation(x)
    perm = np.random.default_rng(3).permutation(4)
    np.testing.assert_array_equal(y.numpy(), x.numpy()[perm])
    (y * np.arange(4.0)[:, None]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[perm, 0], np.arange(4.0))
    with pytest.raises(ValueError, match="permutation"):
        rng.permutation(gc.tensor(1.0))
