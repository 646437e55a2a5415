"""Every optimizer against PyTorch's, step by step over 20 steps in float64: plain tensors,
modules, param groups with different lr and weight decay, state_dict round trips mid-run."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import nn, optim
from gpuchain.errors import OptimizerStateError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

STEPS = 20

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.02,
                 "initial_accumulator_value": 0.1}),
]


def _loss_grads(arrays, t):
    """A fixed nonlinear loss of the parameters: gradients as arrays (same for both)."""
    return [np.cos(a * (1 + 0.1 * t)) + 0.3 * a for a in arrays]


def _run_pair(name, hyper, groups_gc, groups_torch, flat, steps=STEPS, check_every=True):
    opt = getattr(optim, name)(groups_gc, **hyper)
    topt = getattr(torch.optim, name)(groups_torch, **hyper)
    ts = [p for g in topt.param_groups for p in g["params"]]
    for t in range(steps):
        grads = _loss_grads([p.detach().numpy() for p in ts], t)
        for p, g in zip(flat, grads):
            p.grad = gc.tensor(g.copy())
        for p, g in zip(ts, grads):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        if check_every:
            for p, q in zip(flat, ts):
                np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-12,
                                           atol=1e-14)
    return opt, topt


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((2, 2))]


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_plain_tensors_match_pytorch(name, hyper):
    arrays = _arrays()
    ws = [gc.tensor(a.copy(), requires_grad=True) for a in arrays]
    tw = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    _run_pair(name, hyper, ws, tw, ws)


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_param_groups_with_different_lr_and_weight_decay_match_pytorch(name, hyper):
    model = nn.MLP([3, 4, 2], activation="tanh", seed=0, dtype=np.float64)
    flat = model.parameters()
    tw = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in flat]
    lr = hyper["lr"]
    groups = [{"params": model[0].parameters(), "lr": lr * 0.5, "weight_decay": 0.03},
              {"params": model[1].parameters()}]
    tgroups = [{"params": tw[:2], "lr": lr * 0.5, "weight_decay": 0.03},
               {"params": tw[2:]}]
    opt, _ = _run_pair(name, hyper, groups, tgroups, flat)
    # each group is one contiguous run of the model's flat buffer: one update per group
    assert opt.buffers == model.flat_buffers() and len(opt._segments) == 2


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_state_dict_round_trip_mid_run_continues_like_pytorch(name, hyper, tmp_path):
    arrays = _arrays(1)
    ws = [gc.tensor(a.copy(), requires_grad=True) for a in arrays]
    tw = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt, topt = _run_pair(name, hyper, ws, tw, ws, steps=7, check_every=False)
    gc.save({"opt": opt.state_dict(), "w": [w.detach() for w in ws]}, tmp_path / "ck.npz")
    back = gc.load(tmp_path / "ck.npz")
    ws2 = [gc.tensor(w.numpy().copy(), requires_grad=True) for w in back["w"]]
    opt2 = getattr(optim, name)(ws2, **{**hyper, "lr": 123.0})
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["lr"] == hyper["lr"] and opt2.step_count == 7
    for t in range(7, STEPS):
        grads = _loss_grads([p.detach().numpy() for p in tw], t)
        for p, g in zip(ws2, grads):
            p.grad = gc.tensor(g.copy())
        for p, g in zip(tw, grads):
            p.grad = torch.from_numpy(g.copy())
        opt2.step()
        topt.step()
    for p, q in zip(ws2, tw):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_lr_is_read_from_param_groups_at_every_step_and_lr_property_works():
    w = gc.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.grad = gc.tensor(np.ones(3))
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(w.numpy(), 0.5)
    opt.lr = 0.25
    assert opt.param_groups[0]["lr"] == 0.25 and opt.lr == 0.25 and opt.hyper["lr"] == 0.25
    opt.step()
    np.testing.assert_allclose(w.numpy(), 0.25)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        opt.lr = float("nan")
    two = optim.SGD([{"params": [w], "lr": 0.1},
                     {"params": [gc.tensor(np.ones(2), requires_grad=True)], "lr": 0.2}], lr=1)
    with pytest.raises(AttributeError, match="different learning rates"):
        _ = two.lr


def test_zero_grad_sets_to_none_by_default_and_zeros_on_request():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    opt = optim.Adam(model)
    gc.nn.functional.mse_loss(model(np.ones((2, 3))), np.zeros((2, 2))).backward()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    gc.nn.functional.mse_loss(model(np.ones((2, 3))), np.zeros((2, 2))).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())


def test_fp16_parameters_keep_fp32_state_and_master_weights():
    w16 = gc.tensor(np.full(4, 1.0, np.float16), requires_grad=True)
    opt = optim.Adam([w16], lr=1e-4)
    ref = torch.tensor(np.full(4, 1.0), requires_grad=True)
    topt = torch.optim.Adam([ref], lr=1e-4)
    for _ in range(20):
        g = np.full(4, 1e-4)  # g² = 1e-8 underflows in float16
        w16.grad = gc.tensor(g.astype(np.float16))
        ref.grad = torch.from_numpy(g.astype(np.float16).astype(np.float64))
        opt.step()
        topt.step()
    st = opt.state_dict()["buffers"]["0"]
    assert st["exp_avg_sq"].dtype == np.float32 and st["master"].dtype == np.float32
    assert np.all(st["exp_avg_sq"] > 0)
    # 20 steps of 1e-4 each are lost in float16 rounding without the master copy
    np.testing.assert_allclose(st["master"], ref.detach().numpy(), rtol=1e-5)
    assert w16.dtype == np.float16 and np.all(w16.numpy() < 1.0)


def test_optimizer_follows_parameters_moved_or_reflattened():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    opt = optim.SGD(model, lr=0.1, momentum=0.9)
    ref = copy.deepcopy(model)
    ropt = optim.SGD(ref, lr=0.1, momentum=0.9)
    x = np.ones((2, 3))

    def train(m, o):
        o.zero_grad()
        gc.nn.functional.mse_loss(m(x), np.zeros((2, 2))).backward()
        o.step()

    train(model, opt)
    train(ref, ropt)
    model.to("cpu")  # rebuilds the flat buffers
    other = nn.Sequential(model[1], nn.Dense(2, 2, dtype=np.float64))  # re-flattens model[1]
    assert not model[1].weight.in_flat_buffer() or model[1].weight._buffer is not \
        model.flat_buffers()[0]
    for _ in range(3):
        train(model, opt)
        train(ref, ropt)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-13)
    assert len(other.parameters()) == 4


def test_bad_input_gives_clear_errors():
    w = gc.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="no parameters"):
        optim.Adam([])
    with pytest.raises(ValueError, match="listed twice in one group"):
        optim.Adam([w, w])
    with pytest.raises(ValueError, match="in groups 0 and 1"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match=r"betas\[0\] must lie in \[0, 1\)"):
        optim.Adam([w], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="unknown options"):
        optim.SGD([{"params": [w], "lrr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="result of an op"):
        optim.SGD([w * 2], lr=0.1)
    opt = optim.Adam([w], lr=0.01)
    with pytest.raises(OptimizerStateError, match="expected a mapping"):
        opt.load_state_dict(None)
    for bad in ({"lr": float("nan")}, {"betas": (1.0, 0.999)}):
        sd = opt.state_dict()
        sd["param_groups"][0].update(bad)
        with pytest.raises(OptimizerStateError, match="Nothing was loaded"):
            opt.load_state_dict(sd)
        assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["betas"] == (0.9,
                                                                                      0.999)


def test_optimizers_deepcopy_and_pickle_with_their_model():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    opt = optim.AdamW(model, lr=0.01)
    x = np.ones((2, 3))
    gc.nn.functional.mse_loss(model(x), np.zeros((2, 2))).backward()
    opt.step()
    for make in (copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))):
        m2, o2 = make((model, opt))
        for m, o in ((model, opt), (m2, o2)):
            o.zero_grad()
            gc.nn.functional.mse_loss(m(x), np.zeros((2, 2))).backward()
            o.step()
        for p, q in zip(model.parameters(), m2.parameters()):
            np.testing.assert_array_equal(p.numpy(), q.numpy())
            assert q.in_flat_buffer() and not np.shares_memory(p.data, q.data)
        assert o2.state_dict()["step"] == opt.step_count


def test_finite_check_is_exact_when_the_fast_probe_overflows():
    w = gc.tensor(np.ones(4, np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=1e-30)
    w.grad = gc.tensor(np.full(4, 1e30, np.float32))  # finite, but g·g overflows float32
    opt.step()
    np.testing.assert_allclose(w.numpy(), 0.0, atol=1e-6)
    w.grad = gc.tensor(np.array([1.0, np.nan, 1.0, 1.0], np.float32))
    with pytest.raises(optim.NonFiniteGradError, match="NaN or Inf"):
        opt.step()


def test_state_restarts_for_a_parameter_whose_data_was_replaced_by_another_shape():
    w = gc.tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    w.grad = gc.tensor(np.ones(3))
    opt.step()
    w.data = np.ones(5)  # a new array of another size: its old moments no longer apply
    w.grad = gc.tensor(np.ones(5))
    opt.step()
    st = opt.state_dict()["buffers"]["0"]
    assert st["exp_avg"].shape == (5,) and np.all(w.numpy() < 1)


def _step_both(opt, topt, pairs, t):
    """One step of both with the same gradients for the (gpuchain, torch) pairs that
    train (torch: the others have no .grad and are skipped)."""
    for p, q in pairs:
        g = _loss_grads([q.detach().numpy()], t)[0]
        p.grad, q.grad = gc.tensor(g.copy()), torch.from_numpy(g.copy())
    opt.step()
    topt.step()


def _assert_same(pairs):
    for p, q in pairs:
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_add_param_group_mid_run_matches_pytorch(name, hyper):
    # the added parameters start their own step count (Adam's bias correction from 1)
    a, b = _arrays(2)[:2]
    w, tw = gc.tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)
    v, tv = gc.tensor(b.copy(), requires_grad=True), torch.tensor(b.copy(), requires_grad=True)
    opt = getattr(optim, name)([w], **hyper)
    topt = getattr(torch.optim, name)([tw], **hyper)
    for t in range(4):
        _step_both(opt, topt, [(w, tw)], t)
    extra = {"lr": hyper["lr"] * 0.5}
    opt.add_param_group({"params": [v], **extra})
    topt.add_param_group({"params": [tv], **extra})
    assert opt.param_groups[1]["lr"] == extra["lr"] and len(opt.param_groups) == 2
    for t in range(4, 10):
        _step_both(opt, topt, [(w, tw), (v, tv)], t)
        _assert_same([(w, tw), (v, tv)])


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_a_layer_frozen_for_some_steps_matches_pytorch(name, hyper):
    model = nn.MLP([3, 4, 2], activation="tanh", seed=1, dtype=np.float64)
    flat = model.parameters()
    tw = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in flat]
    opt = getattr(optim, name)(model, **hyper)
    topt = getattr(torch.optim, name)(tw, **hyper)
    pairs = list(zip(flat, tw))
    for t in range(9):
        frozen = 3 <= t < 6  # the first layer: no update, no step counted (torch: no .grad)
        model[0].requires_grad_(not frozen)
        for q in tw[:2]:
            q.grad = None
        _step_both(opt, topt, pairs[2:] if frozen else pairs, t)
        _assert_same(pairs)
    assert opt._param_steps == [6, 6, 9, 9]


@pytest.mark.parametrize(("name", "hyper"), [CASES[0], CASES[3], CASES[9]])
def test_state_dict_with_different_step_counts_round_trips(name, hyper):
    a, b = _arrays(3)[:2]
    w, v = gc.tensor(a.copy(), requires_grad=True), gc.tensor(b.copy(), requires_grad=True)
    tw, tv = torch.tensor(a.copy(), requires_grad=True), torch.tensor(b.copy(),
                                                                      requires_grad=True)
    opt = getattr(optim, name)([w], **hyper)
    topt = getattr(torch.optim, name)([tw], **hyper)
    for t in range(3):
        _step_both(opt, topt, [(w, tw)], t)
    opt.add_param_group({"params": [v]})
    topt.add_param_group({"params": [tv]})
    _step_both(opt, topt, [(w, tw), (v, tv)], 3)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    assert saved["param_steps"] == [4, 1] and saved["step"] == 4
    w2, v2 = (gc.tensor(p.numpy().copy(), requires_grad=True) for p in (w, v))
    opt2 = getattr(optim, name)([{"params": [w2]}, {"params": [v2]}], **hyper)
    opt2.load_state_dict(saved)
    for t in range(4, 8):
        _step_both(opt2, topt, [(w2, tw), (v2, tv)], t)
        _assert_same([(w2, tw), (v2, tv)])


def test_add_param_group_refuses_a_parameter_already_optimized_and_changes_nothing():
    w, v = gc.tensor(np.ones(3), requires_grad=True), gc.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    before = opt.state_dict()
    with pytest.raises(ValueError, match="listed in groups 0 and 1"):
        opt.add_param_group({"params": [v, w]})
    with pytest.raises(ValueError, match="unknown options"):
        opt.add_param_group({"params": [v], "momentum": 0.9})
    with pytest.raises(TypeError, match="'params' entry"):
        opt.add_param_group([v])
    assert len(opt.param_groups) == 1 and opt.state_dict()["param_steps"] == \
        before["param_steps"] == [0]


def test_a_bad_state_dict_with_other_step_counts_leaves_the_optimizer_as_it_was():
    w, v = gc.tensor(np.ones(3), requires_grad=True), gc.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([w, v], lr=0.1)
    w.grad, v.grad = gc.tensor(np.ones(3)), gc.tensor(np.ones(2))
    opt.step()
    good, n_segments = opt.state_dict(), len(opt._segments)
    bad = {**good, "param_steps": [1, 5], "buffers": {"0": good["buffers"]["0"]}}
    with pytest.raises(OptimizerStateError, match="Nothing was loaded"):
        opt.load_state_dict(bad)
    assert opt.state_dict()["param_steps"] == [1, 1] and len(opt._segments) == n_segments
    np.testing.assert_array_equal(opt.state_dict()["buffers"]["1"]["exp_avg"],
                                  good["buffers"]["1"]["exp_avg"])
    with pytest.raises(OptimizerStateError, match="param_steps must be 2"):
        opt.load_state_dict({**good, "param_steps": [1]})
    legacy = {k: v for k, v in good.items() if k != "param_steps"}  # before the counts
    opt.load_state_dict(legacy)
    assert opt._param_steps == [1, 1]


def test_the_state_of_a_frozen_layer_survives_a_checkpoint(tmp_path):
    model = nn.MLP([3, 4, 2], activation="tanh", seed=2, dtype=np.float64)
    tw = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in model.parameters()]
    opt, topt = optim.Adam(model, lr=0.01), torch.optim.Adam(tw, lr=0.01)
    pairs = list(zip(model.parameters(), tw))
    for t in range(3):
        _step_both(opt, topt, pairs, t)
    model[0].requires_grad_(False)
    for q in tw[:2]:
        q.grad = None
    _step_both(opt, topt, pairs[2:], 3)
    gc.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ck.npz")
    assert set(opt.state_dict()["frozen"]) == {"0", "1"}
    ck = gc.load(tmp_path / "ck.npz")
    model2 = nn.MLP([3, 4, 2], activation="tanh", seed=9, dtype=np.float64)
    model2.load_state_dict(ck["model"])
    model2[0].requires_grad_(False)
    opt2 = optim.Adam(model2, lr=0.01)
    opt2.load_state_dict(ck["opt"])
    model2[0].requires_grad_(True)  # unfrozen: resumes its moments and its step count
    pairs2 = list(zip(model2.parameters(), tw))
    for t in range(4, 7):
        _step_both(opt2, topt, pairs2, t)
        _assert_same(pairs2)
    with pytest.raises(OptimizerStateError, match="not a frozen parameter"):
        opt2.load_state_dict({**ck["opt"], "frozen": {"2": {"exp_avg": np.zeros(8)}}})


def test_sgd_takes_pytorchs_arguments_in_pytorchs_order():
    w, tw = gc.tensor(np.ones(3), requires_grad=True), torch.ones(3, dtype=torch.float64,
                                                                  requires_grad=True)
    opt, topt = optim.SGD([w], 0.1, 0.9, 0.2, 0.01), torch.optim.SGD([tw], 0.1, 0.9, 0.2, 0.01)
    assert opt.param_groups[0]["dampening"] == 0.2 and opt.param_groups[0]["weight_decay"] \
        == 0.01
    for t in range(5):
        _step_both(opt, topt, [(w, tw)], t)
        _assert_same([(w, tw)])
    assert optim.SGD([w]).param_groups[0]["lr"] == torch.optim.SGD([tw]).defaults["lr"]
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0 and dampening 0"):
        optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    # a state saved before dampening existed loads with dampening 0
    old = opt.state_dict()
    for g in old["param_groups"]:
        del g["dampening"]
    fresh = optim.SGD([gc.tensor(np.ones(3), requires_grad=True)], lr=0.1, momentum=0.9,
                      dampening=0.5)
    fresh.load_state_dict(old)
    assert fresh.param_groups[0]["dampening"] == 0.0


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_parameters_without_a_gradient_are_skipped_as_in_pytorch(name, hyper):
    # one flat buffer, some parameters without .grad at some steps (an unused branch):
    # skipped, their state and count kept, the others updated in the same buffer
    model = nn.MLP([3, 4, 3, 2], activation="tanh", seed=3, dtype=np.float64)
    flat = model.parameters()
    tw = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in flat]
    opt = getattr(optim, name)(model, **hyper)
    topt = getattr(torch.optim, name)(tw, **hyper)
    pairs = list(zip(flat, tw))
    unused = {2: [1, 2], 3: [1, 2], 5: [0, 1, 2, 3, 4, 5], 6: [5], 8: [0]}
    for t in range(10):
        skip = set(unused.get(t, []))
        for k, (p, q) in enumerate(pairs):
            if k in skip:
                p.grad, q.grad = None, None
        _step_both(opt, topt, [pq for k, pq in enumerate(pairs) if k not in skip], t)
        _assert_same(pairs)
    assert opt._param_steps == [8, 7, 7, 9, 9, 8]


def test_a_step_without_any_gradient_changes_nothing():
    model = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    opt = optim.Adam(model, lr=0.1)
    before = [p.numpy().copy() for p in model.parameters()]
    opt.step()
    assert opt._param_steps == [0, 0, 0, 0] and opt.state == [{}]
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_an_optimizer_pickled_before_per_parameter_counts_still_steps():
    w = gc.tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    w.grad = gc.tensor(np.ones(3))
    opt.step()
    old = opt.__getstate__()
    for k in ("_param_steps", "_parked", "_seg_positions"):
        del old[k]
    back = optim.Adam.__new__(optim.Adam)
    back.__setstate__(old)
    assert back._param_steps == [1]
    back.step()
    assert back._param_steps == [2] and back.state_dict()["param_steps"] == [2]
