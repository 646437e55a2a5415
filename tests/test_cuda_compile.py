"""CPU-only tests of gpuchain.cuda: NVRTC compile check (no GPU needed), loader,
telemetry degradation, OOM translation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gpuchain.cuda import compile as cc
from gpuchain.cuda import loader, telemetry
from gpuchain.errors import BackendUnavailableError, OutOfMemoryError

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("sm_80", "sm_90")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "gpuchain.cuda", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


needs_nvrtc = pytest.mark.skipif(
    cc.nvrtc_status() is not None, reason=f"NVRTC unusable: {cc.nvrtc_status()}"
)


# --------------------------------------------------------------------------- compile check


@pytest.fixture(scope="module")
def compiled():
    """Run the real CLI once for both archs; also the in-process check."""
    proc = _cli("compile", "--arch", *ARCHS)
    return proc


@needs_nvrtc
def test_compile_cli_all_kernels_all_archs(compiled):
    out = compiled.stdout + compiled.stderr
    assert compiled.returncode == 0, out
    n_expected = sum(len(loader.name_expressions(f)) for f in loader.KERNEL_FILES)
    for arch in ARCHS:
        assert f"{arch}: {n_expected} kernels" in out, out
        assert f"{arch}: {n_expected} kernels" in out and "spills 0 B" in out
    # every instantiation appears in the table, once per arch
    for f in loader.KERNEL_FILES:
        for name in loader.name_expressions(f):
            assert out.count(f" {name} ") == len(ARCHS), name
    assert "OK:" in out


@needs_nvrtc
def test_compile_reports_have_registers_and_no_spills():
    reports, failures = cc.check(archs=("sm_80",))
    assert failures == []
    assert reports and all(r.registers > 0 and r.spills == 0 for r in reports)
    assert all(r.arch == "sm_80" for r in reports)


@needs_nvrtc
def test_broken_kernel_fails_naming_file(tmp_path):
    (tmp_path / "broken.cu").write_text(
        'extern "C" __global__ void k(float* x) { x[threadIdx.x] = undefined_thing; }\n'
    )
    proc = _cli("compile", "--kernel-dir", str(tmp_path), "--arch", "sm_80")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "broken.cu" in out and "sm_80" in out and "undefined_thing" in out


@needs_nvrtc
def test_broken_header_fails_every_including_file(tmp_path):
    kdir = tmp_path / "kernels"
    shutil.copytree(REPO / "kernels", kdir)
    with open(kdir / "common.cuh", "a") as f:
        f.write("\nthis is not C++;\n")
    reports, failures = cc.check(kdir, ("sm_90",))
    failed = {f.file for f in failures}
    assert failed == set(loader.KERNEL_FILES)
    # #line directives make the error point into the header, not the inlined blob
    assert all("common.cuh" in f.message for f in failures)


@needs_nvrtc
def test_register_spill_fails(tmp_path):
    (tmp_path / "spill.cu").write_text(
        """
extern "C" __global__ void __maxnreg__(16) spiller(float* x, int n) {
    float acc[24];
#pragma unroll
    for (int k = 0; k < 24; ++k) acc[k] = x[threadIdx.x + k * n];
    float s = 0.f;
#pragma unroll
    for (int r = 0; r < 8; ++r) {
#pragma unroll
        for (int k = 0; k < 24; ++k) { acc[k] = acc[k] * acc[(k + r) % 24] + s; s += acc[k]; }
    }
#pragma unroll
    for (int k = 0; k < 24; ++k) x[threadIdx.x + k * n] = acc[k];
}
"""
    )
    reports, failures = cc.check(tmp_path, ("sm_80",))
    if any("compile error" in f.message for f in failures):
        pytest.skip("this NVRTC does not know __maxnreg__")
    assert len(reports) == 1 and reports[0].spills > 0
    assert any("register spill" in str(f) and "spiller" in str(f) for f in failures)


def test_parse_ptxas_log():
    log = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z1kIfEvPT_i' for 'sm_80'
ptxas info    : Function properties for _Z1kIfEvPT_i
ptxas         .     16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 255 registers, used 0 barriers, 364 bytes cmem[0]
ptxas info    : Compiling entry function 'plain' for 'sm_80'
ptxas info    : Function properties for plain
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, used 0 barriers, 364 bytes cmem[0]
"""
    assert cc.parse_ptxas_log(log) == {"_Z1kIfEvPT_i": (255, 8, 12, 16), "plain": (8, 0, 0, 0)}


# --------------------------------------------------------------------------- loader


def test_inline_includes_recursive_once_and_header_edits_change_text(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.cu").write_text(
        '#include "h1.cuh"\n#include <cuda_fp16.h>\n#include "sub/h2.cuh"\nint a;\n'
    )
    (tmp_path / "h1.cuh").write_text('#pragma once\n#include "sub/h2.cuh"\nint h1;\n')
    (tmp_path / "sub" / "h2.cuh").write_text('#pragma once\n#include "../h1.cuh"\nint h2 = 1;\n')
    text = loader.inline_includes(tmp_path / "a.cu")
    assert text.count("int h2 = 1;") == 1 and text.count("int h1;") == 1
    assert "#include <cuda_fp16.h>" in text
    assert '#include "' not in text and "pragma once" not in text
    assert text.index("int h2") < text.index("int h1") < text.index("int a;")
    (tmp_path / "sub" / "h2.cuh").write_text("#pragma once\nint h2 = 2;\n")
    text2 = loader.inline_includes(tmp_path / "a.cu")
    assert text2 != text and "int h2 = 2;" in text2


def test_inline_includes_missing_header_names_includer(tmp_path):
    (tmp_path / "a.cu").write_text('\n#include "nope.cuh"\n')
    with pytest.raises(FileNotFoundError, match=r"nope\.cuh.*a\.cu:2"):
        loader.inline_includes(tmp_path / "a.cu")


def test_inline_real_kernels_have_no_local_includes():
    for f in loader.KERNEL_FILES:
        text = loader.inline_includes(loader.kernel_dir() / f)
        assert '#include "' not in text and "GC_ACTIVATION_TABLE" in text
        assert text.startswith(f'#line 1 "{f}"')


def test_kernel_dir_source_checkout():
    assert loader.kernel_dir() == REPO / "kernels"


def test_kernel_dir_wheel_layout_wins(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "gpuchain"
    for d in (pkg / "_kernels", tmp_path / "site" / "kernels"):
        d.mkdir(parents=True)
        (d / "common.cuh").write_text("// x\n")
    monkeypatch.delenv(loader.ENV_KERNEL_DIR, raising=False)
    monkeypatch.setattr(loader, "_PKG_DIR", pkg)
    assert loader.kernel_dir() == pkg / "_kernels"
    shutil.rmtree(pkg / "_kernels")
    assert loader.kernel_dir() == tmp_path / "site" / "kernels"
    shutil.rmtree(tmp_path / "site" / "kernels")
    with pytest.raises(BackendUnavailableError, match="common.cuh"):
        loader.kernel_dir()
    monkeypatch.setenv(loader.ENV_KERNEL_DIR, str(REPO / "kernels"))
    assert loader.kernel_dir() == REPO / "kernels"


def test_choose_cache_dir(tmp_path):
    assert loader.choose_cache_dir({"CUPY_CACHE_DIR": "/x", "HOME": "/nonexistent"}) is None
    assert loader.choose_cache_dir({"HOME": str(tmp_path)}) is None
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {"HOME": str(blocker / "home")}  # under a regular file: never creatable
    chosen = loader.choose_cache_dir(env)
    assert chosen is not None and chosen.startswith(
        os.path.realpath(__import__("tempfile").gettempdir())
    )
    assert loader.apply_cache_dir(env) == chosen and env["CUPY_CACHE_DIR"] == chosen
    env2 = {"HOME": str(blocker / "home"), "CUPY_CACHE_DIR": "/mine"}
    assert loader.apply_cache_dir(env2) is None and env2["CUPY_CACHE_DIR"] == "/mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores modes")
def test_choose_cache_dir_read_only_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    try:
        assert loader.choose_cache_dir({"HOME": str(home)}) is not None
    finally:
        home.chmod(0o700)


def test_activation_table_matches_contract():
    table = loader.activation_table()
    names = tuple(n for n, _, _ in table)
    assert names == (
        "identity", "relu", "leaky_relu", "sigmoid", "tanh",
        "gelu", "gelu_tanh", "silu", "softplus", "elu",
    )  # fmt: skip
    saves = {n for n, _, s in table if s}
    assert saves == {"identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu"}


def test_parse_activation_table_picks_up_a_new_row():
    text = (REPO / "kernels" / "common.cuh").read_text()
    text = text.replace(
        "    X(9, elu, ActElu)",
        "    X(9, elu, ActElu) \\\n    X(10, mish, ActMish)",
    )
    text += "\nstruct ActMish {\n    static constexpr bool kSavesOutput = false;\n};\n"
    table = loader.parse_activation_table(text)
    assert table[-1] == ("mish", 10, False) and len(table) == 11
    with pytest.raises(ValueError, match="ids"):
        loader.parse_activation_table(text.replace("X(10, mish", "X(12, mish"))


def test_name_expressions():
    dense = loader.name_expressions("dense.cu")
    assert len(dense) == 3 * 10 * 3 + 3 and "act_grad_bias<__half, 9>" in dense
    assert loader.name_expressions("dense.cu", ["double"]) == [
        n for n in dense if n.split("<")[1].startswith("double")
    ]
    assert "softmax_xent_fwd<float, long long>" in loader.name_expressions("softmax_xent.cu")
    assert "adam_step<__half, float>" in loader.name_expressions("optim.cu", ["__half"])
    with pytest.raises(ValueError, match="unknown kernel file"):
        loader.name_expressions("nope.cu")


def test_package_imports_without_cupy():
    code = (
        "import sys; sys.modules['cupy'] = None; sys.modules['cupy_backends'] = None\n"
        "import gpuchain.cuda, gpuchain.cuda.kernels as k, gpuchain.cuda.compile as c\n"
        "import gpuchain.cuda.telemetry, gpuchain.cuda.loader\n"
        "assert 'relu' in k.ACTIVATIONS and 'gelu' not in k.SAVES_OUTPUT\n"
        "assert c.nvrtc_status().startswith('cupy_backends')\n"
        "from gpuchain.errors import BackendUnavailableError\n"
        "try:\n    gpuchain.cuda.loader.get_module('dense.cu', 'float')\n"
        "except BackendUnavailableError as e:\n    print('OK', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "CuPy is not installed" in proc.stdout


# --------------------------------------------------------------------------- telemetry


class _NVMLError(Exception):
    pass


class _LibNotFound(_NVMLError):
    pass


class _NotSupported(_NVMLError):
    pass


def _fake_pynvml(init_error=None):
    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.NVMLError_LibraryNotFound = _LibNotFound
    m.NVMLError_DriverNotLoaded = type("DriverNotLoaded", (_NVMLError,), {})
    m.NVML_CLOCK_SM = 1

    def init():
        if init_error is not None:
            raise init_error

    def unsupported(*a):
        raise _NotSupported("Not Supported")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlSystemGetDriverVersion = lambda: "580.1"
    m.nvmlSystemGetCudaDriverVersion = lambda: 13010
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: ("h", i)
    m.nvmlDeviceGetName = lambda h: b"Fake GPU"
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=10, used=3, free=7)
    m.nvmlDeviceGetUtilizationRates = unsupported
    m.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=b"00000000:3B:00.0")
    m.nvmlDeviceGetClockInfo = lambda h, kind: 1980
    return m


def test_telemetry_without_nvidia_ml_py(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert telemetry.device_info() == []
    assert telemetry.telemetry_status() == "unavailable: nvidia-ml-py not installed"


def test_telemetry_without_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(_LibNotFound("no lib")))
    assert telemetry.device_info() == []
    assert telemetry.telemetry_status() == "unavailable: NVML library not found (no NVIDIA driver)"


def test_telemetry_fake_device_degrades_per_field(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    (dev,) = telemetry.device_info()
    assert dev["name"] == "Fake GPU" and dev["memory_free_bytes"] == 7
    assert dev["gpu_utilization_pct"] is None  # NotSupported -> None, not a crash
    assert dev["sm_clock_mhz"] == 1980 and dev["cuda_driver_version"] == "13.1"
    assert dev["pci_bus_id"] == "00000000:3B:00.0"
    assert telemetry.telemetry_status().startswith("ok: 1 device")


def test_telemetry_real_never_crashes():
    assert isinstance(telemetry.device_info(), list)
    assert isinstance(telemetry.telemetry_status(), str)


def test_normalize_pci_bus_id():
    assert telemetry.normalize_pci_bus_id("00000000:3B:00.0") == (0, 0x3B, 0, 0)
    assert telemetry.normalize_pci_bus_id(b"0000:3b:00.0\x00") == (0, 0x3B, 0, 0)
    assert telemetry.normalize_pci_bus_id("garbage") is None


# --------------------------------------------------------------------------- OOM


def test_translate_oom():
    cupy_memory = pytest.importorskip("cupy.cuda.memory")
    from gpuchain.cuda import translate_oom

    with pytest.raises(OutOfMemoryError) as info:
        with translate_oom("dense workspace"):
            raise cupy_memory.OutOfMemoryError(4096, 1000, 3000)
    assert info.value.requested_bytes == 4096 and info.value.free_bytes == 2000
    assert "dense workspace" in str(info.value)
    with pytest.raises(KeyError):
        with translate_oom("x"):
            raise KeyError("not an OOM")
