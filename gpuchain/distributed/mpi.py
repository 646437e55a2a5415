"""NumPy arrays over MPI (mpi4py): typed reductions, byte-wise broadcast and gather, and the
cross-rank argument check that turns a mismatched collective into an error on every rank."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.errors import CollectiveMismatchError, DTypeError

REDUCE_OPS = ("sum", "mean", "max", "min")

# numpy dtype name -> MPI datatype name (fixed-width C types; float16 is reduced in float32)
_MPI_TYPES = {
    "float32": "FLOAT", "float64": "DOUBLE",
    "int8": "INT8_T", "int16": "INT16_T", "int32": "INT32_T", "int64": "INT64_T",
    "uint8": "UINT8_T", "uint16": "UINT16_T", "uint32": "UINT32_T", "uint64": "UINT64_T",
    "complex64": "C_FLOAT_COMPLEX", "complex128": "C_DOUBLE_COMPLEX", "bool": "C_BOOL",
}


def check_reduce(fn: str, dtype: np.dtype, op: str) -> None:
    """Raise (before any communication) when ``op`` cannot reduce ``dtype``."""
    if op not in REDUCE_OPS:
        raise ValueError(f"{fn}: unknown op {op!r}; expected one of {', '.join(REDUCE_OPS)}")
    if dtype.name not in _MPI_TYPES and dtype.name != "float16":
        raise DTypeError(f"{fn}: cannot reduce dtype {dtype}")
    if op == "mean" and dtype.kind not in "fc":
        raise DTypeError(f"{fn}: op 'mean' needs a floating dtype, got {dtype} "
                         "(use op='sum' and divide, or cast first)")
    if op in ("max", "min") and dtype.kind == "c":
        raise DTypeError(f"{fn}: op {op!r} is undefined for complex dtype {dtype}")
    if op in ("sum", "mean") and dtype.kind == "b":
        raise DTypeError(f"{fn}: op {op!r} on bool; cast to an integer dtype first "
                         "(max is logical or, min logical and)")


def _mpi() -> Any:
    from mpi4py import MPI

    return MPI


def _typed(arr: np.ndarray) -> list[Any]:
    MPI = _mpi()
    return [arr, getattr(MPI, _MPI_TYPES[arr.dtype.name])]


def _raw(arr: np.ndarray) -> list[Any]:
    return [arr.reshape(-1).view(np.uint8), _mpi().BYTE]


def _mpi_op(op: str, dtype: np.dtype) -> Any:
    MPI = _mpi()
    if dtype.kind == "b":  # MPI defines logical, not ordering, ops on C_BOOL
        return {"max": MPI.LOR, "min": MPI.LAND}[op]
    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]


def allreduce(comm: Any, arr: np.ndarray, op: str) -> None:
    """Reduce contiguous ``arr`` in place over every rank (``mean`` divides the sum)."""
    if arr.dtype == np.float16:
        wide = arr.astype(np.float32)
        allreduce(comm, wide, op)
        arr[...] = wide
        return
    comm.Allreduce(_mpi().IN_PLACE, _typed(arr.reshape(-1)), op=_mpi_op(op, arr.dtype))
    if op == "mean":
        arr /= comm.Get_size()


def iallreduce_sum(comm: Any, arr: np.ndarray) -> Any:
    """Start an in-place sum of contiguous floating ``arr``; returns the MPI request."""
    return comm.Iallreduce(_mpi().IN_PLACE, _typed(arr), op=_mpi().SUM)


def poke(requests: list[Any]) -> None:
    """Let started requests progress (MPI advances non-blocking collectives only inside
    MPI calls; a single-threaded rank otherwise moves them only when it waits)."""
    if requests:
        _mpi().Request.Testall(requests)


def wait_all(requests: list[Any]) -> None:
    if requests:
        _mpi().Request.Waitall(requests)


def bcast(comm: Any, arr: np.ndarray, root: int) -> None:
    """Overwrite contiguous ``arr`` on every rank with root's (bytes, so any dtype)."""
    comm.Bcast(_raw(arr), root=root)


def allgather(comm: Any, arr: np.ndarray) -> np.ndarray:
    """Every rank's contiguous ``arr`` stacked along a new leading axis of world size."""
    out = np.empty((comm.Get_size(),) + arr.shape, dtype=arr.dtype)
    comm.Allgather(_raw(arr), _raw(out))
    return out


def check_same(comm: Any, fn: str, signature: tuple[Any, ...], describe: Any) -> None:
    """Compare ``signature`` across ranks; every rank raises the same error on a mismatch.

    ``describe(signature) -> str`` renders one rank's arguments for the message.
    """
    signatures = comm.allgather(signature)
    if all(s == signatures[0] for s in signatures):
        return
    listing = "; ".join(f"rank {r}: {describe(s)}" for r, s in enumerate(signatures))
    raise CollectiveMismatchError(f"{fn}: ranks disagree on the arguments ({listing})")
