"""Bad input gets a clear error naming the op, shapes, dtypes or devices."""

import numpy as np
import pytest

import gpuchain as gc


def test_matmul_shape_mismatch_names_op_and_shapes():
    a, b = gc.tensor(np.ones((3, 4))), gc.tensor(np.ones((5, 2)))
    with pytest.raises(gc.ShapeError, match=r"matmul.*\(3, 4\).*\(5, 2\)"):
        a @ b


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(gc.ShapeError, match=r"add.*\(3,\).*\(4,\)"):
        gc.tensor(np.ones(3)) + gc.tensor(np.ones(4))


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(gc.DTypeError, match="int64"):
        gc.tensor(np.arange(3), requires_grad=True)


def test_mixed_backends_name_both():
    class FakeCupy(np.ndarray):  # a stand-in array type: same module check, other class
        pass

    a = gc.tensor(np.ones(2))
    b = gc.Tensor(np.ones(2).view(FakeCupy))
    with pytest.raises(gc.DeviceMismatchError, match="add.*different devices"):
        a + b


def test_cupy_backend_unavailable_says_why():
    from gpuchain.backend import cupy_unavailable_reason

    if not cupy_unavailable_reason():
        pytest.skip("CuPy is usable here")
    with pytest.raises(gc.BackendUnavailableError, match="cupy"):
        gc.set_backend("cupy")
    assert gc.get_backend().name == "numpy"


def test_backward_grad_of_wrong_shape():
    x = gc.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(gc.ShapeError, match=r"\(2,\).*\(3,\)"):
        (x * 2).backward(np.ones(2))
