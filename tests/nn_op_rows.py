"""Op-table rows for the ops gpuchain.nn registers ("dense", "cross_entropy").

Data only: tests/op_table.py appends these rows to ROWS, so test_ops.py runs the same
checks on them (forward vs NumPy, gradcheck both modes to second order, reverse ==
forward Jacobians).
"""

from __future__ import annotations

import math

import numpy as np

from gpuchain.nn._activations import ACTIVATIONS
from gpuchain.nn.functional import cross_entropy, dense, layer_norm


def _rows(Row):  # Row is passed in: op_table imports this module, not the other way
    return [_dense_row(Row, a, b) for a in ACTIVATIONS for b in (True, False)] + [
        Row("cross_entropy", lambda x: cross_entropy(x, LABELS), _xent_ref, [((4, 3),)]),
        Row("cross_entropy", lambda x: cross_entropy(x, LABELS, reduction="none"),
            lambda x: np.log(np.exp(x).sum(-1)) - x[np.arange(4), LABELS], [((4, 5),)]),
        Row("layer_norm", lambda x, w, b: layer_norm(x, x.shape[-1], w, b), _ln_ref,
            [((4, 5), (5,), (5,)), ((2, 3, 4), (4,), (4,))]),
    ]


def _ln_ref(x, w, b):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b


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
        "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    }[name](z)


def _dense_row(Row, name, bias):
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


