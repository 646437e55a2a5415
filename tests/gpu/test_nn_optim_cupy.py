"""LayerNorm (CUDA forward, CUDA raw backward), Dropout, Embedding and every optimizer
(fused CUDA kernels for SGD/Adam/AdamW, the xp-generic update for RMSprop/Adagrad, fp16
master state) on the CuPy backend against the NumPy backend, step by step.

Needs CuPy and a usable CUDA device. (Not under ../shared/kemu/run: its stand-in arrays
subclass numpy.ndarray, so the backend takes them for NumPy arrays.)
"""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
if not cupy.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

import gpuchain as gc  # noqa: E402
from gpuchain import nn, optim  # noqa: E402
from gpuchain.nn import functional as F  # noqa: E402

pytestmark = pytest.mark.gpu

TOL = {np.float64: 1e-10, np.float32: 2e-4}


def _model(dtype):
    return nn.Sequential(nn.Dense(6, 16, seed=0, dtype=dtype), nn.LayerNorm(16, dtype=dtype),
                         nn.GELU(), nn.Dense(16, 3, seed=1, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda m: optim.SGD(m, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda m: optim.SGD(m, lr=0.05, momentum=0.9, dampening=0.2),  # the array update
    lambda m: optim.Adam(m, lr=1e-2, weight_decay=1e-3),
    lambda m: optim.AdamW(m, lr=1e-2),
    lambda m: optim.RMSprop(m, lr=1e-3, momentum=0.5, centered=True),
    lambda m: optim.Adagrad(m, lr=0.05, lr_decay=0.01),
], ids=["SGD", "SGD-dampening", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_training_on_cupy_matches_numpy(dtype, make):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 6)).astype(dtype), rng.integers(0, 3, 32)
    cpu, gpu = _model(dtype), _model(dtype).to("cuda")
    ocpu, ogpu = make(cpu), make(gpu)
    xg, yg = cupy.asarray(x), cupy.asarray(y)
    for _ in range(5):
        for m, o, xb, yb in ((cpu, ocpu, x, y), (gpu, ogpu, xg, yg)):
            o.zero_grad()
            F.cross_entropy(m(gc.Tensor(xb)), yb).backward()
            o.step()
    for p, q in zip(cpu.parameters(), gpu.parameters()):
        assert q.device == "cuda"
        np.testing.assert_allclose(cupy.asnumpy(q.data), p.numpy(), rtol=TOL[dtype],
                                   atol=TOL[dtype])


def test_layer_norm_on_cupy_matches_numpy_forward_and_gradients():
    rng = np.random.default_rng(1)
    x_np, g_np = rng.standard_normal((9, 40)), rng.standard_normal((9, 40))
    outs = []
    for device in ("cpu", "cuda"):
        ln = nn.LayerNorm(40, dtype=np.float64).to(device)
        ln.weight.data[...] = ln.weight.data + 0.5
        x = gc.Tensor(x_np if device == "cpu" else cupy.asarray(x_np), requires_grad=True)
        y = ln(x)
        y.backward(gc.Tensor(g_np if device == "cpu" else cupy.asarray(g_np)))
        outs.append([cupy.asnumpy(a) if device == "cuda" else a for a in
                     (y.data, x.grad.data, ln.weight.grad.data, ln.bias.grad.data)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_fp16_parameters_on_cupy_keep_fp32_master_state():
    w = gc.Tensor(cupy.ones(8, dtype=np.float16), requires_grad=True)
    opt = optim.Adam([w], lr=1e-4)
    for _ in range(10):
        w.grad = gc.Tensor(cupy.full(8, 1e-4, dtype=np.float16))
        opt.step()
    st = opt.state_dict()["buffers"]["0"]
    assert st["exp_avg_sq"].dtype == np.float32 and bool((st["exp_avg_sq"] > 0).all())
    assert float(cupy.asnumpy(st["master"])[0]) < 1.0 and w.dtype == np.float16
