"""Op definitions and the hot path that applies one.

An op is defined in one place: its forward (array code written against ``xp``), its
VJP rule and its JVP rule, plus an optional faster CUDA forward. Rules are written
with gpuchain ops on Tensors, so a backward pass is itself differentiable.

Rule contract
-------------
``vjp(ctx, g)`` returns one cotangent per tensor input (``None`` where zero).
``jvp(ctx, tangents)`` returns the output tangent; ``tangents`` has ``None`` where an
input carries none. ``ctx`` gives ``inputs`` (Tensors, when the op saves them),
``out`` (the output Tensor, when saved), ``params`` and ``residuals``.

Cotangents and tangents may carry extra *leading* batch axes (a batch of basis
vectors for vectorized Jacobians), so rules index axes from the right and never
assume ``g.shape == out.shape``. Un-broadcasting to each input's shape is done
once, in the engine.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from gpuchain.backend import is_cupy_array
from gpuchain.engine.mode import paused_forward, state
from gpuchain.engine.tensor import Tensor, coerce_inputs
from gpuchain.errors import AnomalyError, DeviceMismatchError, ShapeError

REGISTRY: dict[str, Op] = {}

SAVE_CHOICES = ("inputs", "output", "both", "none")


class Op:
    """A differentiable primitive; calling it applies it to Tensors."""

    __slots__ = ("name", "forward", "cuda_forward", "vjp_rule", "jvp_rule", "save",
                 "has_residuals", "elementwise")

    def __init__(self, name: str, forward: Callable[..., Any], *, save: str = "inputs",
                 residuals: bool = False, elementwise: bool = False) -> None:
        if save not in SAVE_CHOICES:
            raise ValueError(f"op {name}: save must be one of {SAVE_CHOICES}")
        self.name = name
        self.forward = forward
        self.cuda_forward: Callable[..., Any] | None = None
        self.vjp_rule: Callable[..., Any] | None = None
        self.jvp_rule: Callable[..., Any] | None = None
        self.save = save
        self.has_residuals = residuals
        # Elementwise ops broadcast their inputs; forward mode then aligns a lower-rank
        # input's tangent with the output before calling the JVP rule.
        self.elementwise = elementwise

    def vjp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        self.vjp_rule = rule
        return rule

    def jvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        self.jvp_rule = rule
        return rule

    def cuda(self, forward: Callable[..., Any]) -> Callable[..., Any]:
        """Attach a faster forward used when the arrays are CuPy arrays."""
        self.cuda_forward = forward
        return forward

    def __call__(self, *inputs: Any, **params: Any) -> Tensor:
        for x in inputs:
            if type(x) is not Tensor:
                inputs = _coerce(inputs)
                break
        return apply(self, inputs, params)

    def __repr__(self) -> str:
        return f"<gpuchain op {self.name}>"


def defop(name: str, *, save: str = "inputs", residuals: bool = False,
          elementwise: bool = False) -> Callable[[Callable[..., Any]], Op]:
    """Decorator: register ``forward(xp, *arrays, **params)`` as op ``name``."""

    def register(forward: Callable[..., Any]) -> Op:
        if name in REGISTRY:
            raise ValueError(f"op {name!r} is defined twice")
        op = Op(name, forward, save=save, residuals=residuals, elementwise=elementwise)
        REGISTRY[name] = op
        return op

    return register


class Node:
    """One recorded op application: the context its VJP rule reads."""

    __slots__ = ("op", "params", "edges", "inputs", "residuals", "in_shapes", "in_dtypes",
                 "_out_data", "_out_fw", "freed", "created_at", "__weakref__")

    @property
    def out(self) -> Tensor:
        # The output is rebuilt on access instead of stored, so a node never keeps a
        # reference cycle with its own output tensor.
        if self._out_data is None:
            raise RuntimeError(f"op {self.op.name}: its output was not saved")
        t = Tensor._from_op(self._out_data, self)
        t._fw = self._out_fw
        return t

    def needs_grad(self, i: int) -> bool:
        """Whether input ``i`` takes a cotangent (rules may skip the others' work)."""
        return self.edges[i] is not None

    def release(self) -> None:
        self.inputs = None
        self.residuals = None
        self._out_data = None
        self._out_fw = None
        self.freed = True

    def where(self) -> str:
        return self.created_at or "(creation site not recorded; run inside gc.detect_anomaly())"


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


def _coerce(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    # Fast path for the commonest mix, a NumPy-backed tensor and a Python float or int
    # (``y * 0.5``): the constant takes the tensor's floating dtype without a general
    # conversion.
    if len(inputs) == 2:
        a, b = inputs
        if type(a) is Tensor and type(b) in (float, int) and type(a.data) is np.ndarray \
                and a.data.dtype.kind == "f":
            return a, Tensor._from_op(np.asarray(b, dtype=a.data.dtype), None)
        if type(b) is Tensor and type(a) in (float, int) and type(b.data) is np.ndarray \
                and b.data.dtype.kind == "f":
            return Tensor._from_op(np.asarray(a, dtype=b.data.dtype), None), b
    return coerce_inputs(inputs)


def _describe(arrays: list[Any]) -> str:
    return ", ".join(f"{'cupy' if is_cupy_array(a) else 'numpy'} {a.dtype}{tuple(a.shape)}"
                     for a in arrays)


_new_tensor = object.__new__


def _array_module(op: Op, arrays: tuple[Any, ...]) -> Any:
    first = type(arrays[0])
    for a in arrays[1:]:
        if type(a) is not first:
            raise DeviceMismatchError(
                f"{op.name}: inputs live on different devices ({_describe(arrays)}); "
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


def _align_tangent(tangent: Tensor | None, in_ndim: int, out_ndim: int, batch_ndim: int
                   ) -> Tensor | None:
    if tangent is None or in_ndim == out_ndim:
        return tangent
    shape = tangent.shape
    return tangent.reshape(shape[:batch_ndim] + (1,) * (out_ndim - in_ndim) + shape[batch_ndim:])


def _record(op: Op, inputs: tuple[Tensor, ...], arrays: tuple[Any, ...], params: dict,
            out: Tensor, residuals: Any, site: str | None) -> None:
    node = Node()
    node.op = op
    node.params = params
    if len(inputs) == 1:
        x = inputs[0]
        node.edges = (x._node if x._node is not None else x,)
        a = arrays[0]
        node.in_shapes = (a.shape,)
        node.in_dtypes = (a.dtype,)
    else:
        node.edges = tuple([(t._node if t._node is not None else t) if t.requires_grad
                            else None for t in inputs])
        node.in_shapes = tuple([a.shape for a in arrays])
        node.in_dtypes = tuple([a.dtype for a in arrays])
    save = op.save
    node.inputs = inputs if save == "inputs" or save == "both" else None
    node._out_data = out.data if save == "output" or save == "both" else None
    node._out_fw = None
    node.residuals = residuals
    node.freed = False
    node.created_at = site
    out._node = node
    out.requires_grad = True


def _propagate_tangents(op: Op, inputs: tuple[Tensor, ...], params: dict, out: Tensor,
                        residuals: Any, level: int) -> None:
    tangents = [t._fw[1] if t._fw is not None and t._fw[0] == level else None for t in inputs]
    if all(tan is None for tan in tangents):
        return
    if op.jvp_rule is None:
        raise NotImplementedError(f"{op.name}: no JVP rule (forward mode)")
    ctx = _ForwardCtx(inputs, out, params, residuals)
    with paused_forward():
        if op.elementwise:
            nb = state.fw_batch_ndim
            tangents = [_align_tangent(tan, t.ndim, out.ndim, nb)
                        for tan, t in zip(tangents, inputs)]
        tangent_out = op.jvp_rule(ctx, tangents)
    if tangent_out is not None:
        out._fw = (level, tangent_out)
        if out._node is not None and out._node._out_data is not None:
            out._node._out_fw = out._fw


def apply(op: Op, inputs: tuple[Tensor, ...], params: dict[str, Any]) -> Tensor:
    """The hot path: unwrap, pick xp, run the forward, wrap, record, propagate tangents."""
    if len(inputs) == 1:
        arrays = (inputs[0].data,)
        xp = np if type(arrays[0]) is np.ndarray else _array_module(op, arrays)
    elif len(inputs) == 2:
        arrays = (inputs[0].data, inputs[1].data)
        xp = np if type(arrays[0]) is np.ndarray and type(arrays[1]) is np.ndarray \
            else _array_module(op, arrays)
    else:
        arrays = tuple([t.data for t in inputs])
        xp = _array_module(op, arrays)
    forward = op.forward if xp is np or op.cuda_forward is None else op.cuda_forward
    try:
        result = forward(xp, *arrays, **params)
    except (ValueError, IndexError) as exc:
        raise ShapeError(f"{op.name}: cannot apply to {_describe(arrays)}: {exc}") from exc
    residuals = None
    if op.has_residuals:
        result, residuals = result
    if type(result) is not np.ndarray and not is_cupy_array(result):
        result = xp.asarray(result)  # NumPy reductions return scalars, not 0-d arrays
    # Tensor._from_op(result, None), inlined: this line runs once per op call
    out = _new_tensor(Tensor)
    out.data = result
    out.grad = out._node = out._fw = None
    out.requires_grad = False

    st = state
    grad_enabled, level, anomaly = st.grad_enabled, st.fw_level, st.anomaly
    site = None
    if anomaly:
        site = _caller_site()
        check_finite(op.name, "forward", result, site)
    if grad_enabled and op.vjp_rule is not None:
        for t in inputs:
            if t.requires_grad:
                _record(op, inputs, arrays, params, out, residuals, site)
                break
    if level is not None:
        _propagate_tangents(op, inputs, params, out, residuals, level)
    return out
