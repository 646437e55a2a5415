"""One row per registered op: how to call it, a NumPy reference, and inputs.

``test_ops.py`` drives forward checks, gradchecks (both modes, second order) and
reverse/forward agreement from this table; a registered op without a row fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import nn_op_rows
import numpy as np
import numpy_op_rows

import gpuchain as gc
from gpuchain.ops import device as device_ops
from gpuchain.ops import shape as shape_ops


def _erf(x):
    return np.vectorize(math.erf)(x)


@dataclass
class Row:
    op: str  # registry name
    fn: Callable  # called with Tensors
    ref: Callable | None  # NumPy reference, called with arrays
    shapes: list  # list of tuples of input shapes
    domain: str = "any"  # any | positive | away_from_zero | distinct
    order: int = 2
    extra_ops: tuple = field(default_factory=tuple)  # other registry names this row covers
    check: dict = field(default_factory=dict)  # gradcheck options for this row


SHAPES_1 = [((),), ((5,),), ((3, 4),)]
SHAPES_2 = [((), ()), ((5,), (5,)), ((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1))]
SIG = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
ROWS = [
    Row("add", lambda a, b: a + b, np.add, SHAPES_2),
    Row("sub", lambda a, b: a - b, np.subtract, SHAPES_2),
    Row("mul", lambda a, b: a * b, np.multiply, SHAPES_2),
    Row("div", lambda a, b: a / b, np.divide, SHAPES_2, domain="positive"),
    Row("neg", lambda a: -a, np.negative, SHAPES_1),
    Row("power", lambda a, b: a ** b, np.power, SHAPES_2, domain="positive"),
    Row("sin", gc.sin, np.sin, SHAPES_1),
    Row("cos", gc.cos, np.cos, SHAPES_1),
    Row("tan", gc.tan, np.tan, SHAPES_1),
    Row("exp", gc.exp, np.exp, SHAPES_1),
    Row("log", gc.log, np.log, SHAPES_1, domain="positive"),
    Row("sqrt", gc.sqrt, np.sqrt, SHAPES_1, domain="positive"),
    Row("abs", gc.abs, np.abs, SHAPES_1, domain="away_from_zero"),
    Row("tanh", gc.tanh, np.tanh, SHAPES_1),
    Row("sigmoid", gc.sigmoid, SIG, SHAPES_1),
    Row("relu", gc.relu, lambda x: np.maximum(x, 0), SHAPES_1, domain="away_from_zero"),
    Row("leaky_relu", lambda x: gc.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x),
        SHAPES_1, domain="away_from_zero"),
    Row("elu", gc.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), SHAPES_1,
        domain="away_from_zero"),
    Row("gelu", gc.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))), SHAPES_1),
    Row("erf", gc.erf, _erf, SHAPES_1),
    Row("gelu_tanh", gc.gelu_tanh,
        lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))), SHAPES_1),
    Row("silu", gc.silu, lambda x: x * SIG(x), SHAPES_1),
    Row("softplus", gc.softplus, lambda x: np.log1p(np.exp(x)), SHAPES_1),
    Row("cbrt", gc.cbrt, np.cbrt, SHAPES_1, domain="away_from_zero"),
    Row("square", gc.square, np.square, SHAPES_1),
    Row("reciprocal", gc.reciprocal, np.reciprocal, SHAPES_1, domain="positive"),
    Row("exp2", gc.exp2, np.exp2, SHAPES_1),
    Row("expm1", gc.expm1, np.expm1, SHAPES_1),
    Row("log2", gc.log2, np.log2, SHAPES_1, domain="positive"),
    Row("log10", gc.log10, np.log10, SHAPES_1, domain="positive"),
    Row("log1p", gc.log1p, np.log1p, SHAPES_1, domain="positive"),
    Row("sinh", gc.sinh, np.sinh, SHAPES_1),
    Row("cosh", gc.cosh, np.cosh, SHAPES_1),
    Row("arcsin", gc.arcsin, np.arcsin, SHAPES_1, domain="unit"),
    Row("arccos", gc.arccos, np.arccos, SHAPES_1, domain="unit"),
    Row("arctan", gc.arctan, np.arctan, SHAPES_1),
    Row("arcsinh", gc.arcsinh, np.arcsinh, SHAPES_1),
    Row("arccosh", gc.arccosh, np.arccosh, SHAPES_1, domain="above_one"),
    Row("arctanh", gc.arctanh, np.arctanh, SHAPES_1, domain="unit"),
    Row("arctan2", gc.arctan2, np.arctan2, SHAPES_2, domain="positive"),
    Row("hypot", gc.hypot, np.hypot, SHAPES_2, domain="away_from_zero"),
    Row("logaddexp", gc.logaddexp, np.logaddexp, SHAPES_2),
    Row("mod", gc.mod, np.mod, SHAPES_2, domain="no_jumps"),
    Row("mod", lambda a, b: a % b, np.mod, [((3, 4), (4,))], domain="no_jumps"),
    Row("mod", lambda a, b: 7.5 % b, lambda a, b: np.mod(7.5, b), [((), (5,))],
        domain="no_jumps"),
    Row("fmod", gc.fmod, np.fmod, SHAPES_2, domain="no_jumps"),
    Row("sign", gc.sign, np.sign, SHAPES_1, domain="away_from_zero"),
    Row("floor", gc.floor, np.floor, SHAPES_1, domain="no_jumps"),
    Row("ceil", gc.ceil, np.ceil, SHAPES_1, domain="no_jumps"),
    Row("trunc", gc.trunc, np.trunc, SHAPES_1, domain="no_jumps"),
    Row("round", lambda x: gc.round(x, 1), lambda x: np.round(x, 1), SHAPES_1,
        domain="no_jumps"),
    Row("maximum", gc.maximum, np.maximum, SHAPES_2, domain="distinct"),
    Row("minimum", gc.minimum, np.minimum, SHAPES_2, domain="distinct"),
    Row("where", lambda a, b: gc.where(a.data > 0.1, a, b),
        lambda a, b: np.where(a > 0.1, a, b), SHAPES_2),
    Row("clip", lambda x: gc.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), SHAPES_1,
        domain="clip"),
    Row("astype", lambda x: x.astype("float32").astype("float64"),
        lambda x: x.astype(np.float32).astype(np.float64), SHAPES_1, order=1,
        # a float32 round trip: finite differences need a step far above its rounding
        check={"eps": 1e-2, "atol": 1e-4}),
    Row("sum", lambda x: gc.sum(x, axis=-1, keepdims=False), lambda x: np.sum(x, axis=-1),
        [((5,),), ((3, 4),), ((2, 3, 4),)]),
    Row("sum", lambda x: x.sum(), np.sum, SHAPES_1),
    Row("sum", lambda x: gc.mean(x, axis=(0, 2), keepdims=True),
        lambda x: np.mean(x, axis=(0, 2), keepdims=True), [((2, 3, 4),)]),
    Row("max", lambda x: gc.max(x, axis=1), lambda x: np.max(x, axis=1), [((3, 4),)]),
    Row("max", lambda x: gc.max(x), np.max, [((3, 4),)]),
    Row("logsumexp", lambda x: gc.logsumexp(x, axis=-1),
        lambda x: np.log(np.sum(np.exp(x), axis=-1)), [((5,),), ((3, 4),)]),
    Row("logsumexp", lambda x: gc.logsumexp(x, axis=0, keepdims=True),
        lambda x: np.log(np.sum(np.exp(x), axis=0, keepdims=True)), [((3, 4),)]),
    Row("softmax", lambda x: gc.softmax(x, axis=0),
        lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True), [((5,),), ((3, 4),)]),
    Row("log_softmax", lambda x: gc.log_softmax(x),
        lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)), [((5,),), ((3, 4),)]),
    Row("matmul", gc.matmul, np.matmul,
        [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
         ((3, 4), (2, 4, 5))]),
    Row("reshape", lambda x: x.reshape(2, -1), lambda x: x.reshape(2, -1), [((3, 4),), ((6,),)]),
    Row("transpose", lambda x: x.transpose(1, 2, 0), lambda x: x.transpose(1, 2, 0),
        [((2, 3, 4),)]),
    Row("transpose", lambda x: x.T, lambda x: x.T, [((3, 4),)]),
    Row("broadcast_to", lambda x: gc.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)), [((4,),), ((3, 1),)]),
    Row("getitem", lambda x: x[1:, ::2], lambda x: x[1:, ::2], [((3, 4),)],
        extra_ops=("scatter_add",)),
    Row("getitem", lambda x: x[[0, 2, 0]], lambda x: x[[0, 2, 0]], [((3, 4),)],
        extra_ops=("scatter_add",)),
    Row("getitem", lambda x: x[..., 1], lambda x: x[..., 1], [((3, 4),)]),
    Row("concatenate", lambda a, b: gc.concatenate([a, b], axis=1),
        lambda a, b: np.concatenate([a, b], axis=1), [((3, 2), (3, 4))]),
    Row("stack", lambda a, b: gc.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1),
        [((3,), (3,)), ((2, 3), (2, 3))]),
    Row("identity", lambda x: shape_ops.identity(x), lambda x: x, SHAPES_1),
    # cpu -> cpu here; the GPU suite runs the same row across devices
    Row("to_device", lambda x: device_ops.to_device(x, device="cpu", source="cpu"),
        lambda x: x, SHAPES_1),
]


ROWS += nn_op_rows._rows(Row)
ROWS += numpy_op_rows._rows(Row)


def sample(shape, domain, rng):
    x = rng.standard_normal(shape)
    if domain == "positive":
        return np.abs(x) + 0.5
    if domain == "away_from_zero":
        return np.where(np.abs(x) < 0.1, 0.3, x) * np.where(x < 0, -1, 1) * np.sign(x + 1e-12)
    if domain == "unit":
        return np.tanh(x) * 0.9
    if domain == "above_one":
        return np.abs(x) + 1.5
    if domain == "no_jumps":
        # positive, and 0.1 away from the integers and the tenths where floor, round and
        # mod jump (the finite differences must not straddle a jump)
        v = np.abs(x) * 3 + 0.5
        return np.floor(v * 10) / 10 + 0.025
    if domain == "clip":
        return np.where(np.abs(x + 0.5) < 0.05, 0.1, np.where(np.abs(x - 0.7) < 0.05, 0.1, x))
    return x


def sample_inputs(row: Row, shapes: tuple, rng) -> list[np.ndarray]:
    xs = [sample(s, row.domain, rng) for s in shapes]
    if row.domain == "no_jumps" and len(xs) == 2:
        # divisors in [4, 5): x1/x2 stays between integers (x1 < 4) or near 1.7 (7.5)
        xs[1] = 4 + np.abs(xs[1]) % 1
    if row.domain == "distinct" and len(xs) == 2:
        xs[1] = xs[1] + np.where(np.abs(np.broadcast_to(xs[0], np.broadcast_shapes(
            xs[0].shape, xs[1].shape)) - xs[1]).min() < 0.1, 0.5, 0.0)
    return xs


def cases():
    for i, row in enumerate(ROWS):
        for shapes in row.shapes:
            yield pytest_param(row, shapes, f"{row.op}-{i}-{'x'.join(map(str, shapes))}")


def pytest_param(row, shapes, name):
    import pytest

    return pytest.param(row, shapes, id=name)
