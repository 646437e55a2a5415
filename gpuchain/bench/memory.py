"""Peak memory per system, each in its own fresh interpreter (so one system's allocator
caches and imports do not count against another's):

- ``fwd+bwd``: forward, MSE loss and backward of an MLP: gpuchain fused dense, gpuchain
  composed ops, PyTorch;
- ``train step``: the ``train`` suite's full step (cross-entropy, backward, Adam) for its
  relu sizes (quick: small), gpuchain and PyTorch.

Measures:

- CPU: after a warm-up step, the peak resident set size during a second step above the
  RSS just before it (Linux: the VmHWM mark, reset through /proc/self/clear_refs), the
  same measure for every system; for gpuchain also the exact peak of NumPy allocations
  seen by ``tracemalloc``. The warm-up step's gradients are dropped before the mark, so
  the figure includes the step's new gradients and its transient buffers. The total
  peak (VmHWM) of the process is kept too (``extra.process_peak_bytes``).
- GPU: gpuchain counts CuPy memory-pool allocations with a memory hook; PyTorch reports
  ``torch.cuda.max_memory_allocated`` above the step's start.
"""

from __future__ import annotations

import argparse
import ctypes
import gc as _pygc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gpuchain.bench import train
from gpuchain.bench._runner import (
    Check,
    Config,
    CrossCheckError,
    Row,
    SuiteResult,
    SuiteSkipped,
    cross_check,
    optional_import,
    run_single_suite,
    say,
    set_ratios,
)

SUITE = "memory"
PKG_PARENT = Path(__file__).resolve().parents[2]
FWD_BWD_SYSTEMS = ("gpuchain fused dense", "gpuchain composed ops", "torch eager")
STEP_SYSTEMS = ("gpuchain", "torch eager")
SIZES = tuple(s for s in train.SIZES if s not in train.MODERN)


def configs(cfg: Config) -> list[tuple[tuple[int, ...], int]]:
    """(layer sizes, batch) of the fwd+bwd cases."""
    if cfg.quick:
        return [((256, 512, 512, 10), 256)]
    return [((1024, 2048, 2048, 10), 1024)]


# --------------------------------------------------------------------------- measures


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Collect garbage, hand freed heap pages back to the OS, reset the kernel's peak-RSS
    mark (VmHWM) to the current RSS and return that RSS."""
    _pygc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_bytes("VmRSS")


def peak_rss() -> int:
    """The process's peak resident set (VmHWM) since start or the last reset."""
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


# --------------------------------------------------------------------------- children


def _step(system: str, kind: str, sizes: tuple[int, ...], batch: int, activation: str,
          device: str) -> tuple[Any, Any]:
    """(step, drop_grads) for one system: step() returns the loss."""
    from gpuchain.bench._models import gpuchain_step, make_batch, make_weights, torch_step

    if kind == "train step":
        params, (x, y) = train.weights(sizes), train.data(batch, sizes)
        if system.startswith("gpuchain"):
            step, _, model = train.gpuchain_train(params, x, y)
            return step, model.zero_grad
        step, _ = train.torch_train(params, x, y, device)
        return step, lambda: None  # zero_grad(set_to_none=True) runs inside the step
    params = make_weights(sizes)
    x, y = make_batch(sizes, batch)
    if system.startswith("gpuchain"):
        s = gpuchain_step(params, x, y, activation, fused="fused" in system)
    else:
        s = torch_step(params, x, y, activation, device)

    def drop() -> None:
        for p in getattr(s, "params"):  # noqa: B009 - set by the step builders in _models
            p.grad = None

    return (lambda: s()[0]), drop


def child(system: str, kind: str, sizes: tuple[int, ...], batch: int, activation: str,
          backend: str) -> dict[str, Any]:
    """Runs in the fresh interpreter: one measured step, its loss and its peak memory."""
    gpu = backend == "cupy"
    if system.startswith("gpuchain"):
        import gpuchain as gc

        gc.set_backend(backend)
    step, drop = _step(system, kind, sizes, batch, activation, "cuda" if gpu else "cpu")
    step()  # warm-up: first-call allocations (BLAS buffers, optimizer state)
    drop()
    if gpu and system.startswith("gpuchain"):
        import cupy

        hook = _cupy_peak_hook()
        with hook:
            loss = step()
            cupy.cuda.Device().synchronize()
        return {"loss": float(loss.item()), "peak_bytes": hook.peak,
                "method": "CuPy pool allocations during the step (memory hook)"}
    if gpu:
        import torch

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        loss = step()
        torch.cuda.synchronize()
        return {"loss": float(loss.item()),
                "peak_bytes": torch.cuda.max_memory_allocated() - base,
                "method": "torch.cuda.max_memory_allocated above the step's start"}
    before = reset_peak_rss()
    traced = None
    if system.startswith("gpuchain"):
        import tracemalloc

        tracemalloc.start()
        loss = step()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        loss = step()
    peak = peak_rss()
    return {"loss": float(loss.item()), "peak_bytes": max(0, peak - before),
            "process_peak_bytes": peak, "tracemalloc_peak_bytes": traced,
            "method": "peak RSS (VmHWM) during a second step above the RSS before it"}


def _spawn(cfg: Config, system: str, kind: str, sizes: tuple[int, ...], batch: int,
           activation: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "gpuchain.bench.memory", "--child", system, "--kind", kind,
           "--sizes", ",".join(map(str, sizes)), "--batch", str(batch), "--activation",
           activation, "--backend", cfg.backend]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        filter(None, [str(PKG_PARENT), os.environ.get("PYTHONPATH")])),
        # a fixed mmap threshold: glibc then unmaps every large block on free, so RSS
        # follows live memory instead of the allocator's cache
        "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        raise RuntimeError(f"memory child {system}/{kind} exited {proc.returncode}: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _case(cfg: Config, res: SuiteResult, kind: str, systems: tuple[str, ...],
          sizes: tuple[int, ...], batch: int, activation: str) -> None:
    case = f"{kind}: {activation} {'-'.join(map(str, sizes))} batch {batch}"
    rows: list[Row] = []
    reference: dict[str, Any] | None = None
    for system in systems:
        if system.startswith("torch") and not ("torch" in cfg.peers
                                               and optional_import("torch")):
            continue
        say(cfg, f"{SUITE}/{case}: {system} (fresh process)")
        try:
            out = _spawn(cfg, system, kind, sizes, batch, activation)
            vals = {"loss": out["loss"]}
            reference = reference or vals
            res.checks.append(Check(SUITE, case, system, "ok",
                                    cross_check(reference, vals, rtol=1e-4, atol=1e-6)))
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


def run(cfg: Config) -> SuiteResult:
    """fwd+bwd cases, then train-step cases for the chosen (or default) sizes."""
    if sys.platform != "linux":
        raise SuiteSkipped("the CPU memory measure reads /proc (Linux only)")
    res = SuiteResult()
    for sizes, batch in configs(cfg):
        _case(cfg, res, "fwd+bwd", FWD_BWD_SYSTEMS, sizes, batch, "relu")
    names = [s for s in (cfg.sizes or (("small",) if cfg.quick else SIZES)) if s in SIZES]
    for name in names:
        batch, layer_sizes = train.SIZES[name]
        _case(cfg, res, "train step", STEP_SYSTEMS, tuple(layer_sizes), batch, "relu")
    res.notes.append("memory: " + ("peak CuPy pool / torch.cuda allocations of one step"
                                   if cfg.on_gpu else
                                   "peak RSS of a (second) step above the RSS before it, "
                                   "each system in a fresh process (JSON extra: tracemalloc peak "
                                   "of gpuchain's NumPy allocations, the process's total peak)"))
    return res


def _child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True)
    p.add_argument("--kind", default="fwd+bwd", choices=("fwd+bwd", "train step"))
    p.add_argument("--sizes", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--activation", default="relu")
    p.add_argument("--backend", default="numpy")
    a = p.parse_args(argv)
    sizes = tuple(int(s) for s in a.sizes.split(","))
    print(json.dumps(child(a.child, a.kind, sizes, a.batch, a.activation, a.backend)))
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.exit(_child_main(sys.argv[1:]))
    sys.exit(run_single_suite(SUITE))
