"""The MLPs the suites share, built from one set of NumPy weights for every system.

A train-step body here is forward + MSE loss + backward (no optimizer update), so the
systems compare like for like; the ``train`` suite times the full step (with Adam).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def make_weights(sizes: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] float32, W_i of shape (n_in, n_out), scaled 1/sqrt(n_in)."""
    rng = np.random.default_rng(seed)
    params: list[np.ndarray] = []
    for n_in, n_out in itertools.pairwise(sizes):
        params.append((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32))
        params.append((0.1 * rng.standard_normal(n_out)).astype(np.float32))
    return params


def make_batch(sizes: Sequence[int], batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A float32 batch ``x`` and float32 regression targets ``y`` (fixed seed)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.standard_normal((batch, sizes[-1])).astype(np.float32)
    return x, y


def mlp(params: Sequence[Any], act: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """x -> MLP with ``act`` between layers and a linear output; any array type with ``@``."""

    def f(x: Any) -> Any:
        h = x
        n = len(params) // 2
        for i in range(n):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n - 1:
                h = act(h)
        return h

    return f


StepFn = Callable[[], tuple[Any, Any]]  # () -> (loss, gradient of the first weight)


def gpuchain_step(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray,
                  activation: str, fused: bool) -> StepFn:
    """gpuchain forward+backward; ``fused``: gc.nn.functional.dense per layer, otherwise
    composed matmul + add + activation ops."""
    import gpuchain as gc

    ps = [gc.tensor(p, requires_grad=True) for p in params]
    xt, yt = gc.tensor(x), gc.tensor(y)
    n = len(ps) // 2
    if fused:
        from gpuchain.nn.functional import dense

        def forward() -> Any:
            h = xt
            for i in range(n):
                h = dense(h, ps[2 * i], ps[2 * i + 1], activation if i < n - 1 else None)
            return h
    else:
        forward = lambda: mlp(ps, getattr(gc, activation))(xt)

    def step() -> tuple[Any, Any]:
        for p in ps:
            p.grad = None
        d = forward() - yt
        loss = gc.mean(d * d)
        loss.backward()
        return loss, ps[0].grad

    step.params = ps  # type: ignore[attr-defined]
    return step


def torch_step(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, activation: str,
               device: str = "cpu", compile: bool = False) -> StepFn:  # noqa: A002
    """The same forward + MSE + backward in PyTorch (optionally torch.compile) on ``device``."""
    import torch

    ps = [torch.tensor(p, device=device, requires_grad=True) for p in params]
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)
    act = {"gelu": torch.nn.functional.gelu}.get(activation) or getattr(torch, activation)
    f = mlp(ps, act)
    if compile:
        f = torch.compile(f)

    def step() -> tuple[Any, Any]:
        for p in ps:
            p.grad = None
        d = f(xt) - yt
        loss = (d * d).mean()
        loss.backward()
        return loss, ps[0].grad

    step.params = ps  # type: ignore[attr-defined]
    return step


def jax_step(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, activation: str
             ) -> StepFn:
    """The same forward + MSE + backward in JAX, jitted ``value_and_grad``."""
    import jax
    import jax.numpy as jnp

    act = {"gelu": lambda h: jax.nn.gelu(h, approximate=False)}.get(activation) or getattr(
        jnp, activation, None) or getattr(jax.nn, activation)

    def loss_fn(ps: list[Any], xb: Any, yb: Any) -> Any:
        d = mlp(ps, act)(xb) - yb
        return jnp.mean(d * d)

    vg = jax.jit(jax.value_and_grad(loss_fn))
    ps = [jnp.asarray(p) for p in params]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def step() -> tuple[Any, Any]:
        loss, grads = vg(ps, xj, yj)
        return loss, grads[0]

    return step
