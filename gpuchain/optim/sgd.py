"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (PyTorch's
formulas):

    d = g + wd·p;  buf = μ·buf + (1 - dampening)·d (buf = d at a parameter's first step);
    u = d + μ·buf (Nesterov) or buf;  p -= lr·u
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuchain.optim.optimizer import Optimizer, ParamsLike, check_hyper, check_unit


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (same arguments, same order).

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
    lr : float
        Learning rate (per group: ``param_groups[i]["lr"]``, read at every step).
    momentum : float
        Momentum factor.
    dampening : float
        Dampening of the momentum, in [0, 1): the gradient enters the buffer times
        ``1 - dampening`` (from each parameter's second step on, as PyTorch).
    weight_decay : float
        L2 penalty (added to the gradient).
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf (NonFiniteGradError).
    """

    added_later = {"dampening": 0.0}

    def __init__(self, params: ParamsLike, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 check_finite: bool = True) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": bool(nesterov)},
                         check_finite)

    @classmethod
    def validate(cls, h: Mapping[str, Any], where: str) -> None:
        check_hyper(where, h, "lr", "momentum", "weight_decay")
        check_unit(where, h, "dampening")
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError(f"{where}: nesterov=True needs momentum > 0 and dampening 0, "
                             f"got momentum={h['momentum']}, dampening={h['dampening']}")

    def state_names(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        # A zero buffer makes the first update buf = 0·μ + d = d, as PyTorch's copy does.
        return ("momentum_buffer",) if group["momentum"] else ()

    def update(self, xp: Any, p: Any, g: Any, st: dict[str, Any], work: Any, step: int,
               h: Mapping[str, Any]) -> None:
        lr, mu, wd, damp = h["lr"], h["momentum"], h["weight_decay"], h["dampening"]
        d = g
        if wd:
            d = xp.multiply(p, wd, out=work[0])
            d += g
        u = d
        if mu:
            buf = st["momentum_buffer"]
            buf *= mu
            if damp and step > 1:
                buf += xp.multiply(d, 1.0 - damp, out=work[1])
            else:
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
        if h["dampening"] and h["momentum"]:
            return False  # the kernel has no dampening: the array update runs instead
        from gpuchain.cuda import kernels

        kernels.sgd_step(p, g, st.get("momentum_buffer"), lr=h["lr"], momentum=h["momentum"],
                         weight_decay=h["weight_decay"], nesterov=h["nesterov"])
        return True
