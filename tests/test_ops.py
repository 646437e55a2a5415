"""Table-driven op tests: forward vs NumPy, gradcheck in both modes to second order,
and jacobian (reverse) == jacfwd (forward)."""

import numpy as np
import pytest
from op_table import ROWS, cases, sample_inputs

import gpuchain as gc
from gpuchain.engine.op import REGISTRY
from gpuchain.testing import gradcheck


def test_every_registered_op_has_a_row():
    covered = {r.op for r in ROWS} | {e for r in ROWS for e in r.extra_ops}
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"registered ops without a row in the op table: {missing}"


@pytest.mark.parametrize("row,shapes", list(cases()))
def test_forward_matches_numpy(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    out = row.fn(*[gc.tensor(x) for x in xs])
    np.testing.assert_allclose(out.numpy(), row.ref(*xs), rtol=1e-12, atol=1e-12)
    assert out.dtype == np.float64


@pytest.mark.parametrize("row,shapes", list(cases()))
def test_gradcheck_both_modes(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    assert gradcheck(row.fn, xs, order=row.order, **row.check)


@pytest.mark.parametrize("row,shapes", list(cases()))
def test_reverse_equals_forward_jacobian(row, shapes, rng):
    xs = sample_inputs(row, shapes, rng)
    for i in range(len(xs)):
        def f(x, i=i):
            args = [gc.tensor(a) for a in xs]
            args[i] = x
            return row.fn(*args)

        rev = gc.functional.jacobian(f, xs[i]).numpy()
        fwd = gc.functional.jacfwd(f, xs[i]).numpy()
        np.testing.assert_allclose(rev, fwd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("row,shapes", list(cases())[::3])
def test_float32_keeps_dtype(row, shapes, rng):
    if row.op == "astype":
        pytest.skip("this row casts on purpose")
    xs = [x.astype(np.float32) for x in sample_inputs(row, shapes, rng)]
    ts = [gc.tensor(x, requires_grad=True) for x in xs]
    out = row.fn(*ts)
    assert out.dtype == np.float32
    out.sum().backward()
    for t in ts:
        assert t.grad is None or t.grad.dtype == np.float32


RAW_CASES = [c for c in cases() if c.values[0].op in REGISTRY
             and REGISTRY[c.values[0].op].raw_vjp_rule is not None]


@pytest.mark.parametrize("row,shapes", RAW_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_raw_backward_equals_the_differentiable_rule(row, shapes, dtype, rng):
    # .backward() takes an op's raw array backward; create_graph=True its differentiable
    # VJP rule: both must give the same gradients (the raw one may read residuals)
    xs = [x.astype(dtype) for x in sample_inputs(row, shapes, rng)]
    out_shape = row.fn(*[gc.tensor(x) for x in xs]).shape
    w = gc.tensor(rng.standard_normal(out_shape).astype(dtype))
    grads = []
    for create_graph in (False, True):
        ts = [gc.tensor(x, requires_grad=True) for x in xs]
        (row.fn(*ts) * w).sum().backward(create_graph=create_graph)
        grads.append([None if t.grad is None else t.grad.numpy() for t in ts])
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-6)
    for raw, diff in zip(*grads):
        assert (raw is None) == (diff is None)
        if raw is not None:
            assert raw.dtype == dtype
            np.testing.assert_allclose(raw, diff, **tol)
