"""The last rank raises while the others wait in a collective: the job must end, fast,
with that rank's message (``mpiexec -n N python fail.py``)."""

import numpy as np

import gpuchain.distributed as dist

dist.init()
if dist.get_rank() == dist.get_world_size() - 1:
    raise RuntimeError(f"deliberate failure on rank {dist.get_rank()}")
dist.all_reduce(np.ones(4))  # never completes: the failing rank aborts the job
print("UNREACHABLE: all_reduce returned", flush=True)
