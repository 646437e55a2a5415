"""Parameter: a leaf Tensor that may own a slot in a flat gradient buffer."""

from __future__ import annotations

from typing import Any

from gpuchain.engine.tensor import Tensor


class Parameter(Tensor):
    """A trainable leaf Tensor (``requires_grad=True``).

    When the parameter lives in a :class:`~gpuchain.nn.buffer.FlatBuffer`, ``data`` is a
    view into the buffer's flat data and ``grad_view`` the matching view into its flat
    gradient. Fused ops (``dense``) write a fresh gradient straight into ``grad_view``
    when the slot is free (``grad`` is None and nobody claimed it since the last
    ``zero_grad``), so the optimizer finds it in place with no copy.
    """

    __slots__ = ("grad_view", "_slot_free", "_buffer")

    def __init__(self, data: Any) -> None:
        super().__init__(data, requires_grad=True)
        self.grad_view: Any = None
        self._slot_free = False
        self._buffer: Any = None  # the FlatBuffer owning data and grad_view, if any

    def claim_grad_slot(self) -> Any:
        """The gradient view if it may be written now (then it is taken), else None."""
        if self._slot_free and self.grad is None:
            self._slot_free = False
            return self.grad_view
        return None

    def release_grad_slot(self) -> None:
        self._slot_free = self.grad_view is not None

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("tensor"):]


def grad_out_buffer(t: Tensor, xp: Any) -> Any:
    """Where an op should write the cotangent of ``t``: its free flat-buffer slot, or a
    fresh array. Only for cotangents that have exactly ``t``'s shape."""
    if type(t) is Parameter:
        view = t.claim_grad_slot()
        if view is not None and type(view) is type(t.data):
            return view
    return xp.empty(t.data.shape, dtype=t.data.dtype)
