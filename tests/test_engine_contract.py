"""The op contract (deriv, raw_vjp, missing rules, redefinition), the declared Tensor
surface, nested forward mode, version counters and bad input: regression tests for
issues found by trying gpuchain as a user would."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.engine.op import REGISTRY
from gpuchain.extend import custom_jvp, custom_vjp, defop


def f64(x):
    return gc.tensor(np.asarray(x, dtype=np.float64))


# --- lists of Tensors are stacked, not turned into constants ---------------------------

@pytest.mark.parametrize("reduce, want", [
    (lambda xs: gc.mean(xs), [0.5, 0.5]),
    (lambda xs: gc.sum(xs), [1.0, 1.0]),
    (lambda xs: gc.max(xs), [0.0, 1.0]),
    (lambda xs: gc.exp(xs).sum() * 0 + gc.add(xs, 1.0).sum(), [1.0, 1.0]),
])
def test_list_of_tensors_is_differentiated(reduce, want):
    x = f64(1.5)
    xs = [x, x + 2]
    g = gc.grad(lambda x: reduce([x, x + 2]) if True else xs)(x)
    assert g.item() == pytest.approx(sum(want))


# --- derivative fixes at the edges of the domain -------------------------------------------

def test_power_zero_exponent_at_zero_has_zero_derivative():
    assert gc.grad(lambda x: x ** 0)(f64(0.0)).item() == 0.0
    assert gc.grad(gc.grad(lambda x: x ** 1))(f64(0.0)).item() == 0.0
    assert gc.grad(gc.grad(lambda x: x ** 2))(f64(0.0)).item() == 2.0
    assert gc.grad(gc.grad(gc.grad(lambda x: x ** 2)))(f64(0.0)).item() == 0.0
    # forward mode agrees
    assert gc.jvp(lambda x: x ** 0, (f64(0.0),), (f64(1.0),))[1].item() == 0.0


def test_div_tangent_does_not_under_or_overflow():
    u, v = f64(1e-300), f64(1e-300)
    _, t = gc.jvp(lambda a, b: a / b, (u, v), (f64(1.0), f64(1.0)))
    # d(u/v) = du/v - u dv/v² = 1e300 - 1e300 = 0, finite
    assert np.isfinite(t.item()) and t.item() == pytest.approx(0.0, abs=1e285)
    _, t = gc.jvp(lambda b: 1e-300 / b, (v,), (f64(1.0),))
    assert t.item() == pytest.approx(-1e300)


def test_maximum_minimum_tie_with_int_operand_splits_half():
    x = f64(2.0)
    two = gc.tensor(np.array(2, dtype=np.int64))
    assert gc.grad(lambda x: gc.maximum(x, two))(x).item() == 0.5
    assert gc.grad(lambda x: gc.minimum(two, x))(x).item() == 0.5


def test_clip_with_tensor_bounds_is_differentiable_in_the_bounds():
    x = f64([-2.0, 0.5, 3.0, 1.0])
    lo, hi = f64(-1.0), f64([1.0, 1.0, 2.0, 1.0])
    gx, glo, ghi = gc.grad(lambda x, lo, hi: gc.clip(x, lo, hi).sum(), argnums=(0, 1, 2))(
        x, lo, hi)
    np.testing.assert_array_equal(gx.numpy(), [0, 1, 0, 1])  # boundary included (torch.clamp)
    assert glo.item() == 1.0
    np.testing.assert_array_equal(ghi.numpy(), [0, 0, 1, 0])


def test_int_tensor_to_negative_int_power_is_a_dtype_error():
    with pytest.raises(gc.DTypeError, match="power"):
        gc.tensor(np.array([2, 3])) ** -1


# --- Tensor methods, iteration --------------------------------------------------------------

@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tan", "sqrt", "tanh", "sigmoid",
                                  "relu", "abs", "square"])
def test_every_elementwise_method_works_and_matches_the_function(name):
    x = f64([0.3, 1.2])
    np.testing.assert_allclose(getattr(x, name)().numpy(), getattr(gc, name)(x).numpy())
    g = gc.grad(lambda x: getattr(x, name)().sum())(x)
    assert g.shape == (2,)


def test_tensors_iterate_unpack_and_have_len():
    X = f64(np.arange(6.0).reshape(3, 2))
    rows = [r.numpy().tolist() for r in X]
    assert rows == [[0, 1], [2, 3], [4, 5]]
    a, b = X.T
    assert a.shape == (3,) and b.numpy().tolist() == [1, 3, 5]
    assert len(X) == 3 and len(list(X)) == 3
    with pytest.raises(IndexError):
        X[3]
    with pytest.raises(TypeError):
        len(f64(1.0))
    g = gc.grad(lambda X: sum(r.sum() * i for i, r in enumerate(X)))(X)
    np.testing.assert_array_equal(g.numpy(), [[0, 0], [1, 1], [2, 2]])


def test_tensor_class_declares_its_surface():
    for name in ("sum", "mean", "exp", "reshape", "__add__", "__iter__", "__setitem__",
                 "zero_", "__dlpack__"):
        assert name in vars(gc.Tensor), name
        assert getattr(gc.Tensor, name).__doc__ or name.startswith("__")


def test_public_functions_have_real_signatures_and_docs():
    import inspect

    assert list(inspect.signature(gc.tanh).parameters) == ["x"]
    assert "tangent" in gc.tanh.__doc__.lower()
    assert "axis" in inspect.signature(gc.sum).parameters
    for name in ("REGISTRY", "Op", "defop", "annotations"):
        assert not hasattr(gc, name) or name not in gc.__all__


# --- nested forward mode ----------------------------------------------------------------------

def test_jvp_inside_jvp_gives_second_and_third_derivatives():
    x, one = f64(0.7), f64(1.0)

    def d1(x):
        return gc.jvp(gc.sin, (x,), (one,))[1]

    def d2(x):
        return gc.jvp(d1, (x,), (one,))[1]

    assert d2(x).item() == pytest.approx(-np.sin(0.7), rel=1e-12)
    assert gc.jvp(d2, (x,), (one,))[1].item() == pytest.approx(-np.cos(0.7), rel=1e-12)


def test_forward_levels_do_not_mix_tangents():
    # d/dx [x * d/dy (x*y)] = d/dx [x * x] = 2x
    x, y, one = f64(1.5), f64(4.0), f64(1.0)

    def inner(x):
        return x * gc.jvp(lambda y: x * y, (y,), (one,))[1]

    assert gc.jvp(inner, (x,), (one,))[1].item() == pytest.approx(3.0)


# --- version counters and copies ----------------------------------------------------------------

def test_in_place_change_of_a_saved_tensor_raises_at_backward():
    x = f64([1.0, 2.0]).requires_grad_()
    w = f64([3.0, 4.0]).requires_grad_()
    y = (x * w).sum()
    with gc.no_grad():
        w -= 1.0
    with pytest.raises(RuntimeError, match=r"op 'mul'.*modified in place"):
        y.backward()


def test_tensor_copies_the_callers_array():
    a = np.array([1.0, 2.0])
    t = gc.tensor(a, requires_grad=True)
    y = (t * t).sum()
    a[:] = 100.0
    y.backward()
    np.testing.assert_array_equal(t.grad.numpy(), [2.0, 4.0])


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("data, match", [
    (None, "NoneType"), ("abc", "str"), ({"a": 1}, "dict"),
    ([[1.0, 2.0], [3.0]], "list"), (np.array([object()]), "object"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64"),
    (np.array([1 + 2j]), "complex"),
])
def test_bad_data_gives_a_gpuchain_error(data, match):
    with pytest.raises(gc.GpuchainError, match=match):
        gc.tensor(data)


@pytest.mark.parametrize("other", [None, "2", {"a": 1}])
def test_bad_operand_names_the_op(other):
    with pytest.raises(gc.GpuchainError, match="add"):
        gc.tensor([1.0]) + other


def test_numpy_scalars_act_like_python_scalars():
    x = gc.tensor([1.0, 2.0])  # float32
    assert (x * np.float64(2.0)).dtype == np.float32
    assert (x + np.int64(1)).dtype == np.float32
    assert gc.sum(x, axis=np.int64(0)).item() == 3.0


# --- the op contract -------------------------------------------------------------------------

def test_an_op_without_a_vjp_rule_raises_when_a_gradient_must_flow():
    @defop("test_no_rule")
    def no_rule(xp, x):
        return x * 2

    try:
        x = f64(1.0).requires_grad_()
        y = no_rule(x)
        with pytest.raises(gc.MissingRuleError, match="test_no_rule"):
            y.backward()
        with pytest.raises(gc.MissingRuleError, match="test_no_rule"):
            gc.jvp(no_rule, (f64(1.0),), (f64(1.0),))
    finally:
        del REGISTRY["test_no_rule"]


def test_redefining_an_op_replaces_it_with_a_warning():
    try:
        defop("test_twice")(lambda xp, x: x)
        with pytest.warns(RuntimeWarning, match="test_twice"):
            second = defop("test_twice")(lambda xp, x: x + 1)
        assert REGISTRY["test_twice"] is second
    finally:
        del REGISTRY["test_twice"]


@pytest.fixture
def counted_cube():
    """x**3 defined by its partials, with raw rules that count their calls."""
    calls = {"vjp": 0, "jvp": 0}

    @defop("test_cube", broadcasts=True)
    def cube(xp, x):
        return x ** 3

    @cube.deriv
    def _(x):
        return 3 * x * x

    @cube.raw_vjp
    def _(ctx, g):
        calls["vjp"] += 1
        return (g * 3 * ctx.inputs[0].data ** 2,)

    @cube.raw_jvp
    def _(ctx, tangents):
        calls["jvp"] += 1
        return 3 * ctx.inputs[0].data ** 2 * tangents[0]

    yield cube, calls
    del REGISTRY["test_cube"]


def test_deriv_gives_both_modes_and_raw_vjp_is_used_only_without_a_graph(counted_cube):
    cube, calls = counted_cube
    x = f64([0.5, -1.0])
    assert gc.gradcheck(lambda x: cube(x), [x.numpy()], order=2)
    calls["vjp"] = 0
    xg = x.detach().requires_grad_()
    cube(xg).sum().backward()
    assert calls["vjp"] == 1
    np.testing.assert_allclose(xg.grad.numpy(), [0.75, 3.0])
    gc.hessian(lambda x: cube(x).sum())(x)  # graph recorded: the differentiable rule
    assert calls["vjp"] == 1


def test_raw_jvp_is_used_only_where_nothing_differentiates_the_tangent(counted_cube):
    cube, calls = counted_cube
    x0, one = np.array([0.5, -1.0]), f64([1.0, 1.0])
    x = f64(x0)

    def count(f):
        calls["jvp"] = 0
        value = f()
        return calls["jvp"], value

    n, (_, t) = count(lambda: gc.jvp(cube, (x,), (one,)))
    assert n == 1
    np.testing.assert_allclose(t.numpy(), 3 * x0 ** 2)
    # jvp of jvp: the inner level's tangent is differentiated by the outer level (the
    # differentiable rule); the outer level's own tangent of cube(y) is not (raw)
    n, (_, t2) = count(lambda: gc.jvp(lambda y: gc.jvp(cube, (y,), (one,))[1], (x,), (one,)))
    assert n == 1
    np.testing.assert_allclose(t2.numpy(), 6 * x0)
    # grad of jvp: a graph is recorded through the tangent
    n, g = count(lambda: gc.grad(lambda y: gc.jvp(cube, (y,), (one,))[1].sum())(x))
    assert n == 0
    np.testing.assert_allclose(g.numpy(), 6 * x0)
    # vectorized jacfwd: the tangents carry a batch axis
    n, jac = count(lambda: gc.jacfwd(cube)(x))
    assert n == 0
    np.testing.assert_allclose(jac.numpy(), np.diag(3 * x0 ** 2))


def test_custom_vjp_and_custom_jvp():
    @custom_vjp
    def f(x):
        return gc.sin(x)

    f.defvjp(lambda x: (gc.sin(x), x), lambda x, g: (g * 2 * gc.cos(x),))
    x = f64(0.3)
    assert gc.grad(f)(x).item() == pytest.approx(2 * np.cos(0.3))
    assert gc.grad(gc.grad(f))(x).item() == pytest.approx(-2 * np.sin(0.3))

    @custom_jvp
    def h(x):
        return gc.exp(x)

    @h.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return gc.exp(x), 3 * gc.exp(x) * t

    assert gc.jvp(h, (x,), (f64(1.0),))[1].item() == pytest.approx(3 * np.exp(0.3))
    assert gc.grad(h)(x).item() == pytest.approx(3 * np.exp(0.3))


def test_bad_backend_names_are_refused_clearly():
    import os
    import subprocess
    import sys

    with pytest.raises(ValueError, match="set_backend"):
        gc.set_backend(None)
    env = dict(os.environ, GPUCHAIN_BACKEND="bogus")
    proc = subprocess.run([sys.executable, "-c", "import gpuchain"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "GPUCHAIN_BACKEND" in proc.stderr


def test_recording_raises_the_young_gc_threshold_until_backward():
    import gc as pygc

    from gpuchain.engine import collector

    before = pygc.get_threshold()
    try:
        pygc.set_threshold(700, 10, 10)
        x = f64([1.0, 2.0]).requires_grad_()
        y = (x * x).sum()
        assert pygc.get_threshold() == (700 * collector.SCALE, 10, 10)
        y.backward()
        assert pygc.get_threshold() == (700, 10, 10)
        # a threshold the user sets meanwhile is kept
        y = (x * x).sum()
        pygc.set_threshold(500, 10, 10)
        y.backward()
        assert pygc.get_threshold() == (500, 10, 10)
    finally:
        pygc.set_threshold(*before)


def test_arctan2_derivative_at_the_origin_is_zero():
    assert gc.grad(lambda y: gc.arctan2(y, y))(f64(0.0)).item() == 0.0
    g = gc.grad(lambda a, b: gc.arctan2(a, b), argnums=(0, 1))(f64(0.0), f64(0.0))
    assert [t.item() for t in g] == [0.0, 0.0]
    assert gc.jvp(lambda y: gc.arctan2(y, y), (f64(0.0),), (f64(1.0),))[1].item() == 0.0
