"""gc.nn.utils: gradient clipping and parameter <-> vector conversion, as torch.nn.utils.

Gradients of parameters lying back to back in a flat buffer are handled as one array:
clipping a model's gradients is one reduction and one in-place scaling over its flat
gradient buffer (a gradient held outside its slot is first copied into it, and ``.grad``
then refers to the slot).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import NonFiniteGradError, ShapeError
from gpuchain.nn.buffer import contiguous_runs
from gpuchain.nn.module import Module

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def _tensors(parameters: Any, where: str) -> list[Tensor]:
    if isinstance(parameters, Module):
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    out = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: item {i} is a {type(p).__name__}, not a Tensor")
        out.append(p)
    return out


def _grad_arrays(parameters: Any, where: str) -> list[Any]:
    """One 1-D array per run of gradients (views of flat gradient buffers where possible);
    writing into them writes the parameters' ``.grad``."""
    with_grad = [p for p in _tensors(parameters, where) if p.grad is not None]
    for p in with_grad:
        g = p.grad
        if g is not None and tuple(g.shape) != tuple(p.shape):
            raise ShapeError(f"{where}: grad {tuple(g.shape)} does not match its "
                             f"parameter {tuple(p.shape)}")
    arrays = []
    for buf, lo, hi, run in contiguous_runs(with_grad):
        if buf is None:
            p = run[0]
            g = p.grad._data
            if not g.flags.c_contiguous or g is p._data:
                g = array_module_of(g).ascontiguousarray(g).copy()
                p.grad = Tensor(g)
            arrays.append(g.reshape(-1))
            continue
        for p in run:
            if p.grad._data is not p.grad_view:
                p.grad_view[...] = p.grad._data
                p.grad = Tensor(p.grad_view)
                p._slot_free = False
        arrays.append(buf.grad[lo:hi])
    return arrays


def _norm(xp: Any, g: Any, norm_type: float) -> float:
    if norm_type == 2:
        return float(xp.sqrt(xp.dot(g, g))) if g.dtype != np.float16 else float(
            xp.sqrt(xp.sum(g.astype(np.float32) ** 2)))
    if math.isinf(norm_type):
        return float(xp.abs(g).max()) if g.size else 0.0
    return float(xp.sum(xp.abs(g.astype(np.float64)) ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their joint ``norm_type``
    norm is at most ``max_norm``; return the norm before clipping (a 0-d float64 Tensor).

    Parameters
    ----------
    parameters : module, Tensor or iterable of Tensors
        Tensors whose ``.grad`` is clipped (those without a gradient are skipped).
    max_norm : float
        Largest allowed norm.
    norm_type : float
        Order of the norm (``float('inf')`` for the largest absolute value).
    error_if_nonfinite : bool
        Raise NonFiniteGradError (and change nothing) when the norm is NaN or Inf.
    """
    where = "clip_grad_norm_"
    norm_type = float(norm_type)
    if not (max_norm >= 0) or not (norm_type > 0):
        raise ValueError(f"{where}: need max_norm >= 0 and norm_type > 0, got {max_norm}, "
                         f"{norm_type}")
    arrays = _grad_arrays(parameters, where)
    if not arrays:
        return Tensor(np.asarray(0.0))
    norms = [_norm(array_module_of(g), g, norm_type) for g in arrays]
    if math.isinf(norm_type):
        total = max(norms)
    elif norm_type == 2:
        total = math.sqrt(math.fsum(n * n for n in norms))
    else:
        total = math.fsum(n ** norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteGradError(f"{where}: the total gradient norm is {total}; gradients "
                                 "were left unchanged")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in arrays:
            g *= g.dtype.type(coef)
    return Tensor(np.asarray(total))


def clip_grad_value_(parameters: Any, clip_value: float) -> None:
    """Clip every gradient of ``parameters`` into [-clip_value, clip_value], in place.

    Parameters
    ----------
    parameters : module, Tensor or iterable of Tensors
        Tensors whose ``.grad`` is clipped (those without a gradient are skipped).
    clip_value : float
        Largest allowed absolute value (>= 0).
    """
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value!r}")
    for g in _grad_arrays(parameters, "clip_grad_value_"):
        array_module_of(g).clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters: Iterable[Tensor] | Module) -> Tensor:
    """The parameters' values concatenated into one new 1-D Tensor (a copy).

    Parameters
    ----------
    parameters : module or iterable of Tensors
    """
    ps = _tensors(parameters, "parameters_to_vector")
    if not ps:
        raise ValueError("parameters_to_vector: got no parameters")
    xp = array_module_of(ps[0]._data)
    return Tensor(xp.concatenate([p._data.reshape(-1) for p in ps]))


def vector_to_parameters(vec: Any, parameters: Iterable[Tensor] | Module) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters, in place.

    Parameters
    ----------
    vec : Tensor or array
        As many values as the parameters hold together.
    parameters : module or iterable of Tensors
    """
    ps = _tensors(parameters, "vector_to_parameters")
    v = vec if isinstance(vec, Tensor) else coerce_inputs((vec,))[0]
    total = sum(int(p.size) for p in ps)
    if v.ndim != 1 or v.size != total:
        raise ShapeError(f"vector_to_parameters: expected a vector of {total} values, got "
                         f"shape {tuple(v.shape)}")
    off = 0
    for p in ps:
        n = int(p.size)
        p.data[...] = v._data[off:off + n].reshape(p.shape)
        off += n
