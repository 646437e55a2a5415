"""NumPy-coverage behaviour the op table cannot express: non-differentiable results,
argument handling (lists of Tensors, NumPy integer axes), empty reductions, errors that
name the function and shapes, out-of-place updates, and einsum's contraction order."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.ops import contraction as con
from gpuchain.ops import indexing as ix
from gpuchain.ops import linalg as la
from gpuchain.ops import reduce as red
from gpuchain.ops import shape as sh


@pytest.fixture
def x(rng):
    return gc.tensor(rng.standard_normal((3, 4)), requires_grad=True)


@pytest.mark.parametrize("fn,kwargs", [
    ("argmax", {}), ("argmax", {"axis": 1}), ("argmin", {"axis": 0, "keepdims": True}),
    ("argsort", {}), ("argsort", {"axis": 0}), ("argsort", {"axis": None}),
])
def test_index_results_match_numpy_and_need_no_grad(x, fn, kwargs):
    mod = ix if fn == "argsort" else red
    out = getattr(mod, fn)(x, **kwargs)
    np.testing.assert_array_equal(out.numpy(), getattr(np, fn)(x.numpy(), **kwargs))
    assert not out.requires_grad and out.dtype.kind == "i"


@pytest.mark.parametrize("fn", ["all", "any"])
def test_all_any(fn):
    a = np.array([[True, False, True], [True, True, True]])
    for axis in (None, 0, 1, (0, 1)):
        out = getattr(red, fn)(a, axis=axis)
        np.testing.assert_array_equal(out.numpy(), getattr(np, fn)(a, axis=axis))
        assert not out.requires_grad
    assert getattr(red, fn)(a, axis=1, keepdims=True).shape == (2, 1)


def test_list_of_tensors_is_stacked_and_differentiated(x):
    y = red.mean([x, x + 2.0])
    np.testing.assert_allclose(y.numpy(), np.mean([x.numpy(), x.numpy() + 2]))
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 2 / 24))
    x.grad = None
    red.max((x, 2 * x), axis=0).sum().backward()
    assert x.grad is not None


def test_numpy_integer_axes(x):
    np.testing.assert_allclose(red.sum(x, axis=np.int64(1)).numpy(), x.numpy().sum(1))
    np.testing.assert_allclose(red.mean(x, axis=(np.int32(0), np.int64(1))).numpy(),
                               x.numpy().mean())
    np.testing.assert_allclose(red.cumsum(x, axis=np.int64(-1)).numpy(), x.numpy().cumsum(-1))


def test_reductions_over_an_empty_axis():
    e = gc.tensor(np.zeros((3, 0)), requires_grad=True)
    lse = red.logsumexp(e, axis=1)
    np.testing.assert_array_equal(lse.numpy(), np.full(3, -np.inf))
    assert red.softmax(e, axis=1).shape == (3, 0)
    assert red.log_softmax(e, axis=1).shape == (3, 0)
    red.softmax(e, axis=1).sum().backward()
    assert e.grad.shape == (3, 0)
    np.testing.assert_array_equal(red.prod(e, axis=1).numpy(), np.ones(3))
    np.testing.assert_array_equal(red.sum(e, axis=1).numpy(), np.zeros(3))


def test_logsumexp_of_empty_axis_matches_torch():
    torch = pytest.importorskip("torch")
    ref = torch.logsumexp(torch.zeros(2, 0, dtype=torch.float64), dim=1).numpy()
    np.testing.assert_array_equal(red.logsumexp(np.zeros((2, 0)), axis=1).numpy(), ref)


def test_matmul_with_empty_contraction_and_stacks():
    a = gc.tensor(np.ones((2, 3, 0)), requires_grad=True)
    b = gc.tensor(np.ones((0, 4)), requires_grad=True)
    out = la.matmul(a, b)
    np.testing.assert_array_equal(out.numpy(), np.matmul(a.numpy(), b.numpy()))
    out.sum().backward()
    assert a.grad.shape == (2, 3, 0) and b.grad.shape == (0, 4)


def test_prod_and_cumprod_gradients_at_zeros_match_torch():
    torch = pytest.importorskip("torch")
    x0 = np.array([[2.0, 0.0, 3.0, -1.5], [0.0, 0.0, 1.0, 2.0]])
    for fn, tfn in ((lambda t: red.prod(t, axis=1).sum(), lambda t: t.prod(1).sum()),
                    (lambda t: (red.cumprod(t, axis=1) * np.arange(4.0)).sum(),
                     lambda t: (t.cumprod(1) * torch.arange(4.0, dtype=t.dtype)).sum())):
        x = gc.tensor(x0, requires_grad=True)
        fn(x).backward()
        xt = torch.tensor(x0, requires_grad=True)
        tfn(xt).backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())


def test_transpose_rejects_bad_axes(x):
    with pytest.raises(ValueError, match="transpose: axis 5 is out of bounds"):
        sh.transpose(x, (0, 5))
    with pytest.raises(ValueError, match="not a permutation"):
        sh.transpose(x, (0, 0))
    with pytest.raises(ValueError, match="not a permutation"):
        sh.transpose(x, (1,))


def test_errors_name_the_function_and_shapes(x):
    with pytest.raises(ValueError, match=r"squeeze.*\(3, 4\)"):
        sh.squeeze(x, 0)
    with pytest.raises(ValueError, match="split: an axis of length 4 does not split into 3"):
        sh.split(x, 3, axis=1)
    with pytest.raises(ValueError, match="pad: mode 'median'"):
        sh.pad(x, 1, mode="median")
    with pytest.raises(ValueError, match="einsum: label 'j' has lengths"):
        con.einsum("ij,jk->ik", x, np.ones((3, 2)))
    with pytest.raises(ValueError, match="tensordot: contracted axes differ"):
        con.tensordot(x, np.ones((3, 2)), axes=([1], [0]))
    with pytest.raises(ValueError, match="matmul: contracted axes differ"):
        la.matmul(x, np.ones((3, 2)))
    with pytest.raises(ValueError, match="moveaxis"):
        sh.moveaxis(x, (0, 1), 0)


def test_index_update_is_out_of_place_and_differentiable(x):
    before = x.numpy().copy()
    v = gc.tensor(np.array([10.0, 20.0]), requires_grad=True)
    y = ix.index_update(x, (slice(1, None), 0), v)
    np.testing.assert_array_equal(x.numpy(), before)
    expect = before.copy()
    expect[1:, 0] = [10, 20]
    np.testing.assert_array_equal(y.numpy(), expect)
    w = np.arange(12.0).reshape(3, 4)
    (y * w).sum().backward()
    gx = w.copy()
    gx[1:, 0] = 0
    np.testing.assert_array_equal(x.grad.numpy(), gx)
    np.testing.assert_array_equal(v.grad.numpy(), w[1:, 0])


def test_at_add_accumulates_repeated_indices():
    x = gc.tensor(np.zeros(3), requires_grad=True)
    v = gc.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = ix.At(x)[np.array([0, 2, 0])].add(v)
    np.testing.assert_array_equal(y.numpy(), [4.0, 0.0, 2.0])
    (y * np.array([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [1.0, 100.0, 1.0])
    np.testing.assert_array_equal(ix.At(y)[1:].get().numpy(), [0.0, 2.0])


def test_sort_gradient_is_the_permutation():
    x = gc.tensor(np.array([3.0, 1.0, 2.0]), requires_grad=True)
    (ix.sort(x) * np.array([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0, 10.0])


def test_split_family_shapes_match_numpy(rng):
    a = rng.standard_normal((4, 6, 2))
    for fn, arg in (("split", [1, 3]), ("array_split", 3), ("hsplit", 3), ("vsplit", 2),
                    ("dsplit", 2)):
        ours = getattr(sh, fn)(a, arg)
        ref = getattr(np, fn)(a, arg)
        assert [p.shape for p in ours] == [p.shape for p in ref]
        for p, r in zip(ours, ref):
            np.testing.assert_array_equal(p.numpy(), r)
    assert [t.shape for t in sh.atleast_1d(1.0, np.ones(2))] == [(1,), (2,)]


def test_einsum_follows_numpy_contraction_order(monkeypatch, rng):
    calls = []
    real = con.einsum_p

    def spy(*args, **kw):
        calls.append(kw["subscripts"])
        return real(*args, **kw)

    monkeypatch.setattr(con, "einsum_p", spy)
    a, b, c = rng.standard_normal((2, 50)), rng.standard_normal((50, 50)), rng.standard_normal(50)
    out = con.einsum("ij,jk,k->i", a, b, c)
    np.testing.assert_allclose(out.numpy(), np.einsum("ij,jk,k->i", a, b, c))
    path = np.einsum_path("ij,jk,k->i", a, b, c, optimize="greedy")[0]
    assert path[1] == (1, 2)  # NumPy contracts b with c first ...
    assert calls[0] == "jk,k->j"  # ... and so does einsum
    calls.clear()
    con.einsum("ij,jk,k->i", a, b, c, optimize=False)
    assert calls[0] == "ij,jk->ik"


def test_einsum_rules_batch_into_jacobians(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    jac = gc.functional.jacobian(lambda t: con.einsum("ij,jk->ik", t, b), a).numpy()
    ref = np.einsum("im,jk->ikmj", np.eye(3), b)  # d out[i,k] / d a[m,j]
    np.testing.assert_allclose(jac, ref)
