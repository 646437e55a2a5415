"""The fused dense op against the composition of matmul, add and activation ops."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.engine.backward import backward
from gpuchain.engine.mode import forward_level
from gpuchain.engine.op import set_tangent
from gpuchain.engine.op import tangent as tangent_at
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.nn import _activations as act
from gpuchain.nn.dense_op import dense_op
from gpuchain.nn.functional import ACTIVATIONS, dense

SHAPES = [(1, 3, 2), (5, 4, 3), (7, 1, 6)]


def _reference(x, W, b, name, slope=0.01):
    z = gc.matmul(x, W)
    if b is not None:
        z = z + b
    if name == "identity":
        return z
    return gc.leaky_relu(z, slope) if name == "leaky_relu" else getattr(gc, name)(z)


def _inputs(rng, batch, n_in, n_out, bias):
    x = gc.tensor(rng.standard_normal((batch, n_in)), requires_grad=True)
    W = gc.tensor(rng.standard_normal((n_in, n_out)), requires_grad=True)
    b = gc.tensor(rng.standard_normal(n_out), requires_grad=True) if bias else None
    return x, W, b


def _grads(out, inputs, g, create_graph):
    return backward([out], [g], create_graph=create_graph,
                    targets=[t for t in inputs if t is not None])


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("create_graph", [False, True])
def test_dense_matches_composition(name, shape, bias, create_graph):
    rng = np.random.default_rng(0)
    x, W, b = _inputs(rng, *shape, bias)
    out = dense(x, W, b, name)
    ref = _reference(x, W, b, name)
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    got = _grads(out, (x, W, b), g, create_graph)
    want = _grads(ref, (x, W, b), g, False)
    for a, w in zip(got, want):
        np.testing.assert_allclose(a.data, w.data, rtol=1e-10, atol=1e-12)


def test_dense_float32_and_leading_axes():
    rng = np.random.default_rng(1)
    x = gc.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    W = gc.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    b = gc.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    out = dense(x, W, b, "gelu")
    assert out.dtype == np.float32 and out.shape == (2, 3, 5)
    ref = _reference(x, W, b, "gelu")
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    for a, w in zip(_grads(out, (x, W, b), g, False), _grads(ref, (x, W, b), g, False)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a.data, w.data, rtol=1e-4, atol=1e-5)


def test_leaky_relu_slope():
    x = gc.tensor(np.array([[-2.0, 3.0]]), requires_grad=True)
    W = gc.tensor(np.eye(2), requires_grad=True)
    out = dense(x, W, None, "leaky_relu", slope=0.2)
    np.testing.assert_allclose(out.data, [[-0.4, 3.0]])
    out.backward(np.ones((1, 2)))
    np.testing.assert_allclose(x.grad.data, [[0.2, 1.0]])


def _mlp_loss(x, params, name):
    h = x
    for i, (W, b) in enumerate(params):
        h = dense(h, W, b, name if i < len(params) - 1 else None)
    return (h * h).sum()


@pytest.mark.parametrize("name", ["tanh", "gelu", "softplus", "sigmoid", "silu"])
def test_hessian_vector_product_through_dense(name):
    rng = np.random.default_rng(2)
    sizes = [3, 5, 4, 2]
    params = [(gc.tensor(rng.standard_normal((a, c)) * 0.7, requires_grad=True),
               gc.tensor(rng.standard_normal(c) * 0.1, requires_grad=True))
              for a, c in zip(sizes[:-1], sizes[1:])]
    x0 = rng.standard_normal((2, 3))
    v = rng.standard_normal((2, 3))

    def grad_at(xv, create_graph=False):
        x = gc.tensor(xv, requires_grad=True)
        loss = _mlp_loss(x, params, name)
        (gx,) = backward([loss], [None], create_graph=create_graph, retain_graph=create_graph,
                         targets=[x])
        return x, gx

    x, gx = grad_at(x0, create_graph=True)
    (hv,) = backward([(gx * gc.tensor(v)).sum()], [None], targets=[x])
    eps = 1e-5
    fd = (grad_at(x0 + eps * v)[1].data - grad_at(x0 - eps * v)[1].data) / (2 * eps)
    np.testing.assert_allclose(hv.data, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_jvp_matches_finite_differences(name, bias):
    rng = np.random.default_rng(3)
    x, W, b = _inputs(rng, 4, 3, 2, bias)
    tx, tW = rng.standard_normal(x.shape), rng.standard_normal(W.shape)
    tb = rng.standard_normal(2) if bias else None
    with forward_level() as level:
        xs = gc.tensor(x.data)
        Ws = gc.tensor(W.data)
        set_tangent(xs, level, gc.tensor(tx))
        set_tangent(Ws, level, gc.tensor(tW))
        bs = None
        if bias:
            bs = gc.tensor(b.data)
            set_tangent(bs, level, gc.tensor(tb))
        out = dense(xs, Ws, bs, name)
        tangent = tangent_at(out, level).data
    eps = 1e-6

    def f(s):
        bb = None if not bias else b.data + s * tb
        return dense(x.data + s * tx, W.data + s * tW, bb, name).data

    np.testing.assert_allclose(tangent, (f(eps) - f(-eps)) / (2 * eps), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("which", [(0,), (1,), (2,), (0, 1, 2)])
def test_dense_raw_jvp_equals_the_differentiable_rule(name, which, monkeypatch):
    rng = np.random.default_rng(5)
    x, W, b = _inputs(rng, 4, 3, 2, True)
    tans = [gc.tensor(rng.standard_normal(t.shape)) if i in which else None
            for i, t in enumerate((x, W, b))]
    calls = []
    raw_rule = dense_op.raw_jvp_rule
    monkeypatch.setattr(dense_op, "raw_jvp_rule", lambda ctx, t: calls.append(1) or
                        raw_rule(ctx, t))

    def run(requires_grad):
        with forward_level() as level:
            ins = [gc.tensor(t.numpy(), requires_grad=requires_grad) for t in (x, W, b)]
            for t, tan in zip(ins, tans):
                if tan is not None:
                    set_tangent(t, level, tan)
            return tangent_at(dense(*ins, activation=name), level).numpy()

    fast = run(False)  # nothing differentiates the tangent: the raw rule
    assert len(calls) == 1
    slow = run(True)  # a graph is recorded through the inputs: the differentiable rule
    assert len(calls) == 1
    np.testing.assert_allclose(fast, slow, rtol=1e-14, atol=1e-15)


def test_dense_jvp_with_batched_tangents():
    rng = np.random.default_rng(4)
    x, W, b = _inputs(rng, 3, 2, 4, True)
    tb = rng.standard_normal((5, 4))  # five directions, only for the bias
    with forward_level(batch_ndim=1) as level:
        bs = gc.tensor(b.data)
        set_tangent(bs, level, gc.tensor(tb))
        out = dense(gc.tensor(x.data), gc.tensor(W.data), bs, "tanh")
        tangent = tangent_at(out, level).data
    assert tangent.shape == (5, 3, 4)
    np.testing.assert_allclose(tangent, tb[:, None, :] * (1 - out.data ** 2), rtol=1e-12)


def test_dense_vjp_with_batched_cotangents():
    rng = np.random.default_rng(5)
    x, W, b = _inputs(rng, 3, 2, 4, True)
    out = dense(x, W, b, "gelu")
    gs = rng.standard_normal((6, 3, 4))
    got = backward([out], [gc.tensor(gs)], batch_shape=(6,), targets=[x, W, b],
                   retain_graph=True)
    for k in (0, 5):
        want = backward([out], [gc.tensor(gs[k])], targets=[x, W, b], retain_graph=True)
        for a, w in zip(got, want):
            np.testing.assert_allclose(a.data[k], w.data, rtol=1e-10, atol=1e-12)


def test_dense_errors_name_shapes_and_dtypes():
    with pytest.raises(ShapeError, match=r"dense: .*x float64\(2, 3\), W float64\(4, 5\)"):
        dense(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(DTypeError, match="share one floating dtype"):
        dense(np.zeros((2, 3), np.float32), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        dense(np.zeros((2, 3)), np.zeros((3, 5)), activation="swish")


def test_activation_table_matches_cuda_kernels():
    from gpuchain.cuda import kernels

    assert set(kernels.ACTIVATIONS) == set(ACTIVATIONS)
    assert kernels.SAVES_OUTPUT == act.SAVES_OUTPUT


# --- the raw backward reusing a cotangent only the engine holds -----------------------------

def _chain(activation, fused, rng_seed=0, fan_out=False):
    """Three dense layers and an MSE loss; the leaves and the loss."""
    rng = np.random.default_rng(rng_seed)
    sizes = (64, 128, 128, 8)
    ws = [gc.tensor(rng.standard_normal((a, b)) / np.sqrt(a), requires_grad=True)
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [gc.tensor(0.1 * rng.standard_normal(b), requires_grad=True) for b in sizes[1:]]
    x = gc.tensor(rng.standard_normal((32, sizes[0])), requires_grad=True)
    h = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        a = activation if i < 2 else None
        if fused:
            h = dense(h, w, b, a)
        else:
            z = h @ w + b
            h = z if a is None else getattr(gc, a)(z)
        if fan_out and i == 0:
            h = h + 0.5 * h  # fan-out: the next cotangent is a sum of two paths
    d = h - gc.tensor(rng.standard_normal((32, sizes[-1])))
    return [x, *ws, *bs], gc.mean(d * d), h


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu", "sigmoid", "gelu"])
@pytest.mark.parametrize("fan_out", [False, True])
def test_fused_backward_with_owned_cotangents_matches_the_composition(activation, fan_out):
    leaves, loss, _ = _chain(activation, fused=True, fan_out=fan_out)
    ref_leaves, ref_loss, _ = _chain(activation, fused=False, fan_out=fan_out)
    loss.backward()
    ref_loss.backward()
    for a, b in zip(leaves, ref_leaves):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_a_retained_or_hooked_cotangent_is_never_overwritten():
    # retain_grad and hooks may keep the cotangent: the engine then hands no ownership
    leaves, loss, _ = _chain("relu", fused=True)
    x, w1, w2 = leaves[:3]
    h1 = dense(x, w1, leaves[4], "relu")
    h1.retain_grad()
    seen = []
    h2 = dense(h1, w2, leaves[5], "relu")
    h2.register_hook(lambda g: seen.append(g.numpy().copy()) or None)
    out = gc.sum(h2 * h2)
    out.backward()
    # h2's cotangent is 2·h2 and h1's is (2·h2·relu'(h2 pre)) @ w2ᵀ, as the hook and the
    # retained grad saw them, untouched by the dz computed in place after them
    np.testing.assert_allclose(seen[0], 2 * h2.numpy(), rtol=1e-12)
    d2 = 2 * h2.numpy() * (h2.numpy() > 0)
    np.testing.assert_allclose(h1.grad.numpy(), d2 @ w2.numpy().T, rtol=1e-10, atol=1e-12)


def test_a_seed_given_to_backward_is_not_overwritten():
    leaves, _, h = _chain("relu", fused=True)
    seed = np.random.default_rng(1).standard_normal(h.shape)
    kept = seed.copy()
    h.backward(gc.tensor(seed))
    np.testing.assert_array_equal(seed, kept)


@pytest.mark.parametrize("activation", ["relu", "gelu"])  # deriv rule / raw rule
def test_owned_cotangents_save_one_activation_in_the_fused_backward(activation):
    import tracemalloc

    peaks = {}
    for fused in (True, False):
        leaves, loss, _ = _chain(activation, fused=fused)
        tracemalloc.start()
        loss.backward()
        peaks[fused] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # an activation is 32 x 128 float64 = 32 KiB: the fused backward now peaks no higher
    # than the composed ops (it used to hold the cotangent, dz and dx at once)
    assert peaks[True] <= peaks[False] + 4096, peaks


@pytest.mark.parametrize("fused", [True, False])
def test_two_dense_heads_on_one_layer_sum_into_an_owned_cotangent(fused):
    # h1 feeds two dense layers: its cotangent is the sum of two fresh dx arrays, which
    # the pass alone holds, so h1's own fused backward may compute dz in it
    rng = np.random.default_rng(7)
    x = gc.tensor(rng.standard_normal((16, 8)), requires_grad=True)
    w1, w2, w3 = (gc.tensor(rng.standard_normal(s) / 3, requires_grad=True)
                  for s in ((8, 12), (12, 5), (12, 4)))

    def layer(h, w, a):
        return dense(h, w, None, a) if fused else (h @ w if a is None else getattr(gc, a)(h @ w))

    h1 = layer(x, w1, "tanh")
    loss = gc.sum(layer(h1, w2, "relu") ** 2) + gc.sum(layer(h1, w3, None) ** 3)
    loss.backward()
    grads = [t.grad.numpy() for t in (x, w1, w2, w3)]
    torch = pytest.importorskip("torch")
    tx, t1, t2, t3 = (torch.tensor(t.numpy(), requires_grad=True) for t in (x, w1, w2, w3))
    th = torch.tanh(tx @ t1)
    (torch.relu(th @ t2).pow(2).sum() + (th @ t3).pow(3).sum()).backward()
    for g, t in zip(grads, (tx, t1, t2, t3)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_a_retained_graph_keeps_what_the_fused_backward_reads(activation):
    # the raw backward drops z, Φ and a early only when the pass frees the node anyway
    leaves, loss, _ = _chain(activation, fused=True)
    loss.backward(retain_graph=True)
    first = [t.grad.numpy().copy() for t in leaves]
    for t in leaves:
        t.grad = None
    loss.backward()
    for a, t in zip(first, leaves):
        np.testing.assert_array_equal(t.grad.numpy(), a)
    with pytest.raises(RuntimeError, match="a second time"):
        loss.backward()
