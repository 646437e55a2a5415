"""RMSprop, PyTorch's formulas:

    g = g + wd·p;  s = α·s + (1 - α)·g²
    centered:  ḡ = α·ḡ + (1 - α)·g;  d = sqrt(s - ḡ²) + eps     else d = sqrt(s) + eps
    momentum μ > 0:  buf = μ·buf + g/d;  p -= lr·buf             else p -= lr·g/d
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuchain.optim.optimizer import Optimizer, ParamsLike, check_hyper, check_unit


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
    lr : float
        Learning rate (per group, read at every step).
    alpha : float
        Smoothing constant of the squared-gradient average, in [0, 1).
    eps : float
        Added to the denominator.
    weight_decay, momentum : float
        L2 penalty added to the gradient; momentum factor.
    centered : bool
        Normalize by the estimated variance instead of the second moment.
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf.
    """

    _n_work = 2

    def __init__(self, params: ParamsLike, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, check_finite: bool = True) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": bool(centered)}, check_finite)

    @classmethod
    def validate(cls, h: Mapping[str, Any], where: str) -> None:
        check_hyper(where, h, "lr", "eps", "weight_decay", "momentum")
        check_unit(where, h, "alpha")

    def state_names(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        names: tuple[str, ...] = ("square_avg",)
        if group["momentum"]:
            names += ("momentum_buffer",)
        if group["centered"]:
            names += ("grad_avg",)
        return names

    def update(self, xp: Any, p: Any, g: Any, st: dict[str, Any], work: Any, step: int,
               h: Mapping[str, Any]) -> None:
        lr, alpha, eps, wd, mu = h["lr"], h["alpha"], h["eps"], h["weight_decay"], h["momentum"]
        t0, t1 = work[0], work[1]
        if wd:
            g = xp.add(xp.multiply(p, wd, out=t0), g, out=t0)
        s = st["square_avg"]
        s *= alpha
        xp.multiply(g, g, out=t1)
        t1 *= 1.0 - alpha
        s += t1
        if h["centered"]:
            ga = st["grad_avg"]
            ga *= alpha
            xp.multiply(g, 1.0 - alpha, out=t1)
            ga += t1
            xp.multiply(ga, ga, out=t1)
            xp.subtract(s, t1, out=t1)
            xp.sqrt(t1, out=t1)
        else:
            xp.sqrt(s, out=t1)
        t1 += eps
        xp.divide(g, t1, out=t1)
        if mu:
            buf = st["momentum_buffer"]
            buf *= mu
            buf += t1
            xp.multiply(buf, lr, out=t1)
        else:
            t1 *= lr
        p -= t1
