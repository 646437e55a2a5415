"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay),
PyTorch's formulas with bias correction, step t counted from 1:

    AdamW only: p *= 1 - lr·wd          Adam only: g = g + wd·p
    m = m + (1 - β1)(g - m);  v = β2·v + (1 - β2)·g²
    p -= lr/(1 - β1ᵗ) · m / (sqrt(v)/sqrt(1 - β2ᵗ) + eps)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from gpuchain.nn.buffer import FlatBuffer
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter
from gpuchain.optim.optimizer import Optimizer, check_hyper


class Adam(Optimizer):
    decoupled = False
    _n_work = 2

    def __init__(self, params: Module | Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, check_finite: bool = True) -> None:
        beta1, beta2 = (float(b) for b in betas)
        name = type(self).__name__
        check_hyper(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"{name}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, check_finite, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                         weight_decay=weight_decay)

    def _new_state_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _new_state(self, buf: FlatBuffer) -> dict[str, Any]:
        return {k: buf.xp.zeros(buf.size, dtype=buf.dtype) for k in self._new_state_names()}

    def _update_np(self, p: Any, g: Any, st: dict[str, Any], work: Any, step: int) -> None:
        h = self.hyper
        lr, b1, b2, eps, wd = h["lr"], h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        t0, t1 = work[0], work[1]
        if wd and self.decoupled:
            p *= 1.0 - lr * wd
        elif wd:
            g = np.add(np.multiply(p, wd, out=t0), g, out=t0)
        np.subtract(g, m, out=t1)
        t1 *= 1.0 - b1
        m += t1
        v *= b2
        np.multiply(g, g, out=t1)
        t1 *= 1.0 - b2
        v += t1
        # m/(sqrt(v)/c2 + eps) = c2·m/(sqrt(v) + eps·c2) with c2 = sqrt(1 - β2ᵗ): one pass less
        c2 = math.sqrt(1.0 - b2 ** step)
        np.sqrt(v, out=t1)
        t1 += eps * c2
        np.divide(m, t1, out=t1)
        t1 *= lr * c2 / (1.0 - b1 ** step)
        p -= t1

    def _update_cuda(self, p: Any, g: Any, st: dict[str, Any], step: int) -> None:
        from gpuchain.cuda import kernels

        h = self.hyper
        kernels.adam_step(p, g, st["exp_avg"], st["exp_avg_sq"], lr=h["lr"], beta1=h["beta1"],
                          beta2=h["beta2"], eps=h["eps"], weight_decay=h["weight_decay"],
                          step=step, decoupled=self.decoupled)


class AdamW(Adam):
    decoupled = True

    def __init__(self, params: Module | Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, check_finite: bool = True) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, check_finite)
