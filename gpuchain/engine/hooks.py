"""Tensor hooks, as PyTorch's: ``t.register_hook(fn)`` and ``t.retain_grad()``.

A hook belongs to the node a tensor's cotangent flows into (its op's node, or a leaf's
accumulator), held in a weak-keyed table so a graph without hooks carries nothing and
the reverse pass looks the table up only while some hook exists. When the pass has summed
every path into that node, each hook is called with the total cotangent in the order it
was registered; one that returns a value replaces the cotangent for the rest of the pass
(and for the leaf's ``.grad``).

``retain_grad()`` keeps a non-leaf's cotangent as its ``.grad``. Like a leaf's, it is
written when the whole pass succeeded, so an error mid-pass changes no ``.grad``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from gpuchain.engine.op import grad_node

__all__ = ["RemovableHandle", "RetainGrad", "has_hooks", "register_hook", "retain_grad",
           "run_hooks"]

_table: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
active = False  # whether any hook was ever registered (the pass skips the lookup if not)


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook."""

    def __init__(self, node: Any, hook: Any) -> None:
        self._node = weakref.ref(node)
        self._hook = hook

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        node = self._node()
        hooks = _table.get(node) if node is not None else None
        if hooks is not None and any(h is self._hook for h in hooks):
            hooks[:] = [h for h in hooks if h is not self._hook]
            if not hooks:
                del _table[node]


class RetainGrad:
    """The entry ``retain_grad()`` registers: the pass hands its cotangent to ``_finish``,
    which writes it into the tensor's ``.grad`` (``leaf`` names the tensor, as on
    :class:`~gpuchain.engine.op.AccumulateGrad`)."""

    __slots__ = ("_tensor",)

    def __init__(self, t: Any) -> None:
        self._tensor = weakref.ref(t)

    @property
    def leaf(self) -> Any:
        return self._tensor()


def _node_of(t: Any, what: str) -> Any:
    if not t.requires_grad:
        raise RuntimeError(f"{what}: the {t.dtype}{tuple(t.shape)} tensor does not require "
                           "grad, so no gradient will reach it")
    return grad_node(t)


def register_hook(t: Any, hook: Callable[[Any], Any]) -> RemovableHandle:
    """Call ``hook(grad)`` when ``t``'s gradient has been computed (see the module doc)."""
    global active
    if not callable(hook):
        raise TypeError(f"register_hook: expected a callable, got {type(hook).__name__}")
    node = _node_of(t, "register_hook")
    _table.setdefault(node, []).append(hook)
    active = True
    return RemovableHandle(node, hook)


def retain_grad(t: Any) -> None:
    """Keep the gradient of non-leaf ``t`` in ``t.grad`` (a leaf keeps it anyway)."""
    global active
    node = _node_of(t, "retain_grad")
    if t._node is None:
        return
    hooks = _table.setdefault(node, [])
    if not any(type(h) is RetainGrad for h in hooks):
        hooks.append(RetainGrad(t))
    active = True


def has_hooks(node: Any) -> bool:
    """Whether ``node`` has hooks or a ``retain_grad`` entry (which may keep its
    cotangent, so the pass must not let a rule overwrite it)."""
    return bool(_table.get(node))


def run_hooks(node: Any, g: Any, retained: list[tuple[Any, Any]] | None) -> Any:
    """``g`` after ``node``'s hooks. A ``retain_grad`` entry is appended to ``retained``
    with the final ``g`` (None: the pass writes no ``.grad``)."""
    hooks = _table.get(node)
    if not hooks:
        return g
    keep = None
    for hook in list(hooks):
        if type(hook) is RetainGrad:
            keep = hook
            continue
        out = hook(g)
        if out is not None:
            g = _checked(out, g, hook)
    if keep is not None and retained is not None:  # after every other hook, as PyTorch
        retained.append((keep, g))
    return g


def _checked(out: Any, g: Any, hook: Any) -> Any:
    from gpuchain.engine.tensor import Tensor, as_array

    name = getattr(hook, "__name__", type(hook).__name__)
    new = out if isinstance(out, Tensor) else Tensor(as_array(out, g.dtype))
    if tuple(new.shape) != tuple(g.shape):
        raise RuntimeError(f"hook {name!r} returned a gradient of shape {tuple(new.shape)} "
                           f"for one of shape {tuple(g.shape)}")
    if new.dtype != g.dtype:
        new = new.astype(g.dtype)
    return new
