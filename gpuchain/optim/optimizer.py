"""Optimizer base: parameter groups over flat buffers, all-or-nothing steps, state dicts.

Parameters may be given as a module, an iterable of leaf Tensors that require grad (or
``nn.Parameter``s, or modules), or PyTorch-style group dicts
(``[{"params": ..., "lr": ...}, ...]``). Each group's parameters are split into
*segments*: a run of parameters lying next to each other in a module's flat buffer is
one segment (one vectorized update, one CUDA launch); a parameter outside any flat
buffer is re-homed into a new flat buffer (``nn.Parameter``) or updated on its own (a
plain Tensor). Segments are rebuilt, with the state carried over per parameter, when
parameters move (``model.to``), are re-flattened by another module or optimizer, or are
frozen/unfrozen, so an optimizer never silently stops updating.

As in PyTorch, each parameter counts its own updates (Adam's bias correction and
Adagrad's lr decay read that count): a parameter frozen for some steps (requires_grad
off) keeps its state and its count and resumes them when unfrozen, and one added with
``add_param_group`` starts from zero. A segment holds parameters of equal count.

Hyperparameters live in ``param_groups[i]`` and are read at every step (schedulers write
``lr`` there). A step is all-or-nothing: gradients are checked (right shape and device,
finite) and workspace allocated before any parameter or state value is written; a
parameter without a gradient is skipped, as in PyTorch.

The update of each optimizer is written once against ``xp`` (NumPy or CuPy); a fused
CUDA kernel is used where one exists. Float16 parameters keep float32 state and a
float32 master copy of the weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, cast

import numpy as np

from gpuchain.backend import array_module_of, move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.engine.versions import mark_written
from gpuchain.errors import DTypeError, NonFiniteGradError, OptimizerStateError, ShapeError
from gpuchain.nn.buffer import FlatBuffer, contiguous_runs, flatten
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter

# Elements per chunk of the NumPy update: the chunk's temporaries stay in cache.
CHUNK = 1 << 16

ParamsLike = Module | Iterable[Any]


class Segment:
    """A contiguous run of parameters updated as one 1-D array.

    ``buffer`` is the FlatBuffer holding them (``lo:hi`` the run's range), or None for a
    single plain Tensor updated on its own.
    """

    __slots__ = ("group", "params", "buffer", "lo", "hi", "offsets")

    def __init__(self, group: int, params: list[Tensor], buffer: FlatBuffer | None,
                 lo: int, hi: int) -> None:
        self.group = group
        self.params = params
        self.buffer = buffer
        self.lo, self.hi = lo, hi
        self.offsets: list[int] = []
        off = 0
        for p in params:
            self.offsets.append(off)
            off += p.size

    @property
    def size(self) -> int:
        return self.hi - self.lo

    def data(self) -> Any:
        if self.buffer is not None:
            return self.buffer.data[self.lo:self.hi]
        return self.params[0]._data.reshape(-1)

    def grad(self) -> Any:
        if self.buffer is not None:
            # a FlatBuffer holds Parameters only (plain Tensors get a segment of their own)
            self.buffer.gather_grads(cast("list[Parameter]", self.params))
            return self.buffer.grad[self.lo:self.hi]
        grad = self.params[0].grad
        if grad is None:
            raise ValueError(f"Segment.grad: a tensor of shape {tuple(self.params[0].shape)} "
                             "has no .grad")
        return grad._data.reshape(-1)


class _GroupView(MutableMapping):
    """``opt.hyper``: the hyperparameters of the only param group, read and written live."""

    def __init__(self, group: dict[str, Any]) -> None:
        self._group = group

    def __getitem__(self, key: str) -> Any:
        if key == "params":
            raise KeyError(key)
        return self._group[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._group or key == "params":
            raise KeyError(f"optimizer: unknown hyperparameter {key!r}; known: "
                           f"{sorted(k for k in self._group if k != 'params')}")
        self._group[key] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("optimizer: hyperparameters cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._group if k != "params")

    def __len__(self) -> int:
        return len(self._group) - 1

    def __repr__(self) -> str:
        return repr(dict(self))


def _expand(item: Any, where: str) -> tuple[list[Tensor], dict[int, str]]:
    """Tensors (and their names, for modules) from a module, a tensor or an iterable."""
    if isinstance(item, Module):
        named = list(item.named_parameters())
        return [p for _, p in named], {id(p): n for n, p in named}
    if isinstance(item, Tensor):
        return [item], {}
    if isinstance(item, (str, bytes, Mapping)) or not isinstance(item, Iterable):
        raise TypeError(f"{where}: expected Tensors that require grad, nn.Parameters or "
                        f"modules, got {type(item).__name__}")
    out: list[Tensor] = []
    names: dict[int, str] = {}
    for i, x in enumerate(item):
        if isinstance(x, Module):
            ps, ns = _expand(x, where)
            out += ps
            names.update(ns)
        elif isinstance(x, Tensor):
            out.append(x)
        else:
            hint = " (wrap arrays with nn.Parameter(array))" if hasattr(x, "shape") else ""
            raise TypeError(f"{where}: item {i} is a {type(x).__name__}, not a "
                            f"gpuchain.nn.Parameter, a Tensor that requires grad or a "
                            f"module{hint}")
    return out, names


def _check_param(p: Tensor, where: str) -> None:
    if not p.is_leaf:
        raise ValueError(f"{where}: a {tuple(p.shape)} tensor is the result of an op, not a "
                         "leaf; optimize the leaves it was computed from")
    if p.dtype.kind != "f":
        raise DTypeError(f"{where}: parameters must be floating, got {p.dtype} "
                         f"{tuple(p.shape)}")


class Optimizer:
    """Base class of the optimizers. A subclass passes its ``defaults`` (hyperparameters)
    and defines ``validate`` (hyperparameter checks), ``state_names(group)``,
    ``init_state`` and ``update`` (written once against ``xp``), optionally ``fused`` (a
    CUDA kernel).

    Parameters
    ----------
    params : module, iterable of Tensors/Parameters/modules, or param-group dicts
        What to optimize; a group dict holds ``"params"`` and per-group hyperparameters.
    defaults : dict
        Hyperparameters of every group that does not set its own.
    check_finite : bool
        Refuse a step whose gradients hold NaN or Inf (NonFiniteGradError).
    """

    _n_work = 2
    # hyperparameters added after states were first saved, with the value those states
    # implied (a state_dict without them loads with these)
    added_later: Mapping[str, Any] = {}

    def __init__(self, params: ParamsLike, defaults: dict[str, Any],
                 check_finite: bool = True) -> None:
        name = type(self).__name__
        self.validate(defaults, name)
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self._names: dict[int, str] = {}
        seen: dict[int, int] = {}
        for gi, group in enumerate(self._split_groups(params, name)):
            self.param_groups.append(self._checked_group(group, gi, seen, name))
        if not seen:
            raise ValueError(f"{name}: got no parameters to optimize")
        self.check_finite = bool(check_finite)
        self.step_count = 0
        # updates applied to each parameter (self.params order), as PyTorch's per-parameter
        # state["step"]: a parameter frozen for a while, or added later, has its own count
        # (Adam's bias correction, Adagrad's lr decay)
        self._param_steps: list[int] = [0] * len(self.params)
        self._segments: list[Segment] = []
        self._layout: tuple[Any, ...] | None = None
        self.state: list[dict[str, Any]] = []
        # the state of parameters in no segment (frozen), by position in self.params, so
        # unfreezing resumes it as PyTorch's per-parameter state does
        self._parked: dict[int, dict[str, Any]] = {}
        self._work: list[Any] = []
        self._build_segments()

    def _checked_group(self, group: Mapping[str, Any], gi: int, seen: dict[int, int],
                       name: str) -> dict[str, Any]:
        """Group ``gi`` with the defaults filled in, its parameters expanded and checked
        (``seen``: parameter id -> group, updated); raises before anything is kept."""
        group = dict(group)
        ps, names = _expand(group.pop("params"), f"{name} param group {gi}")
        added: dict[int, int] = {}
        for p in ps:
            _check_param(p, name)
            where = seen.get(id(p), added.get(id(p)))
            if where is not None:
                place = "twice in one group" if where == gi else f"in groups {where} and {gi}"
                raise ValueError(f"{name}: parameter {names.get(id(p), self._label(p))} is "
                                 f"listed {place}; each parameter may appear once")
            added[id(p)] = gi
        unknown = sorted(set(group) - set(self.defaults))
        if unknown:
            raise ValueError(f"{name} param group {gi}: unknown options {unknown}; "
                             f"known: {sorted(self.defaults)}")
        full = {**self.defaults, **group}
        self.validate(full, f"{name} param group {gi}")
        full["params"] = ps
        seen.update(added)
        self._names.update({k: v for k, v in names.items() if k not in self._names})
        return full

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group (``{"params": ..., hyperparameter: value, ...}``, the rest taken
        from the defaults), as ``torch.optim.Optimizer.add_param_group``: for fine-tuning,
        parameters unfrozen later. Its parameters start with fresh state; the existing
        groups and their state are kept. A parameter already optimized raises, and
        nothing changes."""
        name = f"{type(self).__name__}.add_param_group"
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError(f"{name}: expected a dict with a 'params' entry, got "
                            f"{type(param_group).__name__}")
        seen = {id(p): gi for gi, g in enumerate(self.param_groups) for p in g["params"]}
        group = self._checked_group(param_group, len(self.param_groups), seen, name)
        self.param_groups.append(group)
        self._param_steps += [0] * len(group["params"])
        self._refresh()

    @staticmethod
    def _split_groups(params: ParamsLike, name: str) -> list[dict[str, Any]]:
        if isinstance(params, (Module, Tensor)):
            return [{"params": params}]
        if isinstance(params, (str, bytes, Mapping)) or not isinstance(params, Iterable):
            raise TypeError(f"{name}: params must be a module, an iterable of tensors or of "
                            f"param-group dicts, got {type(params).__name__}")
        items = list(params)
        if items and all(isinstance(x, Mapping) for x in items):
            for i, g in enumerate(items):
                if "params" not in g:
                    raise ValueError(f"{name}: param group {i} has no 'params' entry")
            return [dict(g) for g in items]
        if any(isinstance(x, Mapping) for x in items):
            raise TypeError(f"{name}: mix of param-group dicts and tensors; give either "
                            "tensors (one group) or dicts (one per group)")
        return [{"params": items}]

    # --- subclass hooks ----------------------------------------------------------------------
    @classmethod
    def validate(cls, hyper: Mapping[str, Any], where: str) -> None:
        """Raise ValueError if a hyperparameter is out of range."""

    def state_names(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def init_state(self, name: str, xp: Any, size: int, dtype: Any,
                   group: Mapping[str, Any]) -> Any:
        return xp.zeros(size, dtype=dtype)

    def update(self, xp: Any, p: Any, g: Any, st: dict[str, Any], work: Any, step: int,
               h: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def fused(self, p: Any, g: Any, st: dict[str, Any], step: int,
              h: Mapping[str, Any]) -> bool:
        """Run a fused CUDA kernel for CuPy arrays; return False when there is none."""
        return False

    # --- hyperparameter access ---------------------------------------------------------
    @property
    def hyper(self) -> _GroupView:
        """The hyperparameters of the only param group; a live view (writes take effect)."""
        if len(self.param_groups) != 1:
            raise AttributeError(f"{type(self).__name__}.hyper: there are "
                                 f"{len(self.param_groups)} param groups; use "
                                 "param_groups[i] instead")
        return _GroupView(self.param_groups[0])

    @property
    def lr(self) -> float:
        """The learning rate of every group (raises if the groups differ); setting it sets
        it in every group."""
        lrs = {g["lr"] for g in self.param_groups}
        if len(lrs) != 1:
            raise AttributeError(f"{type(self).__name__}.lr: the param groups have different "
                                 f"learning rates {[g['lr'] for g in self.param_groups]}; "
                                 "read param_groups[i]['lr']")
        return lrs.pop()

    @lr.setter
    def lr(self, value: float) -> None:
        for i, g in enumerate(self.param_groups):
            self.validate({**g, "lr": value}, f"{type(self).__name__}.lr (group {i})")
        for g in self.param_groups:
            g["lr"] = value

    @property
    def params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def buffers(self) -> list[FlatBuffer]:
        """The flat buffers the parameters are updated in (distinct, in order)."""
        self._refresh()
        out: dict[int, FlatBuffer] = {}
        for seg in self._segments:
            if seg.buffer is not None:
                out.setdefault(id(seg.buffer), seg.buffer)
        return list(out.values())

    def _label(self, p: Tensor) -> str:
        return self._names.get(id(p), f"{p.dtype}{tuple(p.shape)}")

    # --- segments ------------------------------------------------------------------------
    def _layout_key(self) -> tuple[Any, ...]:
        key = []
        for g in self.param_groups:
            for p in g["params"]:
                buf = p._buffer if type(p) is Parameter and p.in_flat_buffer() else None
                key.append((id(p), p.requires_grad, id(buf), id(p._data) if buf is None else 0))
        return tuple(key)

    def _refresh(self) -> None:
        if self._layout_key() != self._layout:
            self._build_segments()

    def _build_segments(self) -> None:
        old = self._segments
        old_state = self.state
        segments: list[Segment] = []
        position = {id(p): i for i, p in enumerate(self.params)}
        for gi, g in enumerate(self.param_groups):
            active = [p for p in g["params"] if p.requires_grad]
            loose = [p for p in active if type(p) is Parameter and not p.in_flat_buffer()]
            if loose:
                flatten(loose)
            for buf, lo, _, run in contiguous_runs(active):
                if buf is None:
                    p = run[0]
                    if not p._data.flags.c_contiguous:
                        p._data = array_module_of(p._data).ascontiguousarray(p._data)
                # one segment per stretch of equal step counts: one step value per update
                for part in _equal_runs(run, lambda q: self._param_steps[position[id(q)]]):
                    segments.append(Segment(gi, part, buf, lo, lo + sum(q.size for q in part)))
                    lo += sum(q.size for q in part)
        self._segments = segments
        self._seg_positions = [[position[id(p)] for p in seg.params] for seg in segments]
        self._layout = self._layout_key()
        self.state, self._parked = _carry_state(old, old_state, segments, self._parked,
                                                position)
        self._work = [None] * len(segments)

    # --- step ----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient (``set_to_none=False``: zero it). Gradients already handed
        out keep their values."""
        by_buffer: dict[int, tuple[FlatBuffer, list[Parameter]]] = {}
        for p in self.params:
            if type(p) is Parameter and p.in_flat_buffer():
                by_buffer.setdefault(id(p._buffer), (p._buffer, []))[1].append(p)
            elif set_to_none:
                p.grad = None
                if type(p) is Parameter:
                    p.release_grad_slot()
            else:
                p.grad = Tensor(array_module_of(p._data).zeros_like(p._data))
        for buf, ps in by_buffer.values():
            buf.zero_grad(ps, set_to_none=set_to_none)

    def _check_grads(self) -> None:
        bad = []
        for seg in self._segments:
            for p in seg.params:
                if p.grad is None:
                    continue
                if tuple(p.grad.shape) != tuple(p.shape):
                    bad.append(f"{self._label(p)}: grad {tuple(p.grad.shape)} vs param "
                               f"{tuple(p.shape)}")
                elif array_module_of(p.grad._data) is not array_module_of(p._data):
                    bad.append(f"{self._label(p)}: grad on {p.grad.device}, param on "
                               f"{p.device}")
        if bad:
            raise ShapeError(f"{type(self).__name__}.step: mis-shaped gradients: "
                             + "; ".join(bad))

    def _plan(self) -> list[tuple[int, Segment, int]]:
        """(segment index, the part of it to update, the index of that part's first
        parameter in the segment): the whole segment when every parameter in it has a
        gradient, its stretches of parameters with one otherwise (PyTorch skips a
        parameter whose .grad is None)."""
        plan = []
        for i, seg in enumerate(self._segments):
            have = [p.grad is not None for p in seg.params]
            if all(have):
                plan.append((i, seg, 0))
                continue
            start = 0
            for k in range(len(seg.params) + 1):
                if k < len(seg.params) and have[k]:
                    continue
                if k > start:
                    lo = seg.lo + seg.offsets[start]
                    hi = lo + sum(p.size for p in seg.params[start:k])
                    plan.append((i, Segment(seg.group, seg.params[start:k], seg.buffer, lo,
                                            hi), start))
                start = k + 1
        return plan

    def step(self) -> None:
        """Apply one update to every parameter that requires grad and has a gradient
        (one without ``.grad`` is skipped, its state and update count kept, as in
        PyTorch). Nothing changes if a gradient is mis-shaped or not finite."""
        self._refresh()
        self._check_grads()
        plan = self._plan()
        grads = [part.grad() for _, part, _ in plan]
        if self.check_finite:
            for (_, part, _), g in zip(plan, grads, strict=True):
                _check_finite(part, g, self._label)
        states = list(self.state)
        for i in dict.fromkeys(i for i, _, _ in plan):
            states[i] = self._full_state(self._segments[i], self.state[i])
        updated: list[int] = []
        for (i, part, start), g in zip(plan, grads, strict=True):
            off = self._segments[i].offsets[start]
            st = states[i] if part is self._segments[i] else \
                {k: v[off:off + part.size] for k, v in states[i].items()}
            positions = self._seg_positions[i][start:start + len(part.params)]
            self._apply(part, g, st, i, self._param_steps[positions[0]] + 1,
                        self.param_groups[part.group])
            updated += positions
        self.state = states
        self.step_count += 1
        for k in updated:
            self._param_steps[k] += 1
        if any(part is not self._segments[i] for i, part, _ in plan):
            self._layout = None  # counts now differ within a segment: regroup at next use

    def _full_state(self, seg: Segment, st: dict[str, Any]) -> dict[str, Any]:
        """The segment's state with every entry its group needs now (created lazily)."""
        h = self.param_groups[seg.group]
        data = seg.data()
        xp = array_module_of(data)
        sdtype = np.float32 if data.dtype == np.float16 else data.dtype
        out = dict(st)
        for k in self.state_names(h):
            if k not in out:
                out[k] = self.init_state(k, xp, seg.size, sdtype, h)
        if data.dtype == np.float16 and "master" not in out:
            out["master"] = data.astype(np.float32)
        return out

    def _apply(self, seg: Segment, g: Any, st: dict[str, Any], i: int, step: int,
               h: Mapping[str, Any]) -> None:
        p = seg.data()
        xp = array_module_of(p)
        target, grad = p, g
        if "master" in st:
            master = st["master"]
            # Resync the master copy where the fp16 weights were changed from outside.
            xp.copyto(master, p, where=master.astype(p.dtype) != p)
            target, grad = master, g.astype(np.float32)
        inner = {k: v for k, v in st.items() if k != "master"}
        if xp is np:
            work = self._work[i]
            if work is None or work.dtype != target.dtype:
                work = self._work[i] = np.empty((self._n_work, min(CHUNK, max(seg.size, 1))),
                                                dtype=target.dtype)
            for lo in range(0, seg.size, CHUNK):
                hi = min(lo + CHUNK, seg.size)
                chunk = {k: v[lo:hi] for k, v in inner.items()}
                self.update(np, target[lo:hi], grad[lo:hi], chunk, work[:, :hi - lo], step, h)
        elif not self.fused(target, grad, inner, step, h):
            work = xp.empty((self._n_work, seg.size), dtype=target.dtype)
            self.update(xp, target, grad, inner, work, step, h)
        if target is not p:
            p[...] = target.astype(p.dtype)
        mark_written(p)  # a backward through a graph that saved these weights now raises

    # --- state dicts ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"type", "step" (steps taken), "param_steps" (updates applied to each
        parameter), "param_groups": [hyperparameters and parameter indices],
        "buffers": {"i": {name: array}} per segment, "frozen": {"j": {name: array}} for
        parameter j when it is frozen (requires_grad off) and has state} (arrays copied)."""
        self._refresh()
        index = {id(p): i for i, p in enumerate(self.params)}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        return {
            "type": type(self).__name__,
            "step": self.step_count,
            "param_steps": list(self._param_steps),
            "param_groups": groups,
            "segments": [[index[id(p)] for p in seg.params] for seg in self._segments],
            "buffers": {str(i): {k: v.copy() for k, v in st.items()}
                        for i, st in enumerate(self.state)},
            "frozen": {str(j): {k: v.copy() for k, v in st.items()}
                       for j, st in sorted(self._parked.items())},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state_dict; every problem is reported in one OptimizerStateError and
        nothing changes (hyperparameters are checked as the constructor checks them)."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise OptimizerStateError(f"{name}: expected a mapping from state_dict(), got "
                                      f"{type(state).__name__}")
        self._refresh()
        problems: list[str] = []
        step = state.get("step", 0)
        if not _is_count(step):
            problems.append(f"step must be a non-negative int, got {step!r}")
            step = 0
        # states saved before per-parameter counts: every parameter took every step
        param_steps = state.get("param_steps", [step] * len(self.params))
        old_steps = self._param_steps
        if not isinstance(param_steps, (list, tuple)) or len(param_steps) != len(
                self.params) or not all(_is_count(k) for k in param_steps):
            problems.append(f"param_steps must be {len(self.params)} non-negative ints, got "
                            f"{param_steps!r}")
        elif list(param_steps) != old_steps:
            # segments hold parameters of one step count: regroup as the saved optimizer
            # was (the state carried; undone below if anything else is wrong)
            self._param_steps = [int(k) for k in param_steps]
            self._build_segments()
        try:
            self._load_checked(state, step, problems, name)
        except OptimizerStateError:
            if self._param_steps is not old_steps:
                self._param_steps = old_steps
                self._build_segments()
            raise

    def _load_checked(self, state: Mapping[str, Any], step: int, problems: list[str],
                      name: str) -> None:
        if state.get("type") != type(self).__name__:
            problems.append(f"state is for {state.get('type')!r}, this is "
                            f"{type(self).__name__!r}")
        new_groups = self._loaded_groups(state, problems)
        bufs = state.get("buffers", {})
        if not isinstance(bufs, Mapping) or set(bufs) != {str(i) for i in
                                                           range(len(self._segments))}:
            problems.append(f"expected {len(self._segments)} parameter segments, got "
                            f"{sorted(bufs) if isinstance(bufs, Mapping) else bufs}")
            bufs = {}
        new_states = []
        for i, seg in enumerate(self._segments):
            entry = bufs.get(str(i), {})
            if not isinstance(entry, Mapping):
                problems.append(f"buffer {i}: expected a mapping, got {type(entry).__name__}")
                continue
            group = {**self.param_groups[seg.group], **new_groups[seg.group]}
            expected = set(self.state_names(group))
            data = seg.data()
            if data.dtype == np.float16:
                expected.add("master")
            if entry and set(entry) != expected:
                problems.append(f"buffer {i}: keys {sorted(entry)}, expected {sorted(expected)}")
                continue
            sdtype = np.dtype(np.float32) if data.dtype == np.float16 else data.dtype
            xp = array_module_of(data)
            st = {}
            for k, v in entry.items():
                v = v._data if isinstance(v, Tensor) else v
                if tuple(getattr(v, "shape", ())) != (seg.size,) or \
                        getattr(getattr(v, "dtype", None), "kind", None) != "f":
                    problems.append(f"buffer {i} {k}: expected {sdtype}({seg.size},), got "
                                    f"{getattr(v, 'dtype', type(v).__name__)}"
                                    f"{tuple(getattr(v, 'shape', ()))}")
                    continue
                device = "cpu" if xp is np else "cuda"
                st[k] = xp.asarray(move_array(v, device), dtype=sdtype).copy()
            new_states.append(st)
        parked = self._loaded_frozen(state.get("frozen", {}), problems)
        if problems:
            raise OptimizerStateError(f"{name}: " + "; ".join(problems)
                                      + ". Nothing was loaded.")
        for g, new in zip(self.param_groups, new_groups, strict=True):
            g.update(new)
        self.state = new_states
        self._parked = parked
        self.step_count = int(step)

    def _loaded_frozen(self, frozen: Any, problems: list[str]) -> dict[int, dict[str, Any]]:
        """The saved state of frozen parameters, checked against those parameters."""
        params = self.params
        placed = {id(p) for seg in self._segments for p in seg.params}
        if not isinstance(frozen, Mapping):
            problems.append(f"frozen: expected a mapping, got {type(frozen).__name__}")
            return {}
        out: dict[int, dict[str, Any]] = {}
        for key, entry in frozen.items():
            j = int(key) if str(key).isdigit() else -1
            if not 0 <= j < len(params) or id(params[j]) in placed or \
                    not isinstance(entry, Mapping):
                problems.append(f"frozen {key!r}: not a frozen parameter's state")
                continue
            p = params[j]
            xp = array_module_of(p._data)
            sdtype = np.dtype(np.float32) if p.dtype == np.float16 else p.dtype
            st = {}
            for k, v in entry.items():
                v = v._data if isinstance(v, Tensor) else v
                if tuple(getattr(v, "shape", ())) != (p.size,):
                    problems.append(f"frozen {j} {k}: expected ({p.size},), got "
                                    f"{tuple(getattr(v, 'shape', ()))}")
                    continue
                st[k] = xp.asarray(move_array(v, "cpu" if xp is np else "cuda"),
                                   dtype=sdtype).copy()
            out[j] = st
        return out

    def _loaded_groups(self, state: Mapping[str, Any], problems: list[str]
                       ) -> list[dict[str, Any]]:
        groups = state.get("param_groups")
        if groups is None and "hyper" in state:  # the one-group format of earlier versions
            groups = [dict(state["hyper"])]
        if not isinstance(groups, list) or len(groups) != len(self.param_groups):
            n = len(groups) if isinstance(groups, list) else type(groups).__name__
            problems.append(f"expected {len(self.param_groups)} param groups, got {n}")
            return [{} for _ in self.param_groups]
        out: list[dict[str, Any]] = []
        for i, g in enumerate(groups):
            if not isinstance(g, Mapping):
                problems.append(f"param group {i}: expected a mapping, got {type(g).__name__}")
                out.append({})
                continue
            hyper = {**self.added_later, **{k: v for k, v in g.items() if k != "params"}}
            missing = sorted(set(self.defaults) - set(hyper))
            if missing:
                problems.append(f"param group {i}: hyperparameters {missing} are missing "
                                f"(has {sorted(hyper)})")
                out.append({})
                continue
            try:
                self.validate(hyper, f"param group {i}")
            except (ValueError, TypeError) as exc:
                problems.append(str(exc))
            out.append(hyper)
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_work"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._work = [None] * len(self._segments)
        if "_param_steps" not in state:  # pickled before per-parameter counts
            self._param_steps = [self.step_count] * len(self.params)
            self._parked = {}
            self._seg_positions = []
            self._layout = None  # regroup (and index the segments) at first use

    def __repr__(self) -> str:
        n = sum(p.size for p in self.params)
        parts = []
        for i, g in enumerate(self.param_groups):
            h = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            parts.append(f"group {i}: {h}")
        return f"{type(self).__name__}({'; '.join(parts)}; {n} parameters)"


def _equal_runs(items: list[Tensor], key: Any) -> list[list[Tensor]]:
    """``items`` cut into maximal stretches of equal ``key(item)``, in order."""
    runs: list[list[Tensor]] = []
    for item in items:
        if runs and key(item) == key(runs[-1][0]):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _carry_state(old: list[Segment], old_state: list[dict[str, Any]],
                 segments: list[Segment], parked: dict[int, dict[str, Any]],
                 position: dict[int, int]
                 ) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """(state of the new segments, parked state): each parameter's slice carried over
    from the old layout or from ``parked`` (moved to the new device); the state of a
    parameter in no new segment is parked under its position; parameters without any
    state get it lazily."""
    per_param: dict[int, dict[str, Any]] = dict(parked)
    for seg, st in zip(old, old_state, strict=False):
        for p, off in zip(seg.params, seg.offsets, strict=True):
            if st:
                per_param[position[id(p)]] = {k: v[off:off + p.size] for k, v in st.items()}
    placed = {position[id(p)] for seg in segments for p in seg.params}
    out: list[dict[str, Any]] = []
    for seg in segments:
        entries = [e for p in seg.params if (e := per_param.get(position[id(p)])) is not None]
        if not entries or len(entries) != len(seg.params) or any(
                any(v.size != p.size for v in e.values())
                for e, p in zip(entries, seg.params, strict=True)):
            out.append({})
            continue
        names = set(entries[0])
        if any(set(e) != names for e in entries):
            out.append({})
            continue
        data = seg.data()
        xp = array_module_of(data)
        device = "cpu" if xp is np else "cuda"
        # cast with the parameters (model.to(dtype)); float16 keeps float32 state, and a
        # master copy only while the parameters are float16
        sdtype = np.dtype(np.float32) if data.dtype == np.float16 else data.dtype
        if data.dtype != np.float16:
            names.discard("master")
        out.append({k: xp.concatenate([xp.asarray(move_array(e[k], device), dtype=sdtype)
                                       for e in entries]) for k in names})
    return out, {k: e for k, e in per_param.items() if k not in placed}


def _check_finite(seg: Segment, g: Any, label: Any) -> None:
    xp = array_module_of(g)
    # One BLAS pass, no temporary: a NaN or Inf anywhere makes g·g non-finite (about 3x
    # cheaper than g.sum(), which is pairwise and not vectorized as well). A non-finite
    # g·g from overflow alone (|g| > 1e19 in float32) is rare; the exact test then decides.
    with np.errstate(over="ignore", invalid="ignore"):
        probe = xp.dot(g, g) if g.dtype != np.float16 else g.sum(dtype=np.float32)
    if bool(xp.isfinite(probe)) or bool(xp.isfinite(g).all()):
        return
    bad = [label(p) for p, off in zip(seg.params, seg.offsets, strict=True)
           if not bool(xp.isfinite(g[off:off + p.size]).all())]
    raise NonFiniteGradError("optimizer step: NaN or Inf in the gradient of "
                             + ", ".join(bad) + "; parameters and state were left unchanged")


def _is_count(k: Any) -> bool:
    return not isinstance(k, bool) and isinstance(k, (int, np.integer)) and bool(k >= 0)


def check_hyper(where: str, hyper: Mapping[str, Any], *names: str) -> None:
    """Raise ValueError unless each named hyperparameter is a finite real number >= 0."""
    for k in names:
        v = hyper[k]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v) or v < 0:
            raise ValueError(f"{where}: {k} must be a finite number >= 0, got {v!r}")


def check_unit(where: str, hyper: Mapping[str, Any], *names: str) -> None:
    """Raise ValueError unless each named hyperparameter lies in [0, 1)."""
    check_hyper(where, hyper, *names)
    for k in names:
        if not hyper[k] < 1.0:
            raise ValueError(f"{where}: {k} must lie in [0, 1), got {hyper[k]!r}")
