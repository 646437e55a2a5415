"""Optimizer base: flat buffers, validation before any change, state dicts.

A step is all-or-nothing: every gradient is checked (present, right shape, finite) and
all workspace is allocated before the first parameter or state value is written; the
update itself then only runs arithmetic into preallocated arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from gpuchain.backend import array_module_of, move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import NonFiniteGradError, OptimizerStateError
from gpuchain.nn.buffer import FlatBuffer, flatten
from gpuchain.nn.module import Module
from gpuchain.nn.parameter import Parameter

# Elements per chunk of the NumPy update: the chunk's temporaries stay in cache.
CHUNK = 1 << 16




def _buffers_for(params: Iterable[Any]) -> list[FlatBuffer]:
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"optimizer: item {i} is a {type(p).__name__}, not a "
                            "gpuchain.nn.Parameter (wrap arrays with nn.Parameter(array))")
    if not params:
        raise ValueError("optimizer: got an empty parameter list")
    # Reuse the flat buffers the parameters already live in when they are covered exactly.
    owners = {id(p._buffer): p._buffer for p in params if p._buffer is not None}
    ids = {id(p) for p in params}
    if len(ids) == len(params) and all(p._buffer is not None for p in params) and \
            sum(len(b.params) for b in owners.values()) == len(params) and \
            all(id(q) in ids for b in owners.values() for q in b.params):
        return list(owners.values())
    return flatten(params)


class Optimizer:
    """Base class: subclasses define ``_new_state(buf)`` and ``_update(...)``."""

    hyper_names: tuple[str, ...] = ()

    def __init__(self, params: Module | Iterable[Parameter], check_finite: bool = True,
                 **hyper: Any) -> None:
        if isinstance(params, Module):
            self.buffers = params.flat_buffers()
            self._names = {id(p): n for n, p in params.named_parameters()}
        else:
            self.buffers = _buffers_for(params)
            self._names = {}
        self.check_finite = check_finite
        self.hyper = hyper
        self.step_count = 0
        self.state: list[dict[str, Any]] = [{} for _ in self.buffers]
        self._work: list[Any] = [None] * len(self.buffers)

    @property
    def params(self) -> list[Parameter]:
        return [p for b in self.buffers for p in b.params]

    def zero_grad(self) -> None:
        for b in self.buffers:
            b.zero_grad()

    # --- step ----------------------------------------------------------------------------
    def step(self) -> None:
        for buf in self.buffers:
            buf.check_grads(self._names)
        grads = [buf.gather_grads() for buf in self.buffers]
        if self.check_finite:
            for buf, g in zip(self.buffers, grads, strict=False):
                _check_finite(buf, g, self._names)
        states = [st if st else self._new_state(buf)
                  for st, buf in zip(self.state, self.buffers, strict=True)]
        for i, buf in enumerate(self.buffers):
            if buf.xp is np and self._work[i] is None:
                self._work[i] = np.empty((self._n_work, min(CHUNK, buf.size)), dtype=buf.dtype)
        step = self.step_count + 1
        for buf, g, st, work in zip(self.buffers, grads, states, self._work, strict=True):
            if buf.xp is np:
                # Cache-sized chunks. (Threads over chunks win in isolation but lose right
                # after a backward pass, while OpenBLAS's workers still spin on the cores.)
                for lo in range(0, buf.size, CHUNK):
                    hi = min(lo + CHUNK, buf.size)
                    chunk = {k: v[lo:hi] for k, v in st.items()}
                    self._update_np(buf.data[lo:hi], g[lo:hi], chunk, work[:, :hi - lo], step)
            else:
                self._update_cuda(buf.data, g, st, step)
        self.state = states
        self.step_count = step

    _n_work = 2

    def _new_state(self, buf: FlatBuffer) -> dict[str, Any]:
        return {}

    def _update_np(self, p: Any, g: Any, st: dict[str, Any], work: Any, step: int) -> None:
        raise NotImplementedError

    def _update_cuda(self, p: Any, g: Any, st: dict[str, Any], step: int) -> None:
        raise NotImplementedError

    # --- state dicts ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"type", "hyper", "step", "buffers": {"0": {name: array}}} (arrays copied)."""
        return {
            "type": type(self).__name__,
            "hyper": dict(self.hyper),
            "step": self.step_count,
            "buffers": {str(i): {k: v.copy() for k, v in st.items()}
                        for i, st in enumerate(self.state)},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state_dict; every problem is reported in one error and nothing changes."""
        problems = []
        if state.get("type") != type(self).__name__:
            problems.append(f"state is for {state.get('type')!r}, this is "
                            f"{type(self).__name__!r}")
        hyper = state.get("hyper", {})
        if not isinstance(hyper, Mapping) or set(hyper) != set(self.hyper):
            got = sorted(hyper) if isinstance(hyper, Mapping) else hyper
            problems.append(f"hyperparameters {got} differ from {sorted(self.hyper)}")
        bufs = state.get("buffers", {})
        if not isinstance(bufs, Mapping) or set(bufs) != {str(i) for i in range(len(self.buffers))}:
            problems.append(f"expected {len(self.buffers)} parameter buffers, got "
                            f"{sorted(bufs) if isinstance(bufs, Mapping) else bufs}")
            bufs = {}
        new_states = []
        for i, buf in enumerate(self.buffers):
            entry = bufs.get(str(i), {})
            expected = set(self._new_state_names())
            if entry and set(entry) != expected:
                problems.append(f"buffer {i}: keys {sorted(entry)}, expected {sorted(expected)}")
                continue
            st = {}
            for k, v in entry.items():
                v = v.data if isinstance(v, Tensor) else v
                if tuple(getattr(v, "shape", ())) != (buf.size,) or \
                        getattr(getattr(v, "dtype", None), "kind", None) != "f":
                    problems.append(f"buffer {i} {k}: expected {buf.dtype}({buf.size},), got "
                                    f"{getattr(v, 'dtype', type(v).__name__)}"
                                    f"{tuple(getattr(v, 'shape', ()))}")
                    continue
                device = "cpu" if buf.xp is np else "cuda"
                st[k] = buf.xp.asarray(move_array(v, device), dtype=buf.dtype).copy()
            new_states.append(st)
        step = state.get("step", 0)
        if not isinstance(step, (int, np.integer)) or step < 0:
            problems.append(f"step must be a non-negative int, got {step!r}")
        if problems:
            raise OptimizerStateError(f"{type(self).__name__}.load_state_dict: "
                                      + "; ".join(problems) + ". Nothing was loaded.")
        self.hyper = dict(hyper)
        self.state = new_states
        self.step_count = int(step)

    def _new_state_names(self) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        h = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({h}; {sum(b.size for b in self.buffers)} parameters)"


def _check_finite(buf: FlatBuffer, g: Any, names: dict[int, str]) -> None:
    xp = array_module_of(g)
    # One summation pass, no temporary: a NaN or Inf anywhere makes the sum non-finite.
    # A non-finite sum from overflow alone is rare; the exact test below then decides.
    if bool(xp.isfinite(g.sum())) or bool(xp.isfinite(g).all()):
        return
    bad = [names.get(id(p), f"param[{i}] {tuple(p.shape)}") for i, p in enumerate(buf.params)
           if not bool(xp.isfinite(p.grad_view).all())]
    raise NonFiniteGradError("optimizer step: NaN or Inf in the gradient of "
                             + ", ".join(bad) + "; parameters and state were left unchanged")


def check_hyper(name: str, **values: float) -> None:
    for k, v in values.items():
        if not (isinstance(v, (int, float)) and v >= 0 and np.isfinite(v)):
            raise ValueError(f"{name}: {k} must be a finite number >= 0, got {v!r}")
