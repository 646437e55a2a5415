"""Checkpoints in data-parallel jobs: rank 0 writes, every rank reads.

The file is ``gpuchain.save``'s format (atomic write, no pickled code). The model's own
state dict is stored (a DataParallel wrapper is unwrapped), so a checkpoint from a
parallel job loads into a plain model and back.
"""

from __future__ import annotations

import os
from typing import Any

from gpuchain.distributed import collectives
from gpuchain.distributed.group import barrier, current
from gpuchain.errors import DistributedError
from gpuchain.nn.module import Module
from gpuchain.serialization import load, save


def _unwrap(model: Module) -> Module:
    from gpuchain.distributed.data_parallel import DataParallel

    return model.module if isinstance(model, DataParallel) else model


def save_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Any = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write ``{"model", "optimizer", "extra"}`` to ``path`` on rank 0 only; every rank
    returns once the file is complete (a collective: call it on every rank).

    Parameters
    ----------
    path : str or os.PathLike
        The file (``gpuchain.save`` format, written atomically).
    model : Module
        The model; a DataParallel wrapper is unwrapped, so the file loads into a plain model.
    optimizer : Optimizer, optional
        Its state dict is saved too.
    extra : dict, optional
        Anything ``gpuchain.save`` can store (epoch, step, RNG seeds, ...).

    Raises
    ------
    DistributedError
        On every rank, when rank 0 failed to write (its error is in the message).
    """
    group = current()
    error = ""
    if group.rank == 0:
        state = {"model": _unwrap(model).state_dict(),
                 "optimizer": None if optimizer is None else optimizer.state_dict(),
                 "extra": extra}
        try:
            save(state, path)
        except Exception as exc:  # reported to every rank below, then raised everywhere
            error = f"{type(exc).__name__}: {exc}"
    if group.world_size > 1:
        with group.watch("save_checkpoint"):
            error = group.comm.bcast(error, root=0)
    if error:
        raise DistributedError(f"save_checkpoint({os.fspath(path)!r}): rank 0 could not "
                               f"write it ({error})")


def load_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Any = None
                    ) -> dict[str, Any] | None:
    """Load a ``save_checkpoint`` file on every rank (a collective).

    Waits for every rank first, so a file rank 0 has just written is complete; then every
    rank checks that it loaded the same parameters as rank 0.

    Parameters
    ----------
    path : str or os.PathLike
        The file ``save_checkpoint`` wrote.
    model : Module
        Receives the parameters (a DataParallel wrapper is unwrapped).
    optimizer : Optimizer, optional
        Receives the optimizer state when the file has one.

    Returns
    -------
    dict or None
        The ``extra`` given to ``save_checkpoint``.
    """
    barrier()
    state = load(path)
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    group = current()
    if group.world_size > 1:
        for buf in _unwrap(model).flat_buffers():
            mine = buf.data.copy()
            collectives.broadcast(mine, 0, check=False)
            if not bool((mine == buf.data).all()):
                raise DistributedError(f"load_checkpoint({os.fspath(path)!r}): rank "
                                       f"{group.rank} read parameters that differ from rank 0's")
    return state.get("extra")
