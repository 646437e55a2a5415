"""SGD with momentum, Nesterov momentum and L2 weight decay (PyTorch's formulas, dampening 0).

    d = g + wd·p;  buf = μ·buf + d (buf = d at the first step);
    u = d + μ·buf (Nesterov) or buf;  p -= lr·u
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuchain.optim.optimizer import Optimizer, ParamsLike, check_hyper


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` with ``dampening=0``.

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
    lr : float
        Learning rate (per group: ``param_groups[i]["lr"]``, read at every step).
    momentum, weight_decay : float
        Momentum factor and L2 penalty (added to the gradient).
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0``).
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf (NonFiniteGradError).
    """

    def __init__(self, params: ParamsLike, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 check_finite: bool = True) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": bool(nesterov),
                                  "weight_decay": weight_decay}, check_finite)

    @classmethod
    def validate(cls, h: Mapping[str, Any], where: str) -> None:
        check_hyper(where, h, "lr", "momentum", "weight_decay")
        if h["nesterov"] and h["momentum"] <= 0:
            raise ValueError(f"{where}: nesterov=True needs momentum > 0, got {h['momentum']}")

    def state_names(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        # A zero buffer makes the first update buf = 0·μ + d = d, as PyTorch's copy does.
        return ("momentum_buffer",) if group["momentum"] else ()

    def update(self, xp: Any, p: Any, g: Any, st: dict[str, Any], work: Any, step: int,
               h: Mapping[str, Any]) -> None:
        lr, mu, wd = h["lr"], h["momentum"], h["weight_decay"]
        d = g
        if wd:
            d = xp.multiply(p, wd, out=work[0])
            d += g
        u = d
        if mu:
            buf = st["momentum_buffer"]
            buf *= mu
            buf += d
            if h["nesterov"]:
                u = xp.multiply(buf, mu, out=work[1])
                u += d
            else:
                u = buf
        t = xp.multiply(u, lr, out=work[1])
        p -= t

    def fused(self, p: Any, g: Any, st: dict[str, Any], step: int,
              h: Mapping[str, Any]) -> bool:
        from gpuchain.cuda import kernels

        kernels.sgd_step(p, g, st.get("momentum_buffer"), lr=h["lr"], momentum=h["momentum"],
                         weight_decay=h["weight_decay"], nesterov=h["nesterov"])
        return True
