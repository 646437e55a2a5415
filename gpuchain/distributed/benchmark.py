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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# --------------------------------------------------------------------------- orchestration

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
        if "cpu_s_per_step" in r:
            extra.append(f"CPU {r['cpu_s_per_step'] * 1e3:.0f} ms/step/rank")
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


def _write_results(out_dir: Path, env: dict[str, Any], rows: list[dict[str, Any]],
                   report: str, quick: bool, log: Any) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", f"cpu-{env['machine']['cpu']}-{env['machine']['cores']}c"
                  .lower()).strip("-")[:60]
    stem = out_dir / f"distributed-{slug}{'-quick' if quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps({"environment": env, "rows": rows},
                                                    indent=1) + "\n")
    stem.with_suffix(".md").write_text(report)
    log(f"results written to {stem}.json and .md")


def _missing_mpi() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed"
    return "" if _mpiexec() is not None else "no mpiexec found"


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
    parser.add_argument("--json", metavar="PATH", help="write the rows here (then the "
                        "results files are written only with --out)")
    parser.add_argument("--out", metavar="DIR", help="results folder "
                        "(default benchmarks/results of the checkout)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        from gpuchain.distributed import bench_workers

        return bench_workers.run(args)
    missing = _missing_mpi()
    if missing:  # an optional extra: skipped, not failed
        print(f"distributed benchmark: skipped: {missing} (pip install 'gpuchain[mpi]')")
        if args.json:
            Path(args.json).write_text("[]")
        return 0

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
    if args.out or not args.json:  # under ``gpuchain bench`` (--json) the suite writes them
        _write_results(Path(args.out) if args.out else _results_dir(), env, rows, report,
                       args.quick, log)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
