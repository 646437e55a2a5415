"""Fusion on and off: the same MLP train-step body (forward, MSE loss, backward) with
``gc.nn.functional.dense`` (one fused op per layer) and with composed matmul + add +
activation ops, next to PyTorch eager (and torch.compile on GPU) and JAX (jit)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from gpuchain.bench._models import (
    StepFn,
    gpuchain_step,
    jax_step,
    make_batch,
    make_weights,
    torch_step,
)
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

SUITE = "fused"


def configs(cfg: Config) -> list[tuple[tuple[int, ...], int]]:
    """(layer sizes, batch) per case."""
    if cfg.quick:
        return [((256, 256, 256, 10), 128)]
    return [((256, 256, 256, 10), 128), ((784, 1024, 1024, 10), 512)]


def _values_of(step: StepFn) -> Callable[[], dict[str, Any]]:
    """Cross-check values of one step: its loss and the first weight's gradient."""
    def values() -> dict[str, Any]:
        loss, g = step()
        return {"loss": loss, "grad W1": g}

    return values


def contenders(cfg: Config, sizes: tuple[int, ...], batch: int, activation: str
               ) -> list[Contender]:
    """gpuchain fused and composed, PyTorch (eager; compile on a GPU) and JAX."""
    params = make_weights(sizes)
    x, y = make_batch(sizes, batch)
    out = []
    gsync = synchronizer(cfg, "gpuchain")
    for fused, name in ((True, "gpuchain fused dense"), (False, "gpuchain composed ops")):
        step = gpuchain_step(params, x, y, activation, fused)
        out.append(Contender(name, step, _values_of(step), sync=gsync))
    if peer(cfg, "torch") is not None:
        dev = torch_device(cfg)
        variants = [("torch eager", False)] + ([("torch.compile", True)] if dev == "cuda" else [])
        for name, comp in variants:
            step = torch_step(params, x, y, activation, dev, compile=comp)
            out.append(Contender(name, step, _values_of(step),
                                 sync=synchronizer(cfg, "torch")))
    if peer(cfg, "jax") is not None:
        step = jax_step(params, x, y, activation)
        out.append(Contender("jax (jit)", step, _values_of(step),
                             block=lambda r: r[0].block_until_ready()))
    return out


def run(cfg: Config) -> SuiteResult:
    """relu and gelu at each size of :func:`configs`."""
    res = SuiteResult()
    for sizes, batch in configs(cfg):
        for activation in ("relu", "gelu"):
            case = f"{activation} {'-'.join(map(str, sizes))} batch {batch}"
            res.add(compare(cfg, SUITE, case, contenders(cfg, sizes, batch, activation),
                            rtol=2e-3, atol=1e-5,
                            extra={"sizes": sizes, "batch": batch, "activation": activation}))
    res.notes.append("fused: forward + MSE loss + backward, float32, no optimizer update; "
                     "'gpuchain ÷ system' is against the fused dense path. torch.compile "
                     "runs on GPU only.")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
