"""The ``distributed`` benchmark: ``python -m gpuchain.distributed.benchmark``.

Launches its own MPI jobs (``mpiexec -n 1|2``, one BLAS thread per rank) and measures

- all-reduce time and bandwidth over message sizes (float32 sums over MPI, 2 ranks), next
  to ``torch.distributed`` on gloo when torch is installed;
- training throughput of the large MLP (the train suite's: batch 512, 784-2048x4-10, relu,
  softmax cross-entropy, Adam) under DataParallel at 1 and 2 ranks, the global batch split
  over the ranks, with the fraction of each step spent in gradient communication; next to
  PyTorch DistributedDataParallel on gloo at the same ranks.

Results (machine, versions, date, load) go to ``benchmarks/results/distributed-*.json`` and
``.md`` (``--out``); ``--json PATH`` also writes the rows for ``gpuchain bench``. Timings on
a shared machine are noisy: the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LARGE = (512, [784, 2048, 2048, 2048, 2048, 10])  # the train suite's "large" MLP
QUICK = (256, [784, 1024, 1024, 10])
SIZES_BYTES = [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20]
QUICK_SIZES = [4 << 10, 1 << 20]
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# --------------------------------------------------------------------------- workers (MPI)

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
    return {"case": f"all_reduce {_fmt_bytes(nbytes)} float32, {world} ranks",
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
        times, comm = [], []
        for i in range(steps + 1):  # the first step allocates: not timed
            dist.barrier()
            before = group.comm_seconds
            t0 = time.perf_counter()
            opt.zero_grad()
            (cross_entropy(model(xs), ys) * part.weight).backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t0)
                comm.append(group.comm_seconds - before)
        s = _summary(times)
        system = f"gpuchain DataParallel, {world} rank(s)" if wrap else "gpuchain, no wrapper"
        row = {"case": _mlp_case(batch, sizes), "system": system, **s, "ranks": world,
               "samples_per_s": batch / s["median"]}
        if wrap:
            row["comm_fraction"] = statistics.median(c / t for c, t in zip(comm, times))
        rows.append(row)
    return rows


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
    times = []
    for i in range(steps + 1):
        tdist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        (torch.nn.functional.cross_entropy(model(xs), ys) * part.weight).backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    tdist.destroy_process_group()
    s = _summary(times)
    return [{"case": _mlp_case(batch, sizes),
             "system": f"torch {torch.__version__} DDP gloo, {world} rank(s)", **s,
             "ranks": world, "samples_per_s": batch / s["median"]}]


def _worker(args: argparse.Namespace) -> int:
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


# --------------------------------------------------------------------------- orchestration

def _fmt_bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mpiexec() -> str | None:
    import shutil

    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def _launch(n: int, kind: str, quick: bool, log: Any) -> list[dict[str, Any]]:
    launcher = _mpiexec()
    assert launcher is not None  # main() checked
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [launcher, "-n", str(n), sys.executable, "-m", "gpuchain.distributed.benchmark",
               "--worker", kind, "--worker-out", str(out), "--port", str(_free_port())]
        if quick:
            cmd.append("--quick")
        pkg_parent = str(Path(__file__).resolve().parents[2])
        env = os.environ | ONE_THREAD | {"GPUCHAIN_BACKEND": "numpy", "PYTHONPATH": os.pathsep.join(
            filter(None, [pkg_parent, os.environ.get("PYTHONPATH")]))}
        log(f"  mpiexec -n {n} ... --worker {kind}")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"distributed benchmark: worker {kind} on {n} rank(s) failed "
                               f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}"
                               f"{proc.stderr[-2000:]}")
        return json.loads(out.read_text())


def _environment(quick: bool) -> dict[str, Any]:
    from mpi4py import MPI

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("gpuchain", "mpi4py", "torch"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    now = _dt.datetime.now(_dt.timezone.utc)
    return {"date": now.date().isoformat(), "timestamp": now.isoformat(timespec="seconds"),
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()},
            "versions": versions, "mpi_library": MPI.Get_library_version().splitlines()[0],
            "blas_threads_per_rank": 1, "quick": quick,
            "load_average_1_5_15": list(os.getloadavg()),
            "note": "shared machine (other jobs were running): timings are indicative"}


def _markdown(env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"# distributed benchmark, {env['date']}", "",
             f"{env['machine']['cpu']}, {env['machine']['cores']} cores; "
             f"{env['mpi_library']}; versions {env['versions']}; one BLAS thread per rank; "
             f"load average {env['load_average_1_5_15']}. {env['note']}.",
             f"NCCL path at world size 1: {env.get('nccl_world_size_1', 'not tried')}.", "",
             "| case | system | median | min | extra |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        extra = []
        if "busbw_GBps" in r:
            extra.append(f"algbw {r['algbw_GBps']:.2f} GB/s, busbw {r['busbw_GBps']:.2f} GB/s")
        if "samples_per_s" in r:
            extra.append(f"{r['samples_per_s']:.0f} samples/s")
        if "comm_fraction" in r:
            extra.append(f"{r['comm_fraction']:.1%} of the step in communication")
        lines.append(f"| {r['case']} | {r['system']} | {r['median'] * 1e3:.3f} ms | "
                     f"{r['min'] * 1e3:.3f} ms | {'; '.join(extra)} |")
    return "\n".join(lines) + "\n"


_NCCL_PROBE = """
import cupy, gpuchain.distributed as dist
dist.init("nccl")
x = cupy.ones(1 << 20, dtype=cupy.float32)
dist.all_reduce(x)
cupy.cuda.get_current_stream().synchronize()
print(dist.get_backend(), float(x.sum()))
"""


def _nccl_path_status() -> str:
    """Whether a world-size-1 NCCL all-reduce runs here (in a child process)."""
    from gpuchain.backend import cupy_unavailable_reason

    reason = cupy_unavailable_reason()
    if reason:
        return f"not run: {reason}"
    proc = subprocess.run([sys.executable, "-c", _NCCL_PROBE], capture_output=True, text=True,
                          timeout=300, env=os.environ | {"GPUCHAIN_BACKEND": "cupy"})
    if proc.returncode != 0:
        return f"failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    backend, total = proc.stdout.split()
    ok = backend == "nccl" and float(total) == float(1 << 20)
    return f"runs (backend {backend}, 4 MiB all_reduce sum {total})" if ok else \
        f"wrong result: backend {backend}, sum {total}"


def _results_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2] / "benchmarks"
    return checkout / "results" if checkout.is_dir() else Path.cwd() / "benchmark-results"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m gpuchain.distributed.benchmark",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--backend", default="numpy",
                        help="numpy (CPU over MPI); cupy: NCCL scaling needs several GPUs, "
                        "so it is recorded as not measured")
    parser.add_argument("--json", metavar="PATH", help="also write the rows here")
    parser.add_argument("--out", metavar="DIR", help="results folder "
                        "(default benchmarks/results of the checkout)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print("distributed benchmark: mpi4py is not installed (pip install 'gpuchain[mpi]')",
              file=sys.stderr)
        return 2
    if _mpiexec() is None:
        print("distributed benchmark: no mpiexec (pip install 'gpuchain[mpi]')", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, flush=True)

    try:
        import torch  # noqa: F401

        with_torch = not args.no_torch
    except ImportError:
        with_torch = False
    log("distributed benchmark" + (" (quick)" if args.quick else "")
        + (" with torch gloo peers" if with_torch else " (torch not installed: no peers)"))
    nccl_status = "not tried (--backend numpy)"
    if args.backend in ("cupy", "auto"):
        log("  cupy: NCCL bus bandwidth at world size 1 is meaningless and multi-GPU scaling "
            "needs a multi-GPU machine; recording only whether the NCCL path runs")
        nccl_status = _nccl_path_status()
        log(f"  NCCL path at world size 1: {nccl_status}")
    rows = _launch(2, "allreduce", args.quick, log)
    if with_torch:
        rows += _launch(2, "allreduce-torch", args.quick, log)
    for n in (1, 2):
        rows += _launch(n, "mlp", args.quick, log)
        if with_torch:
            rows += _launch(n, "mlp-torch", args.quick, log)
    env = _environment(args.quick)
    env["nccl_world_size_1"] = nccl_status
    report = _markdown(env, rows)
    print(report)
    out_dir = Path(args.out) if args.out else _results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", f"cpu-{env['machine']['cpu']}-{env['machine']['cores']}c"
                  .lower()).strip("-")[:60]
    stem = out_dir / f"distributed-{slug}{'-quick' if args.quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps({"environment": env, "rows": rows},
                                                    indent=1) + "\n")
    stem.with_suffix(".md").write_text(report)
    log(f"results written to {stem}.json and .md")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
