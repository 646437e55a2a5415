"""SGD, Adam and AdamW against their update formulas written out in NumPy; atomic steps."""

from __future__ import annotations

import numpy as np
import pytest

from gpuchain import nn, optim
from gpuchain.nn import functional as F


def _model_and_data(seed=0):
    rng = np.random.default_rng(seed)
    model = nn.MLP([4, 6, 3], activation="tanh", seed=seed, dtype=np.float64)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    return model, x, y


def _grads(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def _run(opt_factory, reference, steps=4, **hyper):
    model, x, y = _model_and_data()
    opt = opt_factory(model, **hyper)
    params = [p.numpy().copy() for p in model.parameters()]
    state = [{} for _ in params]
    for t in range(1, steps + 1):
        opt.zero_grad()
        grads = _grads(model, x, y)
        opt.step()
        params = [reference(p, g, s, t, **hyper) for p, g, s in zip(params, grads, state)]
        for p, want in zip(model.parameters(), params):
            np.testing.assert_allclose(p.numpy(), want, rtol=1e-12, atol=1e-14)
    return opt


def _sgd_ref(p, g, s, t, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    d = g + weight_decay * p
    if momentum:
        s["buf"] = d.copy() if t == 1 else momentum * s["buf"] + d
        d = d + momentum * s["buf"] if nesterov else s["buf"]
    return p - lr * d


def _adam_ref(p, g, s, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled=False):
    b1, b2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    m_hat = s["m"] / (1 - b1 ** t)
    v_hat = s["v"] / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


@pytest.mark.parametrize("hyper", [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.8, "nesterov": True},
    {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    {"lr": 0.1, "weight_decay": 0.1},
])
def test_sgd_matches_formula(hyper):
    _run(optim.SGD, _sgd_ref, **hyper)


@pytest.mark.parametrize("hyper", [
    {"lr": 0.01},
    {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 0.01, "weight_decay": 0.1},
])
def test_adam_matches_formula(hyper):
    _run(optim.Adam, _adam_ref, **hyper)


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adamw_matches_formula(wd):
    _run(optim.AdamW, lambda *a, **k: _adam_ref(*a, decoupled=True, **k), lr=0.01,
         weight_decay=wd)


def test_chunked_update_covers_large_buffers(monkeypatch):
    from gpuchain.optim import optimizer

    monkeypatch.setattr(optimizer, "CHUNK", 7)  # many ragged chunks
    _run(optim.Adam, _adam_ref, lr=0.01, weight_decay=0.1)
    _run(optim.SGD, _sgd_ref, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)


def _snapshot(model, opt):
    return ([p.numpy().copy() for p in model.parameters()],
            {k: (v.copy() if hasattr(v, "copy") else v) for k, v in opt.state_dict().items()})


def _assert_unchanged(model, opt, snap):
    params, state = snap
    for p, before in zip(model.parameters(), params):
        assert np.array_equal(p.numpy(), before)
    now = opt.state_dict()
    assert now["step"] == state["step"]
    for i, entry in state["buffers"].items():
        for k, v in entry.items():
            assert np.array_equal(now["buffers"][i][k], v)


@pytest.mark.parametrize("make", [
    lambda m: optim.Adam(m, lr=0.01),
    lambda m: optim.SGD(m, lr=0.1, momentum=0.9),
])
def test_failed_step_leaves_params_and_state_untouched(make):
    model, x, y = _model_and_data()
    opt = make(model)
    _grads(model, x, y)
    opt.step()  # state exists now
    snap = _snapshot(model, opt)

    _grads(model, x, y)
    model[0].weight.grad.data[0, 0] = np.nan  # NaN check
    with pytest.raises(optim.NonFiniteGradError, match=r"0\.weight"):
        opt.step()
    _assert_unchanged(model, opt, snap)

    _grads(model, x, y)
    from gpuchain import tensor

    model[0].bias.grad = tensor(np.zeros(7))  # a mis-shaped gradient
    with pytest.raises(ValueError, match=r"0\.bias: grad \(7,\) vs param \(6,\)"):
        opt.step()
    _assert_unchanged(model, opt, snap)

    opt.zero_grad()
    _grads(model, x, y)
    opt.step()  # and the optimizer still works afterwards


def test_state_dict_round_trip_and_bad_state():
    model, x, y = _model_and_data()
    opt = optim.Adam(model, lr=0.01)
    _grads(model, x, y)
    opt.step()
    sd = opt.state_dict()
    other_model, _, _ = _model_and_data()
    other = optim.Adam(other_model, lr=0.5)
    other.load_state_dict(sd)
    assert other.hyper["lr"] == 0.01 and other.step_count == 1
    bad = opt.state_dict()
    bad["buffers"]["0"]["exp_avg"] = np.zeros(3)
    before = other.state_dict()
    with pytest.raises(optim.OptimizerStateError, match=r"exp_avg: expected float64"):
        other.load_state_dict(bad)
    with pytest.raises(optim.OptimizerStateError, match="state is for 'Adam'"):
        optim.SGD(other_model, lr=0.1).load_state_dict(sd)
    after = other.state_dict()
    assert after["step"] == before["step"]
    assert np.array_equal(after["buffers"]["0"]["exp_avg"], before["buffers"]["0"]["exp_avg"])


def test_parameter_list_and_errors():
    model, x, y = _model_and_data()
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert opt.buffers == model.flat_buffers()  # reuses the module's flat buffer
    with pytest.raises(TypeError, match="not a gpuchain.nn.Parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        optim.Adam(model, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(model, lr=0.1, nesterov=True)
