"""Every row of the op table on the cupy backend against NumPy: forward, reverse and
forward-mode derivatives. Needs CuPy and a usable CUDA device; skipped otherwise."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
if not cupy.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from op_table import cases, sample_inputs  # noqa: E402

import gpuchain as gc  # noqa: E402
from gpuchain.functional import jvp, vjp  # noqa: E402

pytestmark = pytest.mark.gpu


def _on(device, arrays):
    return [gc.tensor(a).to(device) for a in arrays]


@pytest.mark.parametrize("row,shapes", list(cases()))
def test_op_on_cupy_matches_numpy(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    cpu_out, cpu_pull = vjp(row.fn, *_on("cpu", xs))
    gpu_out, gpu_pull = vjp(row.fn, *_on("cuda", xs))
    assert gpu_out.device == "cuda"
    np.testing.assert_allclose(gpu_out.numpy(), cpu_out.numpy(), rtol=1e-10, atol=1e-12)
    u = rng.standard_normal(cpu_out.shape)
    for g_cpu, g_gpu in zip(cpu_pull(u), gpu_pull(cupy.asarray(u))):
        np.testing.assert_allclose(g_gpu.numpy(), g_cpu.numpy(), rtol=1e-10, atol=1e-12)
    vs = [rng.standard_normal(x.shape) for x in xs]
    _, t_cpu = jvp(row.fn, _on("cpu", xs), _on("cpu", vs))
    _, t_gpu = jvp(row.fn, _on("cuda", xs), _on("cuda", vs))
    np.testing.assert_allclose(t_gpu.numpy(), t_cpu.numpy(), rtol=1e-10, atol=1e-12)


def test_moving_between_devices_is_differentiable(rng):
    x = gc.tensor(rng.standard_normal(5), requires_grad=True)
    y = gc.sin(x.to("cuda")) * 2
    y.to("cpu").sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(x.numpy()))


def test_mixing_devices_names_both():
    a = gc.tensor(np.ones(3))
    b = a.to("cuda")
    with pytest.raises(gc.DeviceMismatchError, match="numpy.*cupy"):
        a + b
