"""An MLP training step against PyTorch with the same weights (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

from gpuchain import nn, optim
from gpuchain.nn import functional as F

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

_TORCH_ACT = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU,
              "silu": torch.nn.SiLU, "sigmoid": torch.nn.Sigmoid, "softplus": torch.nn.Softplus}


def _torch_copy(model, activation):
    layers = []
    for i, layer in enumerate(model):
        lin = torch.nn.Linear(layer.in_features, layer.out_features).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.weight.numpy().T.copy()))
            lin.bias.copy_(torch.from_numpy(layer.bias.numpy().copy()))
        layers.append(lin)
        if i < len(model) - 1:
            layers.append(_TORCH_ACT[activation]())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("activation", sorted(_TORCH_ACT))
@pytest.mark.parametrize("opt_name", ["Adam", "AdamW", "SGD"])
def test_training_steps_match_pytorch(activation, opt_name):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5)), rng.integers(0, 4, 16)
    model = nn.MLP([5, 8, 7, 4], activation=activation, seed=1, dtype=np.float64)
    ref = _torch_copy(model, activation)
    hyper = {"Adam": {"lr": 0.01, "weight_decay": 0.01}, "AdamW": {"lr": 0.01},
             "SGD": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}}
    opt = getattr(optim, opt_name)(model, **hyper[opt_name])
    topt = getattr(torch.optim, opt_name)(ref.parameters(), **hyper[opt_name])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        tloss = torch.nn.functional.cross_entropy(ref(xt), yt)
        tloss.backward()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
        tparams = [m for m in ref if isinstance(m, torch.nn.Linear)]
        for layer, tl in zip(model, tparams):
            np.testing.assert_allclose(layer.weight.grad.numpy(), tl.weight.grad.numpy().T,
                                       rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(layer.bias.grad.numpy(), tl.bias.grad.numpy(),
                                       rtol=1e-9, atol=1e-12)
        opt.step()
        topt.step()
    for layer, tl in zip(model, [m for m in ref if isinstance(m, torch.nn.Linear)]):
        np.testing.assert_allclose(layer.weight.numpy(), tl.weight.detach().numpy().T,
                                   rtol=1e-9, atol=1e-12)
