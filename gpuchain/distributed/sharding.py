"""Which samples each rank trains on, and the loss weight that makes the average of the
ranks' gradients equal the full-batch gradient when shards differ in size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuchain.distributed import collectives
from gpuchain.distributed.group import current


@dataclass(frozen=True)
class Shard:
    """This rank's part of a data set.

    Attributes
    ----------
    indices : numpy.ndarray
        int64 sample indices of this rank (disjoint across ranks; together all samples).
    weight : float
        Multiply this rank's *mean* loss by it: ``len(indices) * world_size / total``.
        DataParallel averages gradients over ranks, so the result is then the gradient
        of the mean loss over all ``total`` samples.
    total : int
        Samples over all ranks.
    """

    indices: np.ndarray
    weight: float
    total: int


def shard(n_samples: int, *, seed: int | None = None, epoch: int = 0,
          drop_last: bool = False, rank: int | None = None,
          world_size: int | None = None) -> Shard:
    """Split ``range(n_samples)`` over the ranks (like PyTorch's DistributedSampler).

    Parameters
    ----------
    n_samples : int
        Size of the data set.
    seed, epoch : int
        With a seed, the samples are shuffled by a permutation drawn from
        ``(seed, epoch)`` (the same on every rank); without, shards are contiguous.
    drop_last : bool
        Drop the last ``n_samples % world_size`` samples so every shard is equal.
    rank, world_size : int, optional
        Default to the process group's.

    Returns
    -------
    Shard
        Uneven shards differ by at most one sample (the first ranks get the extra ones).

    Raises
    ------
    ValueError
        When there are fewer samples than ranks, or arguments are out of range.
    """
    if rank is None or world_size is None:
        group = current()
        rank = group.rank if rank is None else rank
        world_size = group.world_size if world_size is None else world_size
    if not (isinstance(world_size, (int, np.integer)) and world_size >= 1):
        raise ValueError(f"shard: world_size must be a positive int, got {world_size!r}")
    if not (isinstance(rank, (int, np.integer)) and 0 <= rank < world_size):
        raise ValueError(f"shard: rank must lie in 0..{world_size - 1}, got {rank!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < world_size:
        raise ValueError(f"shard: {n_samples!r} samples cannot be split over {world_size} "
                         "ranks (each rank needs at least one)")
    if seed is None:
        order = np.arange(n_samples, dtype=np.int64)
    else:
        order = np.random.default_rng([int(seed), int(epoch)]).permutation(n_samples)
    total = n_samples - n_samples % world_size if drop_last else n_samples
    parts = np.array_split(order[:total], world_size)
    mine = parts[rank].astype(np.int64)
    return Shard(mine, len(mine) * world_size / total, int(total))


def loss_weight(n_local: int) -> float:
    """The factor for this rank's mean loss over ``n_local`` samples, when ranks hold
    different numbers this step: ``n_local * world_size / (sum of n_local over ranks)``.
    A collective: every rank must call it."""
    group = current()
    total = collectives.all_reduce(int(n_local), "sum", check=False)
    if total <= 0:
        raise ValueError(f"loss_weight: no samples on any rank (rank {group.rank} has "
                         f"{n_local})")
    return n_local * group.world_size / total
