"""Shared benchmark machinery: timing, peers, cross-checks, environment records, output.

Every suite builds ``Contender``s (one per system: gpuchain, PyTorch, JAX, ...) over the
same weights and inputs and hands them to :func:`compare`, which cross-checks every
contender's values against the first one *before* timing anything, then times each
in its own block (warm-up, median over repeats, a pause between systems).
"""

from __future__ import annotations

import datetime as _dt
import gc as _pygc
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"

# OpenBLAS worker threads spin ~0.1 s after a NumPy matmul and slow whatever runs next.
PAUSE_S = 0.3


class CrossCheckError(AssertionError):
    """A peer's values disagree with gpuchain's: its timings would be meaningless."""


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    """Options every suite reads."""

    backend: str = "numpy"
    quick: bool = False
    repeats: int = 7
    warmup: int = 2
    rounds: int = 3  # blocks per system, interleaved, so load drifts hit every system
    pause_s: float = PAUSE_S
    peers: tuple[str, ...] = ("torch", "jax")  # which peers may run (when installed)
    sizes: tuple[str, ...] | None = None  # train suite: subset of model sizes
    threads: int = 0  # CPU threads given to every library; 0: their defaults
    progress: Progress | None = None

    @property
    def on_gpu(self) -> bool:
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
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def say(cfg: Config, message: str) -> None:
    if cfg.progress is not None:
        cfg.progress(message)


# --------------------------------------------------------------------------- peers


def optional_import(name: str) -> Any | None:
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


# --------------------------------------------------------------------------- timing


@dataclass
class Contender:
    """One system in a comparison.

    ``run`` is the timed callable. ``values`` returns named NumPy arrays (e.g. loss and
    one gradient) for the cross-check; it may reuse ``run``'s result. ``block`` waits on
    the result (JAX) when the system computes asynchronously.
    """

    system: str
    run: Callable[[], Any]
    values: Callable[[], dict[str, np.ndarray]]
    block: Callable[[Any], Any] = lambda r: r
    sync: Callable[[], None] = lambda: None


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
        return self.median / self.per


@dataclass
class Check:
    suite: str
    case: str
    system: str
    status: str  # "ok" | "mismatch" | "error"
    max_abs_err: float | None = None
    detail: str = ""


def time_block(fn: Callable[[], Any], *, warmup: int, repeats: int,
               sync: Callable[[], None] = lambda: None,
               block: Callable[[Any], Any] = lambda r: r) -> list[float]:
    """Wall time of ``fn`` per call: warm-up calls, then ``repeats`` timed calls."""
    for _ in range(warmup):
        block(fn())
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn())
        sync()
        times.append(time.perf_counter() - t0)
    return times


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
        say(cfg, f"{suite}/{case}: cross-check {c.system}")
        try:
            vals = {k: to_numpy(v) for k, v in c.values().items()}
            if reference is None:
                reference = vals
                checks.append(Check(suite, case, c.system, "ok", 0.0, "reference"))
            else:
                err = cross_check(reference, vals, rtol=rtol, atol=atol)
                checks.append(Check(suite, case, c.system, "ok", err))
            agreed.append(c)
        except CrossCheckError as exc:
            checks.append(Check(suite, case, c.system, "mismatch", None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a failing peer must not stop the run
            checks.append(Check(suite, case, c.system, "error", None,
                                f"{type(exc).__name__}: {exc}"[:300]))
    rows: list[Row] = []
    times: dict[str, list[float]] = {c.system: [] for c in agreed}
    rounds = max(1, cfg.rounds)
    for k in range(rounds):
        for c in agreed:
            say(cfg, f"{suite}/{case}: timing {c.system} (round {k + 1}/{rounds})")
            time.sleep(cfg.pause_s)
            _pygc.collect()
            times[c.system] += time_block(c.run, warmup=warmup if k == 0 else 0,
                                          repeats=max(1, repeats // rounds) if rounds > 1
                                          else repeats, sync=c.sync, block=c.block)
    for c in agreed:
        t = times[c.system]
        rows.append(Row(suite, case, c.system, float(np.median(t)), float(min(t)),
                        float(max(t)), len(t), per, unit, extra=dict(extra or {})))
    set_ratios(rows)
    return rows, checks


def set_ratios(rows: Sequence[Row]) -> None:
    """gpuchain_over_system against the first gpuchain row of the same case."""
    base = next((r for r in rows if r.system.startswith("gpuchain")), None)
    for r in rows:
        if base is not None and r.median > 0:
            r.gpuchain_over_system = base.median / r.median


# --------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("gpuchain", "numpy", "cupy", "torch", "jax", "jaxlib", "matplotlib"):
        mod = sys.modules.get(name) or optional_import(name)
        versions[name] = getattr(mod, "__version__", None) if mod is not None else None
    return versions


def blas_info() -> str | None:
    try:
        cfg = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:
        return None


def gpu_telemetry() -> dict[str, Any]:
    """NVML telemetry (GPU name, SM clock, memory, utilization) or why it is missing."""
    try:
        from gpuchain.cuda.telemetry import device_info, telemetry_status
    except ImportError as exc:
        return {"status": f"unavailable: {exc}", "devices": []}
    return {"status": telemetry_status(), "devices": device_info()}


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def environment(cfg: Config) -> dict[str, Any]:
    now = _dt.datetime.now(_dt.timezone.utc)
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": now.date().isoformat(),
        "timestamp": now.isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "blas": blas_info(),
        },
        "versions": library_versions(),
        "git": {"commit": _git("rev-parse", "HEAD") or os.environ.get("GPUCHAIN_GIT_COMMIT")
                or None, "dirty": bool(dirty)},
        "backend": cfg.backend,
        "quick": cfg.quick,
        "threads": {"requested": cfg.threads or "library defaults",
                    "torch": _torch_threads(),
                    **{k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}},
        # other work on the machine skews timings; the load average says how much there was
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": gpu_telemetry() if cfg.on_gpu else {"status": "not requested (CPU run)"},
    }


def machine_slug(env: dict[str, Any]) -> str:
    """e.g. 'cpu-intel-xeon-processor-2c' or 'gpu-nvidia-h100-80gb-hbm3'."""
    devices = env.get("gpu", {}).get("devices") or []
    if env.get("backend") == "cupy" and devices and devices[0].get("name"):
        base = "gpu-" + devices[0]["name"]
    else:
        base = f"cpu-{env['machine']['cpu']}-{env['machine']['cores']}c"
    base = re.sub(r"\((r|tm)\)", "", base, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:60]


# --------------------------------------------------------------------------- output


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_value(value: float, metric: str) -> str:
    return fmt_bytes(value) if metric == "bytes" else fmt_time(value)


def markdown(env: dict[str, Any], rows: Sequence[Row], checks: Sequence[Check],
             notes: Sequence[str]) -> str:
    m, v = env["machine"], env["versions"]
    lines = [
        f"# gpuchain benchmarks — {env['date']}",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, BLAS {m['blas']}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        f"- git: {env['git']['commit']}{' (dirty)' if env['git']['dirty'] else ''}",
        f"- backend: {env['backend']}{' (quick run)' if env['quick'] else ''}",
    ]
    for d in env.get("gpu", {}).get("devices") or []:
        lines.append(f"- GPU: {d.get('name')} SM clock {d.get('sm_clock_mhz')} MHz, driver "
                     f"{d.get('driver_version')}")
    lines += ["", "Median wall time over repeats (memory suite: peak bytes). Last column: "
              "gpuchain's figure divided by the system's (1.50x: gpuchain takes 1.5 times as "
              "long; below 1: gpuchain faster or smaller).", ""]
    suites = list(dict.fromkeys(r.suite for r in rows))
    for suite in suites:
        lines += [f"## {suite}", "", "| case | system | median | per unit | gpuchain ÷ system |",
                  "|---|---|---:|---:|---:|"]
        for r in (r for r in rows if r.suite == suite):
            ratio = "—" if r.gpuchain_over_system is None else f"{r.gpuchain_over_system:.2f}x"
            per = f"{fmt_value(r.per_unit, r.metric)}/{r.unit}" if r.per != 1 else "—"
            lines.append(f"| {r.case} | {r.system} | {fmt_value(r.median, r.metric)} | {per} "
                         f"| {ratio} |")
        lines.append("")
    bad = [c for c in checks if c.status != "ok"]
    lines += ["## cross-checks", "",
              f"{sum(c.status == 'ok' for c in checks)} agreed, {len(bad)} failed."]
    lines += [f"- {c.suite}/{c.case} {c.system}: {c.status} — {c.detail}" for c in bad]
    if notes:
        lines += ["", "## notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row], path: Path) -> str | None:
    """A bar chart of ratios vs gpuchain per case; returns a note when skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    peers = [r for r in rows if r.gpuchain_over_system is not None and r.metric == "s"
             and not r.system.startswith("gpuchain")]
    if not peers:
        return "plot skipped: no peer timings to compare"
    labels = [f"{r.suite}/{r.case}\n{r.system}" for r in peers]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(peers))))
    y = np.arange(len(peers))
    ax.barh(y, [r.gpuchain_over_system for r in peers])
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("gpuchain time / peer time  (<1: gpuchain faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_results(out_dir: Path, env: dict[str, Any], rows: Sequence[Row],
                  checks: Sequence[Check], notes: list[str], skipped: dict[str, str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    note = plot(rows, out_dir / "results.png")
    if note:
        notes.append(note)
    notes = notes + [f"suite {k} skipped: {why}" for k, why in skipped.items()]
    payload = {
        "environment": env,
        "rows": [asdict(r) | {"per_unit": r.per_unit} for r in rows],
        "checks": [asdict(c) for c in checks],
        "skipped": skipped,
        "notes": notes,
    }
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(markdown(env, rows, checks, notes))
    return out_dir


# --------------------------------------------------------------------------- suites


class SuiteSkipped(Exception):
    """Raised by a suite that cannot run here (e.g. needs a GPU); the message says why."""


@dataclass
class SuiteResult:
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, result: tuple[list[Row], list[Check]]) -> None:
        self.rows.extend(result[0])
        self.checks.extend(result[1])


def run_single_suite(name: str, argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.<module>``: the runner with only this suite."""
    from benchmarks.__main__ import main

    return main(["--suite", name, *(argv if argv is not None else sys.argv[1:])])


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
