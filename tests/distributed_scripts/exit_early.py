"""The last rank leaves without an error while the others wait in a collective: the
watchdog (timeout from argv[1] seconds) must end the job with a message."""

import sys

import numpy as np

import gpuchain.distributed as dist

dist.init(timeout=float(sys.argv[1]))
if dist.get_rank() == dist.get_world_size() - 1:
    sys.exit(0)  # no exception: the abort hook never sees this
dist.all_reduce(np.ones(4))  # never completes
print("UNREACHABLE: all_reduce returned", flush=True)
