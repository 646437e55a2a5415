"""DLPack round trips with NumPy and PyTorch (CPU): memory is shared both ways, dtypes kept."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.interop import DLPackError, from_dlpack, tensor_dlpack, tensor_dlpack_device

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_]


class _Exported:
    """What a Tensor exposes once its __dlpack__ methods are wired (the interop functions)."""

    def __init__(self, t):
        self.t = t

    def __dlpack__(self, **kw):
        return tensor_dlpack(self.t, **kw)

    def __dlpack_device__(self):
        return tensor_dlpack_device(self.t)


def _export(t):
    return t if hasattr(type(t), "__dlpack__") else _Exported(t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_round_trip_shares_memory_and_keeps_dtype(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    t = from_dlpack(a)
    assert t.dtype == a.dtype and t.shape == a.shape and np.shares_memory(t.data, a)
    back = np.from_dlpack(_export(t))
    assert back.dtype == a.dtype and np.shares_memory(back, a)
    a[0, 0] = 1
    assert t.data[0, 0] == 1 and back[0, 0] == 1
    assert tensor_dlpack_device(t) == (1, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64,
                                   np.uint8, np.bool_])
def test_torch_round_trip_shares_memory_and_keeps_dtype(dtype):
    torch = pytest.importorskip("torch")
    t = gc.tensor(np.arange(6).reshape(2, 3).astype(dtype))
    tt = torch.from_dlpack(_export(t))
    assert str(tt.dtype).endswith(np.dtype(dtype).name.replace("bool", "bool")) or \
        tt.numpy().dtype == np.dtype(dtype)
    assert tt.numpy().dtype == np.dtype(dtype)
    tt[1, 2] = 0
    assert t._data[1, 2] == 0  # a write on the torch side is seen here
    t.data[0, 1] = 1
    assert bool(tt[0, 1] == 1)
    g = from_dlpack(tt)
    assert np.shares_memory(g.data, t.data) and g.dtype == np.dtype(dtype)


def test_torch_tensor_into_gpuchain_as_a_leaf_that_requires_grad():
    torch = pytest.importorskip("torch")
    src = torch.linspace(0, 1, 5, dtype=torch.float64)
    w = from_dlpack(src, requires_grad=True)
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * src.numpy())
    with pytest.raises(DLPackError, match="bfloat16 and complex are not supported"):
        from_dlpack(torch.zeros(2, dtype=torch.bfloat16))


def test_errors_name_the_problem():
    with pytest.raises(DLPackError, match="does not export DLPack"):
        from_dlpack([1, 2, 3])
    base = np.arange(3.0)
    ro = from_dlpack(np.broadcast_to(base, (2, 3)))
    view = np.from_dlpack(_export(ro))  # DLPack 1.0 carries the read-only flag
    assert np.shares_memory(view, base) and not view.flags.writeable
