"""Jacobians (issue #3): a tanh MLP 64→256→256→64, same weights in every system.

- one sample: the 64×64 input Jacobian;
- 128 samples: per-sample Jacobians, shape (128, 64, 64) (``batch_axis=0`` in gpuchain,
  ``vmap`` in torch.func and JAX).

Each case runs in reverse mode (gpuchain ``jacobian``, ``torch.func.jacrev``,
``jax.jacrev``) and forward mode (``jacfwd`` in all three); JAX functions are jitted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from gpuchain.bench._models import make_weights, mlp
from gpuchain.bench._runner import (
    Config,
    Contender,
    SuiteResult,
    compare,
    peer,
    run_single_suite,
    synchronizer,
    torch_device,
)

SUITE = "jacobian"
SIZES = (64, 256, 256, 64)
BATCH = 128


def _gpuchain(cfg: Config, params: list[np.ndarray], mode: str, batched: bool
              ) -> Callable[[Any], Any]:
    import gpuchain as gc

    f = mlp([gc.tensor(p) for p in params], gc.tanh)
    jac = gc.jacobian if mode == "rev" else gc.jacfwd
    axis = 0 if batched else None
    return lambda x: jac(f, x, batch_axis=axis)


def _torch(params: list[np.ndarray], device: str, mode: str, batched: bool
           ) -> Callable[[Any], Any]:
    import torch
    from torch import func

    f = mlp([torch.tensor(p, device=device) for p in params], torch.tanh)
    j = func.jacrev(f) if mode == "rev" else func.jacfwd(f)
    return func.vmap(j) if batched else j


def _jax(params: list[np.ndarray], mode: str, batched: bool) -> Callable[[Any], Any]:
    import jax
    import jax.numpy as jnp

    f = mlp([jnp.asarray(p) for p in params], jnp.tanh)
    j = jax.jacrev(f) if mode == "rev" else jax.jacfwd(f)
    return jax.jit(jax.vmap(j) if batched else j)


def contenders(cfg: Config, params: list[np.ndarray], x: np.ndarray, mode: str,
               batched: bool) -> list[Contender]:
    """gpuchain, torch.func and JAX for one mode (rev/fwd), batched or not."""
    import gpuchain as gc

    names = {"rev": ("gpuchain jacobian", "torch.func jacrev", "jax jacrev (jit)"),
             "fwd": ("gpuchain jacfwd", "torch.func jacfwd", "jax jacfwd (jit)")}[mode]
    vm = " + vmap" if batched else ""
    xg = gc.tensor(x)
    fg = _gpuchain(cfg, params, mode, batched)
    out = [Contender(names[0], lambda: fg(xg), lambda: {"jac": fg(xg)},
                     sync=synchronizer(cfg, "gpuchain"))]
    torch = peer(cfg, "torch")
    if torch is not None:
        dev = torch_device(cfg)
        xt = torch.tensor(x, device=dev)
        ft = _torch(params, dev, mode, batched)
        out.append(Contender(names[1] + vm, lambda: ft(xt), lambda: {"jac": ft(xt)},
                             sync=synchronizer(cfg, "torch")))
    if peer(cfg, "jax") is not None:
        import jax.numpy as jnp

        xj = jnp.asarray(x)
        fj = _jax(params, mode, batched)
        out.append(Contender(names[2] + vm, lambda: fj(xj), lambda: {"jac": fj(xj)},
                             block=lambda r: r.block_until_ready()))
    return out


def run(cfg: Config) -> SuiteResult:
    """One-sample and per-sample Jacobians, reverse and forward mode."""
    res = SuiteResult()
    params = make_weights(SIZES)
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal(SIZES[0]).astype(np.float32)
    xb = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    for batched, x, label in ((False, x1, "1 sample 64x64"),
                              (True, xb, f"{BATCH} per-sample 64x64")):
        for mode in ("rev", "fwd"):
            case = f"{label}, {'reverse' if mode == 'rev' else 'forward'}"
            res.add(compare(cfg, SUITE, case, contenders(cfg, params, x, mode, batched),
                            rtol=1e-4, atol=1e-4,
                            extra={"sizes": SIZES, "batch": BATCH if batched else 1}))
    res.notes.append("jacobian: tanh MLP 64→256→256→64 (linear output), float32, same "
                     "weights everywhere; JAX timings exclude the one-off jit compile "
                     "(warm-up).")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
