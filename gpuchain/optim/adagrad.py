"""Adagrad, PyTorch's formulas (step t counted from 1):

    g = g + wd·p;  clr = lr / (1 + (t - 1)·lr_decay);  s = s + g²;  p -= clr·g/(sqrt(s) + eps)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuchain.optim.optimizer import Optimizer, ParamsLike, check_hyper


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``.

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
    lr : float
        Learning rate (per group, read at every step).
    lr_decay : float
        The step size is ``lr / (1 + (t - 1)·lr_decay)``.
    weight_decay : float
        L2 penalty added to the gradient.
    initial_accumulator_value : float
        Starting value of the squared-gradient sum.
    eps : float
        Added to the denominator.
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf.
    """

    def __init__(self, params: ParamsLike, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, check_finite: bool = True) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps}, check_finite)

    @classmethod
    def validate(cls, h: Mapping[str, Any], where: str) -> None:
        check_hyper(where, h, "lr", "lr_decay", "weight_decay", "initial_accumulator_value",
                    "eps")

    def state_names(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def init_state(self, name: str, xp: Any, size: int, dtype: Any,
                   group: Mapping[str, Any]) -> Any:
        return xp.full(size, group["initial_accumulator_value"], dtype=dtype)

    def update(self, xp: Any, p: Any, g: Any, st: dict[str, Any], work: Any, step: int,
               h: Mapping[str, Any]) -> None:
        t0, t1 = work[0], work[1]
        if h["weight_decay"]:
            g = xp.add(xp.multiply(p, h["weight_decay"], out=t0), g, out=t0)
        clr = h["lr"] / (1.0 + (step - 1) * h["lr_decay"])
        s = st["sum"]
        xp.multiply(g, g, out=t1)
        s += t1
        xp.sqrt(s, out=t1)
        t1 += h["eps"]
        xp.divide(g, t1, out=t1)
        t1 *= clr
        p -= t1
