"""grad, vjp, jvp, jacobian, jacfwd, hessian, hvp and how they compose."""

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.functional import grad, hessian, hvp, jacfwd, jacobian, jvp, value_and_grad, vjp


def poly(p):
    return p[0] ** 2 + 5 * p[1] + 10 * p[2] + p[0] * p[1] * p[2]


def g_curve(t):
    return gc.stack([t, t**2, t**3])


@pytest.mark.parametrize("t", [0.4, 1.0, 1.9])
def test_chain_rule_as_jacobian_product(t):
    t = np.array(t)
    lhs = jacobian(lambda s: poly(g_curve(s)), t).numpy()
    rhs = jacobian(poly, g_curve(gc.tensor(t)).numpy()).numpy() @ jacobian(g_curve, t).numpy()
    assert lhs == pytest.approx(rhs, rel=1e-12)
    assert lhs == pytest.approx(12 * t + 6 * t**5 + 30 * t**2, rel=1e-12)


def test_three_level_chain_with_vector_middle_layers(rng):
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    u = lambda t: gc.stack([gc.sin(t), t**2, gc.exp(t)])
    x = lambda v: gc.tanh(gc.tensor(A) @ v)
    f = lambda w: gc.sum(gc.tensor(B) @ w) ** 2
    t = np.array(0.3)
    whole = jacobian(lambda s: f(x(u(s))), t).numpy()
    parts = (jacobian(f, x(u(gc.tensor(t))).numpy()).numpy()
             @ jacobian(x, u(gc.tensor(t)).numpy()).numpy() @ jacobian(u, t).numpy())
    assert whole == pytest.approx(parts, rel=1e-10)


def _mlp(rng):
    W1, W2 = rng.standard_normal((3, 5)), rng.standard_normal((5, 2))
    return lambda x: gc.tanh(gc.tanh(x @ W1) @ W2)


def test_jvp_vjp_jacobian_consistency(rng):
    f = _mlp(rng)
    x, v, u = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    J = jacobian(f, x).numpy()
    assert J.shape == (4, 2, 4, 3)
    np.testing.assert_allclose(jacfwd(f, x).numpy(), J, rtol=1e-12, atol=1e-14)
    _, tan = jvp(f, (x,), (v,))
    np.testing.assert_allclose(tan.numpy(), np.tensordot(J, v, axes=2), rtol=1e-12)
    out, pull = vjp(f, x)
    (ct,) = pull(u)
    np.testing.assert_allclose(ct.numpy(), np.tensordot(u, J, axes=2), rtol=1e-12)
    (ct2,) = pull(2 * u)  # may be called again
    np.testing.assert_allclose(ct2.numpy(), 2 * ct.numpy(), rtol=1e-12)


def test_chunked_jacobians_equal_unchunked(rng):
    f = _mlp(rng)
    x = rng.standard_normal((4, 3))
    full = jacobian(f, x).numpy()
    np.testing.assert_allclose(jacobian(f, x, chunk_size=3).numpy(), full, rtol=1e-12)
    np.testing.assert_allclose(jacfwd(f, x, chunk_size=5).numpy(), full, rtol=1e-12)


def test_per_sample_jacobians_are_diagonal_blocks(rng):
    f = _mlp(rng)
    x = rng.standard_normal((6, 3))
    full = jacobian(f, x).numpy()
    per = jacobian(f, x, batch_axis=0).numpy()
    per_fwd = jacfwd(f, x, batch_axis=0).numpy()
    assert per.shape == (6, 2, 3)
    for b in range(6):
        np.testing.assert_allclose(per[b], full[b, :, b, :], rtol=1e-12)
    np.testing.assert_allclose(per_fwd, per, rtol=1e-12)


def test_hessian_symmetric_and_matches_finite_differences(rng):
    W = rng.standard_normal((3, 4))
    f = lambda x: gc.sum(gc.tanh(x @ W) ** 2) + gc.sum(gc.sin(x) * x)
    x = rng.standard_normal(3)
    H = hessian(f, x).numpy()
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-14)
    eps = 1e-5
    fd = np.stack([(grad(f)(x + eps * e).numpy() - grad(f)(x - eps * e).numpy()) / (2 * eps)
                   for e in np.eye(3)])
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-8)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(hvp(f, x, v).numpy(), H @ v, rtol=1e-12, atol=1e-14)


def test_nested_transforms_compose():
    f = lambda x: gc.sum(x**4)
    x = np.array([1.5, -0.5])
    np.testing.assert_allclose(grad(lambda y: grad(f)(y).sum())(x).numpy(), 12 * x**2)
    np.testing.assert_allclose(jacfwd(jacobian(f))(x).numpy(), np.diag(12 * x**2))
    _, t = jvp(grad(f), (x,), (np.array([1.0, 0.0]),))
    np.testing.assert_allclose(t.numpy(), [12 * 1.5**2, 0.0])
    h = jacobian(jacobian(lambda y: gc.sin(y) * y))(x).numpy()  # reverse over reverse
    assert h.shape == (2, 2, 2)
    assert h[0, 0, 0] == pytest.approx(2 * np.cos(1.5) - 1.5 * np.sin(1.5))


def test_argnums_has_aux_and_value_and_grad():
    f = lambda a, b: (gc.sum(a * b**2), {"note": 1})
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (ga, gb), aux = grad(f, argnums=(0, 1), has_aux=True)(a, b)
    np.testing.assert_allclose(ga.numpy(), b**2)
    np.testing.assert_allclose(gb.numpy(), 2 * a * b)
    assert aux == {"note": 1}
    (value, _), g = value_and_grad(f, argnums=1, has_aux=True)(a, b)
    assert value.item() == 41.0
    with pytest.raises(ValueError, match="argnums"):
        grad(lambda a: gc.sum(a), argnums=2)(a)


def test_arguments_related_outside_f_get_partial_derivatives():
    x = gc.tensor(2.0, dtype="float64")
    ga, gb = grad(lambda a, b: a * b, argnums=(0, 1))(x, x)
    assert (ga.item(), gb.item()) == (2.0, 2.0)


def test_tangent_mismatch_names_both():
    with pytest.raises(gc.ShapeError, match=r"float64\(3,\).*float64\(2,\)"):
        jvp(lambda x: x * 2, (np.ones(2),), (np.ones(3),))
    with pytest.raises(gc.ShapeError, match=r"float32.*float64"):
        jvp(lambda x: x * 2, (np.ones(2),), (np.ones(2, dtype=np.float32),))


def test_transforms_work_inside_no_grad():
    with gc.no_grad():
        g = grad(lambda x: gc.sum(x * x))(np.array([3.0]))
    assert g.item() == 6.0


def test_grad_rejects_non_scalar_output():
    with pytest.raises(gc.ShapeError, match="scalar"):
        grad(lambda x: x * 2)(np.ones(3))


def test_inner_transform_stops_at_its_arguments(monkeypatch):
    # y comes from an outer graph; grad(f)(y) must neither walk nor free that graph.
    tanh_op = __import__("gpuchain.engine.op", fromlist=["REGISTRY"]).REGISTRY["tanh"]
    calls = []
    rule = tanh_op.vjp_rule
    monkeypatch.setattr(tanh_op, "vjp_rule", lambda ctx, g: calls.append(1) or rule(ctx, g))
    x = gc.tensor(np.array([0.5, 1.5]), requires_grad=True)
    y = gc.tanh(x) * 3
    g = grad(lambda a: gc.sum(a**2))(y)
    assert calls == []  # the outer tanh was not differentiated by the inner pass
    np.testing.assert_allclose(g.numpy(), 2 * y.numpy())
    y.sum().backward()  # the outer graph is intact: its saved values were not freed
    np.testing.assert_allclose(x.grad.numpy(), 3 * (1 - np.tanh([0.5, 1.5]) ** 2))
