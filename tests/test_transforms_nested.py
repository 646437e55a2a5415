"""Transforms nested in each other: mixed partials, closures over outer variables,
forward mode through reverse transforms, nested forward mode, empty shapes, bad input."""

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.errors import DTypeError, ShapeError, TreeStructureError
from gpuchain.functional import (
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)
from gpuchain.testing import gradcheck

f64 = np.float64


# --- reverse inside reverse -----------------------------------------------------------

def test_mixed_partial_through_nested_grads():
    g = grad(grad(lambda x, y: x * y * y, argnums=1), argnums=0)(2.0, 3.0)
    assert g.item() == 6.0  # d/dx d/dy (x y²) = 2y
    assert g.is_leaf  # the outermost transform keeps no graph


def test_closure_over_an_outer_variable():
    assert grad(lambda x: x * grad(lambda y: x * y)(2.0))(1.0).item() == 2.0  # d/dx x² = 2x
    # and it survives a second-order check in every composition
    assert gradcheck(lambda x: x * grad(lambda y: x * y)(f64(2.0)), [np.array(1.0)], order=2)


def test_closure_over_a_user_tensor_that_requires_grad():
    w = gc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    g = grad(lambda x: gc.sum(w * x * x))(np.array([3.0, 4.0]))  # 2 w x
    gc.sum(g).backward()
    np.testing.assert_allclose(w.grad.numpy(), [6.0, 8.0])


@pytest.mark.parametrize("inner", ["grad", "value_and_grad", "vjp", "jacobian", "hessian",
                                   "hvp"])
def test_every_reverse_transform_records_for_an_outer_one(inner):
    # h(a) = <d/db of a·sum(sin(b)·b²)> at fixed b: each inner transform reads a by closure
    b = np.array([0.3, -1.2])
    s = lambda a: lambda y: a * gc.sum(gc.sin(y) * y * y)
    inner_fns = {
        "grad": lambda a: gc.sum(grad(s(a))(b)),
        "value_and_grad": lambda a: value_and_grad(s(a))(b)[0] + gc.sum(
            value_and_grad(s(a))(b)[1]),
        "vjp": lambda a: gc.sum(vjp(s(a), b)[1](f64(1.0))[0]),
        "jacobian": lambda a: gc.sum(jacobian(s(a), b)),
        "hessian": lambda a: gc.sum(hessian(s(a), b)),
        "hvp": lambda a: gc.sum(hvp(s(a), b, np.ones(2))),
    }
    h = inner_fns[inner]
    a = np.array(1.7)
    eps = 1e-6
    fd = (h(a + eps).item() - h(a - eps).item()) / (2 * eps)
    assert grad(h)(a).item() == pytest.approx(fd, rel=1e-7, abs=1e-9)
    assert fd != 0.0
    assert gradcheck(h, [a], order=2)


def test_jacobian_of_grad_with_a_closure(rng):
    W = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)
    # H_xw of <x, W x> sin: jacobian over an outer variable read only through a closure
    f = lambda w: grad(lambda z: gc.sum(gc.sin(z @ w) * z))(x)
    J = jacobian(f, W)
    eps = 1e-6
    fd = np.stack([(f(W + eps * e.reshape(3, 3)).numpy() - f(W - eps * e.reshape(3, 3)).numpy())
                   / (2 * eps) for e in np.eye(9)], axis=-1).reshape(3, 3, 3)
    np.testing.assert_allclose(J.numpy(), fd, rtol=1e-7, atol=1e-9)


def test_vjp_inside_grad_and_three_levels():
    f = lambda a: gc.sum(vjp(lambda y: a * y**3, np.array([1.0, 2.0]))[1](np.ones(2))[0])
    assert grad(f)(np.array(2.0)).item() == pytest.approx(3 * (1 + 4))  # d/da sum(3 a y²)
    g3 = grad(lambda a: grad(lambda b: grad(lambda c: a * a * b * c * c * c)(f64(2.0)))(
        f64(3.0)))(f64(5.0))
    assert g3.item() == pytest.approx(2 * 5 * 3 * 2.0**2)  # d/da d/db d/dc = 2a·3c²


def test_inner_transform_does_not_free_the_outer_graph():
    # the inner grad reads x (an outer variable); checking the outer gradient at second
    # order must not trip over values freed by the inner pass
    def f(x):
        return gc.sum(x * grad(lambda y: gc.sum(gc.tanh(x * y)))(np.array([0.5, 0.2])))
    x = np.array([0.3, -0.4])
    assert gradcheck(f, [x], order=2)


def test_an_output_returned_twice_gets_both_cotangents():
    # found by the PyTorch fuzzer: add's VJP hands the same Tensor to both inputs, so the
    # gradient map returned it twice and the outer pass lost it (duplicate roots)
    x = np.array([0.3, -0.2])
    _, pull = vjp(lambda x: (gc.sin(x), gc.sin(x) * 1.0)[:1] * 2, x)
    np.testing.assert_allclose(pull((np.ones(2), 2 * np.ones(2)))[0].numpy(), 3 * np.cos(x))
    J = jacobian(lambda x: [gc.tanh(x)] * 2, x)
    np.testing.assert_allclose(J[1].numpy(), np.diag(1 - np.tanh(x) ** 2))
    gmap = lambda a, b: vjp(lambda a, b: gc.cos(b + a), a, b)[1](f64(1.0))
    rr = vjp(gmap, f64(0.1), f64(-0.1))[1]((f64(1.0), f64(0.0)))
    assert rr[0].item() == pytest.approx(-np.cos(0.0))


# --- forward mode through reverse transforms -------------------------------------------

def test_jvp_through_the_value_of_value_and_grad(rng):
    x, v = rng.standard_normal(3), rng.standard_normal(3)
    f = lambda x: value_and_grad(lambda y: gc.sum(gc.sin(y) ** 2))(x)[0]
    _, t = jvp(f, (x,), (v,))
    np.testing.assert_allclose(t.numpy(), np.sum(2 * np.sin(x) * np.cos(x) * v), rtol=1e-12)
    g = lambda x: value_and_grad(lambda y: gc.sum(gc.sin(y) ** 2))(x)[1]
    _, tg = jvp(g, (x,), (v,))
    np.testing.assert_allclose(tg.numpy(), 2 * np.cos(2 * x) * v, rtol=1e-12)
    _, tg2 = jvp(grad(lambda y: gc.sum(gc.sin(y) ** 2)), (x,), (v,))
    np.testing.assert_allclose(tg2.numpy(), 2 * np.cos(2 * x) * v, rtol=1e-12)


def test_jvp_through_vjp_outputs_and_grad_with_aux(rng):
    x, v = rng.standard_normal(2), rng.standard_normal(2)
    out_t = jvp(lambda x: vjp(lambda y: gc.exp(y) * 2, x)[0], (x,), (v,))[1]
    np.testing.assert_allclose(out_t.numpy(), 2 * np.exp(x) * v, rtol=1e-12)
    f = lambda x: grad(lambda y: (gc.sum(y**3), y * 2), has_aux=True)(x)[1]
    np.testing.assert_allclose(jvp(f, (x,), (v,))[1].numpy(), 2 * v)


# --- nested forward mode ---------------------------------------------------------------

def test_jvp_inside_jvp():
    # d/dx [d/dy sin(x y)·1 at y] = d/dx x cos(x y) at x=0.7, y=1.3
    x, y = np.array(0.7), np.array(1.3)
    inner = lambda x: jvp(lambda y: gc.sin(x * y), (y,), (np.array(1.0),))[1]
    _, t = jvp(inner, (x,), (np.array(1.0),))
    assert t.item() == pytest.approx(np.cos(x * y) - x * y * np.sin(x * y), rel=1e-12)


def test_perturbation_levels_do_not_mix():
    # Siskind & Pearlmutter's perturbation confusion: d/dx [x · d/dy (x + y)] = 1, not 2
    f = lambda x: x * jvp(lambda y: x + y, (np.array(1.0),), (np.array(1.0),))[1]
    assert jvp(f, (np.array(1.0),), (np.array(1.0),))[1].item() == 1.0


def test_jacfwd_of_jacfwd_and_third_order(rng):
    x = rng.standard_normal(3)
    f = lambda x: gc.sum(gc.sin(x) * x[0])
    H = jacfwd(jacfwd(f))(x).numpy()
    np.testing.assert_allclose(H, hessian(f, x).numpy(), rtol=1e-12, atol=1e-14)
    s = lambda t: gc.sin(t) * t
    d3 = jacfwd(jacfwd(jacfwd(s)))(np.array(0.4))
    t = 0.4
    assert d3.item() == pytest.approx(-3 * np.sin(t) - t * np.cos(t), rel=1e-12)
    d3_mixed = grad(lambda t: jacfwd(jacfwd(s))(t))(np.array(0.4))
    assert d3_mixed.item() == pytest.approx(d3.item(), rel=1e-12)


# --- empty inputs and outputs ----------------------------------------------------------

@pytest.mark.parametrize("jac", [jacobian, jacfwd])
def test_jacobians_of_empty_inputs_and_outputs(jac):
    assert jac(lambda x: x * 2, np.zeros(0)).shape == (0, 0)
    assert jac(lambda x: x[:0], np.ones(3)).shape == (0, 3)
    assert jac(lambda x: gc.sum(x), np.zeros((0, 2))).shape == (0, 2)
    J = jac(lambda x: gc.sum(x) * np.ones(2), np.zeros((2, 0)))
    assert J.shape == (2, 2, 0)
    assert jac(lambda x: x * 2, np.zeros((4, 0)), batch_axis=0).shape == (4, 0, 0)


def test_hessian_of_an_empty_input():
    assert hessian(lambda x: gc.sum(x * x), np.zeros(0)).shape == (0, 0)
    assert hessian(lambda x: gc.sum(x * x), np.zeros((2, 0))).shape == (2, 0, 2, 0)


# --- bad input -------------------------------------------------------------------------

def test_jvp_with_non_tuple_primals_names_the_function():
    def model(x):
        return x * 2

    with pytest.raises(TreeStructureError, match=r"jvp of model: primals must be a tuple.*"
                                                 r"ndarray"):
        jvp(model, np.ones(2), (np.ones(2),))
    with pytest.raises(TreeStructureError, match="tangents must be a tuple"):
        jvp(model, (np.ones(2),), np.ones(2))
    with pytest.raises(TreeStructureError, match="2 primals but 1 tangents"):
        jvp(lambda a, b: a * b, (np.ones(2), np.ones(2)), (np.ones(2),))
    with pytest.raises(TreeStructureError, match=r"tangent 0: expected .*\(\*, \*\)"):
        jvp(lambda p: p[0] * p[1], ((np.ones(2), np.ones(2)),), ([np.ones(2), np.ones(2)],))


def test_complex_output_under_grad_is_refused():
    def loss(x):
        return gc.sum(x).astype("complex128")

    with pytest.raises(DTypeError, match=r"grad of loss: f returned an output of dtype "
                                         r"complex128 \(shape \(\)\); complex numbers"):
        grad(loss)(np.ones(3))


def test_complex_and_integer_arguments_are_refused():
    with pytest.raises(DTypeError, match=r"complex.*not supported"):
        grad(lambda x: gc.sum(x))(np.ones(2, dtype=complex))
    with pytest.raises(DTypeError, match=r"int64 \(shape \(3,\)\)"):
        jacfwd(lambda x: x, np.arange(3))


def test_grad_output_errors_name_function_shape_and_structure():
    def f(x):
        return x * 2

    with pytest.raises(ShapeError, match=r"grad of f: .*shape \(3,\)"):
        grad(f)(np.ones(3))
    with pytest.raises(ShapeError, match="got a tuple"):
        grad(lambda x: (gc.sum(x), gc.sum(x)))(np.ones(3))
    with pytest.raises(ShapeError, match=r"cotangent has shape \(2,\).*\(3,\)"):
        vjp(f, np.ones(3))[1](np.ones(2))


def test_argnums_validation():
    f = lambda a, b: gc.sum(a * b)
    with pytest.raises(ValueError, match="names an argument twice"):
        grad(f, argnums=(0, -2))(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="out of range"):
        jacobian(f, argnums=2)(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="selects no argument"):
        hessian(f, argnums=())(np.ones(2), np.ones(2))
