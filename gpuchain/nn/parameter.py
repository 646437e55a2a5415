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

    A gradient you hold never changes under you: ``zero_grad`` gives the buffer a fresh
    gradient array when a slot was written, so the next backward writes elsewhere.

    Parameters
    ----------
    data : array, Tensor or nested list
        Initial value.
    requires_grad : bool
        Trainable (True) or frozen.
    """

    __slots__ = ("grad_view", "_slot_free", "_buffer")

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        if isinstance(data, Tensor):
            data = data._data
        super().__init__(data, requires_grad=requires_grad)
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

    def in_flat_buffer(self) -> bool:
        """Whether ``data`` is still the view its FlatBuffer made (not replaced or moved)."""
        buf = self._buffer
        return buf is not None and buf.holds_view(self)

    # Pickling and deepcopy: a parameter inside a FlatBuffer is stored without its data;
    # the buffer restores ``data`` and ``grad_view`` as views of its own copies. A held
    # ``grad`` is stored as a value (restored outside the slot, so the next step copies it).
    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        slots = {k: getattr(self, k) for k in _tensor_slots() if hasattr(self, k)}
        slots.update(_slot_free=False, _buffer=self._buffer, grad_view=None)
        slots.update(_node=None, _acc=None, _fw=None)  # graph links are not state
        if self.in_flat_buffer():
            del slots["_data"]
        else:
            slots["_buffer"] = None
        return None, slots

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        for k, v in state[1].items():
            object.__setattr__(self, k, v)
        buf = self._buffer
        if buf is not None and getattr(buf, "data", None) is not None:
            buf.bind(self)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("tensor"):]


def _tensor_slots() -> tuple[str, ...]:
    names: list[str] = []
    for cls in Tensor.__mro__:
        for s in getattr(cls, "__slots__", ()):
            if s != "__weakref__" and s not in names:
                names.append(s)
    return tuple(names)


def input_grad_buffer(t: Tensor, xp: Any) -> Any:
    """Where an op should write the gradient of its input ``t``: the parameter's free
    flat-buffer slot, or a fresh array. Only for gradients that have exactly ``t``'s
    shape."""
    if type(t) is Parameter:
        view = t.claim_grad_slot()
        if view is not None and type(view) is type(t._data):
            return view
    return xp.empty(t._data.shape, dtype=t._data.dtype)
