"""One flat array per dtype holding every parameter (each a view), and one for gradients.

With parameters and gradients contiguous, an optimizer step is one vectorized update
(one kernel launch on CUDA) and a future all-reduce is one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.errors import DTypeError, ShapeError
from gpuchain.nn.parameter import Parameter


class FlatBuffer:
    """Parameters of one dtype and device, stored as views of ``data``; gradients as views
    of ``grad`` at the same offsets."""

    def __init__(self, params: Sequence[Parameter], xp: Any = None) -> None:
        if not params:
            raise ValueError("FlatBuffer: no parameters given")
        dtype = params[0].data.dtype
        if xp is None:
            xp = array_module_of(params[0].data)
        for p in params:
            if p.data.dtype != dtype:
                raise DTypeError(f"FlatBuffer: mixed dtypes {dtype} and {p.data.dtype}")
        self.params = list(params)
        self.xp = xp
        self.offsets: list[int] = []
        total = 0
        for p in self.params:
            self.offsets.append(total)
            total += p.data.size
        self.data = xp.empty(total, dtype=dtype)
        self.grad = xp.zeros(total, dtype=dtype)
        for p, off in zip(self.params, self.offsets, strict=False):
            n, shape = p.data.size, p.data.shape
            view = self.data[off:off + n].reshape(shape)
            src = p.data
            if array_module_of(src) is not xp:
                src = xp.asarray(src) if xp is not np else src.get()
            view[...] = src
            p.data = view
            p.grad = None
            p.grad_view = self.grad[off:off + n].reshape(shape)
            p._buffer = self
            p.release_grad_slot()

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def owns(self, p: Parameter) -> bool:
        return p._buffer is self

    def zero_grad(self) -> None:
        """Drop every ``.grad`` and free the slots (the flat gradient is overwritten by the
        next backward, so it need not be cleared)."""
        for p in self.params:
            p.grad = None
            p.release_grad_slot()

    def missing_grads(self, names: dict[int, str] | None = None) -> list[str]:
        return [_name(p, i, names) for i, p in enumerate(self.params) if p.grad is None]

    def check_grads(self, names: dict[int, str] | None = None) -> None:
        """Raise if a gradient is missing or mis-shaped (nothing is changed)."""
        missing = self.missing_grads(names)
        bad = [f"{_name(p, i, names)}: grad {tuple(p.grad.shape)} vs param {tuple(p.shape)}"
               for i, p in enumerate(self.params)
               if p.grad is not None and tuple(p.grad.shape) != tuple(p.shape)]
        problems = []
        if missing:
            problems.append("no gradient for " + ", ".join(missing)
                            + " (call loss.backward() before step())")
        if bad:
            problems.append("mis-shaped gradients: " + "; ".join(bad))
        if problems:
            raise ShapeError("optimizer step: " + ". ".join(problems))

    def gather_grads(self) -> Any:
        """Copy every ``.grad`` that is not already its slot into the flat gradient; return it.
        Call ``check_grads`` first."""
        for p in self.params:
            g = p.grad.data
            if g is not p.grad_view:
                p.grad_view[...] = g
        return self.grad


def _name(p: Parameter, i: int, names: dict[int, str] | None) -> str:
    if names and id(p) in names:
        return names[id(p)]
    return f"param[{i}] {tuple(p.shape)}"


def flatten(params: Iterable[Parameter], xp: Any = None) -> list[FlatBuffer]:
    """Re-home ``params`` into one FlatBuffer per dtype (values kept, order kept)."""
    groups: dict[Any, list[Parameter]] = {}
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"flatten: expected Parameters, got {type(p).__name__}")
        groups.setdefault(p.data.dtype, []).append(p)
    return [FlatBuffer(ps, xp) for ps in groups.values()]
