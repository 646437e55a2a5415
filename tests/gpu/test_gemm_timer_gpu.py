"""GemmTimer on CuPy: every GEMM of a train step on the GPU is seen, with CUDA-event
times (the target benchmark's GEMM share rests on this). Needs a usable CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
if not cupy.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

import gpuchain as gc  # noqa: E402
from gpuchain.cuda.gemm_timer import GemmTimer  # noqa: E402
from gpuchain.nn import MLP  # noqa: E402
from gpuchain.nn.functional import cross_entropy  # noqa: E402
from gpuchain.optim import Adam  # noqa: E402

pytestmark = pytest.mark.gpu


def test_every_gemm_of_a_gpu_train_step_is_timed(rng):
    sizes = [64, 256, 256, 10]
    model = MLP(sizes, activation="relu", seed=0, dtype=np.float32).to("cuda")
    opt = Adam(model, lr=1e-3)
    x = gc.tensor(rng.standard_normal((512, 64)).astype(np.float32)).to("cuda")
    y = gc.tensor(rng.integers(0, 10, 512)).to("cuda")
    original = cupy.matmul
    with GemmTimer(cupy) as timer:
        opt.zero_grad()
        cross_entropy(model(x), y).backward()
        opt.step()
        calls = timer.calls()
    assert cupy.matmul is original
    per_layer = [2 * 512 * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    assert len(calls) == 3 * len(per_layer) - 1
    assert sum(c.flops for c in calls) == 3 * sum(per_layer) - per_layer[0]
    assert all(0 < c.seconds < 1.0 for c in calls)
