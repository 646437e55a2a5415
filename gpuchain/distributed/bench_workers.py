"""Workers of the ``distributed`` benchmark: the code each MPI rank runs.

``python -m gpuchain.distributed.benchmark --worker KIND`` (launched by the benchmark under
``mpiexec``) calls :func:`run`; rank 0 writes the rows (times in seconds) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

LARGE = (512, [784, 2048, 2048, 2048, 2048, 10])  # the train suite's "large" MLP
QUICK = (256, [784, 1024, 1024, 10])
SIZES_BYTES = [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20]
QUICK_SIZES = [4 << 10, 1 << 20]


def _summary(times: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "repeats": len(times)}


def _repeats(nbytes: int, quick: bool) -> int:
    return max(5, min(100 if quick else 200, (256 << 20) // max(nbytes, 1) // 4))


def _worker_allreduce(sizes: list[int], quick: bool) -> list[dict[str, Any]]:
    import gpuchain.distributed as dist

    dist.init("mpi")
    world = dist.get_world_size()
    rows = []
    for nbytes in sizes:
        x = np.ones(nbytes // 4, dtype=np.float32)
        dist.all_reduce(x, check=False)  # warm-up (connection set-up, page faults)
        times = []
        for _ in range(_repeats(nbytes, quick)):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x, check=False)
            times.append(time.perf_counter() - t0)
        rows.append(_bandwidth_row(nbytes, world, times, "gpuchain (mpi4py)"))
    return rows


def _bandwidth_row(nbytes: int, world: int, times: list[float], system: str) -> dict[str, Any]:
    s = _summary(times)
    algbw = nbytes / s["median"]
    return {"case": f"all_reduce {fmt_bytes(nbytes)} float32, {world} ranks",
            "system": system, **s, "bytes": nbytes,
            "algbw_GBps": algbw / 1e9, "busbw_GBps": algbw * 2 * (world - 1) / world / 1e9}


def _torch_init(port: int) -> tuple[Any, int, int]:
    import torch
    import torch.distributed as tdist
    from mpi4py import MPI

    torch.set_num_threads(1)
    rank, world = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=world)
    return tdist, rank, world


def _worker_allreduce_torch(sizes: list[int], quick: bool, port: int) -> list[dict[str, Any]]:
    import torch

    tdist, _, world = _torch_init(port)
    rows = []
    for nbytes in sizes:
        x = torch.ones(nbytes // 4, dtype=torch.float32)
        tdist.all_reduce(x)
        times = []
        for _ in range(_repeats(nbytes, quick)):
            tdist.barrier()
            t0 = time.perf_counter()
            tdist.all_reduce(x)
            times.append(time.perf_counter() - t0)
        rows.append(_bandwidth_row(nbytes, world, times, f"torch {torch.__version__} gloo"))
    tdist.destroy_process_group()
    return rows


def _mlp_data(batch: int, sizes: list[int], rank: int, world: int
              ) -> tuple[np.ndarray, np.ndarray, Any]:
    import gpuchain.distributed as dist

    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    part = dist.shard(batch, rank=rank, world_size=world)
    return x[part.indices], y[part.indices], part


def _worker_mlp(batch: int, sizes: list[int], steps: int) -> list[dict[str, Any]]:
    import gpuchain.distributed as dist
    from gpuchain.distributed.group import current
    from gpuchain.engine.tensor import Tensor
    from gpuchain.nn import MLP
    from gpuchain.nn.functional import cross_entropy
    from gpuchain.optim import Adam

    dist.init("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    group = current()
    x, y, part = _mlp_data(batch, sizes, rank, world)
    xs, ys = Tensor(x), Tensor(y)
    # alone, the plain model too: what DataParallel's bookkeeping costs
    wrappers = [True, False] if world == 1 else [True]
    rows = []
    for wrap in wrappers:
        mlp = MLP(sizes, activation="relu", seed=0, dtype=np.float32)
        model = dist.DataParallel(mlp) if wrap else mlp
        opt = Adam(model, lr=1e-3)

        def step(model: Any = model, opt: Any = opt) -> None:
            opt.zero_grad()
            (cross_entropy(model(xs), ys) * part.weight).backward()
            opt.step()

        times, cpu, comm = _timed_steps(step, steps, dist.barrier, lambda: group.comm_seconds)
        system = f"gpuchain DataParallel, {world} rank(s)" if wrap else "gpuchain, no wrapper"
        row = _mlp_row(batch, sizes, system, world, times, cpu)
        if wrap:
            row["comm_fraction"] = statistics.median(c / t for c, t in zip(comm, times))
        rows.append(row)
    return rows


def _timed_steps(step: Any, steps: int, barrier: Any, comm_seconds: Any
                 ) -> tuple[list[float], list[float], list[float]]:
    """Wall time, this process's CPU time and communication time of each step after a
    first, untimed one (it allocates); the ranks start every step together."""
    times, cpu, comm = [], [], []
    for i in range(steps + 1):
        barrier()
        c0, p0, t0 = comm_seconds(), time.process_time(), time.perf_counter()
        step()
        if i:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - p0)
            comm.append(comm_seconds() - c0)
    return times, cpu, comm


def _mlp_row(batch: int, sizes: list[int], system: str, world: int, times: list[float],
             cpu: list[float]) -> dict[str, Any]:
    s = _summary(times)
    # CPU time per step includes waiting in MPI (it polls); on a shared machine it is the
    # steadier figure, since wall time also counts the other jobs' share of the cores
    return {"case": _mlp_case(batch, sizes), "system": system, **s, "ranks": world,
            "samples_per_s": batch / s["median"], "cpu_s_per_step": statistics.median(cpu)}


def _mlp_case(batch: int, sizes: list[int]) -> str:
    return f"MLP {'-'.join(map(str, sizes))} step, global batch {batch}"


def _worker_mlp_torch(batch: int, sizes: list[int], steps: int, port: int
                      ) -> list[dict[str, Any]]:
    import torch
    from torch.nn.parallel import DistributedDataParallel

    tdist, rank, world = _torch_init(port)
    x, y, part = _mlp_data(batch, sizes, rank, world)
    torch.manual_seed(0)
    layers: list[Any] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = DistributedDataParallel(torch.nn.Sequential(*layers[:-1]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        (torch.nn.functional.cross_entropy(model(xs), ys) * part.weight).backward()
        opt.step()

    times, cpu, _ = _timed_steps(step, steps, tdist.barrier, lambda: 0.0)
    tdist.destroy_process_group()
    return [_mlp_row(batch, sizes, f"torch {torch.__version__} DDP gloo, {world} rank(s)",
                     world, times, cpu)]


def run(args: argparse.Namespace) -> int:
    """Run worker ``args.worker`` on this rank; rank 0 writes ``args.worker_out``."""
    kind = args.worker
    batch, sizes = QUICK if args.quick else LARGE
    steps = 3 if args.quick else 8
    byte_sizes = QUICK_SIZES if args.quick else SIZES_BYTES
    if kind == "allreduce":
        rows = _worker_allreduce(byte_sizes, args.quick)
    elif kind == "allreduce-torch":
        rows = _worker_allreduce_torch(byte_sizes, args.quick, args.port)
    elif kind == "mlp":
        rows = _worker_mlp(batch, sizes, steps)
    else:
        rows = _worker_mlp_torch(batch, sizes, steps, args.port)
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_rank() == 0:
        Path(args.worker_out).write_text(json.dumps(rows))
    return 0


def fmt_bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"
