"""A bound on how long a collective may block: past it, the job is aborted with a message.

A rank that exits early, hangs, or calls a different collective than its peers leaves
them waiting inside MPI forever; an exception is already turned into an abort (see
``group``), this covers the silent cases. A daemon thread looks at the collective this
process is blocked in (mpi4py releases the GIL inside MPI calls) and calls ``MPI_Abort``
once it has run longer than the group's timeout.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

DEFAULT_TIMEOUT_S = 1800.0  # as PyTorch's process groups
ENV = "GPUCHAIN_DIST_TIMEOUT"


def timeout_from(value: float | None) -> float | None:
    """The timeout to use: ``value``, else $GPUCHAIN_DIST_TIMEOUT, else 30 minutes;
    0 or a negative value turns the watchdog off (None)."""
    if value is None:
        text = os.environ.get(ENV, "").strip()
        try:
            value = float(text) if text else DEFAULT_TIMEOUT_S
        except ValueError:
            raise ValueError(f"distributed.init: ${ENV}={text!r} is not a number of "
                             "seconds") from None
    return float(value) if value > 0 else None


class Watch:
    """``with Watch(group, "all_reduce"):`` marks this process as blocked in a collective."""

    __slots__ = ("group", "what")

    def __init__(self, group: Any, what: str) -> None:
        self.group = group
        self.what = what

    def __enter__(self) -> None:
        self.group.busy = (self.what, time.monotonic())

    def __exit__(self, *exc: Any) -> None:
        self.group.busy = None


def start(group: Any) -> None:
    """Start the watchdog thread for ``group`` (when it has a timeout and peers)."""
    if group.timeout is None or group.world_size == 1:
        return
    thread = threading.Thread(target=_watch, args=(group,), name="gpuchain-dist-watchdog",
                              daemon=True)
    thread.start()


def _watch(group: Any) -> None:
    period = min(1.0, group.timeout / 10)
    while True:
        time.sleep(period)
        busy = group.busy
        if busy is not None and time.monotonic() - busy[1] > group.timeout:
            sys.stderr.write(
                f"gpuchain.distributed: {group.describe()}: {busy[0]} did not complete "
                f"within {group.timeout:g} s (a peer exited, hangs, or called a different "
                f"collective); aborting the job (set ${ENV} or init(timeout=) to change)\n")
            sys.stderr.flush()
            time.sleep(0.5)  # let the launcher forward the message before it kills
            group.comm.Abort(1)
            return
