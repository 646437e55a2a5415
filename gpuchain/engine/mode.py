"""Thread-local switches read on every op call: grad recording, forward levels, anomaly checks."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator


class _ModeState(threading.local):
    def __init__(self) -> None:
        self.grad_enabled = True
        # Active forward-mode (JVP) levels, oldest first. A tensor's tangent for a level
        # is seen only while that level is active; nested jvp opens a newer level.
        self.fw_levels: tuple[int, ...] = ()
        # leading batch axes every tangent of a level carries (vectorized jacfwd)
        self.fw_batch_ndim: dict[int, int] = {}
        self.anomaly = False


state = _ModeState()
_level_ids = itertools.count(1)


def is_grad_enabled() -> bool:
    """Whether ops applied now record a graph for reverse mode (thread-local)."""
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
    """Context manager: ops inside record no graph (thread-local).

    Examples
    --------
    >>> import gpuchain as gc
    >>> w = gc.tensor([1.0, 2.0], requires_grad=True)
    >>> with gc.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: re-enable graph recording inside a ``no_grad`` block (thread-local)."""
    return _grad_mode(True)


def set_grad_enabled(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Context manager: set graph recording on or off for its body (thread-local)."""
    return _grad_mode(enabled)


@contextlib.contextmanager
def forward_level(batch_ndim: int = 0) -> Iterator[int]:
    """Open a new forward-mode level; tangents attached inside it are seen only by it.

    Levels nest: a level opened inside another gets a distinct id, so tangents of
    different levels never mix (``jvp`` inside ``jvp``, ``jacfwd(jacfwd(f))``).
    ``batch_ndim`` leading axes of every tangent of this level index a batch of
    directions.
    """
    level = next(_level_ids)
    previous = state.fw_levels
    state.fw_levels = previous + (level,)
    state.fw_batch_ndim[level] = batch_ndim
    try:
        yield level
    finally:
        state.fw_levels = previous
        del state.fw_batch_ndim[level]


@contextlib.contextmanager
def active_levels(levels: tuple[int, ...]) -> Iterator[None]:
    """Run the body with only ``levels`` active: a JVP rule of level L runs with L and
    every newer level paused, so it is differentiated by the older levels only."""
    previous = state.fw_levels
    state.fw_levels = levels
    try:
        yield
    finally:
        state.fw_levels = previous


def paused_forward() -> contextlib.AbstractContextManager[None]:
    """Run the body with every forward-mode level paused."""
    return active_levels(())


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Context manager: the first op whose forward or backward gives NaN/Inf raises
    :class:`~gpuchain.AnomalyError`, naming the op and the line that created it; a
    gradient that must flow through an op with no VJP rule raises too."""
    previous = state.anomaly
    state.anomaly = True
    try:
        yield
    finally:
        state.anomaly = previous
