"""What a user installs: the wheel carries every subpackage, the CUDA kernels, ``py.typed``
and the LICENSE; the metadata has an SPDX license, classifiers matching ``requires-python``,
project URLs and every extra; the sdist carries no tests (they need the checkout) and builds
the same wheel. The slow check (a fresh virtualenv outside the checkout running
``gpuchain bench --quick`` from the installed wheel) runs when ``GPUCHAIN_SLOW_TESTS=1``
(``.ci/run`` sets it)."""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_every_subpackage_is_listed_in_pyproject():
    config = PYPROJECT["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "gpuchain").rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject: {found - listed}"
    assert config["package-dir"]["gpuchain._kernels"] == "kernels"
    assert any((ROOT / "kernels").glob("*.cu"))


def test_license_file_matches_the_spdx_expression():
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # PEP 639


def test_python_classifiers_match_requires_python():
    low = tuple(int(p) for p in re.fullmatch(r">=(\d+)\.(\d+)",
                                             PROJECT["requires-python"]).groups())
    versions = sorted(tuple(int(p) for p in c.rsplit(" ", 1)[1].split("."))
                      for c in PROJECT["classifiers"]
                      if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert versions[0] == low
    assert versions == [(3, minor) for minor in range(low[1], versions[-1][1] + 1)]
    assert versions[-1] >= (3, 13)


def test_extras():
    extras = PROJECT["optional-dependencies"]
    bench = extras["bench"]
    assert "torch==2.13.0" in bench  # the CPU-installable release
    assert any(r.startswith("matplotlib") for r in bench)
    assert any(r.startswith("jax") for r in bench)
    assert any(r.startswith("sphinx") for r in extras["docs"])


_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info",
                                      "__pycache__", ".pytest_cache", ".ruff_cache",
                                      ".mypy_cache", "_build", "_kernels")


def _copy_tree(dest: Path) -> Path:
    """The sources, copied to dest: what git would commit (tracked plus untracked, not
    ignored) in a checkout, else the tree without environments and build outputs (CI
    runs in an exported copy without .git)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        shutil.copytree(ROOT, dest, ignore=_NOT_SOURCES, dirs_exist_ok=True)
        return dest
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    return dest


def _build(kind: str, source: Path, out: Path) -> Path:
    """Build a wheel or sdist with the setuptools in this environment (no download)."""
    setuptools = pytest.importorskip("setuptools", reason="building needs setuptools")
    if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} here; the build needs >= 77")
    code = ("import sys, setuptools.build_meta as b; "
            f"print(b.build_{kind}(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tree = _copy_tree(tmp_path_factory.mktemp("tree"))
    out = tmp_path_factory.mktemp("dist")
    return {"wheel": _build("wheel", tree, out), "sdist": _build("sdist", tree, out),
            "out": out, "tmp": tmp_path_factory}


def _wheel_files(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        return set(z.namelist())


def test_wheel_contents_and_metadata(built):
    files = _wheel_files(built["wheel"])
    assert "gpuchain/py.typed" in files
    assert "gpuchain/cli.py" in files and "gpuchain/plotting.py" in files
    assert any(f.startswith("gpuchain/_kernels/") and f.endswith(".cu") for f in files)
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        if package != "gpuchain._kernels":
            folder = package.replace(".", "/") + "/"
            assert any(f.startswith(folder) and f.count("/") == folder.count("/")
                       for f in files), package
    assert not any(f.startswith(("tests/", "benchmarks/", "docs/")) for f in files)
    info = next(f for f in files if f.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(built["wheel"]) as z:
        meta = email.message_from_bytes(z.read(info))
        assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files)
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == PROJECT["requires-python"]
    assert set(meta.get_all("Classifier")) == set(PROJECT["classifiers"])
    # project URLs are published only once real addresses exist (see pyproject.toml)
    assert set(meta.get_all("Project-URL") or []) == {
        f"{k}, {v}" for k, v in PROJECT.get("urls", {}).items()}
    assert set(meta.get_all("Provides-Extra")) == set(PROJECT["optional-dependencies"])
    assert "gpuchain = gpuchain.cli:main" in entry_points


def test_sdist_has_no_tests_and_builds_the_same_wheel(built):
    with tarfile.open(built["sdist"]) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        tar.extractall(built["tmp"].mktemp("sdist"))
        unpacked = built["tmp"].getbasetemp() / "sdist0" / top
    inside = {n.split("/", 1)[1] for n in names if "/" in n}
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/")) for n in inside)
    assert {"LICENSE", "README.md", "pyproject.toml", "gpuchain/py.typed"} <= inside
    rebuilt = _build("wheel", unpacked, built["tmp"].mktemp("rebuilt"))
    assert _wheel_files(rebuilt) == _wheel_files(built["wheel"])


@pytest.mark.skipif(os.environ.get("GPUCHAIN_SLOW_TESTS") != "1",
                    reason="slow (a fresh virtualenv and a benchmark run): "
                           "set GPUCHAIN_SLOW_TESTS=1, as .ci/run does")
def test_installed_wheel_runs_the_command_line_outside_the_checkout(built):
    home = built["tmp"].mktemp("user")
    env_dir = home / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(built["wheel"])],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    exe = env_dir / "bin" / "gpuchain"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
             and not k.endswith("_NUM_THREADS")}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *argv], cwd=home, capture_output=True, text=True,
                              env=clean, timeout=900)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("gpuchain ")
    where = subprocess.run([str(py), "-c", "import gpuchain; print(gpuchain.__file__)"],
                           cwd=home, capture_output=True, text=True, env=clean)
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout
    # without threadpoolctl (not in this venv) the demo re-runs itself to pin BLAS
    # threads; the re-run must use the installed gpuchain, not a gpuchain/ folder that
    # happens to be in the working directory
    decoy = home / "project"
    (decoy / "gpuchain").mkdir(parents=True)
    (decoy / "gpuchain" / "__init__.py").write_text("raise ImportError('the decoy')\n")
    demo = subprocess.run([str(exe), "demo", "--steps", "3", "--points", "30", "--width", "4",
                           "--depth", "1"], cwd=decoy, capture_output=True, text=True,
                          env=clean, timeout=300)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "final loss" in demo.stdout and "not pinned" not in demo.stderr
    bench = run("bench", "engine", "--quick", "--out", str(home / "results"))
    assert bench.returncode == 0, (bench.stdout[-2000:], bench.stderr[-3000:])
    assert "Traceback" not in bench.stderr
    assert any((home / "results").iterdir())
