"""Every CUDA kernel vs an independent NumPy float64 formula, per dtype and activation.

Needs CuPy and a usable CUDA device; skipped otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
if not cupy.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

from gpuchain.cuda import kernels as K  # noqa: E402
from gpuchain.cuda import translate_oom  # noqa: E402
from gpuchain.errors import DTypeError, OutOfMemoryError, ShapeError  # noqa: E402

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.float16]
SHAPES = [(1, 1), (1, 7), (3, 131), (64, 1021), (257, 33), (1000, 256), (2, 4099)]
SLOPE = 0.01
_erf = np.vectorize(math.erf, otypes=[np.float64])


# --------------------------------------------------------------------------- references


def sigmoid64(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def act64(name, z, slope=SLOPE):
    if name == "identity":
        return z.copy()
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "sigmoid":
        return sigmoid64(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "gelu":
        return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))
    if name == "silu":
        return z * sigmoid64(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    raise KeyError(name)


def dact64_from_z(name, z, slope=SLOPE):
    """d act / dz as a function of the pre-activation z."""
    if name == "identity":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope)
    if name == "sigmoid":
        s = sigmoid64(z)
        return s * (1 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "gelu":
        return 0.5 * (1 + _erf(z / math.sqrt(2))) + z * np.exp(-0.5 * z * z) / math.sqrt(
            2 * math.pi
        )
    if name == "gelu_tanh":
        c = math.sqrt(2.0 / math.pi)
        t = np.tanh(c * (z + 0.044715 * z**3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z)
    if name == "silu":
        s = sigmoid64(z)
        return s + z * s * (1 - s)
    if name == "softplus":
        return sigmoid64(z)
    if name == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))
    raise KeyError(name)


def dact64_from_saved(name, saved, slope=SLOPE):
    """The kernel contract: output-based rule for SAVES_OUTPUT activations."""
    if name not in K.SAVES_OUTPUT:
        return dact64_from_z(name, saved, slope)
    a = saved
    return {
        "identity": lambda: np.ones_like(a),
        "relu": lambda: (a > 0).astype(np.float64),
        "leaky_relu": lambda: np.where(a > 0, 1.0, slope),
        "sigmoid": lambda: a * (1 - a),
        "tanh": lambda: 1 - a * a,
        "elu": lambda: np.where(a > 0, 1.0, a + 1),
    }[name]()


def tol(dtype):
    """(rtol, atol) for an elementwise result stored in dtype."""
    return {np.float64: (1e-11, 1e-12), np.float32: (2e-5, 2e-6), np.float16: (2e-3, 2e-3)}[dtype]


def close(got, want, dtype, scale=1.0):
    rtol, atol = tol(dtype)
    got = cupy.asnumpy(got).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale)


def dev(x, dtype):
    """(device array in dtype, float64 host copy of exactly the stored values)."""
    x = np.asarray(x).astype(dtype)
    return cupy.asarray(x), x.astype(np.float64)


def rand(rng, shape, scale=2.0):
    return rng.standard_normal(shape) * scale


# --------------------------------------------------------------------------- dense epilogues


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_bias_act_forward(dtype, activation, shape):
    rng = np.random.default_rng(0)
    b_d, b = dev(rand(rng, shape[1]), dtype)
    zh = rand(rng, shape)
    zh[0] = -b  # pre-activation exactly 0 in row 0
    z_d, z = dev(zh, dtype)
    out = cupy.empty_like(z_d)
    K.bias_act_forward(z_d, b_d, activation, SLOPE, out, store_preact=True)
    close(out, act64(activation, z + b), dtype)
    close(z_d, z + b, dtype)  # z now holds the pre-activation
    # in place, no bias, no store
    z2_d, z2 = dev(zh, dtype)
    K.bias_act_forward(z2_d, None, activation, SLOPE, z2_d, store_preact=False)
    close(z2_d, act64(activation, z2), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_act_grad_bias(dtype, activation, shape):
    rng = np.random.default_rng(1)
    zh = rand(rng, shape)
    zh[0, : shape[1] // 2] = 0.0  # gradient conventions at 0
    pre = zh.astype(dtype).astype(np.float64)
    saved_h = act64(activation, pre) if activation in K.SAVES_OUTPUT else pre
    saved_d, saved = dev(saved_h, dtype)
    g_d, g = dev(rand(rng, shape, 1.0), dtype)
    dz_ref = g * dact64_from_saved(activation, saved)
    dz = cupy.empty_like(g_d)
    db = cupy.empty(shape[1], dtype=dtype)
    K.act_grad_bias(g_d, saved_d, activation, SLOPE, dz, db)
    close(dz, dz_ref, dtype)
    rtol, atol = tol(dtype)
    db_err = np.abs(cupy.asnumpy(db).astype(np.float64) - dz_ref.sum(0))
    assert np.all(db_err <= 2 * rtol * np.abs(dz_ref).sum(0) + atol)
    # no bias, dz aliasing g
    K.act_grad_bias(g_d, saved_d, activation, SLOPE, g_d, None)
    close(g_d, dz_ref, dtype)
    # dz aliasing g with the bias gradient (the dense backward on an owned cotangent)
    g2_d, _ = dev(g, dtype)
    db2 = cupy.empty(shape[1], dtype=dtype)
    K.act_grad_bias(g2_d, saved_d, activation, SLOPE, g2_d, db2)
    close(g2_d, dz_ref, dtype)
    assert cupy.array_equal(db2, db)  # the same fixed-order sum as with a separate dz


def test_gradient_conventions_at_zero():
    z = cupy.zeros((2, 5), dtype=cupy.float32)
    g = cupy.ones_like(z)
    for name, want in (("relu", 0.0), ("leaky_relu", 0.25)):
        a = cupy.empty_like(z)
        K.bias_act_forward(z, None, name, 0.25, a, store_preact=False)
        dz = cupy.empty_like(z)
        K.act_grad_bias(g, a, name, 0.25, dz)
        assert cupy.all(dz == want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4099, 7), (1000, 1021), (8192, 33)])
def test_db_deterministic(dtype, shape):
    rng = np.random.default_rng(2)
    g_d, _ = dev(rand(rng, shape), dtype)
    s_d, _ = dev(rand(rng, shape), dtype)
    bits = []
    for _ in range(3):
        dz = cupy.empty_like(g_d)
        db = cupy.empty(shape[1], dtype=dtype)
        K.act_grad_bias(g_d, s_d, "gelu", SLOPE, dz, db)
        bits.append(cupy.asnumpy(db).tobytes())
    assert bits[0] == bits[1] == bits[2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 7), (3, 131), (64, 1021), (257, 33)])
def test_dense_jvp_epilogue(dtype, activation, shape):
    rng = np.random.default_rng(3)
    z_d, z = dev(rand(rng, shape), dtype)
    b_d, b = dev(rand(rng, shape[1]), dtype)
    zd_d, zd = dev(rand(rng, shape), dtype)
    bd_d, bd = dev(rand(rng, shape[1]), dtype)
    a, adot = cupy.empty_like(z_d), cupy.empty_like(z_d)
    K.dense_jvp_epilogue(z_d, b_d, zd_d, bd_d, activation, SLOPE, a, adot)
    pre = z + b
    close(a, act64(activation, pre), dtype)
    close(adot, dact64_from_z(activation, pre) * (zd + bd), dtype, scale=4.0)
    # no biases, outputs aliasing z / zdot
    K.dense_jvp_epilogue(z_d, None, zd_d, None, activation, SLOPE, z_d, zd_d)
    close(z_d, act64(activation, z), dtype)
    close(zd_d, dact64_from_z(activation, z) * zd, dtype, scale=4.0)


@pytest.mark.parametrize("activation", ["relu", "gelu_tanh"])
def test_large_batch_float32(activation):
    rows, n = 8192, 4096
    rng = np.random.default_rng(4)
    z_d = cupy.asarray(rng.standard_normal((rows, n), dtype=np.float32))
    b_d = cupy.asarray(rng.standard_normal(n, dtype=np.float32))
    z = cupy.asnumpy(z_d).astype(np.float64)
    b = cupy.asnumpy(b_d).astype(np.float64)
    a = cupy.empty_like(z_d)
    K.bias_act_forward(z_d, b_d, activation, SLOPE, a, store_preact=True)
    pre = z + b
    close(a, act64(activation, pre), np.float32)
    del a
    g_d = cupy.asarray(rng.standard_normal((rows, n), dtype=np.float32))
    dz_ref = cupy.asnumpy(g_d).astype(np.float64) * dact64_from_z(activation, pre)
    saved = (
        z_d
        if activation not in K.SAVES_OUTPUT
        else cupy.asarray(act64(activation, pre).astype(np.float32))
    )
    dz = cupy.empty_like(g_d)
    db = cupy.empty(n, dtype=np.float32)
    K.act_grad_bias(g_d, saved, activation, SLOPE, dz, db)
    close(dz, dz_ref, np.float32)
    err = np.abs(cupy.asnumpy(db) - dz_ref.sum(0))
    assert np.all(err <= 1e-5 * np.abs(dz_ref).sum(0) + 1e-4)
    db2 = cupy.empty_like(db)
    K.act_grad_bias(g_d, saved, activation, SLOPE, dz, db2)
    assert cupy.asnumpy(db).tobytes() == cupy.asnumpy(db2).tobytes()


# --------------------------------------------------------------------------- softmax xent


def xent64(x, labels):
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    loss = (m + np.log(s))[:, 0] - x[np.arange(len(x)), labels]
    return loss, p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ltype", [np.int32, np.int64])
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 7), (5, 131), (64, 1021), (3, 5000), (70000, 3), (257, 33)]
)
def test_softmax_xent(dtype, ltype, shape):
    rng = np.random.default_rng(5)
    scale = 4.0 if dtype == np.float16 else 20.0  # large logits: stability
    x_d, x = dev(rand(rng, shape, scale), dtype)
    labels = rng.integers(0, shape[1], shape[0]).astype(ltype)
    lab_d = cupy.asarray(labels)
    loss = cupy.empty(shape[0], dtype=dtype)
    probs = cupy.empty_like(x_d)
    K.softmax_xent_forward(x_d, lab_d, loss, probs)
    loss_ref, p_ref = xent64(x, labels)
    close(probs, p_ref, dtype)
    close(loss, loss_ref, dtype, scale=10.0)
    g_d, g = dev(rng.uniform(0.1, 2.0, shape[0]), dtype)
    onehot = np.zeros(shape)
    onehot[np.arange(shape[0]), labels] = 1.0
    p_stored = cupy.asnumpy(probs).astype(np.float64)
    dl = cupy.empty_like(x_d)
    K.softmax_xent_backward(probs, lab_d, g_d, dl)
    close(dl, g[:, None] * (p_stored - onehot), dtype)
    K.softmax_xent_backward(probs, lab_d, g_d, probs)  # in place
    close(probs, g[:, None] * (p_stored - onehot), dtype)


def test_softmax_xent_bad_label_is_nan():
    x = cupy.zeros((3, 4), dtype=cupy.float32)
    lab = cupy.asarray(np.array([0, 4, -1], dtype=np.int32))
    loss, probs = cupy.empty(3, dtype=cupy.float32), cupy.empty_like(x)
    K.softmax_xent_forward(x, lab, loss, probs)
    loss = cupy.asnumpy(loss)
    assert np.isclose(loss[0], math.log(4)) and np.isnan(loss[1]) and np.isnan(loss[2])
    dl = cupy.empty_like(x)
    K.softmax_xent_backward(probs, lab, cupy.ones(3, dtype=cupy.float32), dl)
    dl = cupy.asnumpy(dl)
    assert np.all(np.isfinite(dl[0])) and np.all(np.isnan(dl[1:]))


# --------------------------------------------------------------------------- optimizers


def sgd64(p, g, buf, lr, mu, wd, nesterov):
    g = g + wd * p
    if mu != 0:
        buf = mu * buf + g
        g = g + mu * buf if nesterov else buf
    return p - lr * g, buf


def adam64(p, g, m, v, lr, b1, b2, eps, wd, t, decoupled):
    if decoupled:
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat = m / (1 - b1**t)
    vhat = v / (1 - b2**t)
    return p - lr * mhat / (np.sqrt(vhat) + eps), m, v


OPT_TYPES = [
    (np.float32, np.float32),
    (np.float64, np.float64),
    (np.float16, np.float16),
    (np.float16, np.float32),
]


@pytest.mark.parametrize("ptype,stype", OPT_TYPES)
@pytest.mark.parametrize("n", [1, 7, 1021, 100003])
@pytest.mark.parametrize(
    "mu,wd,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.01, True), (0.0, 0.1, False)]
)
def test_sgd(ptype, stype, n, mu, wd, nesterov):
    rng = np.random.default_rng(6)
    p_d, p = dev(rng.standard_normal(n), ptype)
    buf_d = cupy.zeros(n, dtype=stype) if mu else None
    buf = np.zeros(n)
    lr = 0.05
    for _ in range(3):
        g_d, g = dev(rng.standard_normal(n), ptype)
        K.sgd_step(p_d, g_d, buf_d, lr=lr, momentum=mu, weight_decay=wd, nesterov=nesterov)
        p, buf = sgd64(p, g, buf, lr, mu, wd, nesterov)
        if ptype == np.float16:  # the reference follows the stored (rounded) values
            p = cupy.asnumpy(p_d).astype(np.float64)
    close(p_d, p, ptype)
    if mu:
        close(buf_d, buf, stype, scale=4.0)


@pytest.mark.parametrize("ptype,stype", OPT_TYPES)
@pytest.mark.parametrize("n", [1, 7, 1021, 100003])
@pytest.mark.parametrize("decoupled,wd", [(False, 0.0), (False, 0.01), (True, 0.01)])
def test_adam(ptype, stype, n, decoupled, wd):
    rng = np.random.default_rng(7)
    p_d, p = dev(rng.standard_normal(n), ptype)
    m_d, v_d = cupy.zeros(n, dtype=stype), cupy.zeros(n, dtype=stype)
    m, v = np.zeros(n), np.zeros(n)
    hp = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd)
    for t in range(1, 4):
        g_d, g = dev(rng.standard_normal(n), ptype)
        K.adam_step(p_d, g_d, m_d, v_d, step=t, decoupled=decoupled, **hp)
        p, m, v = adam64(p, g, m, v, hp["lr"], 0.9, 0.999, 1e-8, wd, t, decoupled)
        if ptype == np.float16 or stype == np.float16:
            p = cupy.asnumpy(p_d).astype(np.float64)
            m = cupy.asnumpy(m_d).astype(np.float64)
            v = cupy.asnumpy(v_d).astype(np.float64)
    close(p_d, p, ptype)
    close(m_d, m, stype)
    close(v_d, v, stype)


def test_adam_large_grid_stride():
    n = 3_000_017  # more elements than one grid covers
    rng = np.random.default_rng(8)
    p_d, p = dev(rng.standard_normal(n), np.float32)
    g_d, g = dev(rng.standard_normal(n), np.float32)
    m_d, v_d = cupy.zeros(n, np.float32), cupy.zeros(n, np.float32)
    K.adam_step(
        p_d, g_d, m_d, v_d, lr=1e-3, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1,
        step=1, decoupled=True,
    )  # fmt: skip
    want, _, _ = adam64(p, g, 0, 0, 1e-3, 0.9, 0.99, 1e-8, 0.1, 1, True)
    close(p_d, want, np.float32)


# --------------------------------------------------------------------------- errors


def test_errors_name_kernel_shapes_dtypes():
    z = cupy.zeros((4, 5), dtype=cupy.float32)
    with pytest.raises(DTypeError, match=r"bias_act_forward: out has dtype float64"):
        K.bias_act_forward(z, None, "relu", 0.0, cupy.zeros((4, 5)), False)
    with pytest.raises(ShapeError, match=r"bias_act_forward: b has shape \(4,\), expected \(5,\)"):
        K.bias_act_forward(z, cupy.zeros(4, cupy.float32), "relu", 0.0, z, False)
    with pytest.raises(ShapeError, match="C-contiguous"):
        K.act_grad_bias(z.T, z.T, "relu", 0.0, z.T)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        K.bias_act_forward(z, None, "swish", 0.0, z, False)
    with pytest.raises(ValueError, match="store_preact"):
        K.bias_act_forward(z, None, "gelu", 0.0, z, True)
    with pytest.raises(DTypeError, match="softmax_xent_forward: labels have dtype float32"):
        K.softmax_xent_forward(z, cupy.zeros(4, cupy.float32), cupy.zeros(4, cupy.float32), z)
    with pytest.raises(DTypeError, match="int32"):
        K.bias_act_forward(z.astype(cupy.int32), None, "relu", 0.0, z.astype(cupy.int32), False)
    with pytest.raises(ValueError, match="needs a momentum_buf"):
        K.sgd_step(z, z.copy(), None, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False)
    with pytest.raises(ValueError, match="1-based"):
        K.adam_step(z, z.copy(), z.copy(), z.copy(), lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8,
                    weight_decay=0.0, step=0, decoupled=True)  # fmt: skip


def test_translate_oom_real_allocation():
    with pytest.raises(OutOfMemoryError) as info:
        with translate_oom("giant buffer"):
            cupy.empty(1 << 52, dtype=cupy.uint8)
    assert info.value.requested_bytes is not None and info.value.requested_bytes >= 1 << 52
    assert info.value.free_bytes is not None
