"""The layer-norm CUDA kernels vs an independent NumPy float64 formula, per dtype and shape.

Needs CuPy and a usable CUDA device (or the CPU kernel harness ../shared/kemu/run).
"""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
if not cupy.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

from gpuchain.cuda import norm_kernels as NK  # noqa: E402
from gpuchain.errors import DTypeError, ShapeError  # noqa: E402

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.float16]
# n = 1 (a constant row), n not a power of two, n > the block (several columns per
# thread), rows > the grid limit (grid-stride loop over rows)
SHAPES = [(1, 1), (3, 7), (5, 33), (17, 300), (2, 1031), (1030, 4)]
EPS = 1e-5
TOL = {np.float64: (1e-11, 1e-12), np.float32: (3e-5, 3e-5), np.float16: (4e-3, 4e-3)}


def ln64(x, w, b, eps=EPS):
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    return (x - mean) * rstd * w + b, mean[:, 0], rstd[:, 0]


def ln_grad64(g, x, w, eps=EPS):
    n = x.shape[1]
    mean = x.mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    gw = g * w
    dx = rstd * (gw - gw.sum(1, keepdims=True) / n - xhat * (gw * xhat).sum(1, keepdims=True) / n)
    return dx, (g * xhat).sum(0), g.sum(0)


def _dev(a, dtype):
    a = np.asarray(a).astype(dtype)
    return cupy.asarray(a), a.astype(np.float64)


def _close(got, want, dtype, scale=1.0):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(cupy.asnumpy(got).astype(np.float64), want, rtol=rtol,
                               atol=atol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm_forward(dtype, shape):
    rng = np.random.default_rng(0)
    rows, n = shape
    x_d, x = _dev(rng.standard_normal(shape) * 2 + 0.5, dtype)
    w_d, w = _dev(rng.standard_normal(n), dtype)
    b_d, b = _dev(rng.standard_normal(n), dtype)
    y = cupy.empty(shape, dtype)
    mean, rstd = cupy.empty(rows, dtype), cupy.empty(rows, dtype)
    NK.layernorm_forward(x_d, w_d, b_d, EPS, y, mean, rstd)
    want, m, r = ln64(x, w, b)
    _close(y, want, dtype, scale=4)
    _close(mean, m, dtype)
    _close(rstd, r, dtype, scale=float(np.abs(r).max()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm_backward(dtype, shape):
    rng = np.random.default_rng(1)
    rows, n = shape
    x_d, x = _dev(rng.standard_normal(shape), dtype)
    w_d, w = _dev(rng.standard_normal(n), dtype)
    g_d, g = _dev(rng.standard_normal(shape), dtype)
    _, m, r = ln64(x, w, np.zeros(n))
    mean_d, mean = _dev(m, dtype)
    rstd_d, rstd = _dev(r, dtype)
    dx, dw, db = cupy.empty(shape, dtype), cupy.empty(n, dtype), cupy.empty(n, dtype)
    NK.layernorm_backward(g_d, x_d, w_d, mean_d, rstd_d, dx, dw, db)
    # reference from the same stored statistics
    xhat = (x - mean[:, None]) * rstd[:, None]
    gw = g * w
    want_dx = rstd[:, None] * (gw - gw.mean(1, keepdims=True)
                               - xhat * (gw * xhat).mean(1, keepdims=True))
    scale = float(np.abs(rstd).max()) * 4
    _close(dx, want_dx, dtype, scale=scale)
    _close(dw, (g * xhat).sum(0), dtype, scale=rows)
    _close(db, g.sum(0), dtype, scale=rows)
    if dtype == np.float64:  # and the closed form from x alone
        want = ln_grad64(g, x, w)
        np.testing.assert_allclose(cupy.asnumpy(dx), want[0], rtol=1e-9, atol=1e-10)


def test_layernorm_backward_is_deterministic():
    rng = np.random.default_rng(2)
    x_d, x = _dev(rng.standard_normal((1030, 5)), np.float32)
    w_d, _ = _dev(np.ones(5), np.float32)
    g_d, _ = _dev(rng.standard_normal((1030, 5)), np.float32)
    _, m, r = ln64(x, np.ones(5), np.zeros(5))
    mean_d, rstd_d = cupy.asarray(m.astype(np.float32)), cupy.asarray(r.astype(np.float32))
    outs = []
    for _ in range(2):
        dx, dw, db = cupy.empty((1030, 5), np.float32), cupy.empty(5, np.float32), cupy.empty(
            5, np.float32)
        NK.layernorm_backward(g_d, x_d, w_d, mean_d, rstd_d, dx, dw, db)
        outs.append((cupy.asnumpy(dw), cupy.asnumpy(db)))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])


def test_layernorm_errors_name_kernel_shapes_dtypes():
    x = cupy.zeros((2, 3), np.float32)
    v = cupy.zeros(3, np.float32)
    with pytest.raises(ShapeError, match=r"layernorm_forward: w has shape \(2,\), expected "
                                         r"\(3,\)"):
        NK.layernorm_forward(x, cupy.zeros(2, np.float32), v, EPS, x.copy(),
                             cupy.zeros(2, np.float32), cupy.zeros(2, np.float32))
    with pytest.raises(DTypeError, match="layernorm_forward: dtype int32"):
        xi = cupy.zeros((2, 3), np.int32)
        NK.layernorm_forward(xi, v, v, EPS, xi.copy(), cupy.zeros(2, np.int32),
                             cupy.zeros(2, np.int32))
    with pytest.raises(DTypeError, match=r"layernorm_backward: dx_out has dtype float64"):
        NK.layernorm_backward(x, x, v, cupy.zeros(2, np.float32), cupy.zeros(2, np.float32),
                              cupy.zeros((2, 3), np.float64), v.copy(), v.copy())
