"""What a benchmark run records and writes: environment, markdown tables, plot, JSON."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gpuchain.bench._runner import Check, Config, Row, optional_import

PKG_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the gpuchain package


def default_results_dir() -> Path:
    """``benchmarks/results`` of a source checkout, else ``./benchmark-results``."""
    checkout = PKG_ROOT / "benchmarks"
    if (checkout / "__main__.py").is_file():
        return checkout / "results"
    return Path.cwd() / "benchmark-results"


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
    if not (PKG_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", *args], cwd=PKG_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def library_versions() -> dict[str, str | None]:
    """Python and the versions of gpuchain, NumPy and every peer that is installed."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("gpuchain", "numpy", "cupy", "torch", "jax", "jaxlib", "matplotlib"):
        mod = sys.modules.get(name) or optional_import(name)
        versions[name] = getattr(mod, "__version__", None) if mod is not None else None
    return versions


def blas_info() -> str | None:
    """NumPy's BLAS library and version, when NumPy reports it."""
    try:
        cfg = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:
        return None


def gpu_telemetry() -> dict[str, Any]:
    """NVML telemetry (GPU name, SM clock, memory, utilization) or why it is missing."""
    from gpuchain.cuda.telemetry import device_info, telemetry_status

    return {"status": telemetry_status(), "devices": device_info()}


def _affinity() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def environment(cfg: Config) -> dict[str, Any]:
    """Date, machine, versions, git commit, threads and cores, load, GPU telemetry."""
    now = _dt.datetime.now(_dt.timezone.utc)
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    torch = sys.modules.get("torch")
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
                    "cpu_affinity": _affinity(),
                    "torch": torch.get_num_threads() if torch is not None else None,
                    **{k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}},
        # other work on the machine skews timings; the load average says how much there was
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": gpu_telemetry() if cfg.on_gpu else {"status": "not requested (CPU run)"},
    }


def machine_slug(env: dict[str, Any]) -> str:
    """e.g. 'cpu-intel-xeon-processor-2c' or 'gpu-nvidia-h200'."""
    devices = env.get("gpu", {}).get("devices") or []
    if env.get("backend") == "cupy" and devices and devices[0].get("name"):
        base = "gpu-" + devices[0]["name"]
    else:
        base = f"cpu-{env['machine']['cpu']}-{env['machine']['cores']}c"
    base = re.sub(r"\((r|tm)\)", "", base, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:60]


# --------------------------------------------------------------------------- formatting


def fmt_time(seconds: float) -> str:
    """'1.5 ms', '12 µs', ..."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_bytes(n: float) -> str:
    """'3 MiB', '1.5 GiB', ..."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_value(value: float, metric: str) -> str:
    """A value as bytes (metric "bytes") or as a time."""
    return fmt_bytes(value) if metric == "bytes" else fmt_time(value)


def _header(env: dict[str, Any]) -> list[str]:
    m, v = env["machine"], env["versions"]
    threads = env.get("threads", {})
    lines = [
        f"# gpuchain benchmarks — {env['date']}",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, BLAS {m['blas']}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        f"- git: {env['git']['commit']}{' (dirty)' if env['git']['dirty'] else ''}",
        f"- backend: {env['backend']}{' (quick run)' if env['quick'] else ''}; threads "
        f"{threads.get('requested')}, CPU affinity {threads.get('cpu_affinity')}",
        f"- load average (1/5/15 min): {env.get('load_average_1_5_15')}",
    ]
    for d in env.get("gpu", {}).get("devices") or []:
        lines.append(f"- GPU: {d.get('name')} SM clock {d.get('sm_clock_mhz')} MHz, driver "
                     f"{d.get('driver_version')}")
    return lines


def markdown(env: dict[str, Any], rows: Sequence[Row], checks: Sequence[Check],
             notes: Sequence[str]) -> str:
    """The run as markdown: header, one table per suite, cross-checks, notes."""
    lines = _header(env) + [
        "", "Median wall time over samples (memory suite: peak bytes). Last column: "
        "gpuchain's figure divided by the system's (1.50x: gpuchain takes 1.5 times as "
        "long; below 1: gpuchain faster or smaller).", ""]
    for suite in dict.fromkeys(r.suite for r in rows):
        lines += [f"## {suite}", "",
                  "| case | system | median | min | per unit | gpuchain ÷ system |",
                  "|---|---|---:|---:|---:|---:|"]
        for r in (r for r in rows if r.suite == suite):
            ratio = "—" if r.gpuchain_over_system is None else f"{r.gpuchain_over_system:.2f}x"
            per = f"{fmt_value(r.per_unit, r.metric)}/{r.unit}" if r.per != 1 else "—"
            lines.append(f"| {r.case} | {r.system} | {fmt_value(r.median, r.metric)} | "
                         f"{fmt_value(r.min, r.metric)} | {per} | {ratio} |")
        lines.append("")
    bad = [c for c in checks if c.status != "ok"]
    lines += ["## cross-checks", "",
              f"{sum(c.status == 'ok' for c in checks)} agreed, {len(bad)} failed."]
    lines += [f"- {c.suite}/{c.case} {c.system}: {c.status} — {c.detail}" for c in bad]
    if notes:
        lines += ["", "## notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _bars(ax: Any, rows: Sequence[Row], xlabel: str) -> None:
    # Long case names wrap, so no panel's labels run off the figure's left edge.
    labels = [textwrap.fill(f"{r.suite}/{r.case}", 50) + f"\n{r.system}" for r in rows]
    ratios = [float(r.gpuchain_over_system or 0.0) for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, ratios, color=["tab:green" if v <= 1 else "tab:orange" for v in ratios])
    ax.axvline(1.0, color="k", lw=1, ls="--", label="parity with the peer")
    xmax = max(1.0, *ratios) * 1.18
    for yi, v in zip(y, ratios):
        # Past the end of a bar longer than parity; inside the end of a shorter one (when
        # it fits), so no label crosses the parity line.
        if 0.09 * xmax < v <= 1.0:
            ax.text(v, yi, f"{v:.2f}x ", va="center", ha="right", fontsize=7, color="white")
        else:
            ax.text(v, yi, f" {v:.2f}x", va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)


def plot(rows: Sequence[Row], path: Path, env: dict[str, Any]) -> str | None:
    """Bar charts of gpuchain ÷ peer per case (time, and memory when measured), titled
    with date and machine; returns a note when skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    peers = [r for r in rows if r.gpuchain_over_system is not None
             and not r.system.startswith("gpuchain")]
    timed = [r for r in peers if r.metric == "s"]
    memory = [r for r in peers if r.metric == "bytes"]
    if not peers:
        return "plot skipped: no peer timings to compare"
    panels = [(timed, "gpuchain time / peer time  (<1: gpuchain faster)"),
              (memory, "gpuchain peak memory / peer's  (<1: gpuchain smaller)")]
    panels = [p for p in panels if p[0]]
    heights = [max(1.5, 0.45 * len(p[0])) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, sum(heights) + 1.2),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (sel, label) in zip(axes[:, 0], panels):
        _bars(ax, sel, label)
    m = env["machine"]
    gpu = (env.get("gpu", {}).get("devices") or [{}])[0].get("name")
    fig.suptitle(f"gpuchain benchmarks {env['date']} — {gpu or m['cpu']} "
                 f"({env['backend']}, {m['cores']} cores)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_results(out_dir: Path, env: dict[str, Any], rows: Sequence[Row],
                  checks: Sequence[Check], notes: list[str], skipped: dict[str, str]) -> Path:
    """results.json, results.md and results.png under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    note = plot(rows, out_dir / "results.png", env)
    notes = notes + ([note] if note else []) + [
        f"suite {k} skipped: {why}" for k, why in skipped.items()]
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
