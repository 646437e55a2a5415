"""The reverse pass: iterative topological order, the multivariable chain rule (cotangents
summed over every path), un-broadcasting, leaf accumulation and freeing of saved values."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from gpuchain.backend import array_module_of
from gpuchain.engine.mode import set_grad_enabled, state
from gpuchain.engine.op import Node, check_finite
from gpuchain.engine.tensor import Tensor, as_array
from gpuchain.errors import ShapeError


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


def _freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward through op '{node.op.name}' a second time: its saved values were freed "
        "by the previous backward. Pass retain_graph=True to the first .backward() (or "
        "gc.vjp) if you need to differentiate the same graph more than once.")


def _seed(root: Tensor, grad: Any) -> Tensor:
    if grad is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward: output has shape {root.shape}; a gradient is implied only for a "
                "scalar output — pass grad= (an array of the output's shape)")
        return Tensor(array_module_of(root.data).ones_like(root.data))
    g = grad if isinstance(grad, Tensor) else Tensor(as_array(grad, root.dtype))
    return g


def _toposort(roots: list[Node], stop_at: dict[Node, int]) -> dict[Node, int]:
    """Number of consumers of each node reachable from the roots (iterative DFS), not
    looking past the nodes in ``stop_at``."""
    pending: dict[Node, int] = {}
    stack = list(roots)
    for r in roots:
        pending.setdefault(r, 0)
    seen = set(roots)
    while stack:
        node = stack.pop()
        if node in stop_at:
            continue
        for parent in node.edges:
            if type(parent) is Node:
                pending[parent] = pending.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return pending


def _accumulate(store: dict, key: Any, g: Tensor) -> None:
    prev = store.get(key)
    store[key] = g if prev is None else prev + g


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
        return _reverse_pass(roots, grads, retain_graph, create_graph, batch_shape, targets)
    finally:
        if collector_was_on:
            gc.enable()


def _reverse_pass(roots: Sequence[Tensor], grads: Sequence[Any], retain_graph: bool,
                  create_graph: bool, batch_shape: tuple[int, ...],
                  targets: Sequence[Tensor] | None) -> list[Tensor | None] | None:
    node_grads: dict[Node, Tensor] = {}
    leaf_grads: dict[int, Tensor] = {}
    leaves: dict[int, Tensor] = {}
    root_nodes: list[Node] = []

    with set_grad_enabled(create_graph):
        for root, grad in zip(roots, grads):
            g = _seed(root, grad)
            if g.shape != batch_shape + root.shape:
                raise ShapeError(f"backward: grad has shape {g.shape}, expected "
                                 f"{batch_shape + root.shape} (the output's shape)")
            if root._node is not None:
                _accumulate(node_grads, root._node, g)
                root_nodes.append(root._node)
            elif root.requires_grad or targets is not None:
                _accumulate(leaf_grads, id(root), g)
                leaves[id(root)] = root

        target_nodes: dict[Node, int] = {}
        if targets is not None:
            for i, t in enumerate(targets):
                if t._node is not None:
                    target_nodes[t._node] = i
        captured: list[Tensor | None] = [None] * (len(targets) if targets is not None else 0)

        # A target's cotangent is all that is asked for: the pass stops there, so a
        # transform never walks (or frees) the graph that produced its arguments.
        pending = _toposort(root_nodes, target_nodes)
        ready = [n for n in dict.fromkeys(root_nodes) if pending[n] == 0]
        anomaly = state.anomaly
        while ready:
            node = ready.pop()
            g = node_grads.pop(node, None)
            if node in target_nodes:
                captured[target_nodes[node]] = g
                continue
            if g is not None:
                if node.freed:
                    raise _freed_error(node)
                if anomaly:
                    # the rule's own ops are not checked one by one: a NaN is reported
                    # once, as this op's backward, with where this op was created
                    state.anomaly = False
                    try:
                        in_grads = node.op.vjp_rule(node, g)
                    finally:
                        state.anomaly = True
                else:
                    in_grads = node.op.vjp_rule(node, g)
                if isinstance(in_grads, Tensor) or in_grads is None:
                    in_grads = (in_grads,)
            else:
                in_grads = (None,) * len(node.edges)
            for parent, gi, shape, dtype in zip(node.edges, in_grads, node.in_shapes,
                                                node.in_dtypes):
                if parent is None:
                    continue
                if gi is not None:
                    if gi.shape != shape or batch_shape:
                        gi = fit_to_shape(gi, shape, batch_shape)
                    if gi.dtype != dtype:
                        gi = gi.astype(dtype)
                    if anomaly:
                        check_finite(node.op.name, "backward", gi.data, node.where())
                if type(parent) is Node:
                    if gi is not None:
                        _accumulate(node_grads, parent, gi)
                    pending[parent] -= 1
                    if pending[parent] == 0:
                        ready.append(parent)
                elif gi is not None:
                    _accumulate(leaf_grads, id(parent), gi)
                    leaves[id(parent)] = parent
            if not retain_graph:
                node.release()

    if targets is not None:
        for i, t in enumerate(targets):
            if t._node is None:
                captured[i] = leaf_grads.get(id(t))
        return captured
    for key, g in leaf_grads.items():
        leaf = leaves[key]
        if not leaf.requires_grad:
            continue
        if not create_graph:
            g = g.detach()
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    return None
