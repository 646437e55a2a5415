"""Primitives and the hot path that applies one.

A primitive is defined in one place: its forward (array code written against ``xp``),
its derivative, an optional faster CUDA forward and an optional raw array backward.

Rule contract
-------------
- ``@p.deriv``: for ops that act elementwise (each output element depends on the
  matching element of each broadcast input). The rule returns the partial derivative of
  the output with respect to each input (one Tensor for a unary op, a tuple otherwise;
  ``1``/``-1`` for a constant partial, ``None`` for a zero one), computed from the saved
  values named by ``save`` (the output ``y`` for ``save="output"``, the inputs for
  ``"inputs"``, ``y`` then the inputs for ``"both"``). A rule with a ``wrt`` keyword is
  told which partials are needed. The engine turns the partials into both the VJP
  (``g * ∂``) and the JVP (``Σ ṫ * ∂``).
- ``@p.vjp`` / ``@p.jvp``: explicit rules for every other op. ``vjp(ctx, g)`` returns one
  cotangent per input (``None`` where zero); ``jvp(ctx, tangents)`` returns the output
  tangent (``tangents`` holds ``None`` where an input carries none). Both are written with
  gpuchain ops on Tensors, so they are differentiable again.
- ``@p.raw_vjp``: optional array-level backward, like PyTorch's once-differentiable
  backward: ``raw_vjp(ctx, g_array)`` returns arrays (or ``None``). The engine calls it only
  when no graph is being recorded, no forward-mode level is active and the cotangent has
  no batch axes; otherwise it calls the differentiable ``vjp`` rule.
  ``@p.raw_vjp(fresh=(i, ...))`` promises that the arrays returned for those inputs are
  always newly allocated by the rule (no view of a saved value or of another returned
  array, nor of ``g`` unless the rule was told it owns ``g``). The engine then knows it
  alone holds them, and tells the rule that receives one as its cotangent:
  ``ctx.grad_owned`` is True when the rule may overwrite ``g_array`` (no hook can see it
  and nothing else refers to it), so its backward can reuse that memory instead of
  allocating. A raw rule that has taken what it needs of its residuals and saved output
  may call ``ctx.drop_residuals()``: in a pass that frees the graph the node lets go of
  them then, so each is freed as soon as the rule drops it, not after the rule.
- ``@p.raw_jvp``: the forward-mode counterpart, ``raw_jvp(ctx, tangent_arrays)`` returning
  the output tangent as an array (or ``None``); ``tangent_arrays`` holds ``None`` where an
  input carries none. The engine calls it only for the oldest active level, when no
  tangent has batch axes and no graph is recorded through the inputs or the tangents
  (nothing will differentiate the tangent); otherwise the differentiable ``jvp`` rule.
- ``ctx`` gives ``inputs`` (Tensors, when saved), ``out`` (the output Tensor, when saved),
  ``params``, ``residuals`` (from a forward declared with ``residuals=True``), ``in_shapes``
  and ``needs_grad(i)``.

Cotangents and tangents may carry extra *leading* batch axes (a batch of basis vectors
for vectorized Jacobians), so rules index axes from the right and never assume
``g.shape == out.shape``. Un-broadcasting to each input's shape is done once, in the
engine.
"""

from __future__ import annotations

import inspect
import traceback
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, is_cupy_array
from gpuchain.engine import collector
from gpuchain.engine import versions as _versions
from gpuchain.engine.mode import active_levels, state
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import (
    AnomalyError,
    DeviceMismatchError,
    GpuchainError,
    IndexingError,
    MissingRuleError,
    ShapeError,
)

REGISTRY: dict[str, Primitive] = {}

SAVE_CHOICES = ("inputs", "output", "both", "none")


class Primitive:
    """A differentiable primitive; calling it applies it to Tensors.

    Made by :func:`defop`; user code calls the public function built on it (for example
    ``gc.tanh``), not the primitive itself.

    Parameters
    ----------
    name : str
        The registry name.
    forward : callable
        ``forward(xp, *arrays, **params)``: the array code.
    save : {"inputs", "output", "both", "none"}
        What the derivative rules read.
    residuals : bool
        The forward returns ``(result, residuals)``.
    broadcasts : bool
        The inputs broadcast against each other.
    """

    __slots__ = ("name", "forward", "cuda_forward", "vjp_rule", "jvp_rule", "raw_vjp_rule",
                 "raw_vjp_fresh", "raw_jvp_rule", "deriv_rule", "deriv_params", "save",
                 "has_residuals", "broadcasts")

    def __init__(self, name: str, forward: Callable[..., Any], *, save: str = "inputs",
                 residuals: bool = False, broadcasts: bool = False) -> None:
        if save not in SAVE_CHOICES:
            raise ValueError(f"op {name}: save must be one of {SAVE_CHOICES}, got {save!r}")
        self.name = name
        self.forward = forward
        self.cuda_forward: Callable[..., Any] | None = None
        self.vjp_rule: Callable[..., Any] | None = None
        self.jvp_rule: Callable[..., Any] | None = None
        self.raw_vjp_rule: Callable[..., Any] | None = None
        self.raw_vjp_fresh: frozenset[int] = frozenset()
        self.raw_jvp_rule: Callable[..., Any] | None = None
        self.deriv_rule: Callable[..., Any] | None = None
        self.deriv_params = False  # whether the deriv rule takes the op's params
        self.save = save
        self.has_residuals = residuals
        # The op broadcasts its inputs against each other; forward mode then aligns a
        # lower-rank input's tangent with the output before calling the JVP rule.
        self.broadcasts = broadcasts

    def vjp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: the reverse-mode rule ``rule(ctx, g) -> cotangents``."""
        self.vjp_rule = rule
        return rule

    def jvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: the forward-mode rule ``rule(ctx, tangents) -> tangent``."""
        self.jvp_rule = rule
        return rule

    def raw_vjp(self, rule: Callable[..., Any] | None = None, *,
                fresh: tuple[int, ...] = ()) -> Any:
        """Decorator (``@p.raw_vjp`` or ``@p.raw_vjp(fresh=(0,))``): an optional
        non-differentiable array-level backward (fast path); ``fresh`` names the inputs
        whose returned arrays the rule always allocates anew (see the module docstring)."""
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.raw_vjp_rule = fn
            self.raw_vjp_fresh = frozenset(fresh)
            return fn

        return register if rule is None else register(rule)

    def raw_jvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: an optional non-differentiable array-level JVP (fast path)."""
        self.raw_jvp_rule = rule
        return rule

    def cuda(self, forward: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: a faster forward used when the arrays are CuPy arrays."""
        self.cuda_forward = forward
        return forward

    def deriv(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: the partial derivatives of an elementwise op, written once; both the
        VJP and the JVP rules are derived from them (see the module docstring)."""
        self.deriv_rule = rule
        self.vjp_rule, self.jvp_rule = _rules_from_partials(self, rule)
        return rule

    def partials(self, *saved: Tensor, **params: Any) -> Any:
        """The deriv rule's partial derivatives at ``saved`` (what ``save`` names)."""
        rule = self.deriv_rule
        if rule is None:
            raise MissingRuleError(f"{self.name}: no deriv rule (define one with @op.deriv)")
        return rule(*saved, **(params if self.deriv_params else {}))

    def __call__(self, *inputs: Any, **params: Any) -> Tensor:
        for x in inputs:
            if type(x) is not Tensor:
                try:
                    inputs = _coerce(inputs)
                except GpuchainError as exc:
                    exc.args = (f"{self.name}: {exc}",)
                    raise
                break
        return apply(self, inputs, params)

    def __repr__(self) -> str:
        return f"<gpuchain primitive {self.name}>"


def defop(name: str, *, save: str = "inputs", residuals: bool = False,
          broadcasts: bool = False) -> Callable[[Callable[..., Any]], Primitive]:
    """Decorator: register ``forward(xp, *arrays, **params)`` as the primitive ``name``.

    ``save`` names what the rules read (``"inputs"``, ``"output"``, ``"both"`` or
    ``"none"``); ``residuals=True`` means the forward returns ``(result, residuals)``;
    ``broadcasts=True`` means the inputs broadcast against each other. Defining a name
    again replaces the earlier primitive with a warning (a notebook cell run twice).
    """

    def register(forward: Callable[..., Any]) -> Primitive:
        if name in REGISTRY:
            warnings.warn(f"gpuchain op {name!r} is defined again; the new definition "
                          "replaces the old one", RuntimeWarning, stacklevel=2)
        op = Primitive(name, forward, save=save, residuals=residuals, broadcasts=broadcasts)
        REGISTRY[name] = op
        return op

    return register


# --- rules from partial derivatives ------------------------------------------------------

def _times(g: Tensor, partial: Any) -> Tensor | None:
    if type(partial) is int:
        return g if partial == 1 else -g if partial == -1 else g * partial
    return None if partial is None else g * partial


def _partials_caller(rule: Callable[..., Any], save: str, takes_wrt: bool,
                     takes_params: bool) -> Callable[[Any, tuple[bool, ...]], Any]:
    """``(ctx, wrt) -> partials``: the deriv rule called with what ``save`` names, chosen
    once at definition time (this runs for every backward and forward step of the op)."""
    if not takes_wrt and not takes_params:
        if save == "output":
            return lambda ctx, wrt: rule(ctx.out)
        if save == "inputs":
            return lambda ctx, wrt: rule(*ctx.inputs)
        if save == "both":
            return lambda ctx, wrt: rule(ctx.out, *ctx.inputs)
        return lambda ctx, wrt: rule()

    def saved(ctx: Any) -> tuple:
        if save == "output":
            return (ctx.out,)
        if save == "inputs":
            return tuple(ctx.inputs)
        if save == "both":
            return (ctx.out, *ctx.inputs)
        return ()

    def call(ctx: Any, wrt: tuple[bool, ...]) -> Any:
        kwargs = ctx.params if takes_params else {}
        if takes_wrt:
            return rule(*saved(ctx), wrt=wrt, **kwargs)
        return rule(*saved(ctx), **kwargs)

    return call


def _rules_from_partials(op: Primitive, rule: Callable[..., Any]
                         ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    signature = inspect.signature(rule).parameters
    takes_wrt = "wrt" in signature
    takes_params = any(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD)
                       for n, p in signature.items() if n != "wrt")
    op.deriv_params = takes_params
    partials = _partials_caller(rule, op.save, takes_wrt, takes_params)
    one = (True,)

    def vjp_rule(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        edges = ctx.edges
        if len(edges) == 1:
            return (_times(g, partials(ctx, one)),)
        if len(edges) == 2:
            wrt: tuple[bool, ...] = (edges[0] is not None, edges[1] is not None)
            d0, d1 = partials(ctx, wrt)
            return (_times(g, d0) if wrt[0] else None), (_times(g, d1) if wrt[1] else None)
        wrt = tuple([e is not None for e in edges])
        return tuple([_times(g, d) if w else None for d, w in zip(partials(ctx, wrt), wrt)])

    def jvp_rule(ctx: Any, tangents: list[Tensor | None]) -> Tensor | None:
        if len(tangents) == 1:
            t0 = tangents[0]
            return None if t0 is None else _times(t0, partials(ctx, one))
        wrt = tuple([t is not None for t in tangents])
        total = None
        for t, d in zip(tangents, partials(ctx, wrt)):
            if t is not None:
                term = _times(t, d)
                if term is not None:
                    total = term if total is None else total + term
        return total

    vjp_rule.__qualname__ = f"{op.name}.vjp (from deriv)"
    jvp_rule.__qualname__ = f"{op.name}.jvp (from deriv)"
    return vjp_rule, jvp_rule


# --- graph nodes ---------------------------------------------------------------------------

class Node:
    """One recorded op application: the context its VJP rule reads.

    Parameters
    ----------
    op : Primitive
        The primitive applied.
    params : dict
        Its non-tensor arguments.
    edges : tuple of Node, AccumulateGrad or None
        Where each input's cotangent goes (``None``: the input needs none).
    in_shapes, in_dtypes : tuple
        Each input's shape and dtype (the engine fits cotangents to them).
    inputs : tuple of Tensor or None
        The inputs, when the op saves them.
    out_data : array or None
        The output's array, when the op saves it (the output Tensor is rebuilt on
        access, so a node never forms a reference cycle with its own output).
    residuals : Any
        Extra values the forward returned for the rules.
    recorded_at : int or None
        The mutation clock when the inputs or the output were saved (None when nothing
        is): a saved value changed in place later carries a larger version, and backward
        refuses it.
    created_at : str or None
        Where the op was applied (recorded inside ``gc.detect_anomaly()``).

    ``grad_owned`` is True while the raw backward runs on a cotangent it may overwrite;
    ``last_use`` while it runs in a pass that frees the node afterwards (no
    ``retain_graph``), when :meth:`drop_residuals` takes effect.
    """

    __slots__ = ("op", "params", "edges", "inputs", "residuals", "in_shapes", "in_dtypes",
                 "_out_data", "_out_fw", "recorded_at", "freed", "created_at", "grad_owned",
                 "last_use", "__weakref__")

    def __init__(self, op: Primitive, params: dict[str, Any], edges: tuple[Any, ...],
                 in_shapes: tuple[tuple[int, ...], ...], in_dtypes: tuple[Any, ...],
                 inputs: tuple[Tensor, ...] | None, out_data: Any, residuals: Any,
                 recorded_at: int | None, created_at: str | None) -> None:
        self.op = op
        self.params = params
        self.edges = edges
        self.in_shapes = in_shapes
        self.in_dtypes = in_dtypes
        self.inputs = inputs
        self._out_data = out_data
        self._out_fw: dict[int, Tensor] | None = None
        self.residuals = residuals
        self.recorded_at = recorded_at
        self.freed = False
        self.created_at = created_at
        self.grad_owned = False  # set by the engine for the raw rule's call
        self.last_use = False  # likewise: the pass frees this node right after the rule

    @property
    def out(self) -> Tensor:
        """The op's output (rebuilt from the saved array)."""
        if self._out_data is None:
            raise RuntimeError(f"op {self.op.name}: its output was not saved")
        t = Tensor._from_op(self._out_data, self)
        t._fw = self._out_fw
        return t

    def needs_grad(self, i: int) -> bool:
        """Whether input ``i`` takes a cotangent (rules may skip the others' work)."""
        return self.edges[i] is not None

    def drop_residuals(self) -> None:
        """For a raw backward that has taken what it reads of its residuals and saved
        output: the node drops them now when the pass frees it after the rule anyway
        (``last_use``), so each is freed as soon as the rule lets go of it."""
        if self.last_use:
            self.residuals = None
            self._out_data = None

    def release(self) -> None:
        """Drop the saved values (after a backward without ``retain_graph``)."""
        self.inputs = None
        self.residuals = None
        self._out_data = None
        self._out_fw = None
        self.freed = True

    def where(self) -> str:
        """Where the op was applied, for error messages."""
        return self.created_at or "(creation site not recorded; run inside gc.detect_anomaly())"

    def __repr__(self) -> str:
        return f"<Node {self.op.name} inputs={[tuple(s) for s in self.in_shapes]}>"


class AccumulateGrad:
    """The graph node of a leaf tensor: the reverse pass sums the leaf's cotangents here.

    It refers to its leaf weakly (the leaf holds the node), so no reference cycle forms.
    """

    __slots__ = ("_leaf", "__weakref__")
    edges: tuple[()] = ()

    def __init__(self, leaf: Tensor) -> None:
        self._leaf = weakref.ref(leaf)

    @property
    def leaf(self) -> Tensor | None:
        """The leaf tensor, or None once it has been garbage-collected."""
        return self._leaf()

    def __repr__(self) -> str:
        leaf = self._leaf()
        return f"<AccumulateGrad {None if leaf is None else tuple(leaf.shape)}>"


def grad_node(t: Tensor) -> Node | AccumulateGrad:
    """The node a cotangent for ``t`` flows into: its op's node, or its accumulator."""
    node = t._node
    if node is not None:
        return node
    acc = t._acc
    if acc is None:
        acc = t._acc = AccumulateGrad(t)
    return acc


class _ForwardCtx:
    """What a JVP rule sees: the same attribute names as a Node."""

    __slots__ = ("inputs", "out", "params", "residuals")

    def __init__(self, inputs: tuple[Tensor, ...], out: Tensor, params: dict[str, Any],
                 residuals: Any) -> None:
        self.inputs = inputs
        self.out = out
        self.params = params
        self.residuals = residuals

    @property
    def in_shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.inputs]

    def needs_grad(self, i: int) -> bool:
        return True


# --- the hot path --------------------------------------------------------------------------

def _coerce(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    # Fast path for the commonest mix, a NumPy-backed tensor and a Python float or int
    # (``y * 0.5``): the constant takes the tensor's floating dtype without a general
    # conversion.
    if len(inputs) == 2:
        a, b = inputs
        if type(a) is Tensor and type(b) in (float, int) and type(a._data) is np.ndarray \
                and a._data.dtype.kind == "f":
            return a, Tensor._from_op(np.asarray(b, dtype=a._data.dtype), None)
        if type(b) is Tensor and type(a) in (float, int) and type(b._data) is np.ndarray \
                and b._data.dtype.kind == "f":
            return Tensor._from_op(np.asarray(a, dtype=b._data.dtype), None), b
    return coerce_inputs(inputs)


def describe(arrays: Any) -> str:
    """``numpy float32(3, 4), cupy float32(4,)``: the device, dtype and shape of each array."""
    return ", ".join(f"{'cupy' if is_cupy_array(a) else 'numpy'} {a.dtype}{tuple(a.shape)}"
                     for a in arrays)


_new_tensor = object.__new__


def _array_module(op: Primitive, arrays: tuple[Any, ...]) -> Any:
    first = type(arrays[0])
    for a in arrays[1:]:
        if type(a) is not first:
            raise DeviceMismatchError(
                f"{op.name}: inputs live on different devices ({describe(arrays)}); "
                "move them with .to('cpu') or .to('cuda') first")
    if first is np.ndarray:
        return np
    import cupy

    return cupy


def _caller_site() -> str:
    frames = traceback.extract_stack(limit=12)[:-3]
    inside = ("gpuchain/engine", "gpuchain/ops", "gpuchain/functional", "gpuchain/nn")
    for frame in reversed(frames):
        if not any(p in frame.filename.replace("\\", "/") for p in inside):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def check_finite(op_name: str, phase: str, array: Any, site: str | None) -> None:
    """Raise AnomalyError when a floating array holds NaN or Inf."""
    if array.dtype.kind not in "fc":
        return
    xp = np if isinstance(array, np.ndarray) else __import__("cupy")
    if not bool(xp.isfinite(array).all()):
        raise AnomalyError(f"{op_name}: {phase} produced NaN or Inf (op created at {site})")


def _record(op: Primitive, inputs: tuple[Tensor, ...], arrays: tuple[Any, ...],
            params: dict, out: Tensor, residuals: Any, site: str | None) -> None:
    if collector._raised is None:
        collector.raise_threshold()
    if len(inputs) == 1:
        x = inputs[0]
        edges: tuple[Any, ...] = (x._node or x._acc or grad_node(x),)
        a = arrays[0]
        in_shapes: tuple = (a.shape,)
        in_dtypes: tuple = (a.dtype,)
    elif len(inputs) == 2:
        x, y = inputs
        edges = ((x._node or x._acc or grad_node(x)) if x.requires_grad else None,
                 (y._node or y._acc or grad_node(y)) if y.requires_grad else None)
        a, b = arrays
        in_shapes = (a.shape, b.shape)
        in_dtypes = (a.dtype, b.dtype)
    else:
        edges = tuple([grad_node(t) if t.requires_grad else None for t in inputs])
        in_shapes = tuple([a.shape for a in arrays])
        in_dtypes = tuple([a.dtype for a in arrays])
    save = op.save
    saves_inputs = save == "inputs" or save == "both"
    out._node = Node(op, params, edges, in_shapes, in_dtypes,
                     inputs if saves_inputs else None,
                     out._data if save == "output" or save == "both" else None,
                     residuals, _versions._clock if save != "none" else None, site)
    out.requires_grad = True


def tangent(t: Tensor, level: int) -> Tensor | None:
    """``t``'s tangent at forward-mode ``level`` (None when it carries none)."""
    fw = t._fw
    return None if fw is None else fw.get(level)


def set_tangent(t: Tensor, level: int, tan: Tensor | None) -> None:
    """Attach ``tan`` as ``t``'s tangent at ``level`` (None removes it)."""
    fw = dict(t._fw) if t._fw else {}
    if tan is None:
        fw.pop(level, None)
    else:
        fw[level] = tan
    t._fw = fw or None


def _align_tangent(tan: Tensor | None, in_ndim: int, out_ndim: int, batch_ndim: int
                   ) -> Tensor | None:
    if tan is None or in_ndim == out_ndim:
        return tan
    shape = tan.shape
    return tan.reshape(shape[:batch_ndim] + (1,) * (out_ndim - in_ndim) + shape[batch_ndim:])


def _propagate_tangents(op: Primitive, inputs: tuple[Tensor, ...], params: dict, out: Tensor,
                        residuals: Any, levels: tuple[int, ...]) -> None:
    # Oldest level first: a newer level's rule may read the output, whose tangents at
    # the older levels must then already be attached (nested forward mode).
    ctx = None
    for i, level in enumerate(levels):
        tangents = [tangent(t, level) for t in inputs]
        if all(tan is None for tan in tangents):
            continue
        if op.jvp_rule is None:
            raise MissingRuleError(f"{op.name}: no JVP rule, so forward mode cannot "
                                   "differentiate through it")
        if ctx is None:
            ctx = _ForwardCtx(inputs, out, params, residuals)
        nb = state.fw_batch_ndim[level]
        if i == 0 and nb == 0 and op.raw_jvp_rule is not None and not (
                state.grad_enabled and _any_requires_grad(inputs, tangents)):
            raw = op.raw_jvp_rule(ctx, [None if t is None else t._data for t in tangents])
            if raw is not None:
                if raw.shape != out.shape:
                    raw = array_module_of(raw).broadcast_to(raw, out.shape)
                set_tangent(out, level, Tensor._from_op(raw, None))
            continue
        with active_levels(levels[:i]):
            if op.broadcasts:
                tangents = [_align_tangent(tan, t.ndim, out.ndim, nb)
                            for tan, t in zip(tangents, inputs)]
            tan_out = op.jvp_rule(ctx, tangents)
            if tan_out is not None and tan_out.shape[nb:] != out.shape:
                tan_out = tan_out.broadcast_to(tan_out.shape[:nb] + out.shape)
        if tan_out is not None:
            set_tangent(out, level, tan_out)
    if out._node is not None and out._node._out_data is not None:
        out._node._out_fw = out._fw


def _any_requires_grad(inputs: tuple[Tensor, ...], tangents: list[Tensor | None]) -> bool:
    return any(t.requires_grad for t in inputs) or any(
        t is not None and t.requires_grad for t in tangents)


def apply(op: Primitive, inputs: tuple[Tensor, ...], params: dict[str, Any]) -> Tensor:
    """The hot path: unwrap, pick xp, run the forward, wrap, record, propagate tangents."""
    if len(inputs) == 1:
        arrays: tuple[Any, ...] = (inputs[0]._data,)
        xp = np if type(arrays[0]) is np.ndarray else _array_module(op, arrays)
    elif len(inputs) == 2:
        arrays = (inputs[0]._data, inputs[1]._data)
        xp = np if type(arrays[0]) is np.ndarray and type(arrays[1]) is np.ndarray \
            else _array_module(op, arrays)
    else:
        arrays = tuple([t._data for t in inputs])
        xp = _array_module(op, arrays) if arrays else np
    forward = op.forward if xp is np or op.cuda_forward is None else op.cuda_forward
    try:
        result = forward(xp, *arrays, **params)
    except ValueError as exc:
        raise ShapeError(f"{op.name}: cannot apply to {describe(arrays)}: {exc}") from exc
    except IndexError as exc:
        raise IndexingError(f"{op.name}: cannot apply to {describe(arrays)}: {exc}") from exc
    residuals = None
    if op.has_residuals:
        result, residuals = result
    if type(result) is not np.ndarray and not is_cupy_array(result):
        result = xp.asarray(result)  # NumPy reductions return scalars, not 0-d arrays
    # Tensor._from_op(result, None), inlined: this line runs once per op call
    out = _new_tensor(Tensor)
    out._data = result
    out.grad = out._node = out._fw = out._acc = None
    out.requires_grad = False

    st = state
    grad_enabled, levels, anomaly = st.grad_enabled, st.fw_levels, st.anomaly
    site = None
    if anomaly:
        site = _caller_site()
        check_finite(op.name, "forward", result, site)
    if grad_enabled and (op.vjp_rule is not None or result.dtype.kind in "fc"):
        for t in inputs:
            if t.requires_grad:
                _record(op, inputs, arrays, params, out, residuals, site)
                break
    if levels:
        _propagate_tangents(op, inputs, params, out, residuals, levels)
    return out
