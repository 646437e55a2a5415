"""Gradient buckets: fixed contiguous slices of the flat gradient buffers, and the transports
that sum them across ranks as each becomes ready and average them at the end.

Boundaries depend only on the parameter layout (checked identical on every rank), walking
each buffer from its last parameter backwards, so every rank launches the same
collectives in the same order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpuchain.backend import is_cupy_array
from gpuchain.distributed import mpi, nccl
from gpuchain.distributed.group import Group, warn_host_fallback
from gpuchain.nn.buffer import FlatBuffer
from gpuchain.nn.parameter import Parameter

DEFAULT_BUCKET_MB = 25.0


@dataclass
class Bucket:
    """Parameters ``params`` whose gradients are ``buffer.grad[lo:hi]``."""

    buffer: FlatBuffer
    lo: int
    hi: int
    params: list[Parameter] = field(default_factory=list)

    @property
    def view(self) -> Any:
        return self.buffer.grad[self.lo:self.hi]


def make_buckets(buffers: list[FlatBuffer], bucket_bytes: int) -> list[Bucket]:
    """Cut every buffer, last parameter first, into buckets of about ``bucket_bytes``
    (whole parameters; one larger than the cap gets a bucket of its own)."""
    buckets: list[Bucket] = []
    for buf in buffers:
        current: Bucket | None = None
        item = buf.dtype.itemsize
        for p, off in reversed(list(zip(buf.params, buf.offsets))):
            n = int(p._data.size)
            if current is not None and (current.hi - off) * item > bucket_bytes:
                buckets.append(current)
                current = None
            if current is None:
                current = Bucket(buf, off, off + n)
            current.lo = off
            current.params.append(p)
        if current is not None:
            buckets.append(current)
    return buckets


class BucketComm:
    """Sums bucket gradients across ranks (``start``) and averages them (``finish``)."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.pending: list[tuple[Any, Any, Any]] = []  # (request, work array, target view)
        self._nccl_state: Any = None

    def start(self, view: Any) -> None:
        if self.group.world_size == 1 and not self._on_nccl(view):
            return  # alone, only NCCL runs (so one GPU exercises that path)
        t0 = time.perf_counter()
        self._start(view)
        self.group.comm_seconds += time.perf_counter() - t0

    def _start(self, view: Any) -> None:
        group = self.group
        if self._on_nccl(view):
            self._start_nccl(view)
            return
        work = view
        if is_cupy_array(view):
            warn_host_fallback(group, "DataParallel gradients")
            work = view.get()
        if work.dtype == np.float16:  # MPI has no float16 sum: reduce in float32
            work = work.astype(np.float32)
        mpi.poke([req for req, _, _ in self.pending])  # earlier buckets move on meanwhile
        self.pending.append((mpi.iallreduce_sum(group.comm, work), work, view))

    def _on_nccl(self, view: Any) -> bool:
        return (self.group.nccl is not None and is_cupy_array(view)
                and nccl.supported(view.dtype, "sum"))

    def _start_nccl(self, view: Any) -> None:
        # UNVERIFIED (no GPU here): the sum runs on a side stream once the current stream
        # has produced the bucket, overlapping the rest of backward.
        import cupy

        if self._nccl_state is None:
            self._nccl_state = (cupy.cuda.Stream(non_blocking=True), [])
        side, views = self._nccl_state
        side.wait_event(cupy.cuda.get_current_stream().record())
        self.group.nccl.all_reduce(view, "sum", stream=side)
        views.append(view)

    def finish(self) -> None:
        """Wait for every started sum, divide by the world size, write results back.
        On NCCL the current stream is made to wait for the side stream (the optimizer
        step, queued after, sees the averaged gradients)."""
        t0 = time.perf_counter()
        self._finish(self.group.world_size)
        self.group.comm_seconds += time.perf_counter() - t0

    def _finish(self, world: int) -> None:
        if self.pending:
            with self.group.watch("DataParallel gradient all-reduce"):
                mpi.wait_all([req for req, _, _ in self.pending])
            for _, work, view in self.pending:
                work /= world
                if work is view:
                    continue
                if is_cupy_array(view):
                    view.set(work.astype(view.dtype, copy=False))
                else:
                    view[...] = work
            self.pending = []
        if self._nccl_state is not None:
            import cupy

            side, views = self._nccl_state
            with side:
                for view in views:
                    view /= world
            cupy.cuda.get_current_stream().wait_event(side.record())
            views.clear()
