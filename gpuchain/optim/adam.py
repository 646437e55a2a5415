"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay),
PyTorch's formulas with bias correction, step t counted from 1:

    AdamW only: p *= 1 - lr·wd          Adam only: g = g + wd·p
    m = m + (1 - β1)(g - m);  v = β2·v + (1 - β2)·g²
    p -= lr/(1 - β1ᵗ) · m / (sqrt(v)/sqrt(1 - β2ᵗ) + eps)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpuchain.optim.optimizer import Optimizer, ParamsLike, check_hyper, check_unit


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``amsgrad=False``).

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
    lr : float
        Learning rate (per group, read at every step).
    betas : (float, float)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float
        Added to the denominator.
    weight_decay : float
        L2 penalty added to the gradient (Adam) or decoupled decay (AdamW).
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf.
    """

    decoupled = False

    def __init__(self, params: ParamsLike, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, check_finite: bool = True) -> None:
        super().__init__(params, {"lr": lr, "betas": _pair(betas, type(self).__name__),
                                  "eps": eps, "weight_decay": weight_decay}, check_finite)

    @classmethod
    def validate(cls, h: Mapping[str, Any], where: str) -> None:
        check_hyper(where, h, "lr", "eps", "weight_decay")
        betas = h["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{where}: betas must be a pair of numbers, got {betas!r}")
        check_unit(where, {"betas[0]": betas[0], "betas[1]": betas[1]}, "betas[0]", "betas[1]")

    def state_names(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def update(self, xp: Any, p: Any, g: Any, st: dict[str, Any], work: Any, step: int,
               h: Mapping[str, Any]) -> None:
        lr, (b1, b2), eps, wd = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        t0, t1 = work[0], work[1]
        if wd and self.decoupled:
            p *= 1.0 - lr * wd
        elif wd:
            g = xp.add(xp.multiply(p, wd, out=t0), g, out=t0)
        xp.subtract(g, m, out=t1)
        t1 *= 1.0 - b1
        m += t1
        v *= b2
        xp.multiply(g, g, out=t1)
        t1 *= 1.0 - b2
        v += t1
        # m/(sqrt(v)/c2 + eps) = c2·m/(sqrt(v) + eps·c2) with c2 = sqrt(1 - β2ᵗ): one pass less
        c2 = math.sqrt(1.0 - b2 ** step)
        xp.sqrt(v, out=t1)
        t1 += eps * c2
        xp.divide(m, t1, out=t1)
        t1 *= lr * c2 / (1.0 - b1 ** step)
        p -= t1

    def fused(self, p: Any, g: Any, st: dict[str, Any], step: int,
              h: Mapping[str, Any]) -> bool:
        from gpuchain.cuda import kernels

        b1, b2 = h["betas"]
        kernels.adam_step(p, g, st["exp_avg"], st["exp_avg_sq"], lr=h["lr"], beta1=b1,
                          beta2=b2, eps=h["eps"], weight_decay=h["weight_decay"], step=step,
                          decoupled=self.decoupled)
        return True


class AdamW(Adam):
    """AdamW (decoupled weight decay ``p *= 1 - lr·wd``), as ``torch.optim.AdamW``.

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
    lr : float
        Learning rate (per group, read at every step).
    betas : (float, float)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float
        Added to the denominator.
    weight_decay : float
        Decoupled decay rate.
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf.
    """

    decoupled = True

    def __init__(self, params: ParamsLike, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, check_finite: bool = True) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, check_finite)


def _pair(betas: Any, name: str) -> Any:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"{name}: betas must be a pair of numbers, got {betas!r}") from None
    return (b1, b2)
