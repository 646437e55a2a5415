"""The CUDA issue's target: one train step of a relu MLP, batch 8192, four hidden layers
of 4096 (input 1024, 10 classes), float32, softmax cross-entropy, Adam, with TF32 off in
every system and then on in every system; gpuchain against PyTorch eager, torch.compile
(warm-up bounded and reported apart) and JAX (jit) when installed.

Also the share of gpuchain's step spent in GEMMs, two ways:

- **events**: :class:`gpuchain.cuda.gemm_timer.GemmTimer` puts CUDA events around each
  of gpuchain's own ``cupy.matmul`` calls; their sum over the step's time (CUDA events
  around whole steps);
- **FLOP count**: each distinct GEMM (shape, layout) timed alone with cuBLAS gives its
  rate; the step's GEMM FLOPs at those rates, over the step's time.

The two should agree; the recorded GEMM FLOPs are also compared with the FLOPs the model
must do (3 GEMMs a layer, 2 in the first), so a GEMM that bypasses ``matmul`` shows.
Off the GPU the same code runs at a CPU scale (batch 512, 4 x 512; quick: 128, 4 x 128),
with wall-clock times, so the suite is exercised everywhere; only the GPU figures are
the target's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from gpuchain.bench import train
from gpuchain.bench._runner import (
    Check,
    Config,
    Contender,
    SuiteResult,
    compare,
    peer,
    run_single_suite,
    say,
    synchronizer,
    time_cuda_events,
)

SUITE = "target"
GPU_SIZE = (8192, [1024, 4096, 4096, 4096, 4096, 10])
CPU_SIZE = (512, [256, 512, 512, 512, 512, 10])
CPU_QUICK_SIZE = (128, [64, 128, 128, 128, 128, 10])
PRECISIONS = ("fp32", "tf32")
RTOL = {"fp32": 1e-3, "tf32": 2e-2}  # TF32 keeps 10 mantissa bits: ~1e-3 per product


def size(cfg: Config) -> tuple[int, list[int]]:
    """(batch, layer sizes) for this run."""
    if cfg.on_gpu:
        return GPU_SIZE
    return CPU_QUICK_SIZE if cfg.quick else CPU_SIZE


def expected_gemm_flops(batch: int, sizes: Sequence[int]) -> int:
    """FLOPs of a train step's GEMMs: forward, weight gradient and (except the first
    layer, whose input needs none) input gradient, 2·batch·n_in·n_out each."""
    per_layer = [2 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 3 * sum(per_layer) - per_layer[0]


@contextmanager
def precision(mode: str) -> Iterator[None]:
    """TF32 on ("tf32") or off ("fp32") for gpuchain and PyTorch; restored afterwards."""
    import gpuchain as gc

    torch = sys.modules.get("torch")
    before = gc.get_matmul_precision()
    torch_before = torch.get_float32_matmul_precision() if torch is not None else None
    gc.set_matmul_precision(mode)
    if torch is not None:
        torch.set_float32_matmul_precision("high" if mode == "tf32" else "highest")
    try:
        yield
    finally:
        gc.set_matmul_precision(before)
        if torch is not None:
            torch.set_float32_matmul_precision(torch_before)


def _jax_precision(step: Callable[[], Any], mode: str) -> Callable[[], Any]:
    import jax

    name = "tensorfloat32" if mode == "tf32" else "float32"

    def run() -> Any:
        with jax.default_matmul_precision(name):
            return step()

    return run


def contenders(cfg: Config, mode: str, batch: int, sizes: list[int]) -> list[Contender]:
    """gpuchain, torch eager, torch.compile (GPU) and JAX at one precision."""
    params, (x, y) = train.weights(sizes), train.data(batch, sizes)
    step, values, _ = train.gpuchain_train(params, x, y)
    out = [Contender("gpuchain", step, values, sync=synchronizer(cfg, "gpuchain"))]
    out += train.torch_contenders(cfg, params, x, y)
    if peer(cfg, "jax") is not None:
        step, values = train.jax_train(params, x, y)
        out.append(Contender("jax (jit)", _jax_precision(step, mode),
                             _jax_precision(values, mode),
                             block=lambda r: r.block_until_ready()))
    return out


# --------------------------------------------------------------------------- GEMM share


def _step_times(cfg: Config, step: Callable[[], Any], repeats: int) -> list[float]:
    if cfg.on_gpu:
        return time_cuda_events(step, warmup=0, repeats=repeats)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


def _operands(xp: Any, call: Any) -> tuple[Any, Any]:
    """Random operands (never zeros) with the call's shapes, layouts and dtype, made on
    the device by the array module's own generator."""
    rng = xp.random.default_rng(0)

    def make(shape: tuple[int, ...], transposed: bool) -> Any:
        arr = rng.standard_normal(shape[::-1] if transposed else shape).astype(call.dtype)
        return arr.T if transposed else arr

    return make(call.a_shape, call.a_transposed), make(call.b_shape, call.b_transposed)


def _alone_rate(cfg: Config, xp: Any, call: Any, repeats: int) -> float:
    """FLOP/s of this GEMM (shape, layout, dtype) timed alone on random operands."""
    a, b = _operands(xp, call)
    fn = lambda: xp.matmul(a, b)  # noqa: E731
    times = time_cuda_events(fn, warmup=2, repeats=repeats) if cfg.on_gpu else [
        _wall(fn) for _ in range(repeats)]
    return call.flops / float(np.median(times))


def _wall(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gemm_share(cfg: Config, step: Callable[[], Any], batch: int, sizes: list[int]
               ) -> dict[str, Any]:
    """Share of gpuchain's step in its GEMMs (events, and FLOPs at the alone rates)."""
    import gpuchain as gc
    from gpuchain.cuda.gemm_timer import GemmTimer

    xp = gc.get_backend().xp
    repeats = 3 if cfg.quick else 5
    timer = GemmTimer(xp)
    with timer:
        step()  # warm the wrapped path
        timer.reset()
        step_s = float(np.mean(_step_times(cfg, step, repeats)))  # mean, as gemm_s
        calls = timer.calls()
    if not calls or len(calls) % repeats:
        return {"gemm_share_status": f"{len(calls)} matmul calls recorded over {repeats} "
                                     "steps (expected a whole number per step)"}
    per_step = calls[: len(calls) // repeats]
    gemm_s = sum(c.seconds for c in calls) / repeats
    flops = sum(c.flops for c in per_step)
    rates = {c.key: _alone_rate(cfg, xp, c, repeats) for c in
             {c.key: c for c in per_step}.values()}
    est_s = sum(c.flops / rates[c.key] for c in per_step)
    expected = expected_gemm_flops(batch, sizes)
    return {
        "step_s_gemm_timer_active": step_s,
        "gemm_calls_per_step": len(per_step),
        "gemm_s_per_step_events": gemm_s,
        "gemm_share_events": gemm_s / step_s,
        "gemm_s_per_step_from_flops": est_s,
        "gemm_share_from_flops": est_s / step_s,
        "gemm_flops_per_step": flops,
        "gemm_flops_expected": expected,
        "gemm_flops_all_seen": flops == expected,
        "gemm_tflops_in_step": flops / gemm_s / 1e12 if gemm_s > 0 else None,
        "gemm_alone_tflops": {f"{k[0]}@{k[1]}{' aT' if k[2] else ''}{' bT' if k[3] else ''}":
                              r / 1e12 for k, r in rates.items()},
    }


def _case(cfg: Config, res: SuiteResult, mode: str, batch: int, sizes: list[int]) -> None:
    """One precision: cross-check, time, GEMM share; adds rows, checks and notes."""
    scale = "" if cfg.on_gpu else " (CPU scale)"
    case = f"{'-'.join(map(str, sizes))} batch {batch}, TF32 {'on' if mode == 'tf32' else 'off'}"
    with precision(mode):
        cs = contenders(cfg, mode, batch, sizes)
        rows, checks = compare(cfg, SUITE, case + scale, cs, rtol=RTOL[mode], atol=1e-5,
                               extra={"sizes": sizes, "batch": batch, "precision": mode})
        res.add((rows, checks))
        say(cfg, f"{SUITE}/{case}: GEMM share of gpuchain's step")
        try:
            share = gemm_share(cfg, cs[0].run, batch, sizes)
        except Exception as exc:  # noqa: BLE001 - the timings above stand without it
            share = {"gemm_share_status": f"failed: {type(exc).__name__}: {exc}"[:300]}
    for r in rows:
        if r.system == "gpuchain":
            r.extra.update(share)
        if "warmup_s" in r.extra:
            res.notes.append(f"target {case}: {r.system} warm-up (compile) "
                             f"{r.extra['warmup_s']:.1f} s, not in the step time")
    if "gemm_share_events" not in share:
        res.notes.append(f"target {case}{scale}: GEMM share not measured: "
                         f"{share.get('gemm_share_status')}")
        return
    res.notes.append(
        f"target {case}{scale}: GEMMs {share['gemm_share_events']:.0%} of gpuchain's "
        f"step by events, {share['gemm_share_from_flops']:.0%} from FLOPs at the "
        f"alone rates; {share['gemm_calls_per_step']} GEMMs, "
        f"{share['gemm_flops_per_step'] / 1e9:.3g} GFLOP "
        f"({'all' if share['gemm_flops_all_seen'] else 'NOT all'} of the "
        f"{share['gemm_flops_expected'] / 1e9:.3g} the model needs)")


def run(cfg: Config) -> SuiteResult:
    """Both precisions (a precision that fails is reported and the other still runs)."""
    res = SuiteResult()
    batch, sizes = size(cfg)
    for mode in PRECISIONS:
        try:
            _case(cfg, res, mode, batch, sizes)
        except KeyboardInterrupt:  # a time cap: return the precision already measured
            res.checks.append(Check(SUITE, f"TF32 {mode}", "gpuchain", "error", None,
                                    "interrupted (SIGINT) before this precision finished"))
            break
        except Exception as exc:  # noqa: BLE001
            res.checks.append(Check(SUITE, f"TF32 {mode}", "gpuchain", "error", None,
                                    f"{type(exc).__name__}: {exc}"[:500]))
    res.notes.append("target: TF32 set through gc.set_matmul_precision and "
                     "torch.set_float32_matmul_precision ('highest' off, 'high' on), JAX "
                     "through jax.default_matmul_precision")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
