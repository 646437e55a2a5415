"""Thread-local switches read on every op call: grad recording, forward level, anomaly checks."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator


class _ModeState(threading.local):
    def __init__(self) -> None:
        self.grad_enabled = True
        # id of the active forward-mode (JVP) level, or None. A tensor's tangent is
        # valid only while its level is the active one.
        self.fw_level: int | None = None
        self.fw_batch_ndim = 0  # leading batch axes every tangent of the level carries
        self.anomaly = False


state = _ModeState()
_level_ids = itertools.count(1)


def is_grad_enabled() -> bool:
    return state.grad_enabled


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous = state.grad_enabled
    state.grad_enabled = enabled
    try:
        yield
    finally:
        state.grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Ops inside record no graph (thread-local)."""
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Re-enable recording inside a no_grad block (thread-local)."""
    return _grad_mode(True)


def set_grad_enabled(enabled: bool) -> contextlib.AbstractContextManager[None]:
    return _grad_mode(enabled)


@contextlib.contextmanager
def forward_level(batch_ndim: int = 0) -> Iterator[int]:
    """Open a forward-mode level; tangents attached inside it are seen only by it.

    ``batch_ndim`` leading axes of every tangent index a batch of directions.
    """
    if state.fw_level is not None:
        raise NotImplementedError(
            "nested forward mode (jvp/jacfwd inside jvp/jacfwd) is not supported; "
            "compose forward mode with reverse mode instead (e.g. jacfwd(grad(f)))"
        )
    level = next(_level_ids)
    state.fw_level = level
    state.fw_batch_ndim = batch_ndim
    try:
        yield level
    finally:
        state.fw_level = None
        state.fw_batch_ndim = 0


@contextlib.contextmanager
def paused_forward() -> Iterator[None]:
    """Evaluate JVP rules without differentiating them again in the same level."""
    previous = state.fw_level
    state.fw_level = None
    try:
        yield
    finally:
        state.fw_level = previous


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Inside, the first op whose forward or backward gives NaN/Inf raises AnomalyError,
    naming the op and the line that created it."""
    previous = state.anomaly
    state.anomaly = True
    try:
        yield
    finally:
        state.anomaly = previous
