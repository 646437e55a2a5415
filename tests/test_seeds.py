"""The worked examples of the seed documents, against their closed forms at many t."""

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.worked_examples import EXAMPLES, directional_derivative, neuron_gradients

TS = np.linspace(0.3, 3.0, 19)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.formula)
def test_seed_derivative_matches_closed_form(example):
    for t in TS:
        assert example.derivative(t) == pytest.approx(example.closed_form(t), rel=1e-12, abs=1e-12)


def test_multivariable_chain_rule_sums_every_path():
    # f = sin(x) e^{y z²}: t reaches f along three paths (x, y, z); dropping any one
    # path changes the answer, so the sum is what is being tested.
    t = gc.tensor(1.7, dtype="float64", requires_grad=True)
    x, y, z = t - 1, t**2, 1 / t
    f = gc.sin(x) * gc.exp(y * z**2)
    f.backward()
    tv = 1.7
    xv, yv, zv = tv - 1, tv**2, 1 / tv
    e = np.exp(yv * zv**2)
    paths = [np.cos(xv) * e * 1, zv**2 * np.sin(xv) * e * 2 * tv,
             2 * yv * zv * np.sin(xv) * e * (-1 / tv**2)]
    assert t.grad.item() == pytest.approx(sum(paths), rel=1e-12)
    assert abs(t.grad.item() - sum(paths[:2])) > 1e-3


@pytest.mark.parametrize("t", TS)
def test_directional_derivative_is_jacobian_product(t):
    got, want = directional_derivative(t)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("w,b", [(0.5, -0.2), (-1.3, 0.7), (2.0, 1.0), (0.0, 0.0)])
def test_one_neuron_network(w, b):
    (gw, gb), (cw, cb) = neuron_gradients(w, b)
    assert gw == pytest.approx(cw, rel=1e-12, abs=1e-15)
    assert gb == pytest.approx(cb, rel=1e-12, abs=1e-15)


def test_sigmoid_derivative_in_float32_default_dtype():
    x = gc.tensor(np.linspace(-6, 6, 25).tolist(), requires_grad=True)  # a list: float32
    assert x.dtype == np.float32
    gc.sigmoid(x).sum().backward()
    xv = np.linspace(-6, 6, 25)
    np.testing.assert_allclose(x.grad.numpy(), np.exp(-xv) / (1 + np.exp(-xv)) ** 2,
                               rtol=1e-4, atol=1e-7)  # float32: 1 - σ cancels near σ = 1
