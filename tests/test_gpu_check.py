"""benchmarks/gpu_check.sh end to end with the GPU parts skipped, its --quick rerun, and
its header's time budget against the repository's own counts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
FILES = {"check.log", "check.json", "summary.md", "pytest.xml", "pytest.log", "results.json",
         "results.png", "cupy-kernel-cache.tar.gz"}

sys.path.insert(0, str(ROOT))
from benchmarks import gpu_check  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def _gpu_usable() -> bool:
    from gpuchain.backend import cupy_unavailable_reason

    return not cupy_unavailable_reason()


def _check(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), str(out), *args], capture_output=True,
                          text=True, timeout=900, cwd=ROOT, env=env)


def _steps(out: Path) -> dict[str, str]:
    return {s["step"]: s["status"] for s in json.loads((out / "check.json").read_text())["steps"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    if _gpu_usable():
        pytest.skip("a GPU is usable here: run the check itself")
    out = tmp_path_factory.mktemp("gpu-check")
    proc = _check(out)
    assert (out / "check.json").is_file(), proc.stdout + proc.stderr
    return out


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_check_writes_its_eight_files_with_gpu_parts_skipped(first_run: Path) -> None:
    # the plot needs matplotlib (the device image has it; the test extra does not)
    want = FILES if _has_matplotlib() else FILES - {"results.png"}
    assert {p.name for p in first_run.iterdir()} == want
    steps = _steps(first_run)
    assert list(steps) == ["env", "compile", "pytest", "bench", "pack"]
    assert steps["env"] == "ok" and steps["pytest"] == "skipped" and steps["bench"] == "ok"
    assert steps["pack"] == "ok"
    from gpuchain.cuda.compile import nvrtc_status

    assert steps["compile"] == ("ok" if nvrtc_status() is None else "failed")
    record = json.loads((first_run / "check.json").read_text())
    assert record["environment"]["versions"]["numpy"]
    assert record["counts"]["gpuchain_kernel_builds"] > 0
    results = json.loads((first_run / "results.json").read_text())
    assert "bandwidth" in results["skipped"]
    assert {r["suite"] for r in results["rows"]} == {"target"}
    md = (first_run / "summary.md").read_text()
    assert "| pytest | skipped |" in md and "## target" in md
    assert "step bench" in (first_run / "check.log").read_text()


def test_quick_rerun_repeats_only_what_did_not_pass(first_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    proc = _check(out, "--quick", "--previous", str(first_run))
    assert (out / "check.json").is_file(), proc.stdout + proc.stderr
    steps = _steps(out)
    assert steps["bench"] == "skipped"  # every cross-check agreed before
    if _steps(first_run)["compile"] == "ok":
        assert steps["compile"] == "skipped"
    assert steps["pytest"] == "skipped"  # ran again (nothing passed before), no GPU
    assert "kernel cache: unpacked" in (out / "check.log").read_text()
    assert {p.name for p in out.iterdir()} <= FILES


def test_quick_without_a_previous_run_is_a_usage_error(tmp_path: Path) -> None:
    proc = _check(tmp_path, "--quick")
    assert proc.returncode == 2 and "previous run" in proc.stderr


def test_rerun_tests_from_junit(tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="1" skipped="0">'
        '<testcase classname="tests.gpu.test_kernels" name="test_a[float32-(1, 7)]">'
        '<failure message="x"/></testcase>'
        '<testcase classname="tests.gpu.test_ops_cupy" name="test_ok"/>'
        '<testcase classname="tests.gpu.test_training_parity" name="test_oom"><error/>'
        '</testcase></testsuite></testsuites>')
    collected = ["tests/gpu/test_kernels.py::test_a[float32-(1, 7)]",
                 "tests/gpu/test_ops_cupy.py::test_ok", "tests/gpu/test_ops_cupy.py::test_late",
                 "tests/gpu/test_training_parity.py::test_oom"]
    assert gpu_check.not_passed(xml, collected) == [
        "tests/gpu/test_kernels.py::test_a[float32-(1, 7)]",
        "tests/gpu/test_training_parity.py::test_oom",
        "tests/gpu/test_ops_cupy.py::test_late"]  # never reached (cap) -> run again


STUB = {"cupy/__init__.py": "def is_available():\n    return True\n",
        "cupy/_core/__init__.py": "",
        "cupy/_core/_routines_linalg.py": ("COMPUTE_TYPE_FP32, COMPUTE_TYPE_TF32 = 4, 7\n"
                                           "def set_compute_type(dtype, mode):\n    pass\n")}


def test_header_budget_matches_the_repository_counts(tmp_path: Path) -> None:
    for rel, text in STUB.items():  # a CuPy stand-in, so tests/gpu collects off a GPU
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "counts",
                           str(tmp_path / "c.json")], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads((tmp_path / "c.json").read_text())
    text = SCRIPT.read_text()
    header = text.split("set -uo pipefail")[0]
    # the header's counts and estimate follow the repository's within 15%
    cases = int(re.search(r"(\d+) `pytest -m gpu` cases", header).group(1))
    builds = int(re.search(r"(\d+) gpuchain kernel builds", header).group(1))
    total = re.search(r"#   total\s+(\d+) s\s+(\d+) s", header)
    assert abs(cases - counts["test_cases"]) <= 0.15 * counts["test_cases"], counts
    assert abs(builds - counts["gpuchain_kernel_builds"]) <= 0.15 * builds, counts
    assert abs(int(total.group(1)) - counts["estimate_total_s"]) <= 0.15 * int(total.group(1))
    # each step's estimate and cap in the header are the ones the script uses
    rows = dict((m.group(1), (int(m.group(2)), int(m.group(3)))) for m in re.finditer(
        r"#   (env|compile|pytest|bench|pack) .*?(\d+) s\s+(\d+) s\n", header))
    assert list(rows) == ["env", "compile", "pytest", "bench", "pack"]
    for name, (est, cap) in rows.items():
        assert re.search(rf"step {name} {cap} {est}\b", text), name
    assert sum(cap for _, cap in rows.values()) == int(total.group(2)) <= 8 * 60
    assert sum(est for est, _ in rows.values()) == int(total.group(1))
    assert counts["estimate_total_s"] <= 8 * 60


def test_quick_rerun_runs_only_the_cases_that_failed(first_run: Path, tmp_path: Path) -> None:
    prev = tmp_path / "prev"
    shutil.copytree(first_run, prev)
    failed = ("tests/gpu/test_training_parity.py::"
              "test_out_of_memory_leaves_model_and_optimizer_unchanged")
    cls, name = failed.split("::")
    (prev / "pytest.xml").write_text(
        '<testsuites><testsuite tests="1" failures="1" errors="0" skipped="0">'
        f'<testcase classname="{cls[:-3].replace("/", ".")}" name="{name}">'
        '<failure message="planted"/></testcase></testsuite></testsuites>')
    record = json.loads((prev / "check.json").read_text())
    for s in record["steps"]:
        s["status"] = "failed" if s["step"] == "pytest" else s["status"]
    (prev / "check.json").write_text(json.dumps(record))
    out = tmp_path / "again"
    proc = _check(out, "--quick", "--previous", str(prev))
    assert (out / "check.json").is_file(), proc.stdout + proc.stderr
    log = (out / "check.log").read_text()
    # the planted failure runs again, with the cases the XML never reported (here the GPU
    # cases collected beside the CPU tests); none of the cases it reported as passed
    rerun = next(line for line in log.splitlines() if "step pytest (" in line)
    assert failed in rerun and "tests/gpu/test_kernels.py" not in rerun
    assert _steps(out)["pytest"] == "skipped"  # no GPU here
