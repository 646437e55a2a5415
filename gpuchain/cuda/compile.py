"""Offline NVRTC compile check: every kernel file, every instantiation, every arch.

Compiles to CUBIN with ``-Xptxas -v`` (no GPU needed), parses ptxas' resource
report and fails on compile errors, on register spills, and on kernels that
ptxas did not report (so the spill check can never pass vacuously).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gpuchain.cuda import loader

DEFAULT_ARCHS = ("sm_80", "sm_90")


@dataclass(frozen=True)
class KernelReport:
    file: str
    kernel: str  # name expression, or the lowered name for non-template kernels
    arch: str
    registers: int
    spill_stores: int
    spill_loads: int
    stack_bytes: int

    @property
    def spills(self) -> int:
        return self.spill_stores + self.spill_loads


@dataclass(frozen=True)
class Failure:
    file: str
    arch: str
    kernel: str | None
    message: str

    def __str__(self) -> str:
        what = f"{self.file} {self.kernel}" if self.kernel else self.file
        return f"FAIL {what} [{self.arch}]: {self.message}"


def nvrtc_status() -> str | None:
    """None when NVRTC can be used, else why not."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except Exception as exc:  # ImportError, or OSError when libnvrtc is missing
        return f"cupy_backends NVRTC binding not importable: {exc}"
    try:
        nvrtc.getVersion()
    except Exception as exc:
        return f"NVRTC library not loadable: {exc}"
    if not loader.cuda_include_dirs():
        return "cuda_fp16.h not found (install nvidia-cuda-runtime)"
    return None


_ENTRY_RE = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_FRAME_RE = re.compile(
    r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads"
)
_REGS_RE = re.compile(r"Used (\d+) registers")


def parse_ptxas_log(log: str) -> dict[str, tuple[int, int, int, int]]:
    """ptxas -v output -> {lowered name: (registers, spill stores, spill loads, stack)}."""
    out: dict[str, tuple[int, int, int, int]] = {}
    current: str | None = None
    frame = (0, 0, 0)
    for line in log.splitlines():
        if m := _ENTRY_RE.search(line):
            current, frame = m.group(1), (0, 0, 0)
        elif current and (m := _FRAME_RE.search(line)):
            frame = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif current and (m := _REGS_RE.search(line)):
            out[current] = (int(m.group(1)), frame[1], frame[2], frame[0])
            current = None
    return out


def compile_source(
    source: str, file: str, names: list[str], arch: str, include_dirs: list[str]
) -> tuple[list[KernelReport], list[Failure], bytes]:
    """Compile one source for one arch; returns (reports, failures, cubin)."""
    from cupy_backends.cuda.libs import nvrtc

    # -ftz=true: CuPy adds it to every runtime compile, so register counts match.
    opts = [f"-arch={arch}", *loader.NVRTC_OPTIONS, "-ftz=true", "-Xptxas", "-v"]
    opts += [f"-I{d}" for d in include_dirs]
    prog = nvrtc.createProgram(source, file, [], [])
    try:
        for name in names:
            nvrtc.addNameExpression(prog, name)
        try:
            nvrtc.compileProgram(prog, opts)
        except Exception as exc:
            log = nvrtc.getProgramLog(prog).strip()
            return [], [Failure(file, arch, None, f"compile error ({exc}):\n{log}")], b""
        log = nvrtc.getProgramLog(prog)
        cubin = nvrtc.getCUBIN(prog)
        resources = parse_ptxas_log(log)
        lowered = {nvrtc.getLoweredName(prog, n): n for n in names}
    finally:
        nvrtc.destroyProgram(prog)

    reports, failures = [], []
    for low, name in lowered.items():
        if low not in resources:
            failures.append(Failure(file, arch, name, "no ptxas resource report for this kernel"))
    for low, (regs, st, ld, stack) in sorted(resources.items()):
        rep = KernelReport(file, lowered.get(low, low), arch, regs, st, ld, stack)
        reports.append(rep)
        if rep.spills:
            failures.append(
                Failure(file, arch, rep.kernel, f"register spill: {st} B stores, {ld} B loads")
            )
    return reports, failures, cubin


def kernel_files(kdir: Path) -> list[Path]:
    return sorted(kdir.glob("*.cu"))


def check(
    kdir: Path | None = None, archs: tuple[str, ...] = DEFAULT_ARCHS, jobs: int = 2
) -> tuple[list[KernelReport], list[Failure]]:
    """Compile every .cu in ``kdir`` for every arch. Known files get all their
    template instantiations; other files are compiled as-is (extern "C" kernels)."""
    kdir = loader.kernel_dir() if kdir is None else Path(kdir)
    include_dirs = loader.cuda_include_dirs()[:1]
    common = kdir / "common.cuh"
    n_acts = (
        len(loader.parse_activation_table(common.read_text(encoding="utf-8")))
        if common.is_file()
        else 0
    )
    tasks = []
    failures: list[Failure] = []
    for path in kernel_files(kdir):
        try:
            source = loader.inline_includes(path)
        except FileNotFoundError as exc:
            failures.append(Failure(path.name, "-", None, str(exc)))
            continue
        if path.name in loader.KERNEL_FILES:
            names = loader.name_expressions(path.name, n_activations=n_acts)
        else:
            names = []
        tasks += [(source, path.name, names, arch, include_dirs) for arch in archs]
    if not tasks and not failures:
        failures.append(Failure(str(kdir), "-", None, "no .cu files found"))
    reports: list[KernelReport] = []
    # NVRTC releases the GIL while compiling, so threads give real parallelism.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for reps, fails, _ in pool.map(lambda t: compile_source(*t), tasks):
            reports += reps
            failures += fails
    return reports, failures


def format_table(reports: list[KernelReport]) -> str:
    header = ("file", "kernel", "arch", "regs", "spill_st", "spill_ld", "stack")
    rows = [
        (
            r.file,
            r.kernel,
            r.arch,
            str(r.registers),
            str(r.spill_stores),
            str(r.spill_loads),
            str(r.stack_bytes),
        )
        for r in sorted(reports, key=lambda r: (r.file, r.arch, r.kernel))
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def summary(reports: list[KernelReport], archs: tuple[str, ...]) -> str:
    out = []
    for arch in archs:
        rs = [r for r in reports if r.arch == arch]
        if rs:
            out.append(
                f"{arch}: {len(rs)} kernels, registers {min(r.registers for r in rs)}-"
                f"{max(r.registers for r in rs)}, spills {sum(r.spills for r in rs)} B"
            )
    return "\n".join(out)


def run(kdir: Path | None, archs: tuple[str, ...], jobs: int, quiet: bool = False) -> int:
    """CLI body: print the table, return the exit status."""
    why = nvrtc_status()
    if why is not None:
        print(f"gpuchain.cuda compile: {why}")
        return 2
    t0 = time.perf_counter()
    reports, failures = check(kdir, archs, jobs)
    dt = time.perf_counter() - t0
    if not quiet:
        print(format_table(reports))
    print(summary(reports, archs))
    for f in failures:
        print(f)
    status = "FAILED" if failures else "OK"
    print(f"{status}: {len(reports)} kernel builds, {len(failures)} failures, {dt:.1f} s")
    return 1 if failures else 0
