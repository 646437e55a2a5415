"""GPU only: the fused activation-gradient + bias-gradient kernel against the
device-to-device copy bandwidth of the same GPU.

``act_grad_bias`` reads g and the saved output and writes dz (3 arrays of the layer's
size; db is one row), so at best it runs at copy bandwidth: bytes moved / time. A copy
of one array reads and writes it (2 arrays). Timed with CUDA events.
"""

from __future__ import annotations

import sys

import numpy as np

from gpuchain.bench._runner import (
    Check,
    Config,
    Row,
    SuiteResult,
    SuiteSkipped,
    run_single_suite,
    say,
    time_cuda_events,
)

SUITE = "bandwidth"


def shapes(cfg: Config) -> list[tuple[int, int]]:
    """(rows, columns) of the cases: one with --quick, else four up to 8192 x 8192."""
    if cfg.quick:
        return [(4096, 1024)]
    return [(4096, 1024), (16384, 4096), (65536, 1024), (8192, 8192)]


def _check(g, saved, dz, db) -> float:  # type: ignore[no-untyped-def]
    """act_grad_bias (relu) against CuPy's own arithmetic; max abs error."""
    import cupy

    ref_dz = g * (saved > 0)
    ref_db = ref_dz.astype(cupy.float64).sum(axis=0)
    err_dz = float(cupy.abs(dz - ref_dz).max())
    rel_db = float((cupy.abs(db - ref_db) / (1 + cupy.abs(ref_db))).max())
    if err_dz != 0.0 or rel_db > 1e-4:
        raise AssertionError(f"act_grad_bias: dz error {err_dz:.3g}, db rel error {rel_db:.3g}")
    return max(err_dz, rel_db)


def run(cfg: Config) -> SuiteResult:
    """Cross-check the kernel against CuPy, then time it and the copy (GPU only)."""
    if not cfg.on_gpu:
        raise SuiteSkipped("needs a CUDA GPU: run with --backend cupy (docker/Dockerfile.cuda)")
    import cupy

    from gpuchain.cuda import kernels

    res = SuiteResult()
    repeats = max(cfg.repeats, 20)
    for rows, n in shapes(cfg):
        case = f"relu {rows}x{n} float32"
        rng = cupy.random.default_rng(0)
        g = rng.standard_normal((rows, n), dtype=cupy.float32)
        saved = cupy.maximum(rng.standard_normal((rows, n), dtype=cupy.float32), 0)
        dz, db = cupy.empty_like(g), cupy.empty(n, dtype=cupy.float32)
        dst = cupy.empty_like(g)
        kernel = lambda: kernels.act_grad_bias(g, saved, "relu", 0.0, dz, db)  # noqa: B023
        copy = lambda: cupy.copyto(dst, g)  # noqa: B023
        say(cfg, f"{SUITE}/{case}: cross-check")
        try:
            kernel()
            err = _check(g, saved, dz, db)
            res.checks.append(Check(SUITE, case, "act_grad_bias", "ok", err))
        except Exception as exc:  # noqa: BLE001
            res.checks.append(Check(SUITE, case, "act_grad_bias", "mismatch", None, str(exc)))
            continue
        nbytes = g.nbytes
        found = {}
        for system, fn, moved in (("gpuchain act_grad_bias (fused)", kernel, 3 * nbytes + 4 * n),
                                  ("device-to-device copy", copy, 2 * nbytes)):
            say(cfg, f"{SUITE}/{case}: timing {system}")
            t = time_cuda_events(fn, warmup=3, repeats=repeats)
            med = float(np.median(t))
            found[system] = moved / med
            extra = {"bytes_moved": moved, "GB_per_s": moved / med / 1e9}
            res.rows.append(Row(SUITE, case, system, med, float(min(t)), float(max(t)),
                                len(t), extra=extra))
        frac = found["gpuchain act_grad_bias (fused)"] / found["device-to-device copy"]
        for r in res.rows[-2:]:
            r.extra["fraction_of_copy_bandwidth"] = frac
        res.notes.append(f"bandwidth {case}: act_grad_bias at {frac:.0%} of copy bandwidth "
                         f"({found['device-to-device copy'] / 1e9:.0f} GB/s)")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
