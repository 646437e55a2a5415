"""Module: the base of layers and models (parameters, state dicts, train/eval)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import StateDictError
from gpuchain.nn.buffer import FlatBuffer, flatten
from gpuchain.nn.parameter import Parameter


class Module:
    """Holds Parameters and sub-Modules assigned as attributes, in assignment order.

    A module's parameters live in one flat buffer per dtype (see ``flat_buffers``); each
    parameter's ``.data`` is a view into it.
    """

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
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        yield self
        for m in self._modules.values():
            yield from m.modules()

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

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None
            p.release_grad_slot()

    def to(self, device: str) -> Module:
        """Move every parameter to 'cpu' or 'cuda' (rebuilding the flat buffers there)."""
        params = self.parameters()
        for p in params:
            p.data = move_array(p.data, device)
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
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    # --- state dicts ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """name -> a copy of the parameter's array (same device and dtype)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays into the parameters in place. Missing, unexpected and mis-shaped
        keys are all reported in one StateDictError, and then nothing is changed."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
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
                parts.append("unexpected keys: " + ", ".join(extra))
            if bad:
                parts.append("mis-shaped: " + "; ".join(bad))
            raise StateDictError(f"{type(self).__name__}.load_state_dict: "
                                 + ". ".join(parts) + ". Nothing was loaded.")
        converted = {}
        for k, p in own.items():
            value = _raw(state[k])
            xp = array_module_of(p.data)
            converted[k] = xp.asarray(move_array(value, "cuda" if xp is not np else "cpu"),
                                      dtype=p.dtype)
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
    return value.data if isinstance(value, Tensor) else value
