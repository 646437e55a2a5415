"""CuPy arrays over NCCL (``cupy.cuda.nccl``).

UNVERIFIED: written against CuPy 14's NCCL binding (signatures read from the installed
extension: ``NcclCommunicator(int ndev, bytes commId, int rank)``, ``allReduce(sendbuf,
recvbuf, count, datatype, op, stream)``, ``bcast(buff, count, datatype, root, stream)``,
``allGather(sendbuf, recvbuf, count, datatype, stream)`` on raw pointers; ``get_unique_id()``
returns bytes, a tuple before CuPy 14, both pickle through MPI) but never run: the machine
this was written on has no GPU and no libnccl. NCCL refuses two ranks on one GPU, so with
fewer GPUs on a node than ranks the group falls back to host memory over MPI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.errors import DTypeError

# numpy dtype name -> NCCL datatype constant name in cupy.cuda.nccl
_NCCL_TYPES = {
    "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
    "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64",
    "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
}
_NCCL_OPS = {"sum": "NCCL_SUM", "mean": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


def _nccl_module() -> tuple[Any, str]:
    """(cupy.cuda.nccl, '') or (None, why it cannot be used)."""
    try:
        from cupy.cuda import nccl
    except Exception as exc:  # ImportError when CuPy was built or installed without NCCL
        return None, f"cupy.cuda.nccl cannot be imported ({type(exc).__name__}: {exc})"
    if not getattr(nccl, "available", True):
        return None, "CuPy reports NCCL unavailable (install the NCCL library for CuPy)"
    return nccl, ""


def select_device(local_rank: int, local_size: int) -> str:
    """Make GPU ``local_rank`` current; '' on success, else why NCCL cannot be used."""
    _, reason = _nccl_module()
    if reason:
        return reason
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    if local_size > count:
        return (f"{local_size} ranks on this machine but {count} GPU(s); NCCL needs one GPU "
                "per rank")
    cupy.cuda.Device(local_rank).use()
    return ""


def supported(dtype: np.dtype, op: str | None) -> bool:
    """Whether NCCL can move (op None) or reduce (op given) arrays of ``dtype``."""
    if op is None:
        return True  # bytes
    return dtype.name in _NCCL_TYPES


class NcclLink:
    """One NCCL communicator spanning the job (one GPU per rank)."""

    def __init__(self, comm: Any, rank: int, world_size: int) -> None:
        nccl, reason = _nccl_module()
        if reason:
            raise RuntimeError(reason)
        uid = nccl.get_unique_id() if rank == 0 else None
        if comm is not None:
            uid = comm.bcast(uid, root=0)
        self._nccl = nccl
        self.comm = nccl.NcclCommunicator(world_size, uid, rank)
        self.world_size = world_size

    def close(self) -> None:
        """Release the communicator (after a failed set-up on another rank)."""
        try:
            self.comm.abort()
        except Exception:  # already unusable: nothing more to release
            pass

    def _stream(self, stream: Any) -> Any:
        import cupy

        return stream if stream is not None else cupy.cuda.get_current_stream()

    def all_reduce(self, arr: Any, op: str, stream: Any = None) -> None:
        """In place on contiguous ``arr`` (on ``stream``, default the current one)."""
        name = _NCCL_TYPES.get(arr.dtype.name)
        if name is None:
            raise DTypeError(f"all_reduce (NCCL): cannot reduce dtype {arr.dtype}")
        self.comm.allReduce(arr.data.ptr, arr.data.ptr, arr.size,
                            getattr(self._nccl, name), getattr(self._nccl, _NCCL_OPS[op]),
                            self._stream(stream).ptr)
        if op == "mean":
            with self._stream(stream):
                arr /= self.world_size

    def broadcast(self, arr: Any, root: int, stream: Any = None) -> None:
        """Overwrite contiguous ``arr`` with root's, as bytes."""
        self.comm.bcast(arr.data.ptr, arr.nbytes, self._nccl.NCCL_UINT8, root,
                        self._stream(stream).ptr)

    def all_gather(self, arr: Any, out: Any, stream: Any = None) -> None:
        """Fill ``out`` (world size, *arr.shape) with every rank's ``arr``, as bytes."""
        self.comm.allGather(arr.data.ptr, out.data.ptr, arr.nbytes, self._nccl.NCCL_UINT8,
                            self._stream(stream).ptr)
