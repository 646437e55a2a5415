"""gpuchain.testing.gradcheck catches what it must: each test plants one kind of wrong
derivative in an otherwise correct primitive and checks that gradcheck names it."""

import inspect

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.errors import GradcheckError
from gpuchain.extend import Primitive
from gpuchain.testing import gradcheck


def _prim(name, forward, vjp, jvp):
    op = Primitive(name, forward)  # not registered: it stays out of the op table
    op.vjp(vjp)
    op.jvp(jvp)
    return op


def _mul_partials(ctx):
    a, b = ctx.inputs
    return b, a


def _good_mul():
    def vjp(ctx, g):
        a, b = ctx.inputs
        return g * b, g * a

    def jvp(ctx, t):
        a, b = ctx.inputs
        terms = [d * tan for d, tan in zip((b, a), t) if tan is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    return _prim("good_mul", lambda xp, a, b: a * b, vjp, jvp)


X = [np.array([0.3, -1.1, 0.8]), np.array([1.4, 0.2, -0.5])]


def test_a_correct_primitive_passes_every_composition():
    mul = _good_mul()
    assert gradcheck(lambda a, b: gc.sin(mul(a, b)), X, order=2)


def test_defaults_are_no_looser_than_jax_check_grads():
    params = inspect.signature(gradcheck).parameters
    assert params["atol"].default <= 1e-5 and params["rtol"].default <= 1e-5  # JAX float64
    assert params["eps"].default <= 1e-4  # JAX's step
    assert params["order"].default == 1 and tuple(params["modes"].default) == ("rev", "fwd")


def test_wrong_vjp_is_caught_in_reverse_mode():
    def vjp(ctx, g):
        a, b = ctx.inputs
        return g * b * 1.001, g * a

    bad = _prim("bad_vjp", lambda xp, a, b: a * b, vjp, _good_mul().jvp_rule)
    with pytest.raises(GradcheckError, match=r"reverse mode, input 0"):
        gradcheck(bad, X)
    assert gradcheck(bad, X, modes=("fwd",))  # the forward rule alone is right


def test_a_slightly_wrong_derivative_fails_at_the_default_rtol():
    # 1e-4 relative error: the old rtol=1e-3 let it pass
    def jvp(ctx, t):
        return gc.cos(ctx.inputs[0]) * t[0] * (1 + 1e-4)

    bad = _prim("bad_jvp", lambda xp, x: xp.sin(x), lambda ctx, g: (g * gc.cos(ctx.inputs[0]),),
                jvp)
    with pytest.raises(GradcheckError, match=r"forward mode, input 0.*J·v"):
        gradcheck(bad, [np.array([0.1, 0.5, 2.0])])


def test_nan_in_an_analytic_derivative_fails():
    def vjp(ctx, g):
        x = ctx.inputs[0]
        return (g * gc.where(x.data > 0, gc.cos(x), gc.cos(x) * np.nan),)

    bad = _prim("nan_vjp", lambda xp, x: xp.sin(x), vjp,
                lambda ctx, t: gc.cos(ctx.inputs[0]) * t[0])
    with pytest.raises(GradcheckError, match="NaN or Inf"):
        gradcheck(bad, [np.array([0.5, -0.5])])


def test_a_rule_that_drops_a_tangent_when_both_are_present_fails_jointly():
    def jvp(ctx, t):  # right for each input alone, wrong when both carry tangents
        a, b = ctx.inputs
        return b * t[0] if t[0] is not None else a * t[1]

    bad = _prim("joint_jvp", lambda xp, a, b: a * b, _good_mul().vjp_rule, jvp)
    with pytest.raises(GradcheckError, match="all inputs jointly"):
        gradcheck(bad, X, modes=("fwd",))


def test_non_differentiable_vjp_rule_fails_reverse_over_reverse_only():
    def vjp(ctx, g):  # right values, but built from detached inputs: no second order
        a, b = ctx.inputs
        return g * b.detach(), g * a.detach()

    bad = _prim("flat_vjp", lambda xp, a, b: a * b, vjp, _good_mul().jvp_rule)
    assert gradcheck(bad, X, order=1)
    with pytest.raises(GradcheckError, match=r"reverse∘reverse|forward∘reverse"):
        gradcheck(bad, X, order=2)


def test_non_differentiable_jvp_rule_fails_reverse_over_forward():
    def jvp(ctx, t):  # right tangents, detached from the primal: the tangent map is wrong
        a, b = ctx.inputs
        terms = [d.detach() * tan for d, tan in zip((b, a), t) if tan is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    bad = _prim("flat_jvp", lambda xp, a, b: a * b, _good_mul().vjp_rule, jvp)
    assert gradcheck(bad, X, order=1)
    with pytest.raises(GradcheckError, match=r"reverse∘forward \(the tangent map"):
        gradcheck(bad, X, order=2, modes=("rev", "fwd"))


def test_forward_value_check_against_a_reference():
    assert gradcheck(gc.tanh, [np.array([0.2, 0.4])], reference=np.tanh)
    with pytest.raises(GradcheckError, match="forward value against the reference"):
        gradcheck(gc.tanh, [np.array([0.2, 0.4])], reference=np.sin)


def test_non_finite_finite_difference_is_reported():
    with pytest.raises(GradcheckError, match="not finite|NaN or Inf"):
        gradcheck(gc.sqrt, [np.array([0.0, 1.0])])


def test_pytree_outputs_and_argument_validation():
    assert gradcheck(lambda a, b: {"s": a * b, "t": (gc.exp(a),)}, X, order=2)
    with pytest.raises(ValueError, match="order"):
        gradcheck(gc.sin, [np.ones(2)], order=0)
    with pytest.raises(ValueError, match="modes"):
        gradcheck(gc.sin, [np.ones(2)], modes=("backward",))
    with pytest.raises(GradcheckError, match="complex"):
        gradcheck(gc.sin, [np.ones(2, dtype=complex)])
