"""Train step (forward, softmax cross-entropy, backward, Adam update) of MLPs small..xl.

Sizes, weights and batches come from ``benchmarks/train_step.py`` (the nn package's own
benchmark), and on the CPU its gpuchain and PyTorch steps are the ones timed. Added here:
JAX (jit, the same Adam written out) and device-aware versions for the GPU, where
torch.compile runs too. Every system starts from the gpuchain model's weights.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from benchmarks._runner import (
    Config,
    Contender,
    SuiteResult,
    compare,
    peer,
    run_single_suite,
    synchronizer,
    torch_device,
)

SUITE = "train"
LR = 1e-3


def gpuchain_train(params: list[np.ndarray], x: np.ndarray, y: np.ndarray
                   ) -> tuple[Any, Any]:
    """(step, values): step = one Adam step; values = loss and the last layer's weight
    gradient before any update. (The first layer's gradient is a poor cross-check: one
    ReLU input within float32 rounding of 0 flips its mask between systems; that happens
    in the "medium" model's data.)"""
    import gpuchain as gc
    import gpuchain.nn
    import gpuchain.optim  # noqa: F401

    sizes = [params[0].shape[0]] + [w.shape[1] for w in params[::2]]
    model = gc.nn.MLP(sizes, activation="relu")
    for layer, (w, b) in zip(model, zip(params[::2], params[1::2], strict=True), strict=True):
        layer.weight.data[...] = gc.tensor(w).data
        layer.bias.data[...] = gc.tensor(b).data
    opt = gc.optim.Adam(model, lr=LR)
    xt, yt = gc.tensor(x), gc.tensor(y)

    def forward_backward() -> Any:
        opt.zero_grad()
        loss = gc.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        return loss

    def step() -> Any:
        loss = forward_backward()
        opt.step()
        return loss

    def values() -> dict[str, Any]:
        loss = forward_backward()
        return {"loss": loss, "grad W_last": model[len(model) - 1].weight.grad}

    return step, values


def torch_train(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, device: str,
                compile: bool = False) -> tuple[Any, Any]:  # noqa: A002
    import torch

    layers: list[Any] = []
    for i, (w, b) in enumerate(zip(params[::2], params[1::2], strict=True)):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin] if i == len(params) // 2 - 1 else [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)
    fwd = torch.compile(model) if compile else model

    def forward_backward() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(fwd(xt), yt)
        loss.backward()
        return loss

    def step() -> Any:
        loss = forward_backward()
        opt.step()
        return loss

    def values() -> dict[str, Any]:
        loss = forward_backward()
        return {"loss": loss, "grad W_last": model[len(model) - 1].weight.grad.T}

    return step, values


def jax_train(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    import jax
    import jax.numpy as jnp

    def loss_fn(ps: list[Any], xb: Any, yb: Any) -> Any:
        h = xb
        n = len(ps) // 2
        for i in range(n):
            h = h @ ps[2 * i] + ps[2 * i + 1]
            if i < n - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    b1, b2, eps = 0.9, 0.999, 1e-8

    @jax.jit
    def update(state: Any, xb: Any, yb: Any) -> Any:
        ps, m, v, t = state
        loss, g = jax.value_and_grad(loss_fn)(ps, xb, yb)
        t = t + 1
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g, strict=True)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g, strict=True)]
        lr_t = LR * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        ps = [p - lr_t * mi / (jnp.sqrt(vi) + eps) for p, mi, vi in zip(ps, m, v, strict=True)]
        return (ps, m, v, t), loss

    ps = [jnp.asarray(p) for p in params]
    state = [(ps, [jnp.zeros_like(p) for p in ps], [jnp.zeros_like(p) for p in ps], 0.0)]
    xj, yj = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
    vg = jax.jit(jax.value_and_grad(loss_fn))

    def step() -> Any:
        state[0], loss = update(state[0], xj, yj)
        return loss

    def values() -> dict[str, Any]:
        loss, g = vg(state[0][0], xj, yj)
        return {"loss": loss, "grad W_last": g[-2]}

    return step, values


def _weights(model: Any) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for layer in model:
        out += [layer.weight.numpy().copy(), layer.bias.numpy().copy()]
    return out


def contenders(cfg: Config, size: str) -> list[Contender]:
    """gpuchain, torch and JAX over train_step.py's model (its weights and batch)."""
    from benchmarks import train_step as ts

    _, model = ts.gpuchain_step(size)
    params = _weights(model)
    x, y = ts._data(size)
    out: list[Contender] = []
    if cfg.on_gpu:  # train_step.py builds CPU systems; these move weights to the device
        step, values = gpuchain_train(params, x, y)
    else:
        step, model = ts.gpuchain_step(size)
        values = _values_of(step, model, x, y)
    out.append(Contender("gpuchain", step, values, sync=synchronizer(cfg, "gpuchain")))
    if peer(cfg, "torch") is not None:
        dev = torch_device(cfg)
        if dev == "cpu":
            step, net = ts.torch_step(size, ts.gpuchain_step(size)[1])
            out.append(Contender("torch eager", step, _torch_values_of(net, x, y)))
        else:
            for name, comp in (("torch eager", False), ("torch.compile", True)):
                step, values = torch_train(params, x, y, dev, comp)
                out.append(Contender(name, step, values, sync=synchronizer(cfg, "torch")))
    if peer(cfg, "jax") is not None:
        step, values = jax_train(params, x, y)
        out.append(Contender("jax (jit)", step, values,
                             block=lambda r: r.block_until_ready()))
    return out


def _values_of(step: Any, model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    def values() -> dict[str, Any]:
        from gpuchain import nn

        model.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return {"loss": loss, "grad W_last": model[len(model) - 1].weight.grad}

    return values


def _torch_values_of(net: Any, x: np.ndarray, y: np.ndarray) -> Any:
    def values() -> dict[str, Any]:
        import torch

        net.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        return {"loss": loss, "grad W_last": net[len(net) - 1].weight.grad.T}

    return values


def run(cfg: Config) -> SuiteResult:
    res = SuiteResult()
    from benchmarks import train_step as ts

    default = ["small"] if cfg.quick else [s for s in ts.SIZES if cfg.on_gpu or s != "xl"]
    names = list(cfg.sizes or default)
    unknown = [n for n in names if n not in ts.SIZES]
    if unknown:
        raise ValueError(f"train: unknown size(s) {unknown}; choose from {list(ts.SIZES)}")
    for size in names:
        batch, sizes = ts.SIZES[size]
        case = f"{size} {'-'.join(map(str, sizes))} batch {batch}"
        res.add(compare(cfg, SUITE, case, contenders(cfg, size), rtol=1e-3, atol=1e-5,
                        extra={"sizes": sizes, "batch": batch}))
    res.notes.append(f"train: full step (forward, softmax cross-entropy, backward, Adam "
                     f"lr={LR}), relu MLP, float32; models and data from "
                     "benchmarks/train_step.py")
    return res




if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
