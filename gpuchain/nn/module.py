"""Module: the base of layers and models (parameters, state dicts, train/eval)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DTypeError, StateDictError
from gpuchain.nn.buffer import FlatBuffer, flatten
from gpuchain.nn.parameter import Parameter


class Module:
    """Holds Parameters and sub-Modules assigned as attributes, in assignment order.

    A module's parameters live in one flat buffer per dtype (see ``flat_buffers``); each
    parameter's ``.data`` is a view into it. Modules pickle and deep-copy (a copy's
    parameters are views of the copy's own flat buffer).
    """

    # set in __init__ through object.__setattr__ (bypassing the registering __setattr__)
    _params: dict[str, Parameter]
    _modules: dict[str, Module]
    _buffers: list[FlatBuffer]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", [])
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() first")
        self._params.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- parameters -----------------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once (first name wins)."""
        seen: set[int] = set()
        for name, p in self._walk(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _walk(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, p in self._params.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m._walk(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        """Every parameter of this module and its sub-modules, each once."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalar parameters (only those requiring grad if asked)."""
        return int(sum(p.size for p in self.parameters()
                       if p.requires_grad or not trainable_only))

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter; optimizers skip frozen ones."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # --- sub-modules ---------------------------------------------------------------------
    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first."""
        for _, m in self.named_modules():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) pairs, this module first (name ``prefix``), each once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [((f"{name}.{k}" if name else k), c) for k, c in m._modules.items()]
            stack.extend(reversed(children))

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in assignment order."""
        yield from self._modules.values()

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on this module."""
        for m in self._modules.values():
            m.apply(fn)
        fn(self)
        return self

    # --- flat buffers --------------------------------------------------------------------
    def flat_buffers(self) -> list[FlatBuffer]:
        """The flat buffers (one per dtype) holding exactly this module's parameters,
        built on first use (re-homing the parameters' data, values kept)."""
        params = self.parameters()
        current = self._buffers
        covered = {id(p) for buf in current for p in buf.params}
        if covered != {id(p) for p in params} or sum(len(b.params) for b in current) != len(
                params) or not all(buf.owns(p) for buf in current for p in buf.params):
            current = flatten(params) if params else []
            object.__setattr__(self, "_buffers", current)
        return current

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=False``: set it to zeros). A
        gradient already handed out keeps its values."""
        by_buffer: dict[int, tuple[FlatBuffer, list[Parameter]]] = {}
        for p in self.parameters():
            if p.in_flat_buffer():
                by_buffer.setdefault(id(p._buffer), (p._buffer, []))[1].append(p)
            elif set_to_none:
                p.grad = None
                p.release_grad_slot()
            else:
                p.grad = Tensor(array_module_of(p._data).zeros_like(p._data))
        for buf, ps in by_buffer.values():
            buf.zero_grad(ps, set_to_none=set_to_none)

    def to(self, device: Any = None, dtype: Any = None) -> Module:
        """Move every parameter to ``device`` ('cpu' or 'cuda') and/or cast it to the
        floating ``dtype``, as ``torch.nn.Module.to`` (``m.to("cuda")``,
        ``m.to(np.float64)``, ``m.to("cuda", np.float16)``), rebuilding the flat buffers.
        Optimizers over these parameters follow them at their next step, their state
        moved and cast with them. Gradients are dropped. A bad argument raises before
        anything changes."""
        if device is not None and not isinstance(device, str):
            device, dtype = dtype, device  # m.to(dtype)
        if device is not None and device not in ("cpu", "cuda"):
            raise ValueError(f"Module.to: unknown device {device!r}; expected 'cpu' or 'cuda'")
        if dtype is not None:
            try:
                dtype = np.dtype(dtype)
            except TypeError:
                raise DTypeError(f"Module.to: {dtype!r} is neither a device nor a dtype") \
                    from None
            if dtype.kind != "f":
                raise DTypeError(f"Module.to: parameters must stay floating, got {dtype}")
        params = self.parameters()
        for p in params:
            if device is not None:
                p._data = move_array(p._data, device)
            if dtype is not None and p._data.dtype != dtype:
                p._data = p._data.astype(dtype)
            p.grad = None
            p.grad_view = None
            p._slot_free = False
            p._buffer = None
        object.__setattr__(self, "_buffers", [])
        self.flat_buffers()
        return self

    # --- modes ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    # --- state dicts ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """name -> a copy of the parameter's array (same device and dtype), plus
        ``"<module>._extra_state"`` for modules with extra state (e.g. Dropout's
        random-number generator), so a restored model continues bit for bit."""
        out: dict[str, Any] = {name: p._data.copy() for name, p in self.named_parameters()}
        out.update(self._extra_states())
        return out

    def get_extra_state(self) -> Any:
        """State beyond parameters saved in ``state_dict`` (None: nothing), as PyTorch's
        hook; it must be made of numbers, strings, lists and dicts."""
        return None

    def set_extra_state(self, state: Any) -> None:
        """Restore what ``get_extra_state`` returned."""
        raise StateDictError(f"{type(self).__name__}: got extra state but defines no "
                             "set_extra_state")

    def _extra_states(self) -> dict[str, Any]:
        out = {}
        for name, m in self.named_modules():
            extra = m.get_extra_state()
            if extra is not None:
                out[f"{name}._extra_state" if name else "_extra_state"] = extra
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays into the parameters in place. Missing, unexpected and mis-shaped
        keys are all reported in one StateDictError, and then nothing is changed.
        ``"*._extra_state"`` entries are optional (absent: the module keeps its own).

        Parameters
        ----------
        state : mapping
            From ``state_dict()`` (or ``gc.load``).
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise StateDictError(f"{where}: expected a mapping of parameter names to arrays "
                                 f"(from state_dict()), got {type(state).__name__}")
        own = dict(self.named_parameters())
        extras = {k: m for k, m in ((f"{n}._extra_state" if n else "_extra_state", m)
                                    for n, m in self.named_modules())
                  if m.get_extra_state() is not None}
        # extra state (e.g. a Dropout generator) is optional: a weights-only file keeps it
        missing = [k for k in own if k not in state]
        extras = {k: m for k, m in extras.items() if k in state}
        extra = [k for k in state if k not in own and k not in extras]
        bad = []
        for k, p in own.items():
            if k in state:
                value = _raw(state[k])
                shape = tuple(getattr(value, "shape", np.shape(value)))
                kind = getattr(getattr(value, "dtype", None), "kind", None)
                if shape != tuple(p.shape) or kind not in ("f", "i", "u"):
                    bad.append(f"{k}: expected {p.dtype}{tuple(p.shape)}, got "
                               f"{getattr(value, 'dtype', type(value).__name__)}{shape}")
        if missing or extra or bad:
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(missing))
            if extra:
                parts.append("unexpected keys: " + ", ".join(map(str, extra)))
            if bad:
                parts.append("mis-shaped: " + "; ".join(bad))
            raise StateDictError(f"{where}: " + ". ".join(parts) + ". Nothing was loaded.")
        converted = {}
        for k, p in own.items():
            value = _raw(state[k])
            xp = array_module_of(p._data)
            converted[k] = xp.asarray(move_array(value, "cuda" if xp is not np else "cpu"),
                                      dtype=p.dtype)
        done: list[tuple[Module, Any]] = []
        try:  # extra state first, undone if any of it is refused
            for k, m in extras.items():
                before = m.get_extra_state()
                m.set_extra_state(state[k])
                done.append((m, before))
        except Exception:
            for m, before in reversed(done):
                m.set_extra_state(before)
            raise
        for k, p in own.items():
            p.data[...] = converted[k]

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            lines.append(f"  ({name}): " + repr(m).replace("\n", "\n  "))
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")


def _raw(value: Any) -> Any:
    return value._data if isinstance(value, Tensor) else value
