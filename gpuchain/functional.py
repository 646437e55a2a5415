"""Function transforms: grad, value_and_grad, vjp, jvp, jacobian, jacfwd, hessian, hvp.

Arguments and results are pytrees (nested tuples, lists and dicts of arrays or Tensors,
see ``gpuchain.pytree``), with JAX's conventions: ``grad(loss)((W, b), x)`` returns
``(dW, db)``, and a Jacobian is a tree of the output's structure whose leaves are trees
of the input's structure.

Each leaf being differentiated gets its own fresh graph node, so a transform computes
partial derivatives with respect to its arguments even when they are related outside
``f``, and transforms nest to any depth (``grad(grad(f))``, ``jacfwd(grad(f))``,
``jvp(value_and_grad(f))``). An inner reverse pass records its own graph whenever
anything ``f`` read is itself being differentiated: an argument that requires grad, or a
value captured from an enclosing function that an outer transform (or a user's
``backward``) differentiates. Outputs keep the tangents of any forward-mode transform
running around them.

Jacobians are vectorized: a whole batch of basis cotangents (reverse) or tangents
(forward) travels through the graph at once as an extra leading axis, so a matmul turns
it into one GEMM; ``chunk_size`` bounds the memory this takes.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gpuchain.backend import array_module_of
from gpuchain.engine.backward import backward
from gpuchain.engine.mode import enable_grad, forward_level, state
from gpuchain.engine.op import Node, set_tangent
from gpuchain.engine.op import tangent as tangent_at
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DTypeError, ShapeError, TreeStructureError
from gpuchain.ops._args import as_tensor
from gpuchain.ops.shape import concatenate, identity, reshape, transpose
from gpuchain.pytree import TreeDef, check_same_structure, tree_flatten, tree_unflatten

_MISSING = object()
Argnums = int | Sequence[int]


# --- arguments -------------------------------------------------------------------------

def _name(f: Callable) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _argnums_tuple(argnums: Argnums, nargs: int, fn: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError(f"{fn}: argnums={argnums!r} selects no argument")
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(f"{fn}: argnums={argnums!r} is out of range for a function "
                             f"called with {nargs} positional argument(s)")
    nums = tuple(n % nargs for n in nums)
    if len(set(nums)) != len(nums):
        raise ValueError(f"{fn}: argnums={argnums!r} names an argument twice")
    return nums


def _require_floating(t: Tensor, what: str) -> Tensor:
    """``t`` when it is floating; otherwise a DTypeError naming ``what``, dtype and shape."""
    if t.dtype.kind != "f":
        note = "complex numbers are not supported" if t.dtype.kind == "c" else \
            "pass a floating array"
        raise DTypeError(f"{what} of dtype {t.dtype} (shape {tuple(t.shape)}); {note}")
    return t


def _differentiable(x: Any, fn: str, what: str) -> Tensor:
    return _require_floating(as_tensor(x), f"{fn}: cannot differentiate with respect to {what}")


class _Leaves(threading.local):
    def __init__(self) -> None:
        # ids of the fresh leaves of transforms whose ``f`` is running now
        self.active: dict[int, int] = {}


_running = _Leaves()
# every fresh leaf a transform made, by id (Tensor's == is elementwise, so no WeakSet)
_made: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()


@contextlib.contextmanager
def _differentiating(fresh: Sequence[Tensor]) -> Iterator[None]:
    """While ``f`` runs, its fresh leaves count as differentiated by an outer transform
    for the transforms nested inside it."""
    active = _running.active
    ids = [id(t) for t in fresh if t._node is None]
    for i in ids:
        active[i] = active.get(i, 0) + 1
    try:
        with enable_grad():  # a transform records its own graph even inside no_grad
            yield
    finally:
        for i in ids:
            if active[i] == 1:
                del active[i]
            else:
                active[i] -= 1


def _fresh(x: Any, fn: str, what: str) -> Tensor:
    """A new node for a leaf being differentiated: connected to its graph and tangents."""
    t = _differentiable(x, fn, what)
    if t.requires_grad:
        return identity(t)
    fresh = Tensor._from_op(t._data, None)
    fresh.requires_grad = True
    fresh._fw = t._fw
    _made[id(fresh)] = fresh
    return fresh


def _with_fresh(args: Sequence[Any], nums: tuple[int, ...], fn: str
                ) -> tuple[list[Any], list[Tensor], list[TreeDef]]:
    """``args`` with the leaves of ``args[n]`` (n in nums) replaced by fresh nodes."""
    call_args = list(args)
    fresh: list[Tensor] = []
    defs = []
    for n in nums:
        leaves, treedef = tree_flatten(args[n])
        new = [_fresh(x, fn, f"argument {n}") for x in leaves]
        call_args[n] = tree_unflatten(treedef, new)
        fresh.extend(new)
        defs.append(treedef)
    return call_args, fresh, defs


def _per_argument(defs: Sequence[TreeDef], leaves: Sequence[Any]) -> list[Any]:
    """Split flat ``leaves`` back into one tree per differentiated argument."""
    out, k = [], 0
    for d in defs:
        out.append(tree_unflatten(d, leaves[k:k + d.num_leaves]))
        k += d.num_leaves
    return out


def _select(argnums: Argnums, trees: list[Any]) -> Any:
    return trees[0] if isinstance(argnums, int) else tuple(trees)


def _output_leaves(result: Any, fn: str, f: Callable) -> tuple[list[Tensor], TreeDef]:
    leaves, treedef = tree_flatten(result)
    out = []
    for x in leaves:
        if not isinstance(x, Tensor):
            try:
                x = as_tensor(x)
            except Exception as exc:
                raise TypeError(f"{fn} of {_name(f)}: f returned a leaf of type "
                                f"{type(x).__name__}, not an array or Tensor") from exc
        if x.dtype.kind == "c":
            raise DTypeError(f"{fn} of {_name(f)}: f returned a complex output "
                             f"({x.dtype}{tuple(x.shape)}); complex numbers are not supported")
        out.append(x)
    return out, treedef


def _split_aux(result: Any, has_aux: bool, fn: str) -> tuple[Any, Any]:
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ValueError(f"{fn}(has_aux=True): f must return (output, aux)")
        return result
    return result, None


# --- graph and tangent bookkeeping -----------------------------------------------------

def _records_graph(outs: Sequence[Tensor], fresh: Sequence[Tensor]) -> bool:
    """Whether the reverse pass from ``outs`` must itself be recorded: an outer transform
    (or a user's backward) differentiates something ``f`` read.

    True when an argument requires grad (its fresh node is then an ``identity`` of it),
    or when the graph of ``outs`` reaches a leaf that requires grad other than the fresh
    arguments: a value captured from an enclosing function, either a user's tensor or a
    fresh leaf of a transform still running around this one (the fresh leaves of inner
    transforms that have finished are nobody's variables any more).
    """
    if not state.grad_enabled:
        return False
    if any(t._node is not None for t in fresh):
        return True
    own = {id(t) for t in fresh}
    seen: set[Node] = set()
    stack: list[Node] = []
    for t in outs:
        if t._node is not None:
            stack.append(t._node)
        elif t.requires_grad and _outer_variable(t, own):
            return True
    while stack:
        node = stack.pop()
        for parent in node.edges:
            if parent is None:
                continue
            if type(parent) is Node:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
            elif _outer_variable(_edge_leaf(parent), own):  # a leaf edge: it requires grad
                return True
    return False


def _edge_leaf(edge: Any) -> Any:
    """The leaf tensor behind a graph edge that is not an op node (its accumulator)."""
    return edge.leaf if hasattr(edge, "leaf") else edge


def _outer_variable(leaf: Any, own: set[int]) -> bool:
    if leaf is None or id(leaf) in own:
        return False
    return id(leaf) in _running.active or _made.get(id(leaf)) is not leaf


def _graph_free(t: Tensor) -> Tensor:
    """``t`` cut from the reverse graph but keeping its forward-mode tangents."""
    d = Tensor._from_op(t._data, None)
    d._fw = t._fw
    return d


def _tangent(x: Tensor, level: int) -> Tensor | None:
    return tangent_at(x, level)


def _set_tangent(x: Tensor, level: int, tangent: Tensor) -> None:
    set_tangent(x, level, tangent)


def _drop_tangent(x: Tensor, level: int) -> None:
    set_tangent(x, level, None)


def _zeros(like: Tensor, batch: tuple[int, ...] = ()) -> Tensor:
    xp = array_module_of(like._data)
    dtype = like.dtype if like.dtype.kind == "f" else xp.float64
    return Tensor(xp.zeros(batch + like.shape, dtype=dtype))


def _fill(grads: Sequence[Tensor | None], like: Sequence[Tensor],
          batch: tuple[int, ...] = ()) -> list[Tensor]:
    return [g if g is not None else _zeros(x, batch) for g, x in zip(grads, like)]


# --- reverse mode ----------------------------------------------------------------------

def _scalar_output(out: Any, f: Callable) -> Tensor:
    if not isinstance(out, Tensor):
        if isinstance(out, (tuple, list, dict)):
            raise ShapeError(f"grad of {_name(f)}: f must return a scalar Tensor, got a "
                             f"{type(out).__name__}; use vjp or jacobian for pytree outputs")
        out = as_tensor(out)
    _require_floating(out, f"grad of {_name(f)}: f returned an output")
    if out.size != 1:
        raise ShapeError(f"grad of {_name(f)}: f must return a scalar Tensor, got shape "
                         f"{tuple(out.shape)}; use vjp or jacobian for non-scalar outputs")
    return out


def value_and_grad(f: Callable, argnums: Argnums = 0, has_aux: bool = False
                   ) -> Callable[..., tuple[Any, Any]]:
    """``f`` -> function returning ``(f(*args), gradient)``.

    Parameters
    ----------
    f : callable
        Returns a scalar Tensor (or ``(scalar, aux)`` with ``has_aux``).
    argnums : int or sequence of int
        The positional arguments (pytrees) to differentiate; a sequence gives a tuple of
        gradients.
    has_aux : bool
        ``f`` returns ``(output, aux)``; the value is then ``(output, aux)``.

    Returns
    -------
    callable
        Gradients have the structure of the arguments they belong to.
    """

    @functools.wraps(f)
    def wrapped(*args: Any) -> tuple[Any, Any]:
        nums = _argnums_tuple(argnums, len(args), "grad")
        call_args, fresh, defs = _with_fresh(args, nums, "grad")
        with _differentiating(fresh):
            out, aux = _split_aux(f(*call_args), has_aux, "grad")
        out = _scalar_output(out, f)
        create = _records_graph([out], fresh)
        grads = backward([out], [None], targets=fresh, create_graph=create,
                         retain_graph=create)
        g = _select(argnums, _per_argument(defs, _fill(grads, fresh)))
        value = out if create else _graph_free(out)
        return ((value, aux), g) if has_aux else (value, g)

    return wrapped


def grad(f: Callable, argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """``f`` -> function returning the gradient of scalar ``f`` w.r.t. ``args[argnums]``
    (see ``value_and_grad``); with ``has_aux`` it returns ``(gradient, aux)``.

    Parameters
    ----------
    f : callable
        A function of pytrees of floating arrays returning a one-element Tensor.
    argnums : int or sequence of int
        Which positional arguments to differentiate (a tuple of gradients for a sequence).
    has_aux : bool
        ``f`` returns ``(output, aux)``; ``aux`` is passed through."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        (value, g) = vg(*args)
        if has_aux:
            return g, value[1]
        return g

    return wrapped


def _cotangents(cotangent: Any, outs: Sequence[Tensor], out_def: TreeDef, fn: str
                ) -> list[Tensor]:
    leaves, treedef = tree_flatten(cotangent)
    check_same_structure(out_def, treedef, f"{fn}: the cotangent")
    cts = []
    for ct, y in zip(leaves, outs):
        ct = as_tensor(ct)
        if ct.shape != y.shape:
            raise ShapeError(f"{fn}: cotangent has shape {tuple(ct.shape)} but the output "
                             f"has shape {tuple(y.shape)}")
        if ct.dtype.kind not in "fiub":
            raise DTypeError(f"{fn}: cotangent of dtype {ct.dtype} for an output of dtype "
                             f"{y.dtype}")
        cts.append(ct.astype(y.dtype) if ct.dtype != y.dtype and y.dtype.kind == "f" else ct)
    return cts


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(f(*primals), vjp_fn)`` (plus ``aux`` with ``has_aux``).

    Parameters
    ----------
    f : callable
        The function to differentiate.
    *primals : pytrees of arrays or Tensors
        Its positional arguments.
    has_aux : bool
        ``f`` returns ``(output, aux)``.

    ``vjp_fn(cotangent)``, with a cotangent of the output's structure and shapes, returns
    a tuple with one cotangent per primal (each of that primal's structure) and may be
    called any number of times.
    """
    call_args, fresh, defs = _with_fresh(primals, tuple(range(len(primals))), "vjp")
    with _differentiating(fresh):
        result, aux = _split_aux(f(*call_args), has_aux, "vjp")
    outs, out_def = _output_leaves(result, "vjp", f)
    create = _records_graph(outs, fresh)

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        cts = _cotangents(cotangent, outs, out_def, f"vjp of {_name(f)}")
        record = create or _records_graph(cts, [])
        grads = backward(outs, cts, targets=fresh, retain_graph=True, create_graph=record)
        return tuple(_per_argument(defs, _fill(grads, fresh)))

    out = tree_unflatten(out_def, outs)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


# --- forward mode ----------------------------------------------------------------------

def _check_tangent(primal: Tensor, tangent: Any, batch: tuple[int, ...], fn: str) -> Tensor:
    t = as_tensor(tangent)
    if t.shape != batch + primal.shape or t.dtype != primal.dtype:
        raise ShapeError(
            f"{fn}: tangent {t.dtype}{tuple(t.shape)} does not match its primal "
            f"{primal.dtype}{tuple(primal.shape)}; a tangent must have the primal's shape and "
            "dtype")
    return t


def _forward_pass(f: Callable, args: Sequence[Any], nums: tuple[int, ...],
                  tangents: Sequence[Any], batch: tuple[int, ...], fn: str
                  ) -> tuple[list[Tensor], TreeDef, list[Tensor]]:
    """Run ``f`` once with ``tangents`` (flat, one per leaf of the args in ``nums``);
    returns the output leaves, their structure and their tangents."""
    call_args = list(args)
    with forward_level(batch_ndim=len(batch)) as level:
        k = 0
        for n in nums:
            leaves, treedef = tree_flatten(args[n])
            seeded = []
            for x in leaves:
                pt = _differentiable(x, fn, f"argument {n}")
                tan = _check_tangent(pt, tangents[k], batch, fn)
                k += 1
                x = identity(pt) if pt.requires_grad else _graph_free(pt)
                _set_tangent(x, level, tan)
                seeded.append(x)
            call_args[n] = tree_unflatten(treedef, seeded)
        outs, out_def = _output_leaves(f(*call_args), fn, f)
        tans = [_tangent(y, level) for y in outs]
    result = []
    for y, out_tan in zip(outs, tans):
        _drop_tangent(y, level)
        if out_tan is None:
            out_tan = _zeros(y, batch)
        elif out_tan.shape != batch + y.shape:
            out_tan = out_tan.broadcast_to(batch + y.shape)
        result.append(out_tan)
    return outs, out_def, result


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """``(f(*primals), J·tangents)`` in one forward pass: each op's JVP rule runs next to
    its forward and no tape is kept.

    Parameters
    ----------
    f : callable
    primals : tuple or list
        The positional arguments of ``f`` (each a pytree of floating arrays).
    tangents : tuple or list
        One tangent per primal, of the same structure, shapes and dtypes.

    Returns
    -------
    (output, tangent_out)
        Both of ``f``'s output structure.
    """
    fn = f"jvp of {_name(f)}"
    for what, seq in (("primals", primals), ("tangents", tangents)):
        if not isinstance(seq, (tuple, list)):
            raise TreeStructureError(f"{fn}: {what} must be a tuple or list with one entry per "
                                     f"argument of f, got {type(seq).__name__}; write "
                                     "jvp(f, (x,), (v,))")
    if len(primals) != len(tangents):
        raise TreeStructureError(f"{fn}: got {len(primals)} primals but {len(tangents)} "
                                 "tangents")
    flat_tangents: list[Any] = []
    for i, (p, t) in enumerate(zip(primals, tangents)):
        t_leaves, t_def = tree_flatten(t)
        check_same_structure(tree_flatten(p)[1], t_def, f"{fn}: tangent {i}")
        flat_tangents.extend(t_leaves)
    outs, out_def, tans = _forward_pass(f, tuple(primals), tuple(range(len(primals))),
                                        flat_tangents, (), fn)
    return tree_unflatten(out_def, outs), tree_unflatten(out_def, tans)


# --- Jacobians -------------------------------------------------------------------------

def _chunks(n: int, chunk_size: int | None) -> list[tuple[int, int]]:
    step = max(1, n if not chunk_size else int(chunk_size))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _rows(tensors: Sequence[Tensor], batch_axis: int | None, fn: str, what: str,
          batch: tuple[int, ...] | None = None) -> tuple[tuple[int, ...], list[tuple]]:
    """The batch shape and the per-row shape of each tensor."""
    if batch_axis is None:
        return (), [t.shape for t in tensors]
    if batch_axis != 0:
        raise ValueError(f"{fn}: batch_axis must be 0 or None (move the batch axis first)")
    for t in tensors:
        if t.ndim == 0 or (batch is not None and t.shape[:1] != batch):
            raise ShapeError(f"{fn}(batch_axis=0): {what} of shape {tuple(t.shape)} has no "
                             f"batch axis matching {batch if batch else 'the others'}")
        batch = t.shape[:1]
    return batch or (), [t.shape[1:] for t in tensors]


def _seeds(like: Sequence[Tensor], row_shapes: Sequence[tuple], start: int, stop: int
           ) -> list[Tensor]:
    """Basis vectors ``start..stop`` of the concatenated rows, one block per tensor, each
    of shape ``(stop - start, *tensor.shape)`` (contiguous, so products run as GEMMs)."""
    seeds, offset = [], 0
    for t, row in zip(like, row_shapes):
        xp = array_module_of(t._data)
        size = math.prod(row)
        dtype = t.dtype if t.dtype.kind == "f" else xp.float64
        e = xp.zeros((stop - start, size), dtype=dtype)
        lo, hi = max(start, offset), min(stop, offset + size)
        if lo < hi:
            e[xp.arange(lo - start, hi - start), xp.arange(lo - offset, hi - offset)] = 1
        nb = t.ndim - len(row)
        e = e.reshape((stop - start,) + (1,) * nb + tuple(row))
        seeds.append(Tensor(xp.ascontiguousarray(xp.broadcast_to(e, (stop - start,) + t.shape))))
        offset += size
    return seeds


def _blocks(stacked: Tensor, row_shapes: Sequence[tuple]) -> list[Tensor]:
    """Split the leading (basis) axis of ``stacked`` into one block per row shape."""
    if len(row_shapes) == 1:
        return [stacked]
    out, offset = [], 0
    for row in row_shapes:
        size = math.prod(row)
        out.append(stacked[offset:offset + size])
        offset += size
    return out


def _stack_chunks(chunks: list[Tensor], like: Tensor) -> Tensor:
    if not chunks:  # no basis vectors at all: an empty input or output
        return _zeros(like, (0,))
    return chunks[0] if len(chunks) == 1 else concatenate(chunks, axis=0)


def _arrange(block: Tensor, lead_row: tuple, batch: tuple, trail_row: tuple,
             trail_lead: bool) -> Tensor:
    """``block`` of shape ``(prod(lead_row), *batch, *trail_row)`` as
    ``(*batch, *out_row, *in_row)`` (``trail_lead``: the trailing rows are the output's)."""
    jac = reshape(block, tuple(lead_row) + batch + tuple(trail_row))
    k, b, m = len(lead_row), len(batch), len(trail_row)
    if trail_lead:  # forward mode: (in_row, batch, out_row) -> (batch, out_row, in_row)
        perm = tuple(range(k, k + b + m)) + tuple(range(k))
    else:  # reverse mode: (out_row, batch, in_row) -> (batch, out_row, in_row)
        perm = tuple(range(k, k + b)) + tuple(range(k)) + tuple(range(k + b, k + b + m))
    return jac if perm == tuple(range(len(perm))) else transpose(jac, perm)


def _jac_tree(out_def: TreeDef, defs: Sequence[TreeDef], argnums: Argnums,
              entries: list[list[Tensor]]) -> Any:
    """``entries[j][i]``: block of output leaf j w.r.t. input leaf i, as a tree of the
    output's structure whose leaves are (a tuple over argnums of) input-structured trees."""
    return tree_unflatten(out_def, [_select(argnums, _per_argument(defs, row))
                                    for row in entries])


def _jacobian_rev(f: Callable, args: Sequence[Any], argnums: Argnums,
                  chunk_size: int | None, batch_axis: int | None) -> Any:
    nums = _argnums_tuple(argnums, len(args), "jacobian")
    call_args, fresh, defs = _with_fresh(args, nums, "jacobian")
    with _differentiating(fresh):
        outs, out_def = _output_leaves(f(*call_args), "jacobian", f)
    batch, in_rows = _rows(fresh, batch_axis, "jacobian", "input")
    _, out_rows = _rows(outs, batch_axis, "jacobian", "output", batch or None)
    m = sum(math.prod(r) for r in out_rows)
    create = _records_graph(outs, fresh)
    per_input: list[list[Tensor]] = [[] for _ in fresh]
    for start, stop in _chunks(m, chunk_size):
        seeds = _seeds(outs, out_rows, start, stop)
        grads = backward(outs, seeds, batch_shape=(stop - start,), targets=fresh,
                         retain_graph=True, create_graph=create)
        for acc, g in zip(per_input, _fill(grads, fresh, (stop - start,))):
            acc.append(g)
    stacked = [_stack_chunks(c, x) for c, x in zip(per_input, fresh)]
    split = [_blocks(s, out_rows) for s in stacked]  # split[i][j]
    entries = [[_arrange(split[i][j], out_rows[j], batch, in_rows[i], False)
                for i in range(len(fresh))] for j in range(len(outs))]
    return _jac_tree(out_def, defs, argnums, entries)


def jacobian(f: Callable, x: Any = _MISSING, *, argnums: Argnums = 0,
             chunk_size: int | None = None, batch_axis: int | None = None) -> Any:
    """Reverse-mode Jacobian of ``f``.

    ``jacobian(f, x)`` evaluates it at ``x``; ``jacobian(f, argnums=...)`` returns the
    Jacobian function of ``f``'s positional arguments. For an output leaf ``y`` and an
    input leaf ``x`` the block has shape ``y.shape + x.shape``; with pytrees the result is
    a tree of the output's structure whose leaves are trees of the input's structure (a
    tuple of them when ``argnums`` is a sequence).

    With ``batch_axis=0`` and a row-wise ``f`` (every input and output leaf has the same
    leading batch length B), the per-sample Jacobians, shape ``(B, *out_row, *in_row)``,
    without building the mostly-zero full Jacobian.

    Parameters
    ----------
    f : callable
        The function.
    x : pytree, optional
        Where to evaluate; omitted, the Jacobian function is returned.
    argnums : int or sequence of int
        Which positional arguments to differentiate.
    chunk_size : int, optional
        How many basis cotangents travel through the graph at once (bounds memory).
    batch_axis : int, optional
        0 for per-sample Jacobians of a row-wise ``f``.
    """
    if x is _MISSING:
        return lambda *args: _jacobian_rev(f, args, argnums, chunk_size, batch_axis)
    return _jacobian_rev(f, (x,), argnums, chunk_size, batch_axis)


def _jacobian_fwd(f: Callable, args: Sequence[Any], argnums: Argnums,
                  chunk_size: int | None, batch_axis: int | None) -> Any:
    nums = _argnums_tuple(argnums, len(args), "jacfwd")
    defs: list[TreeDef] = []
    primals: list[Tensor] = []
    for n in nums:
        leaves, treedef = tree_flatten(args[n])
        defs.append(treedef)
        primals.extend(_differentiable(v, "jacfwd", f"argument {n}") for v in leaves)
    batch, in_rows = _rows(primals, batch_axis, "jacfwd", "input")
    n_total = sum(math.prod(r) for r in in_rows)
    per_output: list[list[Tensor]] | None = None
    outs: list[Tensor] = []
    out_def = None
    for start, stop in _chunks(n_total, chunk_size):
        tangents = _seeds(primals, in_rows, start, stop)
        outs, out_def, tans = _forward_pass(f, args, nums, tangents, (stop - start,),
                                            "jacfwd")
        if per_output is None:
            per_output = [[] for _ in outs]
        for acc, t in zip(per_output, tans):
            acc.append(t)
    if out_def is None:  # no input elements: evaluate f once for the output's structure
        outs, out_def = _output_leaves(f(*args), "jacfwd", f)
        per_output = [[] for _ in outs]
    assert per_output is not None  # set by the first chunk, or just above
    _, out_rows = _rows(outs, batch_axis, "jacfwd", "output", batch or None)
    stacked = [_stack_chunks(c, y) for c, y in zip(per_output, outs)]
    entries = []
    for j, s in enumerate(stacked):
        blocks = _blocks(s, in_rows)
        entries.append([_arrange(blocks[i], in_rows[i], batch, out_rows[j], True)
                        for i in range(len(primals))])
    return _jac_tree(out_def, defs, argnums, entries)


def jacfwd(f: Callable, x: Any = _MISSING, *, argnums: Argnums = 0,
           chunk_size: int | None = None, batch_axis: int | None = None) -> Any:
    """Forward-mode Jacobian of ``f`` (same shapes, structure and options as
    ``jacobian``).

    Parameters
    ----------
    f : callable
        The function.
    x : pytree, optional
        Where to evaluate; omitted, the Jacobian function is returned.
    argnums : int or sequence of int
        Which positional arguments to differentiate.
    chunk_size : int, optional
        How many basis tangents travel through the function at once (bounds memory).
    batch_axis : int, optional
        0 for per-sample Jacobians of a row-wise ``f``."""
    if x is _MISSING:
        return lambda *args: _jacobian_fwd(f, args, argnums, chunk_size, batch_axis)
    return _jacobian_fwd(f, (x,), argnums, chunk_size, batch_axis)


def hessian(f: Callable, x: Any = _MISSING, *, argnums: Argnums = 0,
            chunk_size: int | None = None) -> Any:
    """Hessian of scalar ``f``, forward over reverse: ``jacfwd(grad(f))``.

    For input leaves ``a`` and ``b`` the block has shape ``a.shape + b.shape``; with
    pytrees (or a sequence ``argnums``) the result nests two input-structured trees, as
    JAX's ``hessian``.

    Parameters
    ----------
    f : callable
        A scalar function.
    x : pytree, optional
        Where to evaluate; omitted, the Hessian function is returned.
    argnums : int or sequence of int
        Which positional arguments to differentiate.
    chunk_size : int, optional
        How many basis tangents travel at once (bounds memory).
    """
    g = grad(f, argnums)
    if x is _MISSING:
        return jacfwd(g, argnums=argnums, chunk_size=chunk_size)
    return jacfwd(g, x, argnums=argnums, chunk_size=chunk_size)


def hvp(f: Callable, x: Any, v: Any) -> Any:
    """Hessian-vector product H(x)·v of scalar ``f`` without forming H (forward over
    reverse: one forward-mode pass through the gradient). ``x`` and ``v`` are pytrees of
    the same structure; so is the result."""
    return jvp(grad(f), (x,), (v,))[1]


__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacobian", "jvp", "value_and_grad", "vjp"]
