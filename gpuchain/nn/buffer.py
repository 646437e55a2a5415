"""One flat array per dtype holding every parameter (each a view), and one for gradients.

With parameters and gradients contiguous, an optimizer step is one vectorized update
(one kernel launch on CUDA), gradient clipping is one reduction and a future all-reduce
is one call.

A gradient a user holds never changes under them: the flat gradient is replaced by a
fresh array at ``zero_grad`` whenever a backward wrote into it (PyTorch's
``set_to_none`` semantics: the next backward writes new memory), instead of being
reused in place. The allocator hands the freed block back, so this costs no copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of
from gpuchain.errors import DTypeError
from gpuchain.nn.parameter import Parameter


class FlatBuffer:
    """Parameters of one dtype and device, stored as views of ``data``; gradients as views
    of ``grad`` at the same offsets.

    Holds no module objects (the array module is read off ``data``), so it pickles and
    deep-copies; a copy's parameters are views of the copy's arrays.

    Parameters
    ----------
    params : sequence of Parameter
        All of one dtype; their data is copied in and they become views.
    xp : module, optional
        numpy or cupy (default: that of the first parameter).
    """

    def __init__(self, params: Sequence[Parameter], xp: Any = None) -> None:
        if not params:
            raise ValueError("FlatBuffer: no parameters given")
        dtype = params[0]._data.dtype
        if xp is None:
            xp = array_module_of(params[0]._data)
        for p in params:
            if p._data.dtype != dtype:
                raise DTypeError(f"FlatBuffer: mixed dtypes {dtype} and {p._data.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("FlatBuffer: a parameter is listed twice")
        self.params = list(params)
        self.offsets: list[int] = []
        total = 0
        for p in self.params:
            self.offsets.append(total)
            total += p._data.size
        data = xp.empty(total, dtype=dtype)
        for p, off in zip(self.params, self.offsets, strict=True):
            src = p._data
            if array_module_of(src) is not xp:
                src = xp.asarray(src) if xp is not np else src.get()
            data[off:off + p._data.size].reshape(p._data.shape)[...] = src
        self.data = data
        self.grad = xp.zeros(total, dtype=dtype)
        self._shapes = [tuple(p._data.shape) for p in self.params]
        self._views: list[Any] = [None] * len(self.params)
        for p in self.params:
            p._buffer = self
            self.bind(p)
            p.grad = None
            p.release_grad_slot()

    # --- views ---------------------------------------------------------------------------
    def bind(self, p: Parameter) -> None:
        """Make ``p.data`` / ``p.grad_view`` views of this buffer at p's offset."""
        i = self._index(p)
        off, shape = self.offsets[i], self._shapes[i]
        n = int(np.prod(shape, dtype=np.int64))
        p._data = self.data[off:off + n].reshape(shape)
        p.grad_view = self.grad[off:off + n].reshape(shape)
        self._views[i] = p._data

    def _index(self, p: Parameter) -> int:
        for i, q in enumerate(self.params):
            if q is p:
                return i
        raise ValueError(f"FlatBuffer: parameter {tuple(p.shape)} is not in this buffer")

    def holds_view(self, p: Parameter) -> bool:
        """True while ``p.data`` is still the view this buffer made for it."""
        views = self._views
        for i, q in enumerate(self.params):
            if q is p:
                return i < len(views) and p._data is views[i]
        return False

    def owns(self, p: Parameter) -> bool:
        return p._buffer is self and self.holds_view(p)

    @property
    def xp(self) -> Any:
        return array_module_of(self.data)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    # --- gradients -----------------------------------------------------------------------
    def zero_grad(self, params: Iterable[Parameter] | None = None,
                  set_to_none: bool = True) -> None:
        """Drop ``.grad`` of ``params`` (default: all) and free their slots. If any of them
        held a gradient written in its slot, the flat gradient becomes a fresh array first,
        so a gradient the user kept is never overwritten by the next backward.
        With ``set_to_none=False`` the gradients become zeros instead of None."""
        chosen = self.params if params is None else [p for p in params if p._buffer is self]
        if any(p.grad is not None and p.grad._data is p.grad_view for p in chosen) or (
                not set_to_none):
            self._fresh_grad()
        for p in chosen:
            if set_to_none:
                p.grad = None
                p.release_grad_slot()
            else:
                from gpuchain.engine.tensor import Tensor

                p.grad_view[...] = 0
                p.grad = Tensor(p.grad_view)
                p._slot_free = False

    def _fresh_grad(self) -> None:
        xp = self.xp
        self.grad = xp.empty(self.size, dtype=self.dtype)
        for p, off, shape in zip(self.params, self.offsets, self._shapes, strict=True):
            if p._buffer is self:
                p.grad_view = self.grad[off:off + int(np.prod(shape, dtype=np.int64))].reshape(
                    shape)

    def gather_grads(self, params: Sequence[Parameter] | None = None) -> Any:
        """Copy every ``.grad`` (of ``params``, default all) that is not already its slot
        into the flat gradient; return the flat gradient (every ``.grad`` must be set)."""
        for p in self.params if params is None else params:
            grad = p.grad
            if grad is None:
                raise ValueError(f"gather_grads: a parameter of shape {tuple(p.shape)} has "
                                 "no .grad (every parameter's .grad must be set)")
            g = grad._data
            if g is not p.grad_view:
                p.grad_view[...] = g
        return self.grad

    # --- pickling ------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params, "offsets": self.offsets, "shapes": self._shapes,
                "data": self.data, "grad": self.grad,
                "bound": [self.holds_view(p) for p in self.params]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.params = state["params"]
        self.offsets = state["offsets"]
        self._shapes = [tuple(s) for s in state["shapes"]]
        self.data = state["data"]
        self.grad = state["grad"]
        self._views = [None] * len(self.params)
        # A parameter restored before this buffer has no data yet; one restored after
        # binds itself (Parameter.__setstate__).
        for p, bound in zip(self.params, state["bound"], strict=True):
            if bound:
                self.bind(p)


def flatten(params: Iterable[Parameter], xp: Any = None) -> list[FlatBuffer]:
    """Re-home ``params`` into one FlatBuffer per dtype (values kept, order kept).

    Parameters
    ----------
    params : iterable of Parameter
    xp : module, optional
        numpy or cupy for the buffers (default: each first parameter's).
    """
    groups: dict[Any, list[Parameter]] = {}
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"flatten: expected Parameters, got {type(p).__name__}")
        groups.setdefault(p._data.dtype, []).append(p)
    return [FlatBuffer(ps, xp) for ps in groups.values()]


def contiguous_runs(params: Iterable[Any]) -> list[tuple[FlatBuffer | None, int, int, list[Any]]]:
    """Split tensors into (buffer, lo, hi, tensors) runs lying back to back in one
    FlatBuffer (``buffer.data[lo:hi]`` covers them), and (None, 0, size, [t]) for each
    tensor outside any flat buffer. Order: loose tensors first, then runs by offset."""
    out: list[tuple[FlatBuffer | None, int, int, list[Any]]] = []
    by_buffer: dict[int, list[tuple[int, Parameter]]] = {}
    for p in params:
        if type(p) is Parameter and p.in_flat_buffer():
            buf = p._buffer
            by_buffer.setdefault(id(buf), []).append((buf.offsets[buf._index(p)], p))
        else:
            out.append((None, 0, int(p.size), [p]))
    for entries in by_buffer.values():
        entries.sort(key=lambda e: e[0])
        buf = entries[0][1]._buffer
        start, end = entries[0][0], entries[0][0]
        run: list[Any] = []
        for off, p in entries:
            if off != end:
                out.append((buf, start, end, run))
                start, run = off, []
            run.append(p)
            end = off + int(p.size)
        out.append((buf, start, end, run))
    return out
