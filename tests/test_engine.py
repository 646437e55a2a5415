"""Engine semantics: paths, broadcasting, leaves, graph lifetime, grad mode."""

import gc as pygc
import threading
import weakref

import numpy as np
import pytest

import gpuchain as gc


def t64(x, rg=True):
    return gc.tensor(np.asarray(x, dtype=np.float64), requires_grad=rg)


def test_fan_out_sums_gradients():
    x = t64(3.0)
    y = x * x + x * 2 + gc.sin(x)
    y.backward()
    assert x.grad.item() == pytest.approx(2 * 3 + 2 + np.cos(3.0))


def test_broadcasting_unbroadcasts_gradient():
    a = t64(np.ones((3, 4)))
    b = t64(np.arange(4.0))
    c = t64(np.ones((3, 1)))
    ((a * b + c) ** 2).sum().backward()
    full = 2 * (1 * np.arange(4.0) + 1) * np.ones((3, 4))
    np.testing.assert_allclose(b.grad.numpy(), full.sum(0))
    np.testing.assert_allclose(c.grad.numpy(), (2 * (np.arange(4.0) + 1)).sum() * np.ones((3, 1)))
    assert a.grad.shape == (3, 4) and b.grad.shape == (4,) and c.grad.shape == (3, 1)


def test_unused_input_gets_no_grad():
    x, unused = t64(2.0), t64(5.0)
    (x * 3).backward()
    assert x.grad.item() == 3 and unused.grad is None


def test_non_scalar_backward_needs_grad():
    x = t64([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_grad_accumulates_across_backward_calls_until_reset():
    x = t64(2.0)
    (x * x).backward()
    (x * x).backward()
    assert x.grad.item() == 8.0
    x.zero_grad()
    (x * x).backward()
    assert x.grad.item() == 4.0


def test_grad_written_on_leaves_only():
    x = t64(2.0)
    h = x * 3
    (h * h).backward()
    assert h.grad is None and x.grad.item() == 36.0


def test_second_backward_through_freed_graph_explains_retain_graph():
    x = t64(0.5)
    y = gc.tanh(x) * 2
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = t64(0.5)
    y = gc.tanh(x) * 2
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == pytest.approx(4 * (1 - np.tanh(0.5) ** 2))


def test_no_grad_records_nothing_and_enable_grad_reenables():
    x = t64(1.0)
    with gc.no_grad():
        y = x * 2
        with gc.enable_grad():
            z = x * 3
    assert y.is_leaf and not y.requires_grad
    assert not z.is_leaf


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        x = t64(1.0)
        seen["recorded"] = not (x * 2).is_leaf

    with gc.no_grad():
        th = threading.Thread(target=worker)
        th.start()
        th.join()
        assert (t64(1.0) * 2).is_leaf
    assert seen["recorded"] is True


def test_chain_of_100k_ops_has_no_recursion_limit():
    x = t64(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0
    del y
    pygc.collect()


def test_saved_intermediates_released_after_backward():
    x = t64(np.linspace(0.1, 1, 5))
    h = gc.sin(x)  # sin saves its input x; mul saves h
    ref = weakref.ref(h)
    y = (h * h).sum()
    del h
    assert ref() is not None  # alive: the mul node holds it for backward
    y.backward()
    pygc.collect()
    assert ref() is None


def test_retain_graph_keeps_saved_values():
    x = t64(np.linspace(0.1, 1, 5))
    h = gc.sin(x)
    ref = weakref.ref(h)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    pygc.collect()
    assert ref() is not None


def test_create_graph_gives_second_derivative():
    x = t64(0.7)
    y = x**3 * gc.sin(x)
    y.backward(create_graph=True)
    g = x.grad
    x.zero_grad()
    g.backward()
    want = 6 * 0.7 * np.sin(0.7) + 6 * 0.7**2 * np.cos(0.7) - 0.7**3 * np.sin(0.7)
    assert x.grad.item() == pytest.approx(want, rel=1e-12)


def test_scalar_keeps_tensor_dtype_and_lists_become_float32():
    x = gc.tensor(np.ones(3, dtype=np.float32))
    assert (x * 2.5).dtype == np.float32 and (2.5 + x).dtype == np.float32
    assert gc.tensor([1, 2, 3]).dtype == np.float32
    assert gc.tensor(np.arange(3)).dtype == np.arange(3).dtype
    gc.set_default_dtype("float64")
    try:
        assert gc.tensor([1.0]).dtype == np.float64
    finally:
        gc.set_default_dtype("float32")


def test_ndarray_on_the_left_defers_to_tensor():
    x = gc.tensor([1.0, 2.0], requires_grad=True)
    for y in (np.ones(2) + x, np.ones(2) * x, np.ones(2) - x, np.ones(2) / x,
              np.eye(2) @ x, np.float32(2) * x):
        assert isinstance(y, gc.Tensor)


def test_indexing_methods_and_comparisons():
    x = t64(np.arange(12.0).reshape(3, 4))
    y = x[[0, 2], 1:3].sum() + x.reshape(4, 3).transpose(1, 0)[0].sum() + x.T.max()
    y.backward()
    assert x.grad.shape == (3, 4)
    mask = x > 5
    assert mask.dtype == bool and not mask.requires_grad
    assert x.mean(axis=0, keepdims=True).shape == (1, 4)
    assert x.sum(axis=(0, 1)).item() == 66.0
    assert x.detach().is_leaf and not x.detach().requires_grad


def test_max_ties_share_gradient_and_relu_at_zero_is_zero():
    x = t64([1.0, 3.0, 3.0])
    gc.max(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0.5, 0.5])
    z = t64([0.0, 1.0])
    gc.relu(z).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [0.0, 1.0])
    a, b = t64(2.0), t64(2.0)
    gc.maximum(a, b).backward()
    assert a.grad.item() == 0.5 and b.grad.item() == 0.5


def test_detect_anomaly_names_the_op_and_site():
    x = t64([1.0, -1.0])
    with gc.detect_anomaly():
        with pytest.raises(gc.AnomalyError, match=r"log.*test_engine.py"):
            gc.log(x)
        y = gc.sqrt(t64([0.0, 1.0]))
        with pytest.raises(gc.AnomalyError, match="sqrt: backward"):
            y.sum().backward()
    gc.log(x)  # outside: NumPy semantics, a nan and a warning, no error


def test_to_cpu_is_identity_on_numpy():
    x = t64([1.0])
    assert x.to("cpu") is x
    with pytest.raises(ValueError, match="device"):
        x.to("tpu")
