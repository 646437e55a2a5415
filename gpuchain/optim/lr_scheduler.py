"""Learning-rate schedulers, as ``torch.optim.lr_scheduler`` (same formulas, same order
of floating-point operations, so runs match PyTorch step for step).

A scheduler writes ``optimizer.param_groups[i]["lr"]`` (the optimizer reads it at every
step). Call ``scheduler.step()`` once per epoch or iteration, after ``optimizer.step()``.
``state_dict()`` holds only numbers, lists and strings, so it goes into ``gc.save``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from gpuchain.errors import OptimizerStateError
from gpuchain.optim.optimizer import Optimizer

__all__ = ["ConstantLR", "CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR",
           "LinearLR", "MultiStepLR", "MultiplicativeLR", "OneCycleLR", "ReduceLROnPlateau",
           "SequentialLR", "StepLR"]


def _check_optimizer(optimizer: Any, name: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name}: expected a gpuchain optimizer, got {type(optimizer).__name__}")


def _positive(name: str, what: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else \
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        kind = "a positive int" if integer else "a finite number > 0"
        raise ValueError(f"{name}: {what} must be {kind}, got {value!r}")


class LRScheduler:
    """Base class of the step schedulers: ``get_lr()`` gives the learning rates for
    ``last_epoch``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    _closed_form = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, type(self).__name__)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param group {i} has no "
                                   "'initial_lr' (needed when resuming with last_epoch)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per param group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (or jump to ``epoch``, using the closed form where one exists)
        and write the new learning rates into the optimizer's param groups."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._get_closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (numbers, lists, strings)."""
        return {k: _plain(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state_dict taken from a scheduler of the same type and settings."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise OptimizerStateError(f"{name}: expected a mapping, got {type(state).__name__}")
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise OptimizerStateError(f"{name}: missing keys {missing}, unexpected keys "
                                      f"{extra}. Nothing was loaded.")
        for k, v in state.items():
            self.__dict__[k] = _restore(v, self.__dict__[k])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _restore(v: Any, like: Any) -> Any:
    if isinstance(like, tuple):
        return tuple(v)
    return v


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    step_size : int
        Steps between decays.
    gamma : float
        Decay factor.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    _closed_form = True

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        _positive("StepLR", "step_size", step_size, integer=True)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone (one listed k times
    multiplies by gammaᵏ).

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    milestones : sequence of int
        Step indices.
    gamma : float
        Decay factor.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        ms = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) for m in ms):
            raise ValueError(f"MultiStepLR: milestones must be ints, got {milestones!r}")
        self.milestones = sorted(ms)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        count = self.milestones.count(self.last_epoch)
        if count == 0:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma ** count for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        k = bisect_right(self.milestones, self.last_epoch)
        return [b * self.gamma ** k for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at every step.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    gamma : float
        Decay factor.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base lr down to ``eta_min`` over ``T_max`` steps (and back up,
    periodically, past it), in PyTorch's recursive form.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    T_max : int
        Steps of a half period.
    eta_min : float
        Lowest learning rate.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        _positive("CosineAnnealingLR", "T_max", T_max, integer=True)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, t, T = self.optimizer.param_groups, self.last_epoch, self.T_max  # noqa: N806
        if t == 0:
            return [g["lr"] for g in groups]
        if self._step_count == 1 and t > 0:
            return [self.eta_min + (b - self.eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for b in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (b - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for b, g in zip(self.base_lrs, groups, strict=True)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (g["lr"] - self.eta_min) + self.eta_min for g in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (b - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for b in self.base_lrs]


class _Lambdas(LRScheduler):
    """A scheduler driven by one function of the step per param group (the functions
    are not part of ``state_dict``: a resumed scheduler is built with them again)."""

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        name = type(self).__name__
        _check_optimizer(optimizer, name)
        n = len(optimizer.param_groups)
        fns: list[Callable[[int], float]] = list(lr_lambda) if isinstance(
            lr_lambda, (list, tuple)) else [cast("Callable[[int], float]", lr_lambda)] * n
        if len(fns) != n or not all(callable(f) for f in fns):
            raise ValueError(f"{name}: lr_lambda must be a function or a list of {n} "
                             f"functions (one per param group), got {lr_lambda!r}")
        self.lr_lambdas = fns
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer and the functions (numbers, lists, strings)."""
        state = super().state_dict()
        del state["lr_lambdas"]
        return state


class LambdaLR(_Lambdas):
    """The base learning rate times ``lr_lambda(step)``, as PyTorch's ``LambdaLR``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    lr_lambda : function of the step, or a list of them (one per param group)
        The factor at each step.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def get_lr(self) -> list[float]:
        return [b * f(self.last_epoch) for f, b in zip(self.lr_lambdas, self.base_lrs,
                                                       strict=True)]


class MultiplicativeLR(_Lambdas):
    """The learning rate multiplied by ``lr_lambda(step)`` at every step after the first,
    as PyTorch's ``MultiplicativeLR``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    lr_lambda : function of the step, or a list of them (one per param group)
        The factor applied at each step.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self._step_count == 1:  # the step the constructor takes
            return [g["lr"] for g in groups]
        return [g["lr"] * f(self.last_epoch) for f, g in zip(self.lr_lambdas, groups,
                                                             strict=True)]


class ConstantLR(LRScheduler):
    """The base learning rate times ``factor`` for the first ``total_iters`` steps, then
    the base learning rate, as PyTorch's ``ConstantLR``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    factor : float
        The factor, in (0, 1].
    total_iters : int
        Steps at the reduced rate.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    _closed_form = True

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or \
                not 0 < factor <= 1:
            raise ValueError(f"ConstantLR: factor must lie in (0, 1], got {factor!r}")
        _positive("ConstantLR", "total_iters", total_iters, integer=True)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [g["lr"] * self.factor for g in groups]
        if self.last_epoch != self.total_iters:
            return [g["lr"] for g in groups]
        return [g["lr"] * (1.0 / self.factor) for g in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Warm-up: the factor goes linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps, then stays.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    start_factor, end_factor : float
        Factors of the base learning rate at the first and the last step.
    total_iters : int
        Steps of the ramp.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: need 0 < start_factor <= 1 and 0 <= end_factor <= 1, "
                             f"got {start_factor}, {end_factor}")
        _positive("LinearLR", "total_iters", total_iters, integer=True)
        self.start_factor, self.end_factor, self.total_iters = (start_factor, end_factor,
                                                                total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, t = self.optimizer.param_groups, self.last_epoch
        if t == 0:
            return [g["lr"] * self.start_factor for g in groups]
        if t > self.total_iters:
            return [g["lr"] for g in groups]
        d = self.end_factor - self.start_factor
        return [g["lr"] * (1.0 + d / (self.total_iters * self.start_factor + (t - 1) * d))
                for g in groups]

    def _get_closed_form_lr(self) -> list[float]:
        f = self.start_factor + (self.end_factor - self.start_factor) * min(
            self.total_iters, self.last_epoch) / self.total_iters
        return [b * f for b in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up to ``max_lr``, anneal to ``max_lr / div_factor /
    final_div_factor``; momentum (or Adam's β1) cycles the other way.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    max_lr : float or sequence of float
        Peak learning rate (per group).
    total_steps : int, optional
        Length of the cycle; or give ``epochs`` and ``steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
    pct_start : float
        Fraction of the cycle spent warming up.
    anneal_strategy : {"cos", "linear"}
    cycle_momentum : bool
        Cycle the momentum (SGD) or beta1 (Adam) too.
    base_momentum, max_momentum : float
        Momentum range.
    div_factor : float
        Initial lr = max_lr / div_factor.
    final_div_factor : float
        Final lr = initial lr / final_div_factor.
    three_phase : bool
        Warm up, come back down to the initial lr, then anneal.
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, "OneCycleLR")
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            _positive("OneCycleLR", "epochs", epochs, integer=True)
            _positive("OneCycleLR", "steps_per_epoch", steps_per_epoch, integer=True)
            total_steps = epochs * steps_per_epoch
        _positive("OneCycleLR", "total_steps", total_steps, integer=True)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must lie in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)
        groups = optimizer.param_groups
        if three_phase:
            # [end step, lr start key, lr end key, momentum start key, momentum end key]
            self._schedule_phases: list[list[Any]] = [
                [float(pct_start * total_steps) - 1, "initial_lr", "max_lr",
                 "max_momentum", "base_momentum"],
                [float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr",
                 "base_momentum", "max_momentum"],
                [total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self._schedule_phases = [
                [float(pct_start * total_steps) - 1, "initial_lr", "max_lr",
                 "max_momentum", "base_momentum"],
                [total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]
        max_lrs = _per_group(max_lr, len(groups), "max_lr")
        if last_epoch == -1:
            for lr, g in zip(max_lrs, groups, strict=True):
                g["initial_lr"] = lr / div_factor
                g["max_lr"] = lr
                g["min_lr"] = g["initial_lr"] / final_div_factor
        if self.cycle_momentum:
            if "momentum" not in groups[0] and "betas" not in groups[0]:
                raise ValueError("OneCycleLR: cycle_momentum=True needs an optimizer with "
                                 "'momentum' or 'betas'")
            self._use_beta1 = "betas" in groups[0]
            bases = _per_group(base_momentum, len(groups), "base_momentum")
            maxes = _per_group(max_momentum, len(groups), "max_momentum")
            if last_epoch == -1:
                for m_max, m_base, g in zip(maxes, bases, groups, strict=True):
                    self._set_momentum(g, m_max)
                    g["max_momentum"] = m_max
                    g["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self._use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, more than total_steps = "
                             f"{self.total_steps}")
        lrs = []
        for g in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._schedule_phases):
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lr = self._anneal(g[lr0], g[lr1], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(g[m0], g[m1], pct)
                    break
                start = end
            lrs.append(lr)
            if self.cycle_momentum:
                self._set_momentum(g, momentum)
        return lrs


def _per_group(value: Any, n: int, what: str) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"OneCycleLR: expected {n} values of {what}, got {len(value)}")
        return list(value)
    return [value] * n


class SequentialLR(LRScheduler):
    """Runs ``schedulers[i]`` between ``milestones[i-1]`` and ``milestones[i]`` (e.g. a
    LinearLR warm-up, then a cosine).

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    schedulers : sequence of LRScheduler
        Step schedulers of the same optimizer.
    milestones : sequence of int
        Steps at which the next scheduler takes over (one fewer than schedulers).
    last_epoch : int
        The index of the last step when resuming (-1: start from the beginning).
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, "SequentialLR")
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, ReduceLROnPlateau):
                raise TypeError(f"SequentialLR: scheduler {i} is a {type(s).__name__}, not a "
                                "step-based scheduler")
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} drives a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers, got {len(milestones)}")
        self._schedulers = schedulers
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"]
        for s in schedulers:
            s.last_epoch -= 1
        schedulers[0]._initial_step()
        self._last_lr = schedulers[0].get_last_lr()

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise TypeError("SequentialLR.step: takes no epoch")
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = {k: _plain(v) for k, v in self.__dict__.items()
                 if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or not isinstance(state.get("_schedulers"), list) \
                or len(state["_schedulers"]) != len(self._schedulers):
            raise OptimizerStateError(f"SequentialLR.load_state_dict: expected a state with "
                                      f"{len(self._schedulers)} scheduler states")
        for s, sd in zip(self._schedulers, state["_schedulers"], strict=True):
            s.load_state_dict(sd)
        for k, v in state.items():
            if k != "_schedulers":
                self.__dict__[k] = v


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a metric has stopped improving for
    ``patience`` steps; call ``step(metric)``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``param_groups[i]["lr"]`` the scheduler writes.
    mode : {"min", "max"}
        Whether lower or higher metrics are better.
    factor : float
        Decay factor, in (0, 1).
    patience : int
        Steps without improvement tolerated.
    threshold : float
        Least change that counts as an improvement.
    threshold_mode : {"rel", "abs"}
        Relative or absolute threshold.
    cooldown : int
        Steps to wait after a reduction.
    min_lr : float or sequence of float
        Lower bound (per group).
    eps : float
        Smaller reductions are skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0.0,
                 eps: float = 1e-8) -> None:
        _check_optimizer(optimizer, "ReduceLROnPlateau")
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must lie in (0, 1), got {factor}")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min'/'max' and threshold_mode "
                             f"'rel'/'abs', got {mode!r}, {threshold_mode!r}")
        self.optimizer = optimizer
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"ReduceLROnPlateau: expected {n} min_lr values, got "
                                 f"{len(min_lr)}")
            self.min_lrs = list(min_lr)
        else:
            self.min_lrs = [min_lr] * n
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _is_better(self, a: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return a < (best * (1.0 - th) if self.threshold_mode == "rel" else best - th)
        return a > (best * (th + 1.0) if self.threshold_mode == "rel" else best + th)

    def step(self, metrics: Any = None) -> None:  # type: ignore[override]
        """Record this step's metric (lower is better in mode 'min')."""
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step: pass the metric, e.g. step(val_loss)")
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, low in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                old = float(g["lr"])
                new = max(old * self.factor, low)
                if old - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]
