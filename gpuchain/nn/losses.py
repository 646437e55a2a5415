"""Loss functions: mse_loss, cross_entropy (one fused op) and
binary_cross_entropy_with_logits (stable composition)."""

from __future__ import annotations

from typing import Any

import numpy as np

import gpuchain.ops as gops
from gpuchain.backend import array_module_of
from gpuchain.engine.op import defop
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.ops._rules import const_like

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return gops.mean(loss)
    if reduction == "sum":
        return gops.sum(loss)
    return loss


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _same_shape_pair(op: str, names: tuple[str, str], a: Any, b: Any,
                     reduction: str) -> tuple[Tensor, Tensor]:
    """The checked prelude of an elementwise loss: the reduction is valid and the two
    operands (as Tensors) have one shape."""
    _check_reduction(op, reduction)
    a, b = coerce_inputs((a, b))
    if a.shape != b.shape:
        raise ShapeError(f"{op}: {names[0]} {a.dtype}{tuple(a.shape)} and {names[1]} "
                         f"{b.dtype}{tuple(b.shape)} must have the same shape")
    return a, b


def mse_loss(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """The squared error (pred - target)².

    Parameters
    ----------
    pred, target : Tensor or array_like
        Same shape.
    reduction : {"mean", "sum", "none"}
        Average, sum, or keep the per-element losses.

    Returns
    -------
    Tensor
        The loss (a scalar unless ``reduction="none"``).
    """
    pred, target = _same_shape_pair("mse_loss", ("pred", "target"), pred, target, reduction)
    d = pred - target
    return _reduce(d * d, reduction)


def binary_cross_entropy_with_logits(logits: Any, targets: Any,
                                     reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``logits`` against probabilities ``targets``.

    -[t log σ(x) + (1 - t) log(1 - σ(x))], computed as softplus(x) - t·x, which never
    overflows.

    Parameters
    ----------
    logits : Tensor or array_like
        Unnormalized log-odds x.
    targets : Tensor or array_like
        Targets t in [0, 1], the shape of ``logits``.
    reduction : {"mean", "sum", "none"}
        Average, sum, or keep the per-element losses.

    Returns
    -------
    Tensor
        The loss (a scalar unless ``reduction="none"``).
    """
    logits, targets = _same_shape_pair("binary_cross_entropy_with_logits",
                                       ("logits", "targets"), logits, targets, reduction)
    if targets.dtype != logits.dtype:
        targets = targets.astype(logits.dtype)
    return _reduce(gops.softplus(logits) - logits * targets, reduction)


# --- fused softmax cross-entropy ------------------------------------------------------------

@defop("cross_entropy", save="inputs", residuals=True)
def cross_entropy_op(xp: Any, logits: Any, labels: Any) -> tuple[Any, Any]:
    """Per-row loss logsumexp(logits) - logits[label]; residual: the softmax probabilities."""
    m = logits.max(axis=-1, keepdims=True)
    probs = logits - m
    picked = np.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    xp.exp(probs, out=probs)
    s = probs.sum(axis=-1, keepdims=True)
    loss = xp.log(s[:, 0]) - picked
    probs /= s
    return loss, probs


@cross_entropy_op.cuda
def _(xp: Any, logits: Any, labels: Any) -> tuple[Any, Any]:
    from gpuchain.cuda import kernels

    logits = xp.ascontiguousarray(logits)
    loss = xp.empty(logits.shape[0], dtype=logits.dtype)
    probs = xp.empty_like(logits)
    kernels.softmax_xent_forward(logits, xp.ascontiguousarray(labels), loss, probs)
    return loss, probs


def _onehot(logits: Tensor, labels: Any) -> Tensor:
    xp = array_module_of(logits._data)
    oh = xp.zeros(logits.shape, dtype=logits.dtype)
    oh[xp.arange(labels.shape[0]), labels] = 1
    return const_like(oh, logits)


@cross_entropy_op.vjp
def _(ctx: Any, g: Tensor) -> tuple[Tensor | None, None]:
    logits, labels = ctx.inputs
    diff = gops.softmax(logits, axis=-1) - _onehot(logits, labels._data)
    return diff * g.reshape(g.shape + (1,)), None


@cross_entropy_op.raw_vjp(fresh=(0,))
def _(ctx: Any, g: Any) -> tuple[Any, None]:
    labels = ctx.inputs[1]._data
    xp = array_module_of(g)
    if xp is np:
        d = ctx.residuals.copy()
        d[np.arange(d.shape[0]), labels] -= 1
        d *= g[:, None]
    else:
        from gpuchain.cuda import kernels

        d = xp.empty_like(ctx.residuals)
        kernels.softmax_xent_backward(ctx.residuals, labels, xp.ascontiguousarray(g), d)
    return d, None


@cross_entropy_op.jvp
def _(ctx: Any, tangents: list[Tensor | None]) -> Tensor | None:
    ldot = tangents[0]
    if ldot is None:
        return None
    logits, labels = ctx.inputs
    return (ldot * (gops.softmax(logits, axis=-1) - _onehot(logits, labels._data))).sum(axis=-1)


def cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy, fused into one op (stable log-sum-exp).

    Parameters
    ----------
    logits : Tensor, shape (batch, classes)
        Unnormalized scores.
    labels : array_like of int, shape (batch,)
        Class indices in [0, classes).
    reduction : {"mean", "sum", "none"}
        Average, sum, or keep the per-row losses.

    Returns
    -------
    Tensor
        The loss. Its gradient with respect to ``logits`` is (softmax - onehot)·g.
    """
    _check_reduction("cross_entropy", reduction)
    logits, labels = coerce_inputs((logits, labels))
    desc = (f"logits {logits.dtype}{tuple(logits.shape)}, labels "
            f"{labels.dtype}{tuple(labels.shape)}")
    if logits.dtype.kind != "f":
        raise DTypeError(f"cross_entropy: logits must be floating; got {desc}")
    if labels.dtype.kind not in "iu":
        raise DTypeError(f"cross_entropy: labels must be integer class indices (int32 or "
                         f"int64); got {desc}")
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ShapeError(f"cross_entropy: expected logits (batch, classes) and labels "
                         f"(batch,); got {desc}")
    if labels._data.dtype not in (np.int32, np.int64):
        labels = Tensor(labels._data.astype(np.int64))
    n = logits.shape[1]
    if labels.size:
        lo, hi = int(labels._data.min()), int(labels._data.max())
        if lo < 0 or hi >= n:
            raise ShapeError(f"cross_entropy: labels must lie in [0, {n}) for {n} classes; "
                             f"found values in [{lo}, {hi}] ({desc})")
    return _reduce(cross_entropy_op(logits, labels), reduction)
