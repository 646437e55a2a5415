"""all_reduce, broadcast and all_gather on Tensors, NumPy/CuPy arrays and Python numbers.

NumPy arrays go over MPI. CuPy arrays go over NCCL when the group has a communicator,
otherwise through host memory over MPI (with a one-time warning). Arrays and Tensors are
changed in place (``all_reduce``, ``broadcast``) like PyTorch's; numbers are returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import is_cupy_array
from gpuchain.distributed import mpi
from gpuchain.distributed.group import Group, current, warn_host_fallback
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import DistributedError


def _unwrap(fn: str, x: Any) -> tuple[Any, str]:
    """(array, kind) with kind 'tensor', 'array' or 'number'."""
    if isinstance(x, Tensor):
        if x._node is not None:
            raise DistributedError(
                f"{fn}: the Tensor {x.dtype}{tuple(x.shape)} is the output of a recorded op; "
                "collectives write in place, so pass x.detach() (or a leaf)")
        return x._data, "tensor"
    if isinstance(x, np.ndarray) or is_cupy_array(x):
        return x, "array"
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return np.asarray(x), "number"
    raise TypeError(f"{fn}: expected a Tensor, a NumPy/CuPy array or a number, got "
                    f"{type(x).__name__}")


def _describe(sig: tuple[Any, ...]) -> str:
    name, shape, dtype, device, extra = sig
    return f"{name}({device} {dtype}{shape}{', ' + extra if extra else ''})"


def _check(group: Group, fn: str, arr: Any, extra: str) -> None:
    sig = (fn, tuple(arr.shape), arr.dtype.name, "cuda" if is_cupy_array(arr) else "cpu", extra)
    with group.watch(f"{fn} (argument check)"):
        mpi.check_same(group.comm, fn, sig, _describe)


def _contiguous(arr: Any) -> Any:
    if arr.flags.c_contiguous:
        return arr
    return (np if isinstance(arr, np.ndarray) else _cupy()).ascontiguousarray(arr)


def _cupy() -> Any:
    import cupy

    return cupy


def _host_fallback(group: Group) -> None:
    warn_host_fallback(group, "CuPy arrays")


def _finish(x: Any, kind: str, arr: Any, work: Any) -> Any:
    if work is not arr:
        arr[...] = work
    if kind == "number":
        return arr.item()
    return x


def all_reduce(x: Any, op: str = "sum", *, check: bool = True) -> Any:
    """Reduce ``x`` over every rank; every rank gets the result.

    Parameters
    ----------
    x : Tensor, numpy.ndarray, cupy.ndarray or number
        Arrays and (leaf) Tensors are overwritten in place; numbers are returned reduced.
    op : {"sum", "mean", "max", "min"}
        ``mean`` divides the sum by the world size (floating dtypes only).
    check : bool
        First compare shape, dtype and device across ranks (one small collective) and
        raise ``CollectiveMismatchError`` on every rank when they differ.

    Returns
    -------
    The same Tensor or array (reduced in place), or the reduced number.
    """
    arr, kind = _unwrap("all_reduce", x)
    mpi.check_reduce("all_reduce", arr.dtype, op)
    group = current()
    on_nccl = None
    if group.nccl is not None:
        from gpuchain.distributed import nccl

        if nccl.supported(arr.dtype, op):
            def on_nccl(w: Any) -> None:
                group.nccl.all_reduce(w, op)
    return _in_place(group, "all_reduce", x, kind, arr, check, f"op={op}", on_nccl,
                     lambda a: mpi.allreduce(group.comm, a, op))


def _in_place(group: Group, fn: str, x: Any, kind: str, arr: Any, check: bool, extra: str,
              on_nccl: Any, on_mpi: Any) -> Any:
    """Run a collective that overwrites ``arr``: NCCL for CuPy arrays when ``on_nccl`` is
    given, else MPI (CuPy arrays through host memory). Alone, only NCCL runs (so its path
    is exercised on a single GPU); everything else is already the result."""
    if group.world_size == 1 and not (on_nccl is not None and is_cupy_array(arr)):
        return _finish(x, kind, arr, arr)
    if check and group.world_size > 1:
        _check(group, fn, arr, extra)
    work = _contiguous(arr)
    with group.watch(fn):
        if is_cupy_array(work):
            if on_nccl is not None:
                on_nccl(work)
            else:
                _host_fallback(group)
                host = work.get()
                on_mpi(host)
                work.set(host)
        else:
            on_mpi(work)
    return _finish(x, kind, arr, work)


def broadcast(x: Any, root: int = 0, *, check: bool = True) -> Any:
    """Overwrite ``x`` on every rank with rank ``root``'s value (any dtype).

    Parameters
    ----------
    x : Tensor, numpy.ndarray, cupy.ndarray or number
    root : int
        The rank whose value is sent.
    check : bool
        Compare shape, dtype, device and root across ranks first (see ``all_reduce``).

    Returns
    -------
    The same Tensor or array, or root's number.
    """
    arr, kind = _unwrap("broadcast", x)
    group = current()
    if not (isinstance(root, (int, np.integer)) and 0 <= root < group.world_size):
        raise ValueError(f"broadcast: root must be a rank in 0..{group.world_size - 1}, "
                         f"got {root!r}")
    on_nccl = None
    if group.nccl is not None:
        def on_nccl(w: Any) -> None:
            group.nccl.broadcast(w, int(root))
    return _in_place(group, "broadcast", x, kind, arr, check, f"root={root}", on_nccl,
                     lambda a: mpi.bcast(group.comm, a, int(root)))


def all_gather(x: Any, *, check: bool = True) -> Any:
    """Every rank's ``x`` stacked along a new leading axis (length world size), on every rank.

    Parameters
    ----------
    x : Tensor, numpy.ndarray, cupy.ndarray or number
        Same shape and dtype on every rank.
    check : bool
        Compare shape, dtype and device across ranks first (see ``all_reduce``).

    Returns
    -------
    A new Tensor (no graph) or array of shape ``(world_size, *x.shape)`` on ``x``'s device;
    a list of numbers for a number.
    """
    arr, kind = _unwrap("all_gather", x)
    group = current()
    work = _contiguous(arr)
    if group.world_size == 1 and not (group.nccl is not None and is_cupy_array(work)):
        out = work.reshape((1,) + work.shape).copy()
    else:
        if check and group.world_size > 1:
            _check(group, "all_gather", work, "")
        with group.watch("all_gather"):
            if is_cupy_array(work):
                if group.nccl is not None:
                    out = _cupy().empty((group.world_size,) + work.shape, dtype=work.dtype)
                    group.nccl.all_gather(work, out)
                else:
                    _host_fallback(group)
                    out = _cupy().asarray(mpi.allgather(group.comm, work.get()))
            else:
                out = mpi.allgather(group.comm, work)
    if kind == "number":
        return out.tolist()
    return Tensor(out) if kind == "tensor" else out
