"""Train step (forward, softmax cross-entropy, backward, optimizer update) of MLPs.

- ``small`` / ``medium`` / ``large``: relu MLPs with Adam (the sizes in :data:`SIZES`);
- ``modern_small`` / ``modern_medium`` / ``modern_large`` (:data:`MODERN`): blocks
  of Dense -> LayerNorm -> GELU -> Dropout, AdamW and ``clip_grad_norm_`` (run once
  gpuchain.nn has LayerNorm, Dropout and nn.utils.clip_grad_norm_; skipped with a note
  otherwise).

Every system starts from the same weights (a seeded gpuchain MLP) and batch. Systems:
gpuchain, PyTorch eager (plus torch.compile on a GPU) and JAX (jit, Adam written out).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuchain.bench._runner import (
    Config,
    Contender,
    SuiteResult,
    compare,
    optional_import,
    peer,
    run_single_suite,
    synchronizer,
    torch_device,
)

SUITE = "train"
LR = 1e-3
SIZES: dict[str, tuple[int, list[int]]] = {
    "small": (64, [784, 256, 256, 10]),
    "medium": (256, [784, 1024, 1024, 1024, 10]),
    "large": (512, [784, 2048, 2048, 2048, 2048, 10]),
    "modern_small": (256, [784, 512, 512, 512, 10]),
    "modern_medium": (256, [784, 1024, 1024, 1024, 10]),
    "modern_large": (512, [784, 2048, 2048, 2048, 10]),
}
MODERN: tuple[str, ...] = ("modern_small", "modern_medium", "modern_large")
DROPOUT_P = 0.1
CLIP_NORM = 1.0


def data(batch: int, sizes: Sequence[int], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A float32 batch and integer labels (fixed seed)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, sizes[0])).astype(np.float32),
            rng.integers(0, sizes[-1], batch).astype(np.int64))


def weights(sizes: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] of a seeded gpuchain relu MLP (its own initialisation)."""
    from gpuchain import nn

    model = nn.MLP(list(sizes), activation="relu", seed=seed, dtype=np.float32)
    out: list[np.ndarray] = []
    for layer in model:
        out += [layer.weight.numpy().copy(), layer.bias.numpy().copy()]
    return out


# --------------------------------------------------------------------------- gpuchain


def gpuchain_train(params: list[np.ndarray], x: np.ndarray, y: np.ndarray
                   ) -> tuple[Any, Any, Any]:
    """(step, values, model): step = one Adam step; values = loss and the last layer's
    weight gradient before any update. (The first layer's gradient is a poor
    cross-check: one ReLU input within float32 rounding of 0 flips its mask between
    systems.)"""
    import gpuchain as gc
    import gpuchain.nn
    import gpuchain.optim  # noqa: F401

    sizes = [params[0].shape[0]] + [w.shape[1] for w in params[::2]]
    model = gc.nn.MLP(sizes, activation="relu", dtype=params[0].dtype)  # built on the CPU
    for layer, w, b in zip(model, params[::2], params[1::2]):
        layer.weight._data[...] = w
        layer.bias._data[...] = b
    model.to(gc.get_backend().device)
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
        last: Any = model[len(model) - 1]  # a Dense layer
        return {"loss": loss, "grad W_last": last.weight.grad}

    return step, values, model


def modern_available() -> str | None:
    """None when gpuchain has what the modern sizes need, else what is missing."""
    nn = optional_import("gpuchain.nn")
    utils = optional_import("gpuchain.nn.utils")
    missing = [name for name, ok in (
        ("gpuchain.nn.LayerNorm", hasattr(nn, "LayerNorm")),
        ("gpuchain.nn.Dropout", hasattr(nn, "Dropout")),
        ("gpuchain.nn.utils.clip_grad_norm_", hasattr(utils, "clip_grad_norm_")),
        ("gpuchain.optim.AdamW", hasattr(optional_import("gpuchain.optim"), "AdamW")),
    ) if not ok]
    return ", ".join(missing) + " missing" if missing else None


def gpuchain_modern(params: list[np.ndarray], x: np.ndarray, y: np.ndarray
                    ) -> tuple[Any, Any]:
    """(step, values) of the modern block MLP; values run with dropout off (eval)."""
    import gpuchain as gc
    from gpuchain import nn, optim
    from gpuchain.nn.functional import cross_entropy, dense
    from gpuchain.nn.utils import clip_grad_norm_

    ws = [nn.Parameter(gc.tensor(p)._data) for p in params]
    n = len(ws) // 2
    norms = [nn.LayerNorm(w.shape[1]).to(gc.get_backend().device) for w in ws[:-2:2]]
    drop = nn.Dropout(DROPOUT_P)
    trainable = ws + [p for m in norms for p in m.parameters()]
    opt = optim.AdamW(trainable, lr=LR, weight_decay=1e-2)
    xt, yt = gc.tensor(x), gc.tensor(y)

    def forward_backward() -> Any:
        opt.zero_grad()  # as torch's opt.zero_grad(set_to_none=True)
        h = xt
        for i in range(n - 1):
            h = drop(gc.gelu(norms[i](dense(h, ws[2 * i], ws[2 * i + 1]))))
        loss = cross_entropy(dense(h, ws[-2], ws[-1]), yt)
        loss.backward()
        return loss

    def step() -> Any:
        drop.train()
        loss = forward_backward()
        clip_grad_norm_(trainable, CLIP_NORM)
        opt.step()
        return loss

    def values() -> dict[str, Any]:
        # the first layer's gradient checks the whole backward (GELU has no ReLU mask to
        # flip within rounding)
        drop.eval()
        loss = forward_backward()
        return {"loss": loss, "grad W_last": ws[-2].grad, "grad W_first": ws[0].grad}

    return step, values


# --------------------------------------------------------------------------- PyTorch


def torch_mlp(params: list[np.ndarray], device: str, modern: bool = False) -> Any:
    """torch.nn.Sequential with ``params`` (Linear gets the transposed weight)."""
    import torch

    layers: list[Any] = []
    n = len(params) // 2
    for i, (w, b) in enumerate(zip(params[::2], params[1::2])):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < n - 1:
            layers += ([torch.nn.LayerNorm(w.shape[1]), torch.nn.GELU(),
                        torch.nn.Dropout(DROPOUT_P)] if modern else [torch.nn.ReLU()])
    return torch.nn.Sequential(*layers).to(device)


def torch_train(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, device: str,
                compile: bool = False, modern: bool = False) -> tuple[Any, Any]:  # noqa: A002
    """(step, values) of the same network in PyTorch (eager, or torch.compile)."""
    import torch

    model = torch_mlp(params, device, modern)
    opt = (torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-2) if modern
           else torch.optim.Adam(model.parameters(), lr=LR))
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)
    fwd = torch.compile(model) if compile else model

    def forward_backward() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(fwd(xt), yt)
        loss.backward()
        return loss

    # train()/eval() only where dropout needs them: a compiled module recompiles (outside
    # the bounded warm-up) when its training flag changes
    def step() -> Any:
        if modern:
            model.train()
        loss = forward_backward()
        if modern:
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        opt.step()
        return loss

    def values() -> dict[str, Any]:
        if modern:
            model.eval()
        loss = forward_backward()
        out = {"loss": loss, "grad W_last": model[len(model) - 1].weight.grad.T}
        return out | ({"grad W_first": model[0].weight.grad.T} if modern else {})

    return step, values


# --------------------------------------------------------------------------- JAX


def jax_train(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    """(step, values): jitted relu MLP step with Adam written out."""
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
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        lr_t = LR * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        ps = [p - lr_t * mi / (jnp.sqrt(vi) + eps) for p, mi, vi in zip(ps, m, v)]
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


# --------------------------------------------------------------------------- suite


def torch_contenders(cfg: Config, params: list[np.ndarray], x: np.ndarray, y: np.ndarray,
                     modern: bool = False) -> list[Contender]:
    """PyTorch eager, and on a GPU torch.compile (its warm-up bounded by the config),
    when PyTorch is an enabled peer; else none."""
    if peer(cfg, "torch") is None:
        return []
    dev = torch_device(cfg)
    out = []
    for name, comp in [("torch eager", False)] + ([("torch.compile", True)]
                                                  if dev == "cuda" else []):
        step, values = torch_train(params, x, y, dev, comp, modern)
        out.append(Contender(name, step, values, sync=synchronizer(cfg, "torch"),
                             warmup_limit_s=cfg.compile_limit_s if comp else None))
    return out


def contenders(cfg: Config, size: str) -> list[Contender]:
    """gpuchain, torch (eager; compile on a GPU) and JAX over one model size."""
    batch, sizes = SIZES[size]
    params, (x, y) = weights(sizes), data(batch, sizes)
    modern = size in MODERN
    if modern:
        step, values = gpuchain_modern(params, x, y)
    else:
        step, values, _ = gpuchain_train(params, x, y)
    out = [Contender("gpuchain", step, values, sync=synchronizer(cfg, "gpuchain"))]
    out += torch_contenders(cfg, params, x, y, modern)
    if peer(cfg, "jax") is not None and not modern:
        step, values = jax_train(params, x, y)
        out.append(Contender("jax (jit)", step, values, block=lambda r: r.block_until_ready()))
    return out


def run(cfg: Config) -> SuiteResult:
    """The train suite: default sizes small, medium, large and the modern ones (quick:
    small)."""
    res = SuiteResult()
    names = list(cfg.sizes or (["small"] if cfg.quick else list(SIZES)))
    unknown = [n for n in names if n not in SIZES]
    if unknown:
        raise ValueError(f"train: unknown size(s) {unknown}; choose from {list(SIZES)}")
    for size in names:
        if size in MODERN and (why := modern_available()):
            res.notes.append(f"train/{size} skipped: {why}")
            continue
        batch, sizes = SIZES[size]
        case = f"{size} {'-'.join(map(str, sizes))} batch {batch}"
        res.add(compare(cfg, SUITE, case, contenders(cfg, size), rtol=1e-3, atol=1e-5,
                        extra={"sizes": sizes, "batch": batch}))
    res.notes.append(f"train: full step (forward, softmax cross-entropy, backward, Adam "
                     f"lr={LR}), relu MLP, float32; {', '.join(MODERN)}: Dense-LayerNorm-"
                     f"GELU-Dropout({DROPOUT_P}) blocks, AdamW, clip_grad_norm_({CLIP_NORM}), "
                     "cross-checked with dropout off and timed with it on (JAX left out). "
                     "torch.compile (GPU only) warm-up reported apart (extra.warmup_s).")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
