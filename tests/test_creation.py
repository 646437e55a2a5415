"""Creation functions: values, shapes and dtypes as NumPy's (floats in the default
dtype), requires_grad, and the *_like forms keeping dtype and device."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.ops import creation as cr


@pytest.fixture
def float64_default():
    old = gc.get_default_dtype()
    gc.set_default_dtype("float64")
    yield
    gc.set_default_dtype(old)


@pytest.mark.parametrize("fn,args", [
    ("zeros", ((2, 3),)), ("ones", (4,)), ("empty", ((2, 0),)), ("full", ((2,), 1.5)),
    ("eye", (3,)), ("eye", (2, 4, 1)), ("linspace", (0.0, 1.0, 5)),
    ("arange", (0.5, 3.0, 0.5)),
])
def test_float_results_take_the_default_dtype(fn, args):
    out = getattr(cr, fn)(*args)
    ref = getattr(np, fn)(*args)
    assert out.shape == ref.shape and out.dtype == gc.get_default_dtype()
    if fn != "empty":
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)
    assert not out.requires_grad


def test_default_dtype_is_followed(float64_default):
    assert cr.zeros(2).dtype == np.float64
    assert cr.linspace(0, 1, 3).dtype == np.float64


def test_dtype_and_requires_grad():
    t = cr.ones((2, 2), dtype="float64", requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf
    (t * 3).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.full((2, 2), 3.0))
    with pytest.raises(gc.DTypeError):
        cr.zeros(3, dtype="int32", requires_grad=True)


def test_integer_results_follow_numpy():
    assert cr.arange(5).dtype == np.int64
    np.testing.assert_array_equal(cr.arange(2, 11, 3).numpy(), np.arange(2, 11, 3))
    assert cr.full((2,), 7).dtype == np.int64
    assert cr.full((2,), True).dtype == np.bool_
    assert cr.arange(3, dtype="float64").dtype == np.float64
    np.testing.assert_array_equal(cr.eye(3, k=-1, dtype=int).numpy(), np.eye(3, k=-1))


def test_like_functions_keep_dtype_shape_and_override():
    x = gc.tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    for fn in (cr.zeros_like, cr.ones_like, cr.empty_like):
        out = fn(x)
        assert out.shape == (2, 3) and out.dtype == np.float64 and out.device == "cpu"
    np.testing.assert_array_equal(cr.full_like(x, 2.5).numpy(), np.full((2, 3), 2.5))
    assert cr.zeros_like(x, dtype="float32", shape=(4,)).shape == (4,)
    assert cr.ones_like(np.zeros(2, dtype=np.int32)).dtype == np.int32
    assert cr.ones_like([1.0, 2.0]).dtype == gc.get_default_dtype()


def test_bad_shapes_and_steps_raise():
    with pytest.raises(ValueError, match="zeros: negative dimensions"):
        cr.zeros((2, -1))
    with pytest.raises(TypeError, match="ones: shape entries must be integers"):
        cr.ones((2.5,))
    with pytest.raises(ValueError, match="arange: step must not be zero"):
        cr.arange(0, 3, 0)
