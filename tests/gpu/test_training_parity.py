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
