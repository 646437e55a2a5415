"""LayerNorm, Dropout, Embedding, Identity, Flatten and activation modules against PyTorch
(forward and gradients, float64), gradcheck to second order, Module utilities, bad input."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn
from gpuchain.errors import DTypeError, ShapeError, StateDictError
from gpuchain.nn import functional as F

torch = pytest.importorskip("torch")


def _rng(seed=0):
    return np.random.default_rng(seed)


# --- LayerNorm ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 5), 5), ((2, 3, 4), (3, 4)),
                                              ((7,), 7)])
@pytest.mark.parametrize("graph", [False, True])
def test_layer_norm_matches_pytorch_forward_and_gradients(shape, normalized, graph):
    rng = _rng()
    ln = nn.LayerNorm(normalized, eps=1e-5, dtype=np.float64)
    ln.weight.data[...] = rng.standard_normal(ln.weight.shape)
    ln.bias.data[...] = rng.standard_normal(ln.bias.shape)
    x_np, u = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    x = gc.tensor(x_np, requires_grad=True)
    y = ln(x)
    tl = torch.nn.LayerNorm(normalized, eps=1e-5).double()
    with torch.no_grad():
        tl.weight.copy_(torch.from_numpy(ln.weight.numpy().copy()))
        tl.bias.copy_(torch.from_numpy(ln.bias.numpy().copy()))
    tx = torch.tensor(x_np, requires_grad=True)
    ty = tl(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    # graph=True exercises the differentiable rule, graph=False the fused raw backward
    (y * gc.tensor(u)).sum().backward(create_graph=graph)
    (ty * torch.from_numpy(u)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ln.weight.grad.numpy(), tl.weight.grad.numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(ln.bias.grad.numpy(), tl.bias.grad.numpy(), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("needs", [(True, True, True), (False, True, True),
                                   (True, False, False), (True, True, False)])
def test_layer_norm_float32_fast_backward_against_float64(needs):
    # the NumPy raw backward (matrix-vector row sums) in float32, on rows far from zero
    # mean
    rng = _rng(9)
    x64 = rng.standard_normal((64, 512)) * 2 + 50
    w64, b64, u64 = rng.standard_normal(512), rng.standard_normal(512), \
        rng.standard_normal((64, 512))
    grads = {}
    for dt in (np.float32, np.float64):
        x, w, b = (gc.tensor(a.astype(dt), requires_grad=r) for a, r in
                   zip((x64, w64, b64), needs))
        # the float64 reference takes the differentiable rule (create_graph), other code
        (F.layer_norm(x, 512, w, b) * gc.tensor(u64.astype(dt))).sum().backward(
            create_graph=dt == np.float64)
        grads[dt] = [None if t.grad is None else t.grad.numpy().astype(np.float64)
                     for t in (x, w, b)]
    for got, ref, need in zip(grads[np.float32], grads[np.float64], needs):
        assert (got is None) == (not need)
        if need:
            assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_layer_norm_gradcheck_second_order_all_inputs():
    rng = _rng(1)
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal(5)

    def f(x, w, b):
        return F.layer_norm(x, 5, w, b) ** 2

    assert gc.gradcheck(f, [x, w, b], order=2)


def test_layer_norm_forward_mode_matches_reverse():
    rng = _rng(2)
    x = rng.standard_normal((2, 4))

    def f(x):
        return F.layer_norm(x, 4, np.linspace(0.5, 2, 4), np.ones(4))

    jr = gc.jacobian(f)(gc.tensor(x))
    jf = gc.jacfwd(f)(gc.tensor(x))
    np.testing.assert_allclose(jr.numpy(), jf.numpy(), rtol=1e-10, atol=1e-12)


def test_layer_norm_errors():
    with pytest.raises(ValueError, match="normalized_shape must be positive ints"):
        nn.LayerNorm(0)
    with pytest.raises(ShapeError, match=r"does not end in normalized_shape \(4,\)"):
        nn.LayerNorm(4)(np.zeros((2, 3), np.float32))


# --- Dropout -------------------------------------------------------------------------------

def test_dropout_is_identity_in_eval_and_reproducible_in_train():
    x = gc.tensor(_rng().standard_normal((50, 40)))
    d = nn.Dropout(0.3, seed=7).eval()
    assert d(x) is x
    a = nn.Dropout(0.3, seed=7)(x).numpy()
    b = nn.Dropout(0.3, seed=7)(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert nn.Dropout(0.0)(x) is x


def test_dropout_mask_statistics_and_gradient_given_the_mask():
    p, n = 0.3, 200_000
    x = gc.tensor(np.ones(n), requires_grad=True)
    y = nn.Dropout(p, seed=3)(x)
    kept = y.numpy() != 0
    # the fraction dropped is within 5 binomial standard deviations of p
    assert abs((~kept).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y.numpy()[kept], 1 / (1 - p), rtol=1e-6)
    g = _rng(4).standard_normal(n)
    (y * gc.tensor(g.astype(np.float64))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g / (1 - p), 0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("p", [1e-6, 0.1, 0.5, 0.9, 1 - 1e-12])
@pytest.mark.parametrize("shape", [(), (0, 3), (7,), (101, 33)])
def test_keep_mask_shape_and_rate(p, shape):
    from gpuchain.nn.dropout import keep_mask

    rng = np.random.default_rng(5)
    m = keep_mask(rng, shape, p)
    assert m.shape == shape and m.dtype == np.bool_
    big = keep_mask(rng, (300_001,), p)  # an odd count: the last raw draw is half used
    assert abs(big.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / big.size) + 1e-9


def test_keep_mask_words_are_independent_halves_of_the_raw_draws():
    from gpuchain.nn.dropout import keep_mask

    # the two 32-bit halves of each draw are both used: neighbours are uncorrelated
    m = keep_mask(np.random.default_rng(6), (400_000,), 0.5).astype(np.float64)
    assert abs(np.corrcoef(m[0::2], m[1::2])[0, 1]) < 5 / np.sqrt(m.size / 2)


# --- Embedding ------------------------------------------------------------------------------

@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_matches_pytorch(padding_idx):
    emb = nn.Embedding(6, 4, padding_idx=padding_idx, seed=0, dtype=np.float64)
    te = torch.nn.Embedding(6, 4, padding_idx=padding_idx).double()
    with torch.no_grad():
        te.weight.copy_(torch.from_numpy(emb.weight.numpy().copy()))
    idx = np.array([[1, 2, 1], [5, 0, 2]])
    u = _rng(5).standard_normal((2, 3, 4))
    y = emb(idx)
    ty = te(torch.from_numpy(idx))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    (y * gc.tensor(u)).sum().backward()
    (ty * torch.from_numpy(u)).sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), te.weight.grad.numpy(), rtol=1e-12)
    if padding_idx is not None:
        assert not emb.weight.numpy()[padding_idx].any()


def test_embedding_gradcheck_second_order_and_errors():
    idx = np.array([0, 3, 3, 1])

    def f(w):
        return gc.ops.take(w, idx, axis=0) ** 3

    assert gc.gradcheck(f, [_rng(6).standard_normal((4, 2))], order=2)
    emb = nn.Embedding(4, 2)
    with pytest.raises(ShapeError, match=r"indices must lie in \[0, 4\)"):
        emb(np.array([4]))
    with pytest.raises(DTypeError, match="indices must be integers"):
        emb(np.array([1.0]))
    with pytest.raises(ValueError, match="num_embeddings must be a positive int"):
        nn.Embedding(0, 3)


# --- activations, Identity, Flatten, Sequential as in PyTorch ---------------------------------

ACTS = [(nn.ReLU(), torch.nn.ReLU()), (nn.Tanh(), torch.nn.Tanh()),
        (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.SiLU(), torch.nn.SiLU()),
        (nn.Softplus(), torch.nn.Softplus()), (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU(approximate="tanh")),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2))]


@pytest.mark.parametrize("pair", ACTS, ids=lambda p: repr(p[0]))
def test_activation_modules_match_pytorch(pair):
    mod, tmod = pair
    x_np = _rng(7).standard_normal((5, 3)) * 3
    x = gc.tensor(x_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    y, ty = mod(x), tmod(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_sequential_written_as_in_pytorch_matches_it():
    model = nn.Sequential(nn.Flatten(), nn.Dense(6, 8, seed=0, dtype=np.float64),
                          nn.LayerNorm(8, dtype=np.float64), nn.GELU(), nn.Identity(),
                          nn.Dense(8, 3, seed=1, dtype=np.float64))
    ref = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 8), torch.nn.LayerNorm(8),
                              torch.nn.GELU(), torch.nn.Identity(), torch.nn.Linear(8, 3)
                              ).double()
    report = gc.serialization.load_torch_state_dict(model, ref.state_dict())
    assert report.ok, report
    x = _rng(8).standard_normal((4, 2, 3))
    np.testing.assert_allclose(model(x).numpy(), ref(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    assert model.num_parameters() == sum(p.numel() for p in ref.parameters())
    assert len(model.flat_buffers()) == 1


def test_flatten_ranges():
    x = gc.tensor(np.zeros((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)


# --- Module utilities, copies, bad input ----------------------------------------------------

def test_module_apply_named_modules_children_requires_grad():
    model = nn.Sequential(nn.Dense(3, 4), nn.ReLU(), nn.Sequential(nn.Dense(4, 2), nn.Tanh()))
    names = [n for n, _ in model.named_modules()]
    assert names == ["", "0", "1", "2", "2.0", "2.1"]
    assert [type(m).__name__ for m in model.children()] == ["Dense", "ReLU", "Sequential"]
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Dense", "ReLU", "Dense", "Tanh", "Sequential", "Sequential"]
    assert model.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2
    model[2].requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == 3 * 4 + 4
    opt = gc.optim.SGD(model, lr=0.1)
    before = model[2][0].weight.numpy().copy()
    F.mse_loss(model(np.ones((2, 3), np.float32)), np.zeros((2, 2), np.float32)).backward()
    opt.step()  # frozen parameters are skipped
    np.testing.assert_array_equal(model[2][0].weight.numpy(), before)


def test_models_deepcopy_and_pickle_keep_flat_buffers():
    model = nn.Sequential(nn.Dense(3, 4, seed=0), nn.LayerNorm(4), nn.Dropout(0.5, seed=1),
                          nn.Dense(4, 2, seed=2))
    x = np.ones((2, 3), np.float32)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        (buf,) = clone.flat_buffers()
        assert all(np.shares_memory(p.data, buf.data) for p in clone.parameters())
        assert not any(np.shares_memory(p.data, q.data) for p, q in
                       zip(model.parameters(), clone.parameters()))
        clone.eval()
        np.testing.assert_array_equal(clone(x).numpy(), model.eval()(x).numpy())
        clone[0].weight.data[...] = 0
        assert model[0].weight.numpy().any()


def test_bad_constructor_arguments_name_the_value():
    for args in ((-1, 3), (0, 3), (2.5, 3), (True, 3), ("3", 3)):
        with pytest.raises(ValueError, match="in_features must be a positive int"):
            nn.Dense(*args)
    with pytest.raises(TypeError, match="sizes must be a sequence of ints"):
        nn.MLP("32")
    with pytest.raises(ValueError, match=r"sizes\[0\] must be a positive int, got 3\.7"):
        nn.MLP([3.7, 2])
    with pytest.raises(StateDictError, match="expected a mapping"):
        nn.MLP([2, 2]).load_state_dict(None)


def test_held_gradient_does_not_change_under_the_user():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    x = np.ones((2, 3))
    F.mse_loss(model(x), np.zeros((2, 2))).backward()
    g = model[0].weight.grad
    kept = g.numpy().copy()
    model.zero_grad()
    F.mse_loss(model(x * 3), np.ones((2, 2))).backward()
    np.testing.assert_array_equal(g.numpy(), kept)
    assert not np.array_equal(model[0].weight.grad.numpy(), kept)
    # and the new gradient is still written straight into the flat buffer
    assert model[0].weight.grad._data is model[0].weight.grad_view


def test_layer_norm_float16_and_no_affine():
    x = _rng(9).standard_normal((4, 300)) * 5 + 100
    y16 = nn.LayerNorm(300, dtype=np.float16)(x.astype(np.float16))
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x.astype(np.float16).astype(
        np.float64)), (300,))
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.numpy().astype(np.float64), ref.numpy(), atol=2e-2)
    bare = nn.LayerNorm(300, elementwise_affine=False, dtype=np.float64)
    assert bare.num_parameters() == 0
    np.testing.assert_allclose(bare(x).numpy(), torch.nn.functional.layer_norm(
        torch.from_numpy(x), (300,)).numpy(), rtol=1e-10, atol=1e-10)


def test_dropout_gradcheck_second_order_with_a_fixed_mask():
    def f(x):  # a fresh generator per call: the same mask at every evaluation
        return nn.Dropout(0.4, seed=11)(x) ** 3

    assert gc.gradcheck(f, [_rng(10).standard_normal((3, 5))], order=2)


# --- PyTorch-named functional ops and loss modules -------------------------------------------

@pytest.mark.parametrize(("ours", "theirs"), [
    (lambda x: F.relu(x), lambda x: torch.nn.functional.relu(x)),
    (lambda x: F.gelu(x), lambda x: torch.nn.functional.gelu(x)),
    (lambda x: F.gelu(x, approximate="tanh"),
     lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    (lambda x: F.leaky_relu(x, 0.2), lambda x: torch.nn.functional.leaky_relu(x, 0.2)),
    (lambda x: F.leaky_relu(x, negative_slope=0.3),
     lambda x: torch.nn.functional.leaky_relu(x, negative_slope=0.3)),
    (lambda x: F.softmax(x, dim=0), lambda x: torch.nn.functional.softmax(x, dim=0)),
    (lambda x: F.log_softmax(x, -1), lambda x: torch.nn.functional.log_softmax(x, -1)),
    (lambda x: F.sigmoid(x), lambda x: torch.sigmoid(x)),
    (lambda x: F.tanh(x), lambda x: torch.tanh(x)),
    (lambda x: F.silu(x), lambda x: torch.nn.functional.silu(x)),
    (lambda x: F.softplus(x), lambda x: torch.nn.functional.softplus(x)),
    (lambda x: F.elu(x), lambda x: torch.nn.functional.elu(x)),
])
def test_functional_ops_take_pytorchs_signatures(ours, theirs):
    a = _rng(3).standard_normal((4, 5))
    x, tx = gc.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    u = _rng(4).standard_normal((4, 5))
    y, ty = ours(x), theirs(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    (y * gc.tensor(u)).sum().backward()
    (ty * torch.from_numpy(u)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_match_pytorchs(reduction):
    rng = _rng(5)
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    pred, target = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    probs = rng.random((6, 3))
    cases = [
        (nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
         (logits, labels)),
        (nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), (pred, target)),
        (nn.BCEWithLogitsLoss(reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction),
         (pred, probs)),
    ]
    for ours, theirs, (a, b) in cases:
        x, tx = gc.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        loss, tloss = ours(x, b), theirs(tx, torch.from_numpy(b))
        np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), rtol=1e-12)
        loss.sum().backward()
        tloss.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
        assert repr(ours) == f"{type(ours).__name__}(reduction={reduction!r})"
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(gc.tensor(np.ones(2)), approximate="erf")
