"""Helpers of ``benchmarks/gpu_check.sh`` (``python -m benchmarks.gpu_check COMMAND``).

- ``env OUT.json``: versions (Python, NumPy, CuPy, PyTorch, JAX, gpuchain), ``nvidia-smi
  -L``, driver and CUDA versions, NVML telemetry, the device's compute capability;
- ``test-paths``: what ``pytest -m gpu`` runs (tests/gpu and the GPU tests beside it);
- ``arch``: the device's own NVRTC architecture (``sm_90`` on an H200; ``sm_90`` with a
  note on stderr when no device is visible);
- ``counts``: test cases of ``pytest -m gpu`` and kernel builds, and the time estimate;
- ``rerun-tests JUNIT.xml``: node ids of the cases that failed, errored or never ran
  (collected now, absent from the XML), one a line;
- ``failed-suites RESULTS.json``: the benchmark suites with a failed cross-check;
- ``step-status CHECK.json STEP``: that step's status in a previous run;
- ``summary WORKDIR OUTDIR``: ``check.json`` and ``summary.md`` from the step records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Seconds per unit on one H200 with 16 CPU cores: leads, not measurements (no GPU has run
# this project yet). NVRTC built all 104-113 instantiations in 4-5 s on 2 CPU cores here.
PER_CASE_S = {  # one test case, its CuPy kernels already built
    "tests/gpu/test_kernels.py": 0.02,  # a few launches, a NumPy float64 reference
    "tests/gpu/test_kernels_layernorm.py": 0.03,
    "tests/gpu/test_ops_cupy.py": 0.08,  # vjp + jvp on CPU and GPU: dozens of launches
    "tests/gpu/test_training_parity.py": 2.0,  # 20 training steps on both devices
    "tests/test_distributed_gpu.py": 15.0,  # a child process each (NCCL; MPI when present)
}
# what `pytest -m gpu` runs: tests/gpu, and the GPU tests kept beside their CPU siblings
GPU_TEST_PATHS = ("tests/gpu", "tests/test_distributed_gpu.py")
DEFAULT_CASE_S = 0.05
PER_CUPY_KERNEL_S = 0.15  # NVRTC build of one CuPy elementwise/reduction kernel, cold
CUPY_KERNELS_PER_OP_CASE = 0.5  # distinct CuPy kernels an op-table case first builds
PER_GPUCHAIN_BUILD_S = 0.04  # one template instantiation of gpuchain's kernels (NVRTC)
FIXED_S = {"env": 20, "compile": 5, "pytest": 25, "bandwidth": 25, "target": 150,
           "pack": 5}
TARGET_NOTE = ("target: 2 precisions x (gpuchain, torch eager ~25 s) + torch.compile "
               "warm-up (bounded by --compile-limit, reported apart)")


# --------------------------------------------------------------------------- env


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"failed: {exc}"
    return (out.stdout or out.stderr).strip()


def _version(name: str) -> str | None:
    try:
        mod = __import__(name)
    except Exception as exc:  # noqa: BLE001 - a broken install is recorded, not fatal
        return None if isinstance(exc, ImportError) else f"import failed: {exc}"
    return getattr(mod, "__version__", "unknown")


def _try(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a missing field is recorded, not fatal
        return f"unavailable: {type(exc).__name__}: {exc}"


def _cupy_device() -> dict[str, Any]:
    """The CUDA device as CuPy sees it, each field on its own (one failing field does not
    hide the others)."""
    from gpuchain.backend import cupy_unavailable_reason

    reason = _try(cupy_unavailable_reason)
    if reason:
        return {"usable": False, "reason": reason}
    import cupy

    dev = cupy.cuda.Device()
    rt = cupy.cuda.runtime
    return {"usable": True,
            "name": _try(lambda: rt.getDeviceProperties(dev.id)["name"].decode()),
            "compute_capability": _try(lambda: dev.compute_capability),
            "runtime_version": _try(rt.runtimeGetVersion),
            "driver_version": _try(rt.driverGetVersion),
            "nvrtc_version": _try(lambda: ".".join(map(str, __import__(
                "cupy_backends.cuda.libs.nvrtc", fromlist=["getVersion"]).getVersion()))),
            "memory_free_total_bytes": _try(rt.memGetInfo),
            "cache_dir": os.environ.get("CUPY_CACHE_DIR")}


def environment() -> dict[str, Any]:
    """Everything the check records about the machine before it starts."""
    from gpuchain.cuda.telemetry import device_info, telemetry_status

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {n: _version(n) for n in ("gpuchain", "numpy", "cupy", "torch", "jax",
                                              "jaxlib", "pytest", "hypothesis", "pynvml",
                                              "matplotlib")},
        "nvidia_smi_L": _run(["nvidia-smi", "-L"]),
        "nvidia_smi": _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,"
                            "memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw",
                            "--format=csv"]),
        "cuda_device": _cupy_device(),
        "nvml": {"status": telemetry_status(), "devices": device_info()},
        "env": {k: os.environ.get(k) for k in ("CUPY_CACHE_DIR", "XLA_PYTHON_CLIENT_PREALLOCATE",
                                               "CUDA_VISIBLE_DEVICES", "PYTHONPATH")},
    }


def arch() -> str:
    """``sm_XY`` of the visible device, else sm_90 (the H200's) with a note."""
    dev = _cupy_device()
    cc = str(dev.get("compute_capability", ""))
    if dev.get("usable") and cc.isdigit():
        return f"sm_{cc}"
    print(f"gpu_check: no usable device ({dev.get('reason')}); compiling for sm_90 "
          "(the H200's architecture)", file=sys.stderr)
    return "sm_90"


# --------------------------------------------------------------------------- counts


def _collected(args: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_paths() -> list[str]:
    """The GPU test paths that exist in this checkout."""
    return [p for p in GPU_TEST_PATHS if (ROOT / p).exists()]


def counts(collected: list[str] | None = None) -> dict[str, Any]:
    """Test cases per GPU test file, gpuchain kernel builds, and the estimate per step.

    ``collected``: pytest node ids (default: collect ``tests/gpu`` now; off a GPU the
    modules skip at import, so pass ids collected with a CuPy stand-in on the path).
    """
    from gpuchain.cuda import loader

    ids = _collected(["-m", "gpu", *test_paths()]) if collected is None else collected
    per_file: dict[str, int] = {}
    for node in ids:
        per_file[node.split("::")[0]] = per_file.get(node.split("::")[0], 0) + 1
    builds = sum(len(loader.name_expressions(f)) for f in loader.KERNEL_FILES)
    op_cases = per_file.get("tests/gpu/test_ops_cupy.py", 0)
    cupy_kernels = round(CUPY_KERNELS_PER_OP_CASE * op_cases)
    est = dict(FIXED_S)
    est["compile"] += round(PER_GPUCHAIN_BUILD_S * builds)
    est["pytest"] += round(sum(PER_CASE_S.get(f, DEFAULT_CASE_S) * n for f, n in
                               per_file.items())
                           + PER_CUPY_KERNEL_S * cupy_kernels + PER_GPUCHAIN_BUILD_S * builds)
    return {"test_cases": len(ids), "test_cases_per_file": per_file,
            "gpuchain_kernel_builds": builds, "cupy_kernels_estimated": cupy_kernels,
            "estimate_s": est, "estimate_total_s": sum(est.values()), "note": TARGET_NOTE}


# --------------------------------------------------------------------------- --quick


def _node_id(classname: str, name: str) -> str | None:
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):  # module path, then classes inside it
        path = Path(*parts[:cut]).with_suffix(".py")
        if (ROOT / path).is_file():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return None


def not_passed(junit: Path, collected: list[str] | None = None) -> list[str]:
    """pytest node ids to run again: the failed or errored cases of a junit XML, and,
    given the ids collected now, every case the XML does not report (a run stopped at its
    time cap writes the cases it finished)."""
    failed, reported = [], set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        node = _node_id(case.get("classname", ""), case.get("name", ""))
        if node is None:
            continue
        reported.add(node)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(node)
    return failed + [n for n in (collected or []) if n not in reported]


def failed_suites(results: Path) -> list[str]:
    """Suites with a cross-check that did not agree."""
    data = json.loads(results.read_text())
    return sorted({c["suite"] for c in data.get("checks", []) if c["status"] != "ok"})


# --------------------------------------------------------------------------- summary


def _steps(work: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (work / "steps.tsv").read_text().splitlines():
        name, status, seconds, estimate, detail = (line.split("\t") + [""] * 5)[:5]
        rows.append({"step": name, "status": status, "seconds": float(seconds or 0),
                     "estimate_s": float(estimate or 0), "detail": detail})
    return rows


def _pytest_totals(junit: Path) -> dict[str, int] | None:
    if not junit.is_file():
        return None
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def summary(work: Path, out: Path) -> int:
    """Write ``check.json`` and ``summary.md`` into ``out``; 0 when every step passed or
    was skipped, 1 otherwise."""
    steps = _steps(work)
    env = json.loads((work / "env.json").read_text()) if (work / "env.json").is_file() else {}
    est = json.loads((work / "counts.json").read_text()) if (work / "counts.json").is_file() \
        else {}
    tests = _pytest_totals(out / "pytest.xml")
    record = {"steps": steps, "environment": env, "counts": est, "pytest": tests}
    (out / "check.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    dev = env.get("cuda_device", {})
    lines = ["# gpuchain GPU check", "",
             f"- device: {dev.get('name') or 'none'} "
             f"({env.get('nvidia_smi_L') or dev.get('reason', 'no nvidia-smi')})",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()
                                        if v),
             f"- NVML: {env.get('nvml', {}).get('status')}", "",
             "| step | status | seconds | estimate (s) | detail |", "|---|---|---:|---:|---|"]
    for s in steps:
        lines.append(f"| {s['step']} | {s['status']} | {s['seconds']:.0f} | "
                     f"{s['estimate_s']:.0f} | {s['detail']} |")
    total = sum(s["seconds"] for s in steps)
    lines += ["", f"Total {total:.0f} s (estimate {est.get('estimate_total_s', '?')} s)."]
    if tests:
        lines.append(f"pytest -m gpu: {tests['tests']} cases, {tests['failures']} failed, "
                     f"{tests['errors']} errors, {tests['skipped']} skipped.")
    bench_md = work / "results.md"
    if bench_md.is_file():
        lines += ["", re.sub(r"^# ", "## ", bench_md.read_text(), count=1, flags=re.M)]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return 0 if all(s["status"] in ("ok", "skipped") for s in steps) else 1


def main(argv: list[str] | None = None) -> int:
    """Dispatch one helper command (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("env").add_argument("out", type=Path)
    sub.add_parser("arch")
    sub.add_parser("test-paths")
    sub.add_parser("counts").add_argument("out", type=Path)
    sub.add_parser("rerun-tests").add_argument("junit", type=Path)
    sub.add_parser("failed-suites").add_argument("results", type=Path)
    st = sub.add_parser("step-status")
    st.add_argument("record", type=Path)
    st.add_argument("step")
    s = sub.add_parser("summary")
    s.add_argument("work", type=Path)
    s.add_argument("out", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "env":
        a.out.write_text(json.dumps(environment(), indent=2, default=str) + "\n")
    elif a.cmd == "arch":
        print(arch())
    elif a.cmd == "test-paths":
        print("\n".join(test_paths()))
    elif a.cmd == "counts":
        c = counts()
        a.out.write_text(json.dumps(c, indent=2) + "\n")
        print(" ".join(f"{k}={v}" for k, v in c["estimate_s"].items()),
              f"total={c['estimate_total_s']}s cases={c['test_cases']} "
              f"builds={c['gpuchain_kernel_builds']}")
    elif a.cmd == "rerun-tests":
        ids = not_passed(a.junit, _collected(["-m", "gpu", *test_paths()]))
        if ids:
            print("\n".join(ids))
    elif a.cmd == "failed-suites":
        print(" ".join(failed_suites(a.results)))
    elif a.cmd == "step-status":
        steps = json.loads(a.record.read_text())["steps"]
        print(next((s["status"] for s in steps if s["step"] == a.step), ""))
    else:
        return summary(a.work, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
