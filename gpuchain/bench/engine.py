"""Engine overhead (issue #2): a chain of tiny elementwise ops plus backward.

On a 16-element float32 array every op's arithmetic is negligible, so time per op is
what the engine costs: op dispatch, graph recording and the reverse pass. The chain
cycles sin, mul, add, tanh; the figure is (forward + backward) / number of ops.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

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

SUITE = "engine"
WIDTH = 16


def _input() -> np.ndarray:
    return np.linspace(0.1, 1.0, WIDTH, dtype=np.float32)


def gpuchain_chain(n_ops: int, x0: np.ndarray) -> tuple[Any, Any]:
    """Forward n_ops ops then backward; returns (output sum, d sum / dx)."""
    import gpuchain as gc

    x = gc.tensor(x0, requires_grad=True)
    y = x
    for _ in range(n_ops // 4):
        y = gc.tanh(gc.sin(y) * 0.9 + 0.1)
    s = gc.sum(y)
    s.backward()
    return s, x.grad


def torch_chain(n_ops: int, x0: Any) -> tuple[Any, Any]:
    """The same chain in PyTorch eager; returns (output sum, gradient)."""
    import torch

    x = x0.detach().requires_grad_(True)
    y = x
    for _ in range(n_ops // 4):
        y = torch.tanh(torch.sin(y) * 0.9 + 0.1)
    s = y.sum()
    s.backward()
    return s, x.grad


def contenders(cfg: Config, n_ops: int) -> list[Contender]:
    """gpuchain and PyTorch eager over one chain length."""
    import gpuchain as gc

    x0 = _input()
    xg = gc.tensor(x0)._data  # on the selected backend

    def gc_values() -> dict[str, Any]:
        s, g = gpuchain_chain(n_ops, xg)
        return {"out": s, "grad": g}

    out = [Contender("gpuchain", lambda: gpuchain_chain(n_ops, xg), gc_values,
                     sync=synchronizer(cfg, "gpuchain"))]
    torch = peer(cfg, "torch")
    if torch is not None:
        xt = torch.tensor(x0, device=torch_device(cfg))

        def t_values() -> dict[str, Any]:
            s, g = torch_chain(n_ops, xt)
            return {"out": s, "grad": g}

        out.append(Contender("torch eager", lambda: torch_chain(n_ops, xt), t_values,
                             sync=synchronizer(cfg, "torch")))
    return out


def run(cfg: Config) -> SuiteResult:
    """A 1,000-op chain and a long one (100,000 ops; 10,000 with --quick)."""
    res = SuiteResult()
    long_chain = 10_000 if cfg.quick else 100_000
    for n_ops, repeats in ((1_000, cfg.repeats), (long_chain, 1 if cfg.quick else 3)):
        res.add(compare(cfg, SUITE, f"{n_ops:,}-op chain fwd+bwd", contenders(cfg, n_ops),
                        per=n_ops, unit="op", repeats=repeats, warmup=1,
                        extra={"n_ops": n_ops, "width": WIDTH}))
    res.notes.append("engine: per-op = (forward + backward) / ops on a 16-element float32 "
                     "array; target ≤ 1.5x PyTorch eager per op. JAX is left out: jit "
                     "compiles the chain away, and op-by-op JAX is not an engine comparison.")
    if cfg.quick:
        res.notes.append(f"engine: quick run uses a {long_chain:,}-op long chain "
                         "instead of 100,000")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
