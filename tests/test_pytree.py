"""gpuchain.pytree: flatten/unflatten with JAX's conventions, and pytrees in every transform."""

from collections import namedtuple

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.errors import TreeStructureError
from gpuchain.functional import grad, hessian, hvp, jacfwd, jacobian, jvp, value_and_grad, vjp
from gpuchain.pytree import tree_flatten, tree_map, tree_structure, tree_unflatten

Pair = namedtuple("Pair", ["w", "b"])


def test_flatten_order_and_round_trip():
    tree = {"b": [1, (2, None)], "a": Pair(3, {"z": 4, "y": 5})}
    leaves, treedef = tree_flatten(tree)
    assert leaves == [3, 5, 4, 1, 2]  # dict keys sorted, depth first, None has no leaf
    assert treedef.num_leaves == 5
    back = tree_unflatten(treedef, leaves)
    assert back == tree and isinstance(back["a"], Pair)
    assert repr(treedef) == "{'a': Pair(*, {'y': *, 'z': *}), 'b': [*, (*, None)]}"


def test_leaves_are_arrays_and_tensors_not_containers():
    t = gc.tensor(np.arange(3.0))
    leaves, treedef = tree_flatten((t, np.ones(2), 3.0))
    assert leaves[0] is t and treedef.num_leaves == 3
    assert tree_flatten(t)[0] == [t]


def test_structure_mismatch_is_a_clear_error():
    with pytest.raises(TreeStructureError, match=r"tree 1.*\(\*, \*\).*\[\*, \*\]"):
        tree_map(lambda a, b: a + b, (1, 2), [1, 2])
    with pytest.raises(TreeStructureError, match="has 2 leaves but 3"):
        tree_unflatten(tree_structure((1, 2)), [1, 2, 3])
    assert tree_structure((1, [2])) != tree_structure((1, (2,)))
    with pytest.raises(TreeStructureError, match="cannot be sorted"):
        tree_flatten({1: 0, "a": 1})


def _loss(params, x):
    W, b = params
    return gc.sum(gc.tanh(x @ W + b) ** 2)


def _loss_np_grad(W, b, x):
    z = np.tanh(x @ W + b)
    dz = 2 * z * (1 - z**2)
    return x.T @ dz, dz.sum(0)


def test_grad_returns_the_parameters_structure(rng):
    W, b, x = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal((4, 3))
    dW, db = grad(_loss)((W, b), x)
    eW, eb = _loss_np_grad(W, b, x)
    np.testing.assert_allclose(dW.numpy(), eW, rtol=1e-12)
    np.testing.assert_allclose(db.numpy(), eb, rtol=1e-12)
    g = grad(lambda p, x: _loss((p["W"], p["b"]), x))({"W": W, "b": b}, x)
    assert set(g) == {"W", "b"}
    np.testing.assert_allclose(g["W"].numpy(), eW, rtol=1e-12)
    (value, (gp, gx)) = value_and_grad(_loss, argnums=(0, 1))([W, b], x)
    assert isinstance(gp, list) and gx.shape == x.shape
    assert value.item() == pytest.approx(np.sum(np.tanh(x @ W + b) ** 2))


def test_vjp_and_jvp_with_pytrees(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    f = lambda d: {"prod": d["a"] * d["b"], "parts": (gc.sin(d["a"]), d["b"] ** 2)}
    out, pull = vjp(f, {"a": a, "b": b})
    assert set(out) == {"prod", "parts"} and isinstance(out["parts"], tuple)
    u = {"prod": np.ones(3), "parts": (2 * np.ones(3), 3 * np.ones(3))}
    (ct,) = pull(u)
    np.testing.assert_allclose(ct["a"].numpy(), b + 2 * np.cos(a))
    np.testing.assert_allclose(ct["b"].numpy(), a + 6 * b)
    with pytest.raises(TreeStructureError, match="cotangent"):
        pull({"prod": np.ones(3)})
    va, vb = rng.standard_normal(3), rng.standard_normal(3)
    prim, tan = jvp(f, ({"a": a, "b": b},), ({"a": va, "b": vb},))
    np.testing.assert_allclose(tan["prod"].numpy(), va * b + a * vb)
    np.testing.assert_allclose(tan["parts"][0].numpy(), np.cos(a) * va)
    np.testing.assert_allclose(prim["parts"][1].numpy(), b**2)


def test_jacobians_nest_output_then_input_structure(rng):
    a, b = rng.standard_normal(2), rng.standard_normal(3)
    f = lambda p: (gc.sum(p[0]) * p[1], p[0] ** 2)
    for jac in (jacobian, jacfwd):
        J = jac(f, [a, b])
        assert isinstance(J, tuple) and isinstance(J[0], list)
        assert [j.shape for j in J[0]] == [(3, 2), (3, 3)]
        assert [j.shape for j in J[1]] == [(2, 2), (2, 3)]
        np.testing.assert_allclose(J[0][0].numpy(), np.outer(b, np.ones(2)))
        np.testing.assert_allclose(J[0][1].numpy(), a.sum() * np.eye(3))
        np.testing.assert_allclose(J[1][0].numpy(), np.diag(2 * a))
        np.testing.assert_allclose(J[1][1].numpy(), np.zeros((2, 3)))


def test_argnums_on_jacobian_jacfwd_hessian(rng):
    x, y = rng.standard_normal(2), rng.standard_normal(2)
    f = lambda x, y: x * y**2
    for jac in (jacobian, jacfwd):
        Jx, Jy = jac(f, argnums=(0, 1))(x, y)
        np.testing.assert_allclose(Jx.numpy(), np.diag(y**2))
        np.testing.assert_allclose(Jy.numpy(), np.diag(2 * x * y))
        np.testing.assert_allclose(jac(f, argnums=1)(x, y).numpy(), np.diag(2 * x * y))
    s = lambda x, y: gc.sum(x * y**2)
    (Hxx, Hxy), (Hyx, Hyy) = hessian(s, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(Hxx.numpy(), np.zeros((2, 2)))
    np.testing.assert_allclose(Hxy.numpy(), np.diag(2 * y))
    np.testing.assert_allclose(Hyx.numpy(), np.diag(2 * y))
    np.testing.assert_allclose(Hyy.numpy(), np.diag(2 * x))
    np.testing.assert_allclose(hessian(s, argnums=1)(x, y).numpy(), np.diag(2 * x))


def test_hessian_and_hvp_of_a_pytree(rng):
    W, b, x = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal((4, 3))
    H = hessian(lambda p: _loss(p, x))((W, b))
    assert H[0][0].shape == (3, 2, 3, 2) and H[0][1].shape == (3, 2, 2)
    assert H[1][0].shape == (2, 3, 2) and H[1][1].shape == (2, 2)
    np.testing.assert_allclose(H[0][1].numpy(), np.moveaxis(H[1][0].numpy(), 0, -1),
                               rtol=1e-10, atol=1e-12)
    vW, vb = rng.standard_normal((3, 2)), rng.standard_normal(2)
    hW, hb = hvp(lambda p: _loss(p, x), (W, b), (vW, vb))
    expect_W = (np.tensordot(H[0][0].numpy(), vW, axes=2)
                + np.tensordot(H[0][1].numpy(), vb, axes=1))
    np.testing.assert_allclose(hW.numpy(), expect_W, rtol=1e-10, atol=1e-12)
    assert hb.shape == (2,)


def test_per_sample_jacobians_with_two_inputs(rng):
    x, z = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    f = lambda x, z: gc.sin(x) * z
    for jac in (jacobian, jacfwd):
        Jx, Jz = jac(f, argnums=(0, 1), batch_axis=0)(x, z)
        assert Jx.shape == (5, 3, 3)
        for k in range(5):
            np.testing.assert_allclose(Jx.numpy()[k], np.diag(np.cos(x[k]) * z[k]))
            np.testing.assert_allclose(Jz.numpy()[k], np.diag(np.sin(x[k])))
