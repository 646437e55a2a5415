"""CuPy arrays through gpuchain.distributed (needs a GPU): ``python gpu_checks.py nccl`` in
one process checks the NCCL path at world size 1; ``mpiexec -n 2 python gpu_checks.py
host`` checks CuPy arrays over MPI through host memory (NCCL refuses two ranks on one GPU).
Prints ``OK <mode> rank <r>`` on success; raises otherwise."""

import sys
import warnings

import cupy
import numpy as np

import gpuchain.distributed as dist
from gpuchain.engine.tensor import Tensor
from gpuchain.nn import MLP
from gpuchain.nn.functional import cross_entropy

mode = sys.argv[1]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    dist.init("nccl" if mode == "nccl" else "auto")
    rank, world = dist.get_rank(), dist.get_world_size()
    if mode == "nccl":
        assert dist.get_backend() == "nccl" and world == 1, dist.get_backend()
    for dtype in (np.float32, np.float64, np.int32):
        x = cupy.arange(12, dtype=dtype).reshape(3, 4) + rank
        dist.all_reduce(x, "sum")
        want = sum(np.arange(12, dtype=dtype).reshape(3, 4) + r for r in range(world))
        assert np.array_equal(cupy.asnumpy(x), want), (dtype, x)
        y = cupy.full(5, rank, dtype=dtype)
        dist.broadcast(y, root=world - 1)
        assert np.array_equal(cupy.asnumpy(y), np.full(5, world - 1, dtype=dtype))
        g = dist.all_gather(cupy.full(2, rank, dtype=dtype))
        assert isinstance(g, cupy.ndarray) and g.shape == (world, 2)
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(8 * world, 5)), rng.integers(0, 3, 8 * world)
    ref = MLP([5, 16, 3], activation="tanh", seed=0, dtype=np.float64).to("cuda")
    cross_entropy(ref(Tensor(cupy.asarray(xs))), Tensor(cupy.asarray(ys))).backward()
    m = MLP([5, 16, 3], activation="tanh", seed=rank, dtype=np.float64).to("cuda")
    dp = dist.DataParallel(m, bucket_mb=1e-4)
    part = dist.shard(len(xs))
    idx = part.indices
    loss = cross_entropy(dp(Tensor(cupy.asarray(xs[idx]))), Tensor(cupy.asarray(ys[idx])))
    (loss * part.weight).backward()
    for p, q in zip(m.parameters(), ref.parameters()):
        np.testing.assert_allclose(cupy.asnumpy(p.grad.data), cupy.asnumpy(q.grad.data),
                                   rtol=1e-12, atol=1e-14)
    cupy.cuda.get_current_stream().synchronize()
fallback = [w for w in caught if "through host memory" in str(w.message)]
if mode == "host" and world > 1:
    assert len(fallback) == 1, [str(w.message) for w in caught]  # warned exactly once
print(f"OK {mode} rank {rank}", flush=True)
