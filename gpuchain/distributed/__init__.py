"""Data-parallel training across processes: MPI (mpi4py) for NumPy arrays, NCCL (CuPy) for
CuPy arrays.

Typical use, launched with ``mpiexec -n 4 python train.py``::

    import gpuchain.distributed as dist

    dist.init()
    model = dist.DataParallel(MLP([784, 512, 10]))
    opt = Adam(model)
    part = dist.shard(len(x), seed=0, epoch=0)
    loss = cross_entropy(model(x[part.indices]), y[part.indices]) * part.weight
    loss.backward()  # gradients are now averaged over the ranks
    opt.step()

Without an MPI launcher the process is a group of one (no MPI needed).
"""

from gpuchain.distributed.checkpoint import load_checkpoint, save_checkpoint
from gpuchain.distributed.collectives import all_gather, all_reduce, broadcast
from gpuchain.distributed.data_parallel import DataParallel
from gpuchain.distributed.group import (
    barrier,
    get_backend,
    get_local_rank,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    launched_by_mpi,
)
from gpuchain.distributed.sharding import Shard, loss_weight, shard

__all__ = [
    "DataParallel", "Shard", "all_gather", "all_reduce", "barrier", "broadcast",
    "get_backend", "get_local_rank", "get_rank", "get_world_size", "init", "is_initialized",
    "launched_by_mpi", "load_checkpoint", "loss_weight", "save_checkpoint", "shard",
]
