"""Benchmark machinery: configuration, peers, timing, cross-checks and suite results.

Every suite builds :class:`Contender` s (one per system: gpuchain, PyTorch, JAX, ...) over
the same weights and inputs and hands them to :func:`compare`, which cross-checks every
contender's values against the first one *before* timing anything, then times each in
its own blocks (warm-up, samples of several calls, median over samples, a pause between
systems, rounds interleaved so a change in machine load hits every system).
"""

from __future__ import annotations

import gc as _pygc
import importlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# OpenBLAS worker threads spin ~0.1 s after a NumPy matmul and slow whatever runs next.
PAUSE_S = 0.3
MAX_CALLS_PER_SAMPLE = 10_000


class CrossCheckError(AssertionError):
    """A peer's values disagree with gpuchain's: its timings would be meaningless."""


class SuiteSkipped(Exception):
    """Raised by a suite that cannot run here (e.g. needs a GPU); the message says why."""


class WarmupTimeout(RuntimeError):
    """A contender's first call (e.g. torch.compile's compilation) ran past its bound."""


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    """Options every suite reads.

    ``min_sample_s``: each timed sample runs the callable as many times as fit in this
    long (at least once), so microsecond calls are not timed one by one.
    """

    backend: str = "numpy"
    quick: bool = False
    repeats: int = 7
    warmup: int = 2
    rounds: int = 3  # blocks per system, interleaved, so load drifts hit every system
    pause_s: float = PAUSE_S
    min_sample_s: float = 0.05
    peers: tuple[str, ...] = ("torch", "jax")  # which peers may run (when installed)
    sizes: tuple[str, ...] | None = None  # train/memory suites: subset of model sizes
    threads: int = 0  # CPU threads (and cores) given to every library; 0: their defaults
    compile_limit_s: float = 240.0  # bound on torch.compile's warm-up (per variant)
    progress: Progress | None = None

    @property
    def on_gpu(self) -> bool:
        """True on the CuPy backend."""
        return self.backend == "cupy"


class Progress:
    """One status line per step on stderr (overwritten in place on a terminal)."""

    def __init__(self, enabled: bool = True, stream: Any = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"[{time.perf_counter() - self.t0:6.1f}s] {message}"
        if self.tty:
            self.stream.write("\r\033[K" + line[:150])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        """End the status line (a newline on a terminal)."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def say(cfg: Config, message: str) -> None:
    """Report progress when the run shows it."""
    if cfg.progress is not None:
        cfg.progress(message)


# --------------------------------------------------------------------------- peers


def optional_import(name: str) -> Any | None:
    """The module, or None when it is missing or fails to import."""
    try:
        return importlib.import_module(name)
    except Exception:  # a broken install counts as absent
        return None


def peer(cfg: Config, name: str) -> Any | None:
    """The peer's module when it is enabled and installed, else None."""
    if name not in cfg.peers:
        return None
    return optional_import(name)


def torch_device(cfg: Config) -> str:
    """'cuda' when the run is on the GPU and PyTorch sees one, else 'cpu'."""
    torch = optional_import("torch")
    if cfg.on_gpu and torch is not None and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def to_numpy(x: Any) -> np.ndarray:
    """gpuchain Tensor, NumPy/CuPy array, torch tensor or JAX array -> NumPy."""
    if hasattr(x, "numpy") and hasattr(x, "_node"):  # gpuchain Tensor
        return np.asarray(x.numpy())
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def synchronizer(cfg: Config, system: str) -> Callable[[], None]:
    """A callable that waits for queued device work of ``system`` (no-op on CPU)."""
    if system.startswith("torch") and torch_device(cfg) == "cuda":
        import torch

        return torch.cuda.synchronize
    if system.startswith("gpuchain") and cfg.on_gpu:
        import cupy

        return lambda: cupy.cuda.Device().synchronize()
    return lambda: None


# --------------------------------------------------------------------------- records


@dataclass
class Contender:
    """One system in a comparison.

    ``run`` is the timed callable. ``values`` returns named NumPy arrays (e.g. loss and
    one gradient) for the cross-check. ``block`` waits on the result (JAX) when the
    system computes asynchronously; ``sync`` waits for the device. ``warmup_limit_s``
    bounds the first ``values()`` call (torch.compile compiles the forward and backward
    there, before any update changes the weights); its time is reported in the row's
    ``extra["warmup_s"]``, never inside the timed samples.
    """

    system: str
    run: Callable[[], Any]
    values: Callable[[], dict[str, Any]]
    block: Callable[[Any], Any] = lambda r: r
    sync: Callable[[], None] = lambda: None
    warmup_limit_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    """One measured system in one case: wall time in seconds (metric "s") by default,
    or peak memory (metric "bytes")."""

    suite: str
    case: str
    system: str
    median: float
    min: float
    max: float
    repeats: int
    per: int = 1  # the median is divided by this for the per-unit figure
    unit: str = "call"
    metric: str = "s"
    gpuchain_over_system: float | None = None  # >1: gpuchain slower (or larger)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_unit(self) -> float:
        """The median divided by ``per`` (e.g. per op)."""
        return self.median / self.per


@dataclass
class Check:
    """The outcome of one contender's cross-check."""

    suite: str
    case: str
    system: str
    status: str  # "ok" | "mismatch" | "error"
    max_abs_err: float | None = None
    detail: str = ""


@dataclass
class SuiteResult:
    """What a suite's ``run(cfg)`` returns."""

    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, result: tuple[list[Row], list[Check]]) -> None:
        """Append the rows and checks that :func:`compare` returned."""
        self.rows.extend(result[0])
        self.checks.extend(result[1])


# --------------------------------------------------------------------------- timing


def calls_per_sample(fn: Callable[[], Any], min_sample_s: float, *,
                     sync: Callable[[], None] = lambda: None,
                     block: Callable[[Any], Any] = lambda r: r) -> int:
    """How many calls of ``fn`` fill ``min_sample_s`` (from one timed call; at least 1)."""
    t0 = time.perf_counter()
    block(fn())
    sync()
    dt = time.perf_counter() - t0
    if dt >= min_sample_s:
        return 1
    return int(min(MAX_CALLS_PER_SAMPLE, max(1, math.ceil(min_sample_s / max(dt, 1e-7)))))


def time_block(fn: Callable[[], Any], *, warmup: int, repeats: int, number: int = 1,
               sync: Callable[[], None] = lambda: None,
               block: Callable[[Any], Any] = lambda r: r) -> list[float]:
    """Wall time of ``fn`` per call: ``warmup`` calls, then ``repeats`` samples of
    ``number`` calls each (the device synchronized at the end of each sample)."""
    for _ in range(warmup):
        block(fn())
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            block(fn())
        sync()
        times.append((time.perf_counter() - t0) / number)
    return times


def bounded_call(fn: Callable[[], Any], limit_s: float, what: str) -> tuple[float, Any]:
    """Run ``fn`` once and return (its wall time, its result); raise
    :class:`WarmupTimeout` when it has not finished after ``limit_s`` seconds.

    In the main thread on POSIX a SIGALRM timer interrupts ``fn`` (so a runaway compile
    stops using the machine); elsewhere ``fn`` runs in a daemon thread that is abandoned.
    """
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _bounded_by_alarm(fn, limit_s, what)
    outcome: dict[str, Any] = {}

    def target() -> None:
        t0 = time.perf_counter()
        try:
            outcome["result"] = fn()
            outcome["s"] = time.perf_counter() - t0
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"warm-up {what}", daemon=True)
    worker.start()
    worker.join(limit_s)
    if worker.is_alive():
        raise WarmupTimeout(_timeout_message(what, limit_s))
    if "error" in outcome:
        raise outcome["error"]
    return float(outcome["s"]), outcome["result"]


def _timeout_message(what: str, limit_s: float) -> str:
    return f"{what}: warm-up still running after {limit_s:.0f} s (bound reached; not timed)"


def _bounded_by_alarm(fn: Callable[[], Any], limit_s: float, what: str) -> tuple[float, Any]:
    fired = []

    def on_alarm(signum: int, frame: Any) -> None:
        fired.append(True)
        raise WarmupTimeout(_timeout_message(what, limit_s))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    t0 = time.perf_counter()
    try:
        result = fn()
    except BaseException as exc:
        if fired:  # a library may wrap the timeout in its own exception
            raise WarmupTimeout(_timeout_message(what, limit_s)) from exc
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return time.perf_counter() - t0, result


def cross_check(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], *,
                rtol: float, atol: float) -> float:
    """Max abs difference over the named arrays; raises CrossCheckError on mismatch.

    Each array must satisfy ``max|got - ref| <= atol + rtol * max|ref|``: relative to
    the array's scale, not elementwise, because float32 sums in a different order leave
    near-zero entries (e.g. of a gradient) with large relative but tiny absolute errors.
    """
    worst = 0.0
    for key, ref in reference.items():
        if key not in candidate:
            raise CrossCheckError(f"value {key!r} missing")
        ref = np.asarray(ref, dtype=np.float64)
        got = np.asarray(candidate[key], dtype=np.float64)
        if ref.shape != got.shape:
            raise CrossCheckError(f"{key}: shape {got.shape} != {ref.shape}")
        if not ref.size:
            continue
        if not np.isfinite(got).all():
            raise CrossCheckError(f"{key}: non-finite values")
        err = float(np.max(np.abs(ref - got)))
        scale = float(np.max(np.abs(ref)))
        worst = max(worst, err)
        if err > atol + rtol * scale:
            raise CrossCheckError(f"{key}: max abs error {err:.3g} against max |value| "
                                  f"{scale:.3g} (rtol={rtol}, atol={atol})")
    return worst


def _check_one(cfg: Config, suite: str, case: str, c: Contender,
               reference: dict[str, np.ndarray] | None, rtol: float, atol: float
               ) -> tuple[Check, dict[str, np.ndarray] | None]:
    say(cfg, f"{suite}/{case}: cross-check {c.system}")
    try:
        if c.warmup_limit_s is not None:  # the first values() compiles (no update yet)
            c.extra["warmup_s"], raw = bounded_call(c.values, c.warmup_limit_s, c.system)
        else:
            raw = c.values()
        vals = {k: to_numpy(v) for k, v in raw.items()}
        if reference is None:
            return Check(suite, case, c.system, "ok", 0.0, "reference"), vals
        return Check(suite, case, c.system, "ok", cross_check(reference, vals, rtol=rtol,
                                                               atol=atol)), vals
    except CrossCheckError as exc:
        return Check(suite, case, c.system, "mismatch", None, str(exc)), None
    except Exception as exc:  # noqa: BLE001 - a failing peer must not stop the run
        return Check(suite, case, c.system, "error", None,
                     f"{type(exc).__name__}: {exc}"[:300]), None


def compare(cfg: Config, suite: str, case: str, contenders: Sequence[Contender], *,
            per: int = 1, unit: str = "call", rtol: float = 1e-4, atol: float = 1e-5,
            repeats: int | None = None, warmup: int | None = None,
            extra: dict[str, Any] | None = None) -> tuple[list[Row], list[Check]]:
    """Cross-check every contender against the first, then time the ones that agree.

    A contender that disagrees (or fails) is reported as a Check and not timed.
    """
    repeats = repeats or cfg.repeats
    warmup = cfg.warmup if warmup is None else warmup
    checks: list[Check] = []
    agreed: list[Contender] = []
    reference: dict[str, np.ndarray] | None = None
    for c in contenders:
        check, vals = _check_one(cfg, suite, case, c, reference, rtol, atol)
        checks.append(check)
        if check.status == "ok":
            agreed.append(c)
            reference = vals if reference is None else reference
    times: dict[str, list[float]] = {c.system: [] for c in agreed}
    number: dict[str, int] = {}
    rounds = max(1, cfg.rounds)
    per_round = max(1, repeats // rounds) if rounds > 1 else repeats
    for k in range(rounds):
        for c in agreed:
            say(cfg, f"{suite}/{case}: timing {c.system} (round {k + 1}/{rounds})")
            time.sleep(cfg.pause_s)
            _pygc.collect()
            if k == 0:
                time_block(c.run, warmup=warmup, repeats=0, sync=c.sync, block=c.block)
                number[c.system] = calls_per_sample(c.run, cfg.min_sample_s, sync=c.sync,
                                                    block=c.block)
            times[c.system] += time_block(c.run, warmup=0, repeats=per_round,
                                          number=number[c.system], sync=c.sync,
                                          block=c.block)
    rows = [Row(suite, case, c.system, float(np.median(times[c.system])),
                float(min(times[c.system])), float(max(times[c.system])),
                len(times[c.system]), per, unit,
                extra=dict(extra or {}) | c.extra | {"calls_per_sample": number[c.system]})
            for c in agreed]
    set_ratios(rows)
    return rows, checks


def set_ratios(rows: Sequence[Row]) -> None:
    """gpuchain_over_system against the first gpuchain row of the same case."""
    base = next((r for r in rows if r.system.startswith("gpuchain")), None)
    for r in rows:
        if base is not None and r.median > 0:
            r.gpuchain_over_system = base.median / r.median


def time_cuda_events(fn: Callable[[], Any], *, warmup: int, repeats: int) -> list[float]:
    """Per-call GPU time of ``fn`` (seconds) from CUDA events on the current stream."""
    import cupy

    for _ in range(warmup):
        fn()
    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)  # ms -> s
    return times


def run_single_suite(name: str, argv: Sequence[str] | None = None) -> int:
    """``python -m gpuchain.bench.<module>``: the runner with only this suite."""
    from gpuchain.bench import main

    return main(["--suite", name, *(argv if argv is not None else sys.argv[1:])])
