"""Learning-rate schedulers against torch.optim.lr_scheduler over 20 steps, with two param
groups of different learning rates, and state_dict round trips (through gc.save) mid-way."""

from __future__ import annotations

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import optim
from gpuchain.errors import OptimizerStateError
from gpuchain.optim import lr_scheduler as gsched

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
tsched = torch.optim.lr_scheduler

STEPS = 20


def _pair(opt_name="SGD", **hyper):
    hyper = {"lr": 0.1, **hyper}
    ws = [gc.tensor(np.ones(2), requires_grad=True), gc.tensor(np.ones(3), requires_grad=True)]
    ts = [torch.ones(2, dtype=torch.float64, requires_grad=True),
          torch.ones(3, dtype=torch.float64, requires_grad=True)]
    g = [{"params": [ws[0]]}, {"params": [ws[1]], "lr": 0.03}]
    tg = [{"params": [ts[0]]}, {"params": [ts[1]], "lr": 0.03}]
    return (getattr(optim, opt_name)(g, **hyper), getattr(torch.optim, opt_name)(tg, **hyper),
            ws, ts)


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=6),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=STEPS + 1),
    "OneCycleLR3": lambda m, o: m.OneCycleLR(o, max_lr=0.4, total_steps=STEPS + 1,
                                             three_phase=True, anneal_strategy="linear"),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda t: 0.95 ** t + 0.01 * (t % 3)),
    "LambdaLR2": lambda m, o: m.LambdaLR(o, [lambda t: 1 / (1 + t), lambda t: 0.9 ** t]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda t: 0.9 if t % 2 else 1.05),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=4),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=4),
            m.CosineAnnealingLR(o, T_max=10)], milestones=[5]),
}


def _step(opt, sched, ws, metric=None):
    for w in ws:
        w.grad = gc.tensor(np.ones(w.shape)) if isinstance(w, gc.Tensor) else torch.ones(
            w.shape, dtype=torch.float64)
    opt.step()
    sched.step() if metric is None else sched.step(metric)


def _assert_same(opt, topt, sched, tsch):
    assert sched.get_last_lr() == pytest.approx(tsch.get_last_lr(), rel=1e-14, abs=0)
    for g, tg in zip(opt.param_groups, topt.param_groups):
        assert g["lr"] == pytest.approx(tg["lr"], rel=1e-14, abs=0)
        if "momentum" in tg:
            assert g["momentum"] == pytest.approx(tg["momentum"], rel=1e-14)
        if "betas" in tg:
            assert g["betas"][0] == pytest.approx(tg["betas"][0], rel=1e-14)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_scheduler_matches_pytorch_and_resumes_from_a_checkpoint(name, opt_name, tmp_path):
    hyper = {"momentum": 0.9} if opt_name == "SGD" else {}
    opt, topt, ws, ts = _pair(opt_name, **hyper)
    sched, tsch = SCHEDULERS[name](gsched, opt), SCHEDULERS[name](tsched, topt)
    _assert_same(opt, topt, sched, tsch)
    for t in range(STEPS):
        _step(opt, sched, ws)
        _step(topt, tsch, ts)
        _assert_same(opt, topt, sched, tsch)
        for w, tw in zip(ws, ts):
            np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-12)
        if t == 8:
            gc.save({"opt": opt.state_dict(), "sched": sched.state_dict(),
                     "w": [w.detach() for w in ws]}, tmp_path / "ck.npz")
            ck = gc.load(tmp_path / "ck.npz")
            ws = [gc.tensor(w.numpy().copy(), requires_grad=True) for w in ck["w"]]
            opt = type(opt)([{"params": [ws[0]]}, {"params": [ws[1]], "lr": 0.03}],
                            **{"lr": 0.1, **hyper})
            sched = SCHEDULERS[name](gsched, opt)
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            _assert_same(opt, topt, sched, tsch)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_reduce_on_plateau_matches_pytorch(mode, threshold_mode):
    opt, topt, ws, ts = _pair()
    kw = {"mode": mode, "factor": 0.5, "patience": 2, "threshold": 0.01,
          "threshold_mode": threshold_mode, "cooldown": 1, "min_lr": [0.01, 0.004]}
    sched, tsch = gsched.ReduceLROnPlateau(opt, **kw), tsched.ReduceLROnPlateau(topt, **kw)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.88, 0.88, 0.88,
               0.88, 0.88, 0.88, 0.5, 0.6, 0.6, 0.6]
    for t, m in enumerate(metrics):
        m = m if mode == "min" else -m
        _step(opt, sched, ws, m)
        _step(topt, tsch, ts, m)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(
            [g["lr"] for g in topt.param_groups], rel=1e-15)
        if t == 10:
            state = sched.state_dict()
            sched = gsched.ReduceLROnPlateau(opt, **kw)
            sched.load_state_dict(state)
    assert opt.param_groups[0]["lr"] < 0.1  # it did reduce


def test_scheduler_errors():
    opt, _, _, _ = _pair()
    with pytest.raises(TypeError, match="expected a gpuchain optimizer"):
        gsched.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        gsched.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max must be a positive int"):
        gsched.CosineAnnealingLR(opt, T_max=2.5)
    with pytest.raises(ValueError, match="factor must lie in"):
        gsched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="more than total_steps"):
        s = gsched.OneCycleLR(opt, max_lr=1.0, total_steps=2)
        for _ in range(3):
            s.step()
    s = gsched.StepLR(opt, step_size=2)
    with pytest.raises(OptimizerStateError, match="missing keys"):
        s.load_state_dict({"gamma": 0.1})


def test_lambda_schedulers_check_their_functions_and_keep_them_out_of_the_state():
    opt, *_ = _pair()
    with pytest.raises(ValueError, match="a list of 2 functions"):
        gsched.LambdaLR(opt, [lambda t: 1.0])
    with pytest.raises(ValueError, match="a list of 2 functions"):
        gsched.MultiplicativeLR(opt, 0.5)
    with pytest.raises(ValueError, match=r"factor must lie in \(0, 1\]"):
        gsched.ConstantLR(opt, factor=0.0)
    s = gsched.LambdaLR(opt, lambda t: 0.5 ** t)
    for _ in range(3):
        s.step()
    state = s.state_dict()
    assert "lr_lambdas" not in state and state["last_epoch"] == 3
    again = gsched.LambdaLR(opt, lambda t: 0.5 ** t)
    again.load_state_dict(state)
    again.step()
    assert again.get_last_lr() == pytest.approx([0.1 * 0.5 ** 4, 0.03 * 0.5 ** 4])
