"""Differential fuzzing against PyTorch (float64): random programs over the op set.

Hypothesis draws a small program: one to three inputs (0-d, size-1 and empty shapes
included, some passed to gpuchain as non-contiguous views), then up to six steps, each an
op applied to earlier values or to new inputs of a fitting shape: elementwise functions
(trigonometric, hyperbolic, exponential and logarithmic families, activations),
broadcasting binary ops (arithmetic, power, maximum/minimum, logaddexp, hypot, arctan2),
reductions (sum, mean, max, min, prod, var, std, logsumexp) over negative axes with and
without keepdims, softmax/log_softmax, matmul (vector and batched operands), reshape,
transpose, concatenate, stack, basic slicing with negative steps, advanced indexing with
repeated indices, boolean masks, ``where``, ``clip``, and NumPy-style functions (flip,
roll, expand_dims, squeeze, moveaxis, swapaxes, tile, repeat, pad, sort,
take_along_axis, cumsum, cumprod). The same program runs on gpuchain and on PyTorch
(``torch.func``) and must agree on:

* the forward value;
* the VJP for a random cotangent (each input);
* the JVP for random tangents (``torch.func.jvp``);
* reverse over reverse: the VJP of the gradient map ``x ↦ Jᵀ(x)u``;
* forward over reverse: the JVP of the same gradient map;
* reverse over forward: the VJP of the tangent map ``x ↦ J(x)v``.

Random inputs come from a seeded normal generator, so ties and kinks (``abs`` or
``relu`` at 0, tied maxima) occur only where a program builds them on purpose
(``maximum(x, x)``, a repeated index, ``relu(x - x)``); the conventions there are listed
below and every one of them agrees with PyTorch's. Programs whose forward values leave
[-1e4, 1e4] or are not finite are discarded (``assume``), and ops that need a positive
argument (``log``, ``sqrt``, ``div``'s denominator, ``power``'s base) take ``x² + 0.5``.

Conventions (gpuchain next to PyTorch)
--------------------------------------
=================================  ==========================  ===========================
case                               gpuchain                    PyTorch, compared with
=================================  ==========================  ===========================
``max`` reduction, tied maxima     gradient split equally      ``torch.amax`` (split
                                                               equally; ``torch.max(dim)``
                                                               would pick one index)
``maximum``/``minimum`` tie        0.5 to each operand         ``torch.maximum`` (0.5)
``abs`` at 0                       0                           ``torch.abs`` (0)
``relu`` at 0                      0                           ``torch.relu`` (0)
``leaky_relu`` at 0                the slope                   ``F.leaky_relu`` (slope)
``clip`` at a bound                1 (bounds inclusive)        ``torch.clamp`` (1)
negative-step slices               NumPy semantics             ``index_select`` with the
                                                               same indices (torch slices
                                                               take no negative step)
axes                               NumPy (``axis``, ints or    ``dim``; an all-axes
                                   tuples, negative allowed)   reduction of a 0-d value
                                                               is the value itself
``mean`` over zero elements        NaN (as NumPy)              NaN; such programs are
                                                               discarded
``gelu``                           exact (erf) form            ``F.gelu`` (default, erf)
``var``/``std``                    ``ddof=0`` (NumPy)          ``correction=0``; of a 0-d
                                                               value: 0
``prod`` over several axes         one primitive               ``torch.prod`` one dim at a
                                                               time
``sort`` with tied values          (not compared: which tied   (programs with ties are
                                   entry gets a cotangent is   not drawn)
                                   arbitrary in both)
``repeat``/``cumsum`` axis None    flatten first (NumPy)       the same on ``reshape(-1)``
``cumprod`` with a zero factor     exact (finite) second       reverse over forward NaN;
                                   derivatives                 not drawn, tested against
                                                               the closed form instead
``arctan2`` at (0, 0)               0 in both modes (as         ``atan2``: VJP 0 but JVP
                                   abs'(0) = 0)                NaN; the programs keep the
                                                               second operand positive
``hypot`` at (0, 0)                NaN (not differentiable)    NaN
``logsumexp`` over zero elements   -inf; JVP 0 (a sum over     -inf; JVP NaN (0·inf inside
                                   no terms: exact)            its rule); the fixed
                                                               program expects gpuchain's
                                                               0 where torch has NaN
=================================  ==========================  ===========================

Run ``pytest tests/test_fuzz_torch.py --hypothesis-profile=long`` for thousands of
examples; the default ("ci") profile is derandomized (a fixed seed) and bounded in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gpuchain as gc  # noqa: E402

LIMIT = 1e4  # forward values beyond this are discarded
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.func internals


# --- the two libraries behind one small interface --------------------------------------

ELEMENTWISE = ("sin", "cos", "tanh", "exp", "log", "sqrt", "abs", "sigmoid", "relu", "erf",
               "tan", "maximum", "minimum", "matmul", "reshape", "sinh", "cosh", "arctan",
               "arcsinh", "log1p", "expm1", "square", "reciprocal", "arctanh", "arcsin",
               "arccos", "log2", "log10", "exp2", "logaddexp", "hypot", "arctan2")
REDUCTIONS = ("sum", "mean", "max", "min", "prod", "var", "std", "logsumexp")


def _gc_reduce(kind, x, axis, keepdims):
    return getattr(gc, kind)(x, axis=axis, keepdims=keepdims)


# NumPy-style functions taking (x, params): the same names and arguments as NumPy
GC_NP = {
    "flip": lambda x, p: gc.flip(x, p["axis"]),
    "roll": lambda x, p: gc.roll(x, p["shift"], p["axis"]),
    "expand_dims": lambda x, p: gc.expand_dims(x, p["axis"]),
    "squeeze": lambda x, p: gc.squeeze(x, p["axis"]),
    "moveaxis": lambda x, p: gc.moveaxis(x, p["src"], p["dst"]),
    "swapaxes": lambda x, p: gc.swapaxes(x, p["a"], p["b"]),
    "tile": lambda x, p: gc.tile(x, p["reps"]),
    "repeat": lambda x, p: gc.repeat(x, p["repeats"], p["axis"]),
    "pad": lambda x, p: gc.pad(x, p["pad_width"]),
    "sort": lambda x, p: gc.sort(x, p["axis"]),
    "take_along_axis": lambda x, p: gc.take_along_axis(x, p["indices"], p["axis"]),
    "cumsum": lambda x, p: gc.cumsum(x, p["axis"]),
    "cumprod": lambda x, p: gc.cumprod(x, p["axis"]),
}

GC = SimpleNamespace(
    **{name: getattr(gc, name) for name in ELEMENTWISE + (
        "softplus", "gelu", "silu", "leaky_relu", "transpose", "where", "clip", "concatenate",
        "stack")},
    reduce=_gc_reduce,
    softmax=lambda kind, x, axis: getattr(gc, kind)(x, axis=axis),
    index=lambda x, index: x[index],
    numpy=lambda name, x, p: GC_NP[name](x, p),
)


def _dims(x, axis) -> tuple:
    """A NumPy ``axis`` (None, int or tuple) as a tuple of torch dims."""
    if axis is None:
        return tuple(range(x.ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _torch_prod(x, dim, keepdim):
    dims = sorted({d % x.ndim for d in dim}, reverse=True)
    for d in dims:  # torch.prod takes one dim at a time
        x = torch.prod(x, dim=d, keepdim=True)
    return x if keepdim or not dims else torch.squeeze(x, tuple(dims))


_TORCH_REDUCE = {
    "sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin,
    "prod": _torch_prod, "logsumexp": torch.logsumexp,
    "var": lambda x, dim, keepdim: torch.var(x, dim=dim, keepdim=keepdim, correction=0),
    "std": lambda x, dim, keepdim: torch.std(x, dim=dim, keepdim=keepdim, correction=0),
}


def _torch_reduce(kind, x, axis, keepdims):
    if x.ndim == 0:
        if kind in ("var", "std"):
            return x * 0.0
        return x
    return _TORCH_REDUCE[kind](x, dim=_dims(x, axis), keepdim=keepdims)


def _torch_scan(fn, x, axis):
    return fn(x.reshape(-1), dim=0) if axis is None else fn(x, dim=axis)


TORCH_NP = {
    "flip": lambda x, p: torch.flip(x, _dims(x, p["axis"])),
    "roll": lambda x, p: torch.roll(x, p["shift"], p["axis"]),
    "expand_dims": lambda x, p: torch.unsqueeze(x, p["axis"]),
    "squeeze": lambda x, p: torch.squeeze(x) if p["axis"] is None else torch.squeeze(
        x, p["axis"]),
    "moveaxis": lambda x, p: torch.movedim(x, p["src"], p["dst"]),
    "swapaxes": lambda x, p: torch.swapaxes(x, p["a"], p["b"]),
    "tile": lambda x, p: torch.tile(x, p["reps"]),
    "repeat": lambda x, p: torch.repeat_interleave(x, p["repeats"], dim=p["axis"]),
    "pad": lambda x, p: torch.nn.functional.pad(
        x, [w for pair in reversed(p["pad_width"]) for w in pair]),
    "sort": lambda x, p: torch.sort(x, dim=p["axis"]).values,
    "take_along_axis": lambda x, p: torch.take_along_dim(
        x, torch.as_tensor(p["indices"]), dim=p["axis"]),
    "cumsum": lambda x, p: _torch_scan(torch.cumsum, x, p["axis"]),
    "cumprod": lambda x, p: _torch_scan(torch.cumprod, x, p["axis"]),
}


def _torch_index(x, index):
    if any(isinstance(i, slice) and i.step is not None and i.step < 0 for i in index):
        # torch slices take no negative step: select the same indices explicitly
        for axis, i in enumerate(index):
            idx = np.arange(x.shape[axis])[i].copy()  # a copy: positive strides
            x = torch.index_select(x, axis, torch.as_tensor(idx, dtype=torch.long))
        return x
    return x[tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)]


F = torch.nn.functional
TORCH = SimpleNamespace(
    **{name: getattr(torch, name) for name in ELEMENTWISE},
    numpy=lambda name, x, p: TORCH_NP[name](x, p),
    softplus=F.softplus, gelu=F.gelu, silu=F.silu, leaky_relu=F.leaky_relu,
    reduce=_torch_reduce,
    softmax=lambda kind, x, axis: getattr(torch, kind)(x, dim=axis),
    transpose=torch.permute,
    index=_torch_index,
    where=lambda cond, a, b: torch.where(torch.as_tensor(cond), a, b),
    clip=torch.clamp,
    concatenate=lambda xs, axis: torch.cat(xs, dim=axis),
    stack=lambda xs, axis: torch.stack(xs, dim=axis),
)


# --- ops: how each step computes, given the interface L and its drawn parameters ---------

def _pos(L, x):
    return x * x + 0.5


UNARY = {
    "neg": lambda L, x: -x,
    "sin": lambda L, x: L.sin(x),
    "cos": lambda L, x: L.cos(x),
    "tanh": lambda L, x: L.tanh(x),
    "exp": lambda L, x: L.exp(L.tanh(x)),  # bounded argument keeps values in range
    "log": lambda L, x: L.log(_pos(L, x)),
    "sqrt": lambda L, x: L.sqrt(_pos(L, x)),
    "abs": lambda L, x: L.abs(x),
    "sigmoid": lambda L, x: L.sigmoid(x),
    "relu": lambda L, x: L.relu(x),
    "leaky_relu": lambda L, x: L.leaky_relu(x, 0.1),
    "softplus": lambda L, x: L.softplus(x),
    "erf": lambda L, x: L.erf(x),
    "gelu": lambda L, x: L.gelu(x),
    "silu": lambda L, x: L.silu(x),
    "tan": lambda L, x: L.tan(L.tanh(x)),  # |argument| < 1 keeps away from the poles
    "square": lambda L, x: x**2,
    "cube": lambda L, x: x**3,
    "scale": lambda L, x: 2.5 * x - 1.0,
    "recip": lambda L, x: 1.0 / _pos(L, x),
    "sinh": lambda L, x: L.sinh(x),
    "cosh": lambda L, x: L.cosh(x),
    "arctan": lambda L, x: L.arctan(x),
    "arcsinh": lambda L, x: L.arcsinh(x),
    "log1p": lambda L, x: L.log1p(_pos(L, x)),
    "expm1": lambda L, x: L.expm1(L.tanh(x)),
    "square_fn": lambda L, x: L.square(x),
    "reciprocal": lambda L, x: L.reciprocal(_pos(L, x)),
    "arctanh": lambda L, x: L.arctanh(0.5 * L.tanh(x)),
    "arcsin": lambda L, x: L.arcsin(0.5 * L.tanh(x)),
    "arccos": lambda L, x: L.arccos(0.5 * L.tanh(x)),
    "log2": lambda L, x: L.log2(_pos(L, x)),
    "log10": lambda L, x: L.log10(_pos(L, x)),
    "exp2": lambda L, x: L.exp2(L.tanh(x)),
}
BINARY = {
    "add": lambda L, a, b: a + b,
    "sub": lambda L, a, b: a - b,
    "mul": lambda L, a, b: a * b,
    "div": lambda L, a, b: a / _pos(L, b),
    "power": lambda L, a, b: _pos(L, a) ** L.tanh(b),
    "maximum": lambda L, a, b: L.maximum(a, b),
    "minimum": lambda L, a, b: L.minimum(a, b),
    "logaddexp": lambda L, a, b: L.logaddexp(a, b),
    # both are not differentiable at the origin (see the conventions): kept away from it
    "hypot": lambda L, a, b: L.hypot(a, _pos(L, b)),
    "arctan2": lambda L, a, b: L.arctan2(a, _pos(L, b)),
}


@dataclass
class Step:
    op: str
    args: tuple[int, ...]  # ids of earlier values (inputs and step outputs, in drawing order)
    params: dict = field(default_factory=dict)
    out: int = -1  # the id of this step's value (set when the step joins a program)


def apply_step(L: Any, step: Step, values: list) -> Any:
    p, xs = step.params, [values[i] for i in step.args]
    if step.op in UNARY:
        return UNARY[step.op](L, xs[0])
    if step.op in BINARY:
        return BINARY[step.op](L, xs[0], xs[1])
    if step.op == "reduce":
        return L.reduce(p["kind"], xs[0], p["axis"], p["keepdims"])
    if step.op == "softmax":
        return L.softmax(p["kind"], xs[0], p["axis"])
    if step.op == "matmul":
        return L.matmul(xs[0], xs[1])
    if step.op == "reshape":
        return L.reshape(xs[0], p["shape"])
    if step.op == "transpose":
        return L.transpose(xs[0], p["perm"])
    if step.op == "index":
        return L.index(xs[0], p["index"])
    if step.op == "where":
        return L.where(p["cond"], xs[0], xs[1])
    if step.op == "clip":
        return L.clip(xs[0], p["lo"], p["hi"])
    if step.op == "concatenate":
        return L.concatenate(xs, p["axis"])
    if step.op == "numpy":
        return L.numpy(p["fn"], xs[0], p)
    if step.op == "stack":
        return L.stack(xs, p["axis"])
    raise AssertionError(step.op)


@dataclass
class Program:
    inputs: list[np.ndarray]
    noncontiguous: list[bool]
    steps: list[Step]
    input_ids: list[int] = field(default_factory=list)  # default: 0, 1, ... in order
    torch_nan_is_zero: tuple[str, ...] = ()  # checks where torch's NaN is gpuchain's exact 0

    def _ids(self) -> list[int]:
        return self.input_ids or list(range(len(self.inputs)))

    def run(self, L: Any, *xs: Any) -> Any:
        values = dict(zip(self._ids(), xs))
        key = -1
        for step in self.steps:
            key = step.out
            values[key] = apply_step(L, step, values)
        return values[key]

    def __repr__(self) -> str:
        ins = ", ".join(f"v{i}: {a.shape}" for i, a in zip(self._ids(), self.inputs))
        body = "\n  ".join(f"v{s.out} = {s.op}{tuple(f'v{i}' for i in s.args)} "
                           f"{_show(s.params)}" for s in self.steps)
        return f"Program(inputs {ins}; non-contiguous {self.noncontiguous}):\n  {body}"


def _show(params: dict) -> str:
    return "{" + ", ".join(f"{k}={v.tolist() if isinstance(v, np.ndarray) else v!r}"
                           for k, v in params.items()) + "}"


# --- drawing programs ------------------------------------------------------------------

dims = st.integers(0, 3)
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)


def _broadcast_partner(draw, shape: tuple) -> tuple:
    """A shape that broadcasts against ``shape`` to ``shape``: leading axes dropped, some
    axes set to 1."""
    drop = draw(st.integers(0, len(shape)))
    out = list(shape[drop:])
    for k in range(len(out)):
        if draw(st.booleans()) and draw(st.booleans()):
            out[k] = 1
    return tuple(out)


def _shape_with_size(draw, size: int) -> tuple:
    if size == 0:
        return draw(st.sampled_from([(0,), (0, 2), (3, 0), (1, 0, 2)]))
    shape, rest = [], size
    while len(shape) < 3 and rest > 1 and draw(st.booleans()):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        shape.append(d)
        rest //= d
    shape.append(rest)
    if draw(st.booleans()):
        shape.insert(draw(st.integers(0, len(shape))), 1)
    return tuple(shape)


def _axis_param(draw, ndim: int, allow_none: bool = True) -> Any:
    choice = draw(st.sampled_from(["none", "one", "tuple"] if allow_none else ["one", "tuple"]))
    if ndim == 0 or choice == "none":
        return None
    if choice == "one":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def _slice(draw, n: int) -> slice:
    step = draw(st.sampled_from([None, 1, 2, -1, -2]))
    start = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
    stop = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
    return slice(start, stop, step)


def _index_param(draw, shape: tuple, rng: np.random.Generator) -> tuple | None:
    kind = draw(st.sampled_from(["basic", "int_array", "two_arrays", "mask", "int"]))
    nd = len(shape)
    if nd == 0:
        return None
    if kind == "basic":
        return tuple(_slice(draw, n) for n in shape)
    if kind == "int":
        axis = draw(st.integers(0, nd - 1))
        if shape[axis] == 0:
            return None
        i = draw(st.integers(-shape[axis], shape[axis] - 1))
        return (slice(None),) * axis + (i,)
    if kind == "int_array":
        axis = draw(st.integers(0, nd - 1))
        if shape[axis] == 0:
            return None
        k = draw(st.integers(0, 5))
        idx = rng.integers(-shape[axis], shape[axis], size=k)
        if k >= 2 and draw(st.booleans()):
            idx[1] = idx[0]  # a repeated index: its cotangents must add up
        return (slice(None),) * axis + (idx,)
    if kind == "two_arrays":
        if nd < 2 or 0 in shape[:2]:
            return None
        k = draw(st.integers(1, 4))
        i = rng.integers(0, shape[0], size=k)
        j = rng.integers(0, shape[1], size=k)
        i[-1] = i[0]
        j[-1] = j[0]  # the same element twice
        return (i, j)
    mask = rng.random(shape) < 0.5
    return (mask,)


def _numpy_params(draw, x: Any, rng: np.random.Generator) -> dict | None:
    """Parameters for one of the NumPy-style functions (None where it does not apply)."""
    shape = tuple(x.shape)
    nd = len(shape)
    fn = draw(st.sampled_from(sorted(GC_NP)))
    if fn == "expand_dims":
        return {"fn": fn, "axis": draw(st.integers(-nd - 1, nd))}
    if fn == "tile":
        return {"fn": fn, "reps": tuple(draw(st.lists(st.integers(1, 2), max_size=nd + 1)))}
    if fn in ("roll", "repeat", "cumsum", "cumprod", "flip") and (
            nd == 0 or draw(st.booleans())):
        axis = None
    elif nd == 0:
        return None
    else:
        axis = draw(st.integers(-nd, nd - 1))
    if fn == "flip":
        return {"fn": fn, "axis": axis}
    if fn == "roll":
        return {"fn": fn, "axis": axis, "shift": draw(st.integers(-3, 3))}
    if fn == "repeat":
        return {"fn": fn, "axis": axis, "repeats": draw(st.integers(0, 3))}
    if fn in ("cumsum", "cumprod"):
        return {"fn": fn, "axis": axis}
    if fn == "squeeze":
        ones = [a for a in range(nd) if shape[a] == 1]
        return {"fn": fn, "axis": draw(st.sampled_from(ones)) if ones else None}
    if fn == "moveaxis":
        return {"fn": fn, "src": axis, "dst": draw(st.integers(-nd, nd - 1))}
    if fn == "swapaxes":
        return {"fn": fn, "a": axis, "b": draw(st.integers(-nd, nd - 1))}
    if fn == "pad":
        width = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
        return {"fn": fn, "pad_width": width}
    if fn == "sort":
        values = x.numpy()
        if np.unique(values).size != values.size:
            return None  # tied values: which of them a cotangent reaches is arbitrary
        return {"fn": fn, "axis": axis}
    if fn == "cumprod" and not np.all(x.numpy()):
        return None  # a zero factor: torch's reverse-over-forward gives NaN (see the table)
    n = shape[axis]
    k = draw(st.integers(0, 4)) if n else 0
    idx_shape = shape[:axis % nd] + (k,) + shape[axis % nd + 1:]
    return {"fn": fn, "axis": axis, "indices": rng.integers(0, max(n, 1), size=idx_shape)}


def _broadcasts_into(small: tuple, shape: tuple) -> bool:
    try:
        return np.broadcast_shapes(small, shape) == shape
    except ValueError:
        return False


def _draw_step(draw, prog: Program, values: list, rng: np.random.Generator) -> Step | None:
    """One step on the current values (drawing new inputs where an operand is needed)."""
    n = len(values)
    pick = draw(st.integers(0, n - 1))
    x = values[pick]
    shape = tuple(x.shape)
    kind = draw(st.sampled_from(["unary", "unary", "binary", "binary", "reduce", "softmax",
                                 "matmul", "reshape", "transpose", "index", "index",
                                 "where", "clip", "concatenate", "stack", "numpy", "numpy"]))

    def new_input(s: tuple) -> int:
        prog.inputs.append(rng.standard_normal(s))
        prog.noncontiguous.append(draw(st.booleans()))
        prog.input_ids.append(len(values))
        values.append(gc.tensor(prog.inputs[-1]))
        return len(values) - 1

    if kind == "unary":
        return Step(draw(st.sampled_from(sorted(UNARY))), (pick,))
    if kind == "binary":
        other = draw(st.integers(0, n))  # n: a new input of a broadcasting shape
        if other == n or not _broadcasts_into(tuple(values[other].shape), shape):
            other = new_input(_broadcast_partner(draw, shape))
        args = (pick, other) if draw(st.booleans()) else (other, pick)
        return Step(draw(st.sampled_from(sorted(BINARY))), args)
    if kind == "reduce":
        red = draw(st.sampled_from(REDUCTIONS))
        axis = _axis_param(draw, len(shape))
        reduced = shape if axis is None else [shape[a] for a in
                                              ((axis,) if isinstance(axis, int) else axis)]
        if red in ("max", "min", "mean") and 0 in reduced:
            return None  # max of nothing raises in both; mean of nothing is NaN
        if red in ("var", "std") and math.prod(reduced) < 2:
            return None  # std of one value is 0, where its derivative is infinite
        return Step("reduce", (pick,), {"kind": red, "axis": axis,
                                        "keepdims": draw(st.booleans())})
    if kind == "softmax":
        if not shape:
            return None
        return Step("softmax", (pick,), {"kind": draw(st.sampled_from(["softmax",
                                                                       "log_softmax"])),
                                         "axis": draw(st.integers(-len(shape), len(shape) - 1))})
    if kind == "matmul":
        if not shape:
            return None
        k = shape[-1]
        right = draw(st.sampled_from(["vector", "matrix", "batched"]))
        other_shape = {"vector": (k,), "matrix": (k, draw(st.integers(0, 3))),
                       "batched": (2, k, draw(st.integers(1, 3)))}[right]
        if right == "batched" and len(shape) > 2:
            other_shape = other_shape[1:]
        return Step("matmul", (pick, new_input(other_shape)))
    if kind == "numpy":
        params = _numpy_params(draw, x, rng)
        return None if params is None else Step("numpy", (pick,), params)
    if kind == "reshape":
        return Step("reshape", (pick,), {"shape": _shape_with_size(draw, math.prod(shape))})
    if kind == "transpose":
        perm = draw(st.permutations(range(len(shape))))
        return Step("transpose", (pick,), {"perm": tuple(a - len(shape) if draw(st.booleans())
                                                         else a for a in perm)})
    if kind == "index":
        index = _index_param(draw, shape, rng)
        return None if index is None else Step("index", (pick,), {"index": index})
    if kind == "where":
        other = new_input(_broadcast_partner(draw, shape))
        cond = rng.random(_broadcast_partner(draw, shape)) < 0.5
        return Step("where", (pick, other), {"cond": cond})
    if kind == "clip":
        lo = draw(st.floats(-1.5, 0.5))
        return Step("clip", (pick,), {"lo": lo, "hi": lo + draw(st.floats(0.1, 2.0))})
    if not shape and kind == "concatenate":
        return None
    axis = draw(st.integers(-len(shape) - (kind == "stack"), len(shape) - (kind != "stack")))
    if kind == "concatenate":
        other_shape = list(shape)
        other_shape[axis] = draw(st.integers(0, 2))
        return Step("concatenate", (pick, new_input(tuple(other_shape))), {"axis": axis})
    return Step("stack", (pick, new_input(shape)), {"axis": axis})


def _in_range(t: Any) -> bool:
    a = t.numpy()
    return bool(np.all(np.isfinite(a)) and (a.size == 0 or np.max(np.abs(a)) < LIMIT))


@st.composite
def programs(draw) -> Program:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    prog = Program([], [], [])
    for k in range(draw(st.integers(1, 3))):
        prog.inputs.append(rng.standard_normal(draw(shapes)))
        prog.noncontiguous.append(draw(st.booleans()))
        prog.input_ids.append(k)
    values = [gc.tensor(a) for a in prog.inputs]
    for _ in range(draw(st.integers(1, 6))):
        step = _draw_step(draw, prog, values, rng)
        if step is None:
            continue
        with gc.no_grad():
            out = apply_step(GC, step, values)
        assume(_in_range(out))
        step.out = len(values)
        prog.steps.append(step)
        values.append(out)
    assume(prog.steps)
    return prog


# --- running and comparing -------------------------------------------------------------

def _noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values in a strided view (every other element of a larger buffer)."""
    if a.ndim == 0:
        return a
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    view = big[..., ::2]
    view[...] = a
    return view


def _from_torch(t: Any) -> np.ndarray:
    # torch.func may hand back a ZeroTensor (a symbolic zero); materialize it in NumPy
    if t._is_zerotensor():
        return np.zeros(tuple(t.shape))
    return np.array(t.detach().clone().contiguous().tolist(), dtype=np.float64).reshape(
        tuple(t.shape))


def _close(got: Any, expected: Any, what: str, prog: Program) -> None:
    g = got.numpy() if hasattr(got, "numpy") and not isinstance(got, torch.Tensor) else got
    e = _from_torch(expected) if isinstance(expected, torch.Tensor) else expected
    g, e = np.asarray(g), np.asarray(e)
    if what in prog.torch_nan_is_zero:
        e = np.where(np.isnan(e), 0.0, e)  # a documented convention (see the table above)
    assert g.shape == e.shape, f"{what}: shape {g.shape} vs torch {e.shape}\n{prog}"
    finite = np.abs(e[np.isfinite(e)])
    scale = 1.0 + (float(np.max(finite)) if finite.size else 0.0)
    np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-9 * scale,
                               err_msg=f"{what} disagrees with PyTorch\n{prog}")


def check_program(prog: Program, seed: int = 0) -> None:
    gc_inputs = [_noncontiguous(a) if nc else a for a, nc in zip(prog.inputs, prog.noncontiguous)]
    t_inputs = [torch.tensor(a, dtype=torch.float64) for a in prog.inputs]
    rng = np.random.default_rng(seed)
    f_gc = lambda *xs: prog.run(GC, *xs)  # noqa: E731
    f_t = lambda *xs: prog.run(TORCH, *xs)  # noqa: E731

    out, pull = gc.vjp(f_gc, *gc_inputs)
    t_out, t_pull = torch.func.vjp(f_t, *t_inputs)
    _close(out, t_out, "forward value", prog)
    u = rng.standard_normal(tuple(t_out.shape))
    for k, (a, b) in enumerate(zip(pull(u), t_pull(torch.tensor(u)))):
        _close(a, b, f"VJP, input {k}", prog)

    v = [rng.standard_normal(a.shape) for a in prog.inputs]
    _, tan = gc.jvp(f_gc, gc_inputs, v)
    _, t_tan = torch.func.jvp(f_t, tuple(t_inputs), tuple(torch.tensor(d) for d in v))
    _close(tan, t_tan, "JVP", prog)

    u_t = torch.tensor(u)
    gmap = lambda *xs: gc.vjp(f_gc, *xs)[1](u)  # noqa: E731
    t_gmap = lambda *xs: torch.func.vjp(f_t, *xs)[1](u_t)  # noqa: E731
    w = tuple(rng.standard_normal(a.shape) for a in prog.inputs)
    rr = gc.vjp(gmap, *gc_inputs)[1](w)
    t_rr = torch.func.vjp(t_gmap, *t_inputs)[1](tuple(torch.tensor(c) for c in w))
    for k, (a, b) in enumerate(zip(rr, t_rr)):
        _close(a, b, f"reverse over reverse, input {k}", prog)
    _, fr = gc.jvp(gmap, gc_inputs, v)
    _, t_fr = torch.func.jvp(t_gmap, tuple(t_inputs), tuple(torch.tensor(d) for d in v))
    for k, (a, b) in enumerate(zip(fr, t_fr)):
        _close(a, b, f"forward over reverse, input {k}", prog)

    v_t = tuple(torch.tensor(d) for d in v)
    tmap = lambda *xs: gc.jvp(f_gc, list(xs), v)[1]  # noqa: E731
    t_tmap = lambda *xs: torch.func.jvp(f_t, xs, v_t)[1]  # noqa: E731
    rf = gc.vjp(tmap, *gc_inputs)[1](u)
    t_rf = torch.func.vjp(t_tmap, *t_inputs)[1](u_t)
    for k, (a, b) in enumerate(zip(rf, t_rf)):
        _close(a, b, f"reverse over forward, input {k}", prog)


@given(programs())
def test_random_programs_agree_with_pytorch(prog):
    check_program(prog)


# --- fixed programs: each regression the fuzzer found stays here -------------------------

def _prog(inputs, steps, noncontiguous=None, torch_nan_is_zero=()):
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    for k, step in enumerate(steps):
        step.out = len(inputs) + k
    return Program(inputs, noncontiguous or [True] * len(inputs), steps,
                   torch_nan_is_zero=torch_nan_is_zero)


FIXED = {
    "repeated_index_then_max": _prog(
        [[0.3, -1.0, 2.0]], [Step("index", (0,), {"index": (np.array([2, 2, 0]),)}),
                             Step("reduce", (1,), {"kind": "max", "axis": None,
                                                   "keepdims": False})]),
    "mask_then_logsumexp_over_empty": _prog(
        [[[0.1, 0.2], [0.3, 0.4]]],
        [Step("index", (0,), {"index": (np.zeros((2, 2), dtype=bool),)}),
         Step("reduce", (1,), {"kind": "logsumexp", "axis": -1, "keepdims": True})],
        torch_nan_is_zero=("JVP",)),
    "batched_matmul_with_vector": _prog(
        [np.arange(12.0).reshape(2, 2, 3) / 10, [0.5, -0.2, 0.1]],
        [Step("matmul", (0, 1)), Step("softmax", (2,), {"kind": "log_softmax", "axis": -1})]),
    "negative_step_slices_then_transpose": _prog(
        [np.arange(12.0).reshape(3, 4) / 7],
        [Step("index", (0,), {"index": (slice(None, None, -1), slice(3, 0, -2))}),
         Step("transpose", (1,), {"perm": (-1, 0)}), Step("sin", (2,))]),
    "broadcast_power_zero_d": _prog(
        [0.7, [[0.1, -0.3, 0.2]]], [Step("power", (0, 1)), Step("mul", (2, 1))]),
    "tied_maximum": _prog([[0.4, -0.2]], [Step("maximum", (0, 0)), Step("relu", (1,))]),
    "empty_matmul": _prog([np.zeros((2, 0)), np.zeros((0, 3))], [Step("matmul", (0, 1))]),
}


def test_cumprod_with_a_zero_factor_reverse_over_forward():
    # cumprod(relu(x)) at x = (a > 0, b < 0): the tangent map is (v0, 0) near x, so its
    # VJP is exactly zero; torch.func gives NaN for the first entry here
    x, v, u = np.array([0.5, -0.25]), np.array([1.0, 2.0]), np.array([1.0, 1.0])
    tmap = lambda x: gc.jvp(lambda y: gc.cumprod(gc.relu(y)), (x,), (v,))[1]  # noqa: E731
    np.testing.assert_array_equal(gc.vjp(tmap, x)[1](u)[0].numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(tmap(x).numpy(), [1.0, 0.0])


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_programs_agree_with_pytorch(name):
    check_program(FIXED[name])
