"""gc.linalg gradients against PyTorch, and the documented degenerate cases.

The op table (tests/numpy_op_rows.py) already gradchecks every function in both modes to
second order against finite differences; here the first derivatives are compared with
``torch.autograd`` on the same inputs and loss, and repeated eigenvalues / singular
values are checked to give the documented result or a clear error.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import linalg as gla
from gpuchain.errors import LinAlgError, ShapeError
from gpuchain.functional import jvp
from gpuchain.ops import shape as sh


def _sym(x, swap):
    return 0.5 * (x + swap(x, -1, -2))


def _spd(x, swap, eye):
    return x @ swap(x, -1, -2) + 3.0 * eye


# name -> (gpuchain loss, torch loss, input shape); losses are invariant to the signs of
# eigenvectors and singular vectors, so the gradients are unique.
CASES = {
    "inv": (lambda x: (gla.inv(x + 3 * np.eye(3)) * W33).sum(),
            lambda t, x: (t.linalg.inv(x + 3 * t.eye(3, dtype=x.dtype)) * t.tensor(W33)).sum(),
            (3, 3)),
    "solve": (lambda x: (gla.solve(x[:3] + 3 * np.eye(3), x[3:].T) * W33).sum(),
              lambda t, x: (t.linalg.solve(x[:3] + 3 * t.eye(3, dtype=x.dtype), x[3:].T)
                            * t.tensor(W33)).sum(), (6, 3)),
    "det": (lambda x: gla.det(x + np.eye(3)),
            lambda t, x: t.linalg.det(x + t.eye(3, dtype=x.dtype)), (3, 3)),
    "slogdet": (lambda x: gla.slogdet(x + 3 * np.eye(3)).logabsdet,
                lambda t, x: t.linalg.slogdet(x + 3 * t.eye(3, dtype=x.dtype))[1], (3, 3)),
    "cholesky": (lambda x: (gla.cholesky(_spd(x, sh.swapaxes, np.eye(3))) * W33).sum(),
                 lambda t, x: (t.linalg.cholesky(_spd(x, t.swapaxes, t.eye(3, dtype=x.dtype)))
                               * t.tensor(W33)).sum(), (3, 3)),
    "qr": (lambda x: sum((p * w).sum() for p, w in zip(gla.qr(x), (W43, W33))),
           lambda t, x: sum((p * t.tensor(w)).sum() for p, w in zip(t.linalg.qr(x), (W43, W33))),
           (4, 3)),
    "eigh": (lambda x: _eigh_loss(gla.eigh(_sym(x, sh.swapaxes)), lambda a: a),
             lambda t, x: _eigh_loss(t.linalg.eigh(_sym(x, t.swapaxes)), t.tensor), (4, 4)),
    "svd_tall": (lambda x: _svd_loss(gla.svd(x, full_matrices=False), lambda a: a),
                 lambda t, x: _svd_loss(t.linalg.svd(x, full_matrices=False), t.tensor), (4, 3)),
    "svd_wide": (lambda x: _svd_loss(gla.svd(x, full_matrices=False), lambda a: a),
                 lambda t, x: _svd_loss(t.linalg.svd(x, full_matrices=False), t.tensor), (3, 4)),
    "norm2": (lambda x: gla.norm(x, 2), lambda t, x: t.linalg.matrix_norm(x, 2), (4, 3)),
    "nuc": (lambda x: gla.norm(x, "nuc"), lambda t, x: t.linalg.matrix_norm(x, "nuc"), (4, 3)),
}

RNG = np.random.default_rng(7)
W33, W43, W44 = (RNG.standard_normal(s) for s in ((3, 3), (4, 3), (4, 4)))
W4 = RNG.standard_normal(4)


def _eigh_loss(res, const):
    w, v = res
    return (w * const(W4)).sum() + ((v * v) * const(np.outer(W4, W4))).sum()


def _svd_loss(res, const):
    u, s, vh = res
    k = s.shape[-1]
    return (s * const(W4[:k])).sum() + ((u @ vh) ** 2 * const(W44[:u.shape[0], :vh.shape[1]])
                                         ).sum() + ((u * u)[:, 0] * const(W4[:u.shape[0]])).sum()


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_torch(name):
    torch = pytest.importorskip("torch")
    f, tf, shape = CASES[name]
    x0 = np.random.default_rng(sorted(CASES).index(name)).standard_normal(shape)
    x = gc.tensor(x0, requires_grad=True)
    f(x).backward()
    xt = torch.tensor(x0, requires_grad=True)
    tf(torch, xt).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    f, _, shape = CASES[name]
    x0 = np.random.default_rng(100 + sorted(CASES).index(name)).standard_normal(shape)
    assert gc.gradcheck(f, [x0], order=2)


def test_eigenvalue_gradient_at_repeated_eigenvalues():
    """sum(w) is the trace: its gradient is the identity even where eigenvalues repeat."""
    a = gc.tensor(np.diag([1.0, 1.0, 2.0]), requires_grad=True)
    gla.eigh(a).eigenvalues.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.eye(3), atol=1e-12)


def test_eigenvector_gradient_at_repeated_eigenvalues_raises():
    a = gc.tensor(np.diag([1.0, 1.0, 2.0]), requires_grad=True)
    v = gla.eigh(a).eigenvectors
    loss = (v[:, 0] * np.array([1.0, 2.0, 3.0])).sum()
    with pytest.raises(LinAlgError, match="eigh.*eigenvectors.*repeated"):
        loss.backward()


def test_eigh_forward_mode_at_repeated_eigenvalues_is_finite():
    a = np.diag([1.0, 1.0, 2.0])
    da = np.random.default_rng(0).standard_normal((3, 3))
    da = da + da.T

    def f(x):
        w, v = gla.eigh(x)
        return gc.concatenate([w, gc.reshape(v, (-1,))])

    _, tangent = jvp(f, [gc.tensor(a)], [gc.tensor(da)])
    t = tangent.numpy()
    assert np.isfinite(t).all()
    sym = 0.5 * (da + da.T)
    np.testing.assert_allclose(t[:3].sum(), np.trace(sym), atol=1e-12)  # the trace's tangent
    np.testing.assert_allclose(t[2], sym[2, 2], atol=1e-12)  # the simple eigenvalue


def test_singular_vector_gradient_at_repeated_singular_values_raises():
    a = gc.tensor(np.eye(3)[:, :2] * 1.0, requires_grad=True)  # singular values 1, 1
    u, s, vh = gla.svd(a, full_matrices=False)
    s.sum().backward()  # the singular values alone are fine
    np.testing.assert_allclose(a.grad.numpy(), np.eye(3)[:, :2], atol=1e-12)
    a.grad = None
    u, s, vh = gla.svd(a, full_matrices=False)
    with pytest.raises(LinAlgError, match="svd.*repeated"):
        (u[:, 0] * np.array([1.0, 2.0, 3.0])).sum().backward()


def test_unsupported_derivatives_say_why():
    x = gc.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    with pytest.raises(NotImplementedError, match="qr.*m >= n"):
        gla.qr(x).R.sum().backward()
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        gla.svd(x).U.sum().backward()


def test_singular_matrix_names_the_function():
    with pytest.raises(ShapeError, match="inv.*[Ss]ingular"):
        gla.inv(np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="solve.*[Ss]ingular"):
        gla.solve(np.ones((2, 2)), np.ones(2))
    np.testing.assert_allclose(gla.det(np.ones((2, 2))).numpy(), 0.0)


def test_results_follow_numpy():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 4, 3))
    u, s, vh = gla.svd(a)  # full_matrices=True by default, as NumPy
    nu, ns, nvh = np.linalg.svd(a)
    assert u.shape == nu.shape and vh.shape == nvh.shape
    np.testing.assert_allclose(s.numpy(), ns)
    sign, logdet = gla.slogdet(a[:, :3, :])
    nsign, nlog = np.linalg.slogdet(a[:, :3, :])
    np.testing.assert_array_equal(sign.numpy(), nsign)
    np.testing.assert_allclose(logdet.numpy(), nlog)
    assert not sign.requires_grad
    b = rng.standard_normal(3)
    np.testing.assert_allclose(gla.solve(a[0, :3], b).numpy(), np.linalg.solve(a[0, :3], b))
    for o in (None, 1, -1, 2, -2, np.inf, -np.inf, "fro", "nuc"):
        np.testing.assert_allclose(gla.norm(a[0], o).numpy(), np.linalg.norm(a[0], o))
    with pytest.raises(ValueError, match="ord"):
        gla.norm(a[0], 3)


def test_float32_stays_float32():
    a = gc.tensor(np.random.default_rng(4).standard_normal((3, 3)).astype(np.float32),
                  requires_grad=True)
    w, v = gla.eigh(a + sh.swapaxes(a, 0, 1))
    assert w.dtype == np.float32 and v.dtype == np.float32
    (w.sum() + gla.inv(a + 3 * np.eye(3, dtype=np.float32)).sum()).backward()
    assert a.grad.dtype == np.float32


def test_without_scipy_the_numpy_solvers_give_the_same_derivatives(monkeypatch):
    """SciPy (reused LU factors, triangular solves) is optional: the fallback agrees."""
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal((3, 2))

    def f(x, y):
        return gc.concatenate([gc.reshape(gla.solve(x, y), (-1,)),
                               gc.reshape(gla.cholesky(_spd(x, sh.swapaxes, np.eye(3))), (-1,))])

    with_scipy = gc.functional.jacobian(lambda x: f(x, b), a).numpy()
    monkeypatch.setitem(gla._SCIPY, "numpy", None)
    without = gc.functional.jacobian(lambda x: f(x, b), a).numpy()
    np.testing.assert_allclose(without, with_scipy, rtol=1e-10, atol=1e-12)
    assert gc.gradcheck(f, [a, b], order=2)
