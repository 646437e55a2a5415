"""The process group: who this process is (rank, world size, local rank) and how it talks.

``init`` reads the MPI environment set by ``mpiexec`` (through ``mpi4py``, imported only
then). A process started without an MPI launcher is a group of one and needs no MPI at
all. With CuPy and NCCL usable, each process also selects its GPU from its local rank and
an NCCL communicator is built for CuPy arrays (rank 0 makes the unique id; MPI carries it).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from gpuchain.distributed import watchdog
from gpuchain.errors import BackendUnavailableError, DistributedError

BACKENDS = ("auto", "mpi", "nccl")
ABORT_GRACE_S = 0.5  # between printing a failing rank's traceback and aborting the job

# Variables an MPI launcher sets in every process it starts (MPICH/Hydra, Open MPI, PMIx,
# Slurm's PMI): their presence means "started by mpiexec", so MPI is worth initializing.
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                  "MPI_LOCALRANKID", "MV2_COMM_WORLD_SIZE", "HYDI_CONTROL_FD")


@dataclass
class Group:
    """State of this process's group (one per process, made by ``init``)."""

    backend: str  # "single", "mpi" or "nccl"
    rank: int
    world_size: int
    local_rank: int
    local_size: int
    comm: Any = None  # mpi4py communicator (None for a group of one without MPI)
    nccl: Any = None  # gpuchain.distributed.nccl.NcclLink, when CuPy arrays go over NCCL
    nccl_reason: str = ""  # why not, when CuPy arrays go through host memory
    warned: set[str] = field(default_factory=set)
    comm_seconds: float = 0.0  # wall time DataParallel spent starting and awaiting reductions
    timeout: float | None = None  # seconds a collective may block (see watchdog)
    busy: tuple[str, float] | None = None  # the collective this process is blocked in

    def watch(self, what: str) -> watchdog.Watch:
        """Context manager around a blocking collective (bounded by ``timeout``)."""
        return watchdog.Watch(self, what)

    def describe(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


_group: Group | None = None
_previous_hook: Any = None


def launched_by_mpi() -> bool:
    """Whether an MPI launcher (``mpiexec``, ``srun``) started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def init(backend: str = "auto", *, abort_on_error: bool = True,
         timeout: float | None = None) -> None:
    """Join the process group (idempotent: a second call with the same backend does nothing).

    Parameters
    ----------
    backend : {"auto", "mpi", "nccl"}
        ``"auto"``: MPI when started by an MPI launcher, else a group of one; CuPy arrays
        use NCCL where CuPy and NCCL can run, else host memory over MPI. ``"mpi"``: MPI is
        required (a process started without a launcher is an MPI singleton). ``"nccl"``:
        like ``"auto"`` but raises when NCCL cannot be used.
    abort_on_error : bool
        In a group of more than one, an uncaught exception prints this rank's traceback
        and aborts every process of the job (``MPI_Abort``) instead of leaving the others
        waiting in a collective forever.
    timeout : float, optional
        Seconds a collective may block before the job is aborted with a message (a peer
        that exited or hangs); default $GPUCHAIN_DIST_TIMEOUT, else 1800; 0 turns it off.

    Raises
    ------
    ValueError
        Unknown backend name.
    BackendUnavailableError
        ``"mpi"`` without mpi4py, or ``"nccl"`` where CuPy/NCCL cannot run.
    DistributedError
        ``init`` was already called with a different backend.
    """
    global _group
    if backend not in BACKENDS:
        raise ValueError(f"distributed.init: unknown backend {backend!r}; expected one of "
                         f"{', '.join(BACKENDS)}")
    limit = watchdog.timeout_from(timeout)
    if _group is not None:
        wanted = {"auto": _group.backend, "mpi": "mpi", "nccl": "nccl"}[backend]
        if wanted != _group.backend and not (backend == "mpi" and _group.backend == "nccl"):
            raise DistributedError(f"distributed.init({backend!r}): already initialized with "
                                   f"backend {_group.backend!r} ({_group.describe()})")
        return
    comm = None
    if backend in ("mpi", "nccl") or launched_by_mpi():
        comm = _mpi_world(backend)
    group = _make_group(comm)
    group.timeout = limit
    if abort_on_error and group.world_size > 1:
        _install_abort_hook()
    if backend == "nccl" or group.world_size > 1:  # alone under "auto": nothing to exchange
        _attach_gpu(group, required=backend == "nccl")
    _group = group
    watchdog.start(group)


def _mpi_world(backend: str) -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if backend == "auto":
            raise BackendUnavailableError(
                "distributed.init: this process was started by an MPI launcher but mpi4py "
                f"cannot be imported ({exc}); install gpuchain[mpi]") from exc
        raise BackendUnavailableError(
            f"distributed.init({backend!r}): mpi4py cannot be imported ({exc}); install "
            "gpuchain[mpi] (mpi4py and mpich)") from exc
    return MPI.COMM_WORLD


def _make_group(comm: Any) -> Group:
    if comm is None:
        return Group("single", 0, 1, 0, 1)
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    group = Group("mpi", comm.Get_rank(), comm.Get_size(), node.Get_rank(), node.Get_size(),
                  comm=comm)
    node.Free()
    return group


def _attach_gpu(group: Group, required: bool) -> None:
    """Pick this process's GPU from its local rank and build the NCCL communicator.

    The ranks agree before and after creating it (NCCL's set-up is collective): either
    every rank uses NCCL or none does, so no rank waits for a peer that gave up.
    """
    from gpuchain.backend import cupy_unavailable_reason

    reason = cupy_unavailable_reason()
    if not reason:
        from gpuchain.distributed import nccl

        reason = nccl.select_device(group.local_rank, group.local_size)
    reason = _agree(group, reason)
    if not reason:
        from gpuchain.distributed import nccl

        link, error = None, ""
        try:
            link = nccl.NcclLink(group.comm, group.rank, group.world_size)
        except Exception as exc:  # any NCCL failure: CuPy arrays go through host memory
            error = f"NCCL communicator could not be created ({type(exc).__name__}: {exc})"
        reason = _agree(group, error)
        if reason and link is not None:
            link.close()
        elif not reason:
            group.nccl, group.backend = link, "nccl"
    group.nccl_reason = reason
    if reason and required:
        raise BackendUnavailableError(f"distributed.init('nccl'): {reason}")


def _agree(group: Group, reason: str) -> str:
    """'' when no rank has a reason, else the first rank's reason (on every rank)."""
    if group.comm is None:
        return reason
    reasons = group.comm.allgather(reason)
    return next((f"rank {r}: {why}" for r, why in enumerate(reasons) if why), "")


def _install_abort_hook() -> None:
    global _previous_hook
    if _previous_hook is None:
        _previous_hook = sys.excepthook
        sys.excepthook = _abort_on_uncaught


def _abort_on_uncaught(kind: type[BaseException], exc: BaseException,
                       tb: TracebackType | None) -> None:
    group = _group
    where = group.describe() if group is not None else "a rank"
    text = "".join(traceback.format_exception(kind, exc, tb))
    sys.stderr.write(f"gpuchain.distributed: {where} failed; aborting the job.\n{text}")
    sys.stderr.flush()
    sys.stdout.flush()
    if group is not None and group.comm is not None:
        time.sleep(ABORT_GRACE_S)  # let the launcher forward the message before it kills
        group.comm.Abort(1)
    _previous_hook(kind, exc, tb)


def current() -> Group:
    """The group, initializing with ``backend="auto"`` on first use."""
    if _group is None:
        init()
    assert _group is not None
    return _group


def is_initialized() -> bool:
    """Whether ``init`` has run in this process."""
    return _group is not None


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1 (0 in a group of one)."""
    return current().rank


def get_world_size() -> int:
    """The number of processes in the job (1 without an MPI launcher)."""
    return current().world_size


def get_local_rank() -> int:
    """This process's rank among the processes on the same machine (selects its GPU)."""
    return current().local_rank


def get_backend() -> str:
    """``"single"``, ``"mpi"`` or ``"nccl"`` (MPI for NumPy arrays plus NCCL for CuPy)."""
    return current().backend


def barrier() -> None:
    """Wait until every process of the job has reached this call."""
    group = current()
    if group.comm is not None:
        with group.watch("barrier"):
            group.comm.Barrier()


def warn_once(key: str, message: str) -> None:
    """Emit ``message`` as a RuntimeWarning once per process."""
    group = current()
    if key not in group.warned:
        group.warned.add(key)
        warnings.warn(f"gpuchain.distributed ({group.describe()}): {message}",
                      RuntimeWarning, stacklevel=3)


def warn_host_fallback(group: Group, what: str) -> None:
    """Warn once that CuPy arrays go through host memory because NCCL is not set up
    (silent where NCCL exists but cannot take a dtype)."""
    if group.nccl is None:
        warn_once("host-fallback", f"{what} go through host memory over MPI (slower than "
                  f"NCCL): {group.nccl_reason or 'no NCCL communicator'}")
