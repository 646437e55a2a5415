"""The reverse pass: iterative topological order, the multivariable chain rule (cotangents
summed over every path), un-broadcasting, leaf accumulation and freeing of saved values.

Every edge of the graph is a node: an op's :class:`Node`, or a leaf's
:class:`AccumulateGrad`. The pass is seed → schedule → apply each rule → finish.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Sequence
from typing import Any, overload

from gpuchain.backend import array_module_of
from gpuchain.engine import collector
from gpuchain.engine import hooks as _hooks
from gpuchain.engine import versions as _versions
from gpuchain.engine.mode import set_grad_enabled, state
from gpuchain.engine.op import AccumulateGrad, Node, check_finite, grad_node
from gpuchain.engine.tensor import Tensor, as_array
from gpuchain.errors import MissingRuleError, ShapeError


def fit_to_shape(g: Tensor, shape: tuple[int, ...], batch_shape: tuple[int, ...]) -> Tensor:
    """Sum (or broadcast) cotangent ``g`` to ``batch_shape + shape`` — the adjoint of
    NumPy broadcasting. ``g`` keeps any leading batch axes."""
    target = batch_shape + shape
    gshape = g.shape
    if gshape == target:
        return g
    nb = len(batch_shape)
    if g.ndim < len(target):
        return g.broadcast_to(target)
    extra = g.ndim - len(target)
    axes = tuple(range(nb, nb + extra)) + tuple(
        nb + extra + i for i, n in enumerate(shape) if n == 1 and gshape[nb + extra + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if extra:
        g = g.reshape(target)
    if g.shape != target:  # e.g. a rule that dropped a batch axis of length 1
        g = g.broadcast_to(target)
    return g


def _seed(root: Tensor, grad: Any, batch_shape: tuple[int, ...]) -> Tensor:
    if grad is None:
        if root.size != 1 or batch_shape:
            raise RuntimeError(
                f"backward: output has shape {root.shape}; a gradient is implied only for a "
                "scalar output — pass grad= (an array of the output's shape)")
        return Tensor(array_module_of(root._data).ones_like(root._data))
    g = grad if isinstance(grad, Tensor) else Tensor(as_array(grad, root.dtype))
    if g.shape != batch_shape + root.shape:
        raise ShapeError(f"backward: grad has shape {g.shape}, expected "
                         f"{batch_shape + root.shape} (the output's shape)")
    return g


def _schedule(roots: list[Any], stop_at: dict[Any, int]) -> dict[Any, int]:
    """Number of consumers of each node reachable from the roots (iterative DFS), not
    looking past the nodes in ``stop_at``."""
    pending: dict[Any, int] = dict.fromkeys(roots, 0)
    stack = list(pending)
    seen = set(stack)
    while stack:
        node = stack.pop()
        if node in stop_at:
            continue
        for parent in node.edges:
            if parent is not None:
                pending[parent] = pending.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return pending


_NOT_FRESH = itertools.repeat(False)  # no edge of a rule without fresh outputs


def _accumulate(store: dict, key: Any, g: Tensor) -> None:
    prev = store.get(key)
    store[key] = g if prev is None else prev + g


def _freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward through op '{node.op.name}' a second time: its saved values were freed "
        "by the previous backward. Pass retain_graph=True to the first .backward() (or "
        "gc.vjp) if you need to differentiate the same graph more than once.")


def _check_versions(node: Node) -> None:
    recorded = node.recorded_at
    if recorded is None:  # nothing saved, nothing to check
        return
    stale = [f"its input {i}, {_describe_tensor(t)}," for i, t in enumerate(node.inputs or ())
             if _versions.version_of(t._data) > recorded]
    out = node._out_data
    if out is not None and _versions.version_of(out) > recorded:
        stale.append(f"its output ({out.dtype}{tuple(out.shape)}),")
    if stale:
        site = (f" (applied at {node.created_at})" if node.created_at else "")
        raise RuntimeError(
            f"backward through op '{node.op.name}'{site}: {stale[0]} was modified in place "
            "after the op saved it, so the gradient would be wrong. Copy the tensor before "
            "changing it (t.copy()), or change it after backward"
            + ("" if site else "; gc.detect_anomaly() records where each op was applied"))


def _describe_tensor(t: Tensor) -> str:
    kind = (f"the output of op '{t._node.op.name}'" if t._node is not None
            else "a leaf that requires grad" if t.requires_grad else "a constant")
    return f"{kind} ({t.dtype}{tuple(t.shape)})"


def _apply_rule(node: Node, g: Tensor, raw_ok: bool) -> tuple[Tensor | None, ...]:
    """One op's cotangents for its inputs: the raw array backward when allowed, else the
    differentiable VJP rule."""
    op = node.op
    if node.freed:
        raise _freed_error(node)
    if node.recorded_at is not None and _versions._clock > node.recorded_at:
        _check_versions(node)
    if raw_ok and op.raw_vjp_rule is not None:
        raw = op.raw_vjp_rule(node, g._data)
        return tuple([None if a is None else Tensor._from_op(a, None) for a in raw])
    if op.vjp_rule is None:
        raise MissingRuleError(f"{op.name}: no VJP rule, so a gradient cannot flow through it "
                               f"(op created at {node.where()})")
    grads = op.vjp_rule(node, g)
    return (grads,) if isinstance(grads, Tensor) or grads is None else grads


def _apply_checked(node: Node, g: Tensor, raw_ok: bool) -> tuple[Tensor | None, ...]:
    # Inside detect_anomaly the rule's own ops are not checked one by one: a NaN is
    # reported once, as this op's backward, with where this op was created.
    state.anomaly = False
    try:
        return _apply_rule(node, g, raw_ok)
    finally:
        state.anomaly = True


@overload
def backward(roots: Sequence[Tensor], grads: Sequence[Any], *, retain_graph: bool = False,
             create_graph: bool = False, batch_shape: tuple[int, ...] = (),
             targets: None = None) -> None: ...


@overload
def backward(roots: Sequence[Tensor], grads: Sequence[Any], *, retain_graph: bool = False,
             create_graph: bool = False, batch_shape: tuple[int, ...] = (),
             targets: Sequence[Tensor]) -> list[Tensor | None]: ...


def backward(roots: Sequence[Tensor], grads: Sequence[Any], *, retain_graph: bool = False,
             create_graph: bool = False, batch_shape: tuple[int, ...] = (),
             targets: Sequence[Tensor] | None = None) -> list[Tensor | None] | None:
    """Run the reverse pass from ``roots`` seeded with ``grads``.

    With ``targets`` the cotangents of those tensors are returned (``None`` where the
    roots do not depend on one) and no ``.grad`` is written. Otherwise every leaf that
    requires grad accumulates into ``.grad``. ``batch_shape`` leading axes of every seed
    index a batch of independent cotangents (vectorized Jacobians).
    """
    # The graph is full of container objects; the cyclic collector scanning it mid-pass
    # is pure overhead (nothing here becomes garbage in a cycle until nodes are freed).
    collector_was_on = gc.isenabled()
    gc.disable()
    try:
        with set_grad_enabled(create_graph):
            return _reverse_pass(roots, grads, retain_graph, create_graph, batch_shape,
                                 targets)
    finally:
        if collector_was_on:
            gc.enable()
        collector.restore_threshold()


def _reverse_pass(roots: Sequence[Tensor], grads: Sequence[Any], retain_graph: bool,
                  create_graph: bool, batch_shape: tuple[int, ...],
                  targets: Sequence[Tensor] | None) -> list[Tensor | None] | None:
    cotangents: dict[Any, Tensor] = {}
    # the nodes whose pending cotangent only this pass holds (an array a raw rule
    # declared fresh, or a sum the pass made with one): their raw rule may overwrite it
    owned: set[Any] = set()
    root_nodes = []
    for root, grad in zip(roots, grads):
        seed = _seed(root, grad, batch_shape)
        if root.requires_grad or targets is not None:
            node = grad_node(root)
            _accumulate(cotangents, node, seed)
            root_nodes.append(node)

    # A target's cotangent is all that is asked for: the pass stops there, so a
    # transform never walks (or frees) the graph that produced its arguments.
    stop_at = {} if targets is None else {grad_node(t): i for i, t in enumerate(targets)}
    pending = _schedule(root_nodes, stop_at)
    ready = [n for n in dict.fromkeys(root_nodes) if pending[n] == 0]
    leaf_grads: list[tuple[AccumulateGrad | _hooks.RetainGrad, Tensor]] = []
    captured: list[Tensor | None] = [None] * len(stop_at)
    anomaly = state.anomaly
    raw_ok = not create_graph and not state.fw_levels and not batch_shape
    apply = _apply_checked if anomaly else _apply_rule
    while ready:
        node = ready.pop()
        g = cotangents.pop(node, None)
        if g is not None and _hooks.active and _hooks.has_hooks(node):
            g = _hooks.run_hooks(node, g, leaf_grads if targets is None else None)
            owned.discard(node)  # a hook may keep g: never let the rule overwrite it
        if node in stop_at:
            captured[stop_at[node]] = g
            continue
        if isinstance(node, AccumulateGrad):  # no subclasses: same test as type() is
            if g is not None:
                leaf_grads.append((node, g))
            continue
        # each node is popped once per pass, so membership in ``owned`` is about the
        # cotangent just popped (set on every call: a failed pass leaves nothing behind)
        raw = raw_ok and node.op.raw_vjp_rule is not None
        node.grad_owned = raw and node in owned
        node.last_use = raw and not retain_graph
        in_grads = apply(node, g, raw_ok) if g is not None else (None,) * len(node.edges)
        fresh = node.op.raw_vjp_fresh if raw else None
        flags = _NOT_FRESH if not fresh else [k in fresh for k in range(len(node.edges))]
        for parent, gi, shape, dtype, is_fresh in zip(node.edges, in_grads, node.in_shapes,
                                                      node.in_dtypes, flags):
            if parent is None:
                continue
            if gi is not None:
                if gi.shape != shape or batch_shape:
                    gi = fit_to_shape(gi, shape, batch_shape)
                    is_fresh = False  # possibly a view
                if gi.dtype != dtype:
                    gi = gi.astype(dtype)
                    is_fresh = True
                if anomaly:
                    check_finite(node.op.name, "backward", gi._data, node.where())
                _accumulate(cotangents, parent, gi)
                if is_fresh:  # the slot now holds this array or a sum made with it
                    owned.add(parent)
            pending[parent] -= 1
            if pending[parent] == 0:
                ready.append(parent)
        if not retain_graph:
            node.release()

    if targets is not None:
        return captured
    _finish(leaf_grads, create_graph)
    return None


def _finish(leaf_grads: list[tuple[AccumulateGrad | _hooks.RetainGrad, Tensor]],
            create_graph: bool) -> None:
    """Add each leaf's (and each retained non-leaf's) summed cotangent into its ``.grad``."""
    for acc, g in leaf_grads:
        leaf = acc.leaf
        if leaf is None or not leaf.requires_grad:
            continue
        if not create_graph:
            g = g.detach()
        leaf.grad = g if leaf.grad is None else leaf.grad + g
