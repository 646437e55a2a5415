"""In-place updates under no_grad keep the leaf (and requires_grad); they are refused on
tensors in a recorded graph and on leaves that require grad while recording."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.engine import inplace
from gpuchain.errors import DTypeError, ShapeError

_OPS = {"iadd": (inplace.iadd, "__iadd__"), "isub": (inplace.isub, "__isub__"),
        "imul": (inplace.imul, "__imul__"), "idiv": (inplace.idiv, "__itruediv__")}


def _call(name, t, v):
    fn, method = _OPS[name]
    if method in type(t).__dict__:  # wired into the Tensor class: use the operator
        return getattr(t, method)(v)
    return fn(t, v)


def test_manual_sgd_under_no_grad_updates_the_leaf_in_place():
    w = gc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    data = w._data
    for _ in range(3):
        loss = (w * w).sum()
        w.grad = None
        loss.backward()
        with gc.no_grad():
            out = _call("isub", w, 0.1 * w.grad)
        assert out is w and w.requires_grad and w.is_leaf and w._data is data
    np.testing.assert_allclose(w.numpy(), np.array([1.0, 2.0]) * 0.8 ** 3)


@pytest.mark.parametrize("name,expect", [("iadd", [3.0, 4.0]), ("isub", [-1.0, 0.0]),
                                         ("imul", [2.0, 4.0]), ("idiv", [0.5, 1.0])])
def test_each_augmented_operator(name, expect):
    w = gc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with gc.no_grad():
        _call(name, w, gc.tensor(np.array(2.0)))
    np.testing.assert_array_equal(w.numpy(), expect)
    assert w.requires_grad


def test_setitem_zero_copy_fill():
    w = gc.tensor(np.zeros((2, 3)), requires_grad=True)
    versions = [w._version]

    def stamped():  # every change in place stamps a newer version
        versions.append(w._version)
        assert versions[-1] > versions[-2]

    with gc.no_grad():
        inplace.setitem(w, (0, slice(None)), np.array([1.0, 2.0, 3.0]))
        stamped()
        inplace.setitem(w, gc.tensor(np.array([1])), 7.0)
        stamped()
        assert w.numpy().tolist() == [[1, 2, 3], [7, 7, 7]]
        inplace.copy_(w, np.arange(3.0))
        stamped()
        assert w.numpy().tolist() == [[0, 1, 2], [0, 1, 2]]
        inplace.fill_(w, 4.0)
        stamped()
        assert np.all(w.numpy() == 4)
        inplace.zero_(w)
        stamped()
        assert not w.numpy().any() and w.requires_grad


def test_refused_on_graph_tensors_and_recording_leaves():
    w = gc.tensor(np.ones(2), requires_grad=True)
    y = w * 2
    with pytest.raises(RuntimeError, match="output of op .* recorded graph"):
        inplace.iadd(y, 1.0)
    with pytest.raises(RuntimeError, match="leaf that requires grad"):
        inplace.isub(w, 1.0)
    with pytest.raises(RuntimeError, match="recorded graph"):
        inplace.setitem(y, 0, 5.0)
    np.testing.assert_array_equal(w.numpy(), [1.0, 1.0])
    c = gc.tensor(np.ones(2))  # a constant may change anywhere
    inplace.iadd(c, 1.0)
    np.testing.assert_array_equal(c.numpy(), [2.0, 2.0])


def test_bad_values():
    w = gc.tensor(np.ones(3))
    i = gc.tensor(np.arange(3))
    with pytest.raises(ShapeError, match=r"shape \(2,\) does not broadcast to the tensor's "
                                         r"shape \(3,\)"):
        inplace.iadd(w, np.ones(2))
    with pytest.raises(DTypeError, match="cannot write float values into a int64"):
        inplace.iadd(i, 0.5)
    with pytest.raises(TypeError, match="expected a number"):
        inplace.imul(w, None)
    np.testing.assert_array_equal(w.numpy(), np.ones(3))
