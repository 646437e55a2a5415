"""Modules: parameters in flat buffers, state dicts, errors, initializers, losses."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.nn import functional as F


def test_parameters_are_views_of_one_flat_buffer():
    model = nn.MLP([3, 5, 4, 2], seed=0)
    (buf,) = model.flat_buffers()
    params = model.parameters()
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert buf.size == sum(p.size for p in params) == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2
    for p in params:
        assert p.is_leaf and p.requires_grad
        assert np.shares_memory(p.data, buf.data) and np.shares_memory(p.grad_view, buf.grad)
    x = np.ones((2, 3), np.float32)
    F.cross_entropy(model(x), np.array([0, 1])).backward()
    for p in params:  # the fused op wrote each gradient straight into the flat buffer
        assert p.grad._data is p.grad_view
    model.zero_grad()
    assert all(p.grad is None for p in params)


def test_gradient_accumulates_over_two_backwards():
    model = nn.MLP([3, 4, 2], activation="tanh", seed=1, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 3))
    F.mse_loss(model(x), np.zeros((5, 2))).backward()
    once = [p.grad.numpy().copy() for p in model.parameters()]
    F.mse_loss(model(x), np.zeros((5, 2))).backward()
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-12)


def test_shared_weight_gradient_sums_both_uses():
    layer = nn.Dense(3, 3, activation="tanh", seed=0, dtype=np.float64)
    x = gc.tensor(np.random.default_rng(1).standard_normal((2, 3)))
    layer(layer(x)).sum().backward()
    W, b = layer.weight.data.copy(), layer.bias.data.copy()

    def f(Wv):
        h = np.tanh(x.data @ Wv + b)
        return np.tanh(h @ Wv + b).sum()

    eps, fd = 1e-6, np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        d = np.zeros_like(W)
        d[idx] = eps
        fd[idx] = (f(W + d) - f(W - d)) / (2 * eps)
    np.testing.assert_allclose(layer.weight.grad.numpy(), fd, rtol=1e-6, atol=1e-9)


def test_dense_wrong_width_error_names_both_widths():
    layer = nn.Dense(4, 2)
    with pytest.raises(ShapeError, match=r"expected input width 4 .* received width 3"):
        layer(np.zeros((8, 3), np.float32))


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    model = nn.MLP([3, 4, 2], seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = model.state_dict()
    del state["0.bias"]
    state["extra.weight"] = np.zeros(3, np.float32)
    state["1.weight"] = np.zeros((2, 4), np.float32)
    state["0.weight"] = state["0.weight"] + 1  # valid, but must not be applied
    with pytest.raises(nn.StateDictError) as err:
        model.load_state_dict(state)
    msg = str(err.value)
    assert "missing keys: 0.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "1.weight: expected float32(4, 2), got float32(2, 4)" in msg
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k])


def test_state_dict_round_trip_and_copies():
    a, b = nn.MLP([3, 4, 2], seed=0), nn.MLP([3, 4, 2], seed=1)
    sd = a.state_dict()
    sd["0.weight"][...] = 7  # a copy: the model is unaffected
    assert not np.any(a.state_dict()["0.weight"] == 7)
    b.load_state_dict(a.state_dict())
    x = np.ones((1, 3), np.float32)
    assert np.array_equal(a(x).data, b(x).data)
    assert np.shares_memory(b[0].weight.data, b.flat_buffers()[0].data)


def test_init_is_reproducible_and_scaled():
    a = nn.MLP([100, 200, 10], seed=5)
    b = nn.MLP([100, 200, 10], seed=5)
    c = nn.MLP([100, 200, 10], seed=6)
    assert np.array_equal(a[0].weight.data, b[0].weight.data)
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)
    assert abs(a[0].weight.data.std() - np.sqrt(2 / 100)) < 0.01  # He for relu
    limit = np.sqrt(6 / 210)  # Glorot uniform for the linear output layer
    assert np.abs(a[1].weight.data).max() <= limit
    assert not a[0].bias.data.any()


def test_train_eval_and_sequential():
    model = nn.Sequential(nn.Dense(2, 3, "relu", seed=0), nn.Dense(3, 1, seed=1))
    assert model.training and model[0].training
    model.eval()
    assert not model.training and not model[1].training
    assert len(model) == 2 and model(np.zeros((4, 2), np.float32)).shape == (4, 1)
    assert len(model.flat_buffers()) == 1


def test_cross_entropy_matches_numpy_and_finite_differences():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2, 0])
    x = gc.tensor(logits, requires_grad=True)
    for reduction in ("mean", "sum", "none"):
        got = F.cross_entropy(x, labels, reduction=reduction)
        lse = np.log(np.exp(logits).sum(1))
        per = lse - logits[np.arange(6), labels]
        want = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
        np.testing.assert_allclose(got.data, want, rtol=1e-12)
    F.cross_entropy(x, labels).backward()
    eps, fd = 1e-6, np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        d = np.zeros_like(logits)
        d[idx] = eps
        fd[idx] = (F.cross_entropy(logits + d, labels).item()
                   - F.cross_entropy(logits - d, labels).item()) / (2 * eps)
    np.testing.assert_allclose(x.grad.data, fd, rtol=1e-6, atol=1e-9)


def test_cross_entropy_is_stable_and_second_order():
    big = gc.tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
    assert np.isfinite(F.cross_entropy(big, np.array([2])).item())
    # Hessian-vector product of mean cross-entropy: (diag(p) - p pᵀ) v / batch
    from gpuchain.engine.backward import backward

    rng = np.random.default_rng(1)
    logits, v = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x = gc.tensor(logits, requires_grad=True)
    (g,) = backward([F.cross_entropy(x, np.array([0, 1, 2]))], [None], create_graph=True,
                    retain_graph=True, targets=[x])
    (hv,) = backward([(g * gc.tensor(v)).sum()], [None], targets=[x])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = (p * v - p * (p * v).sum(1, keepdims=True)) / 3
    np.testing.assert_allclose(hv.data, want, rtol=1e-10, atol=1e-12)


def test_cross_entropy_jvp():
    from gpuchain.engine.mode import forward_level
    from gpuchain.engine.op import set_tangent
    from gpuchain.engine.op import tangent as tangent_at

    rng = np.random.default_rng(2)
    logits, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    labels = np.array([1, 0, 3])
    with forward_level() as level:
        x = gc.tensor(logits)
        set_tangent(x, level, gc.tensor(t))
        tangent = tangent_at(F.cross_entropy(x, labels, reduction="none"), level).data
    eps = 1e-6
    fd = (F.cross_entropy(logits + eps * t, labels, reduction="none").data
          - F.cross_entropy(logits - eps * t, labels, reduction="none").data) / (2 * eps)
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-9)


def test_cross_entropy_errors():
    logits = np.zeros((2, 3))
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\).*\[0, 3\]"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ShapeError, match=r"found values in \[-1, 1\]"):
        F.cross_entropy(logits, np.array([-1, 1]))
    with pytest.raises(DTypeError, match=r"labels must be integer.*labels float64\(2,\)"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ShapeError, match=r"logits float64\(2, 3\), labels int64\(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")


def test_bce_with_logits_and_mse():
    rng = np.random.default_rng(3)
    z = rng.standard_normal(5) * 50
    t = rng.uniform(size=5)
    x = gc.tensor(z, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="sum")
    want = np.logaddexp(0, z) - z * t
    np.testing.assert_allclose(loss.item(), want.sum(), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 1 / (1 + np.exp(-z)) - t, rtol=1e-10, atol=1e-15)
    p = gc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    F.mse_loss(p, np.array([0.0, 0.0])).backward()
    np.testing.assert_allclose(p.grad.data, [1.0, 2.0])
    with pytest.raises(ShapeError, match="same shape"):
        F.mse_loss(p, np.zeros(3))


def test_to_a_dtype_casts_the_parameters_and_the_optimizer_follows():
    model = nn.MLP([3, 5, 2], activation="tanh", seed=0, dtype=np.float32)
    opt = gc.optim.Adam(model, lr=0.01)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.integers(0, 2, 4)

    def step(m, o, dtype):
        o.zero_grad()
        gc.nn.functional.cross_entropy(m(gc.tensor(x.astype(dtype))), y).backward()
        o.step()

    for _ in range(3):
        step(model, opt, np.float32)
    # the reference: a float64 copy of the model with the optimizer state loaded (cast)
    ref = nn.MLP([3, 5, 2], activation="tanh", seed=0, dtype=np.float64)
    ref.load_state_dict({k: v.astype(np.float64) for k, v in model.state_dict().items()})
    ref_opt = gc.optim.Adam(ref, lr=0.01)
    ref_opt.load_state_dict(opt.state_dict())
    assert model.to(np.float64) is model
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert {b.data.dtype for b in model.flat_buffers()} == {np.dtype(np.float64)}
    step(model, opt, np.float64)
    step(ref, ref_opt, np.float64)
    assert all(v.dtype == np.float64 for st in opt.state for v in st.values())
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_to_refuses_bad_arguments_and_changes_nothing():
    model = nn.Dense(2, 3, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model.to("tpu")
    with pytest.raises(DTypeError, match="must stay floating"):
        model.to(np.int32)
    with pytest.raises(DTypeError, match="neither a device nor a dtype"):
        model.to(object())
    assert model.weight.dtype == np.float32
    assert model.to("cpu", np.float16).weight.dtype == np.float16
    assert model.to(dtype="float64").bias.dtype == np.float64
