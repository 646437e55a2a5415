"""Helpers for stand-alone benchmark scripts (``python benchmarks/<script>.py``).

Builds on ``benchmarks._runner`` (environment record, formatting) and adds what a
script that compares systems in one process needs: peak-RSS measurement (VmHWM),
interleaved timing of several systems with warm-up and medians, and a results writer
(JSON + markdown under ``benchmarks/results/``).
"""

from __future__ import annotations

import ctypes
import gc as _pygc
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._runner import RESULTS_DIR, Config, environment, fmt_bytes

# OpenBLAS worker threads spin for a while after a NumPy matmul and would slow down
# whatever system is timed next; leave this gap between systems' timed blocks.
GAP_S = 0.3


def machine_info() -> dict[str, Any]:
    """Platform, CPU model, cores, library versions, date, git commit, load average."""
    return environment(Config())


# --- memory -------------------------------------------------------------------------------

def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def rss_bytes() -> int:
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """The process's peak resident set (VmHWM) since start or the last reset."""
    return _status_bytes("VmHWM")


def reset_peak_rss() -> int:
    """Collect garbage, return freed heap pages to the OS, reset VmHWM to the current RSS
    (writing "5" to /proc/self/clear_refs) and return that RSS."""
    _pygc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return rss_bytes()


# --- timing --------------------------------------------------------------------------------

def time_interleaved(systems: Mapping[str, Callable[[], Any]], *, warmup: int = 2,
                     repeats: int = 7, rounds: int = 3,
                     gap_s: float = GAP_S) -> dict[str, list[float]]:
    """Seconds per call of each system: after ``warmup`` calls each, ``rounds`` rounds in
    which every system runs ``repeats`` timed calls in its own block, systems separated by
    ``gap_s``. Interleaving rounds spreads drifts of the machine's load over all systems."""
    for fn in systems.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            time.sleep(gap_s)
            _pygc.collect()
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


def median_ms(times: Sequence[float]) -> float:
    return float(np.median(times)) * 1e3


# --- output --------------------------------------------------------------------------------

def write_results(name: str, payload: dict[str, Any], markdown: str,
                  out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` under ``out_dir`` (benchmarks/results)."""
    out_dir = RESULTS_DIR if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{name}.json", out_dir / f"{name}.md"
    js.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    md.write_text(markdown, encoding="utf-8")
    return js, md


def machine_markdown(env: Mapping[str, Any]) -> str:
    m, v, g = env["machine"], env["versions"], env["git"]
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    return (f"- date: {env['date']}  \n- machine: {m['platform']}; {m['cpu']}; "
            f"{m['cores']} cores; BLAS {m.get('blas')}  \n- libraries: {libs}  \n"
            f"- git commit: {g['commit']}{' (dirty)' if g.get('dirty') else ''}  \n"
            f"- load average (1/5/15 min) at start: {env.get('load_average_1_5_15')}\n")


__all__ = ["GAP_S", "fmt_bytes", "machine_info", "machine_markdown", "median_ms",
           "peak_rss_bytes", "reset_peak_rss", "rss_bytes", "time_interleaved",
           "write_results"]
