"""Helpers for tests that launch ``mpiexec``: where it is, why a test must skip, the env."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "distributed_scripts"


def mpiexec() -> str | None:
    """The mpiexec next to this Python (the ``mpich`` wheel puts it there), else on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def skip_reason() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'gpuchain[mpi]')"
    if mpiexec() is None:
        return "no mpiexec found (pip install 'gpuchain[mpi]' installs MPICH's)"
    return ""


needs_mpi = pytest.mark.skipif(bool(skip_reason()), reason=skip_reason() or "ok")


def env() -> dict[str, str]:
    """The child environment: this checkout first on the path, NumPy, one BLAS thread."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return os.environ | {"PYTHONPATH": path, "GPUCHAIN_BACKEND": "numpy",
                         "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                         "MKL_NUM_THREADS": "1"}


def launch(n: int, *args: str, timeout: float = 120,
           extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``mpiexec -n n python args...`` with a bounded wall-clock time."""
    cmd = [mpiexec(), "-n", str(n), sys.executable, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env() | (extra_env or {}), cwd=ROOT)
