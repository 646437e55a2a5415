"""Op-table rows for the ops gpuchain.nn registers ("dense", "cross_entropy"), driven by
the same checks as tests/test_ops.py: forward vs NumPy, gradcheck in both modes to
second order, and reverse == forward Jacobians. test_ops imports NN_ROWS."""

from __future__ import annotations

import math

import numpy as np
import pytest
from op_table import Row, sample_inputs

import gpuchain as gc
from gpuchain.nn.functional import ACTIVATIONS, cross_entropy, dense
from gpuchain.testing import gradcheck

SIG = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
LABELS = np.array([2, 0, 1, 2])


def _act_ref(name, z):
    erf = np.vectorize(math.erf)

    return {
        "identity": lambda z: z,
        "relu": lambda z: np.maximum(z, 0),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
        "sigmoid": SIG,
        "tanh": np.tanh,
        "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
        "gelu_tanh": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
        "silu": lambda z: z * SIG(z),
        "softplus": lambda z: np.logaddexp(0, z),
    }[name](z)


def _dense_row(name, bias):
    if bias:
        fn = lambda x, W, b: dense(x, W, b, name)  # noqa: E731
        ref = lambda x, W, b: _act_ref(name, x @ W + b)  # noqa: E731
        shapes = [((4, 3), (3, 2), (2,)), ((1, 2), (2, 3), (3,))]
    else:
        fn = lambda x, W: dense(x, W, None, name)  # noqa: E731
        ref = lambda x, W: _act_ref(name, x @ W)  # noqa: E731
        shapes = [((4, 3), (3, 2))]
    return Row("dense", fn, ref, shapes)


def _xent_ref(x):
    lse = np.log(np.exp(x).sum(-1))
    return (lse - x[np.arange(len(x)), LABELS]).mean()


NN_ROWS = [_dense_row(a, b) for a in ACTIVATIONS for b in (True, False)] + [
    Row("cross_entropy", lambda x: cross_entropy(x, LABELS), _xent_ref, [((4, 3),)]),
    Row("cross_entropy", lambda x: cross_entropy(x, LABELS, reduction="none"),
        lambda x: np.log(np.exp(x).sum(-1)) - x[np.arange(4), LABELS], [((4, 5),)]),
]


def _cases():
    for i, row in enumerate(NN_ROWS):
        for shapes in row.shapes:
            yield pytest.param(row, shapes, id=f"{row.op}-{i}-{'x'.join(map(str, shapes))}")


@pytest.mark.parametrize("row,shapes", list(_cases()))
def test_forward_matches_numpy(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    out = row.fn(*[gc.tensor(x) for x in xs])
    np.testing.assert_allclose(out.numpy(), row.ref(*xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("row,shapes", list(_cases()))
def test_gradcheck_both_modes(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    assert gradcheck(row.fn, xs, order=row.order, **row.check)


@pytest.mark.parametrize("row,shapes", list(_cases()))
def test_reverse_equals_forward_jacobian(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    for i in range(len(xs)):
        def f(x, i=i):
            args = [gc.tensor(a) for a in xs]
            args[i] = x
            return row.fn(*args)

        rev = gc.functional.jacobian(f, xs[i]).numpy()
        fwd = gc.functional.jacfwd(f, xs[i]).numpy()
        np.testing.assert_allclose(rev, fwd, rtol=1e-6, atol=1e-7)
