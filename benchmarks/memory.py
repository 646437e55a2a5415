"""Peak memory of one train-step body (forward, MSE loss, backward) per system.

Every system runs in its own fresh interpreter, so one system's allocator caches and
imports do not count against another's.

- CPU: after a warm-up step, the peak resident set size during a second step above the
  RSS just before it (Linux: the VmHWM mark, reset through /proc/self/clear_refs), the
  same measure for every system; for gpuchain also the exact peak of NumPy allocations
  seen by ``tracemalloc``. The warm-up step's gradients are dropped before the
  mark, so the figure includes the step's new gradients and its transient buffers.
- GPU: gpuchain counts CuPy memory-pool allocations with a memory hook; PyTorch reports
  ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks._runner import (
    Check,
    Config,
    CrossCheckError,
    Row,
    SuiteResult,
    cross_check,
    optional_import,
    run_single_suite,
    say,
    set_ratios,
)

SUITE = "memory"
ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ("gpuchain fused dense", "gpuchain composed ops", "torch eager")


def configs(cfg: Config) -> list[tuple[tuple[int, ...], int]]:
    if cfg.quick:
        return [((256, 512, 512, 10), 256)]
    return [((1024, 2048, 2048, 10), 1024)]


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak_rss(step: Any) -> int:
    """Drop the warm-up step's gradients, reset the kernel's peak-RSS mark (VmHWM) to the
    current RSS and return it."""
    import ctypes
    import gc

    for p in step.params:
        p.grad = None
    gc.collect()
    try:  # hand freed heap pages back, so reused memory is counted again when touched
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_bytes("VmRSS")


def _peak_rss() -> int:
    return _status_bytes("VmHWM")


def _cupy_peak_hook() -> Any:
    from cupy.cuda import memory_hook

    class PeakHook(memory_hook.MemoryHook):
        name = "gpuchain-bench-peak"

        def __init__(self) -> None:
            self.current = 0
            self.peak = 0

        def malloc_postprocess(self, **kw: Any) -> None:
            self.current += kw["mem_size"]
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, **kw: Any) -> None:
            self.current -= kw["mem_size"]

    return PeakHook()


def child(system: str, sizes: tuple[int, ...], batch: int, activation: str,
          backend: str) -> dict[str, Any]:
    """Runs in the fresh interpreter: one step, its loss and its peak memory."""
    from benchmarks._models import gpuchain_step, make_batch, make_weights, torch_step

    params = make_weights(sizes)
    x, y = make_batch(sizes, batch)
    gpu = backend == "cupy"
    if system.startswith("gpuchain"):
        import gpuchain as gc

        gc.set_backend(backend)
        step = gpuchain_step(params, x, y, activation, fused="fused" in system)
        if gpu:
            import cupy

            hook = _cupy_peak_hook()
            with hook:
                loss, _ = step()
                cupy.cuda.Device().synchronize()
            return {"loss": float(loss.item()), "peak_bytes": hook.peak,
                    "method": "CuPy pool allocations during the step (memory hook)"}
        import tracemalloc

        step()  # warm-up: first-call allocations (BLAS buffers) are not the step's
        before = _reset_peak_rss(step)
        tracemalloc.start()
        loss, _ = step()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        import torch

        dev = "cuda" if gpu else "cpu"
        step = torch_step(params, x, y, activation, dev)
        if gpu:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            loss, _ = step()
            torch.cuda.synchronize()
            return {"loss": float(loss.item()),
                    "peak_bytes": torch.cuda.max_memory_allocated() - base,
                    "method": "torch.cuda.max_memory_allocated above the step's start"}
        step()
        before = _reset_peak_rss(step)
        loss, _ = step()
        traced = None
    return {"loss": float(loss.item()), "peak_bytes": max(0, _peak_rss() - before),
            "tracemalloc_peak_bytes": traced,
            "method": "peak RSS (VmHWM) during a second step above the RSS before it"}


def _spawn(cfg: Config, system: str, sizes: tuple[int, ...], batch: int, activation: str
           ) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", system, "--sizes",
           ",".join(map(str, sizes)), "--batch", str(batch), "--activation", activation,
           "--backend", cfg.backend]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # a fixed mmap threshold: glibc then unmaps every large block on free, so RSS
        # follows live memory instead of the allocator's cache
        "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(cfg: Config) -> SuiteResult:
    if sys.platform != "linux":
        from benchmarks._runner import SuiteSkipped

        raise SuiteSkipped("the CPU memory measure reads /proc (Linux only)")
    res = SuiteResult()
    systems = [s for s in SYSTEMS
               if not s.startswith("torch") or ("torch" in cfg.peers and optional_import("torch"))]
    for sizes, batch in configs(cfg):
        activation = "relu"
        case = f"{activation} {'-'.join(map(str, sizes))} batch {batch}"
        rows: list[Row] = []
        reference: dict[str, Any] | None = None
        for system in systems:
            say(cfg, f"{SUITE}/{case}: {system} (fresh process)")
            try:
                out = _spawn(cfg, system, sizes, batch, activation)
                vals = {"loss": out["loss"]}
                if reference is None:
                    reference = vals
                err = cross_check(reference, vals, rtol=1e-4, atol=1e-6)
                res.checks.append(Check(SUITE, case, system, "ok", err))
            except CrossCheckError as exc:
                res.checks.append(Check(SUITE, case, system, "mismatch", None, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001
                res.checks.append(Check(SUITE, case, system, "error", None, str(exc)[:300]))
                continue
            peak = float(out["peak_bytes"])
            extra = {k: v for k, v in out.items() if k not in ("peak_bytes", "loss")}
            rows.append(Row(SUITE, case, system, peak, peak, peak, 1, metric="bytes",
                            extra=extra | {"sizes": sizes, "batch": batch}))
        set_ratios(rows)
        res.rows += rows
    res.notes.append("memory: " + ("peak CuPy pool / torch.cuda allocations of one step"
                                   if cfg.on_gpu else
                                   "peak RSS of a (second) step above the RSS before it, "
                                   "each system in a fresh process (JSON extra: tracemalloc peak "
                                   "of gpuchain's NumPy allocations)"))
    return res


def _child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--activation", default="relu")
    p.add_argument("--backend", default="numpy")
    a = p.parse_args(argv)
    sizes = tuple(int(s) for s in a.sizes.split(","))
    print(json.dumps(child(a.child, sizes, a.batch, a.activation, a.backend)))
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.exit(_child_main(sys.argv[1:]))
    sys.exit(run_single_suite(SUITE))
