"""clip_grad_norm_ / clip_grad_value_ / parameters_to_vector against torch.nn.utils."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn
from gpuchain.errors import NonFiniteGradError
from gpuchain.nn import functional as F
from gpuchain.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)

torch = pytest.importorskip("torch")


def _model_with_grads(scale=1.0):
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 3)) * scale
    F.mse_loss(model(x), np.zeros((5, 2))).backward()
    return model


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.05, 100.0])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm):
    model = _model_with_grads(3.0)
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    ts = [torch.zeros(p.shape, dtype=torch.float64, requires_grad=True) for p in
          model.parameters()]
    for t, g in zip(ts, grads):
        t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(model, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type)
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-12)
    for p, t in zip(model.parameters(), ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
        assert p.grad._data is p.grad_view  # clipped in the flat gradient buffer


def test_clip_grad_value_and_loose_tensors():
    w = gc.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    w.grad = gc.tensor(np.array([0.5, -4.0, 2.0]))
    clip_grad_value_([w], 1.0)
    np.testing.assert_array_equal(w.grad.numpy(), [0.5, -1.0, 1.0])
    total = clip_grad_norm_([w], 0.1)
    np.testing.assert_allclose(total.item(), np.sqrt(0.25 + 1 + 1))
    np.testing.assert_allclose(np.linalg.norm(w.grad.numpy()), 0.1, rtol=1e-5)


def test_nonfinite_norm_raises_on_request_and_changes_nothing():
    model = _model_with_grads()
    model[0].weight.grad.data[0, 0] = np.inf
    before = [p.grad.numpy().copy() for p in model.parameters()]
    with pytest.raises(NonFiniteGradError, match="total gradient norm is inf"):
        clip_grad_norm_(model, 1.0, error_if_nonfinite=True)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.grad.numpy(), b)


def test_parameters_to_vector_and_back():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    v = parameters_to_vector(model.parameters())
    tv = torch.nn.utils.parameters_to_vector(
        [torch.from_numpy(p.numpy().copy()) for p in model.parameters()])
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    vector_to_parameters(v * 2, model)
    np.testing.assert_array_equal(parameters_to_vector(model).numpy(), 2 * v.numpy())
    assert model[0].weight.in_flat_buffer()
    with pytest.raises(gc.ShapeError, match="expected a vector of 26 values"):
        vector_to_parameters(np.zeros(3), model)
