"""An MLP trained on CuPy tracks the same run on NumPy step by step (float32), and a GPU
out-of-memory error leaves the model and optimizer unchanged. Needs CuPy and a usable
CUDA device; skipped otherwise."""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
if not cupy.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

import gpuchain as gc  # noqa: E402
from gpuchain.nn import MLP  # noqa: E402
from gpuchain.nn.functional import cross_entropy  # noqa: E402
from gpuchain.optim import Adam  # noqa: E402

pytestmark = pytest.mark.gpu


def _train(device: str, x: np.ndarray, y: np.ndarray, activation: str, steps: int = 20):
    model = MLP([x.shape[1], 64, 64, 3], activation=activation, seed=7, dtype=np.float32)
    if device == "cuda":
        model.to("cuda")
    opt = Adam(model, lr=1e-2)
    xt, yt = gc.tensor(x).to(device), gc.tensor(y).to(device)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    weights = [p.numpy().copy() for p in model.parameters()]
    return np.array(losses), weights


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_mlp_on_cupy_tracks_numpy_for_20_steps(activation, rng):
    gc.set_matmul_precision("fp32")
    x = rng.standard_normal((512, 10)).astype(np.float32)
    y = rng.integers(0, 3, 512).astype(np.int64)
    cpu_losses, cpu_w = _train("cpu", x, y, activation)
    gpu_losses, gpu_w = _train("cuda", x, y, activation)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=2e-4, atol=1e-5)
    for a, b in zip(gpu_w, cpu_w):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_out_of_memory_leaves_model_and_optimizer_unchanged(rng):
    model = MLP([8, 16, 2], seed=0, dtype=np.float32).to("cuda")
    opt = Adam(model, lr=1e-2)
    x = gc.tensor(rng.standard_normal((4, 8)).astype(np.float32)).to("cuda")
    cross_entropy(model(x), gc.tensor(np.array([0, 1, 0, 1])).to("cuda")).backward()
    opt.step()
    before = [p.numpy().copy() for p in model.parameters()]
    state_before = opt.state_dict()
    free = cupy.cuda.runtime.memGetInfo()[0]
    with pytest.raises(gc.OutOfMemoryError, match="bytes"):
        from gpuchain.cuda import translate_oom

        with translate_oom("test allocation"):
            cupy.empty(int(free * 4), dtype=np.uint8)
    for a, b in zip(before, model.parameters()):
        np.testing.assert_array_equal(a, b.numpy())
    assert opt.state_dict().keys() == state_before.keys()


def test_matmul_precision_switches_cublas_between_fp32_and_tf32(rng):
    """gc.set_matmul_precision really changes CuPy's GEMMs (the target benchmark's TF32
    off/on relies on it): fp32 matches a float64 product to ~1e-6, TF32 (10-bit mantissa
    operands) lands near 1e-4..1e-3 and differs from fp32."""
    from cupy._core import _routines_linalg as linalg

    a = rng.standard_normal((512, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 256)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    errs = {}
    try:
        for mode in ("fp32", "tf32"):
            gc.set_matmul_precision(mode)
            want = linalg.COMPUTE_TYPE_TF32 if mode == "tf32" else linalg.COMPUTE_TYPE_FP32
            assert linalg.get_compute_type(np.dtype(np.float32)) == want
            got = (gc.tensor(a).to("cuda") @ gc.tensor(b).to("cuda")).numpy()
            errs[mode] = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    finally:
        gc.set_matmul_precision("fp32")
    assert errs["fp32"] < 1e-5, errs
    assert 1e-5 < errs["tf32"] < 5e-3, errs
