"""SGD with momentum, Nesterov momentum and L2 weight decay (PyTorch's formulas, dampening 0).

    d = g + wd·p;  buf = μ·buf + d (buf = d at the first step);
    u = d + μ·buf (Nesterov) or buf;  p -= lr·u
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gpuchain.nn.buffer import FlatBuffer
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter
from gpuchain.optim.optimizer import Optimizer, check_hyper


class SGD(Optimizer):
    def __init__(self, params: Module | Iterable[Parameter], lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 check_finite: bool = True) -> None:
        check_hyper("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and momentum <= 0:
            raise ValueError(f"SGD: nesterov=True needs momentum > 0, got {momentum}")
        super().__init__(params, check_finite, lr=lr, momentum=momentum,
                         nesterov=bool(nesterov), weight_decay=weight_decay)

    def _new_state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.hyper["momentum"] else ()

    def _new_state(self, buf: FlatBuffer) -> dict[str, Any]:
        # A zero buffer makes the first update buf = 0·μ + d = d, as PyTorch's copy does.
        return {k: buf.xp.zeros(buf.size, dtype=buf.dtype) for k in self._new_state_names()}

    def _update_np(self, p: Any, g: Any, st: dict[str, Any], work: Any, step: int) -> None:
        h = self.hyper
        lr, mu, wd = h["lr"], h["momentum"], h["weight_decay"]
        d = g
        if wd:
            d = np.multiply(p, wd, out=work[0])
            d += g
        u = d
        if mu:
            buf = st["momentum_buffer"]
            buf *= mu
            buf += d
            if h["nesterov"]:
                u = np.multiply(buf, mu, out=work[1])
                u += d
            else:
                u = buf
        t = np.multiply(u, lr, out=work[1])
        p -= t

    def _update_cuda(self, p: Any, g: Any, st: dict[str, Any], step: int) -> None:
        from gpuchain.cuda import kernels

        h = self.hyper
        kernels.sgd_step(p, g, st.get("momentum_buffer"), lr=h["lr"], momentum=h["momentum"],
                         weight_decay=h["weight_decay"], nesterov=h["nesterov"])
