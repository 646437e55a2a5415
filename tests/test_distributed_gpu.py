"""gpuchain.distributed with CuPy arrays: NCCL at world size 1, and CuPy arrays over MPI
through host memory. Needs a GPU (skipped elsewhere); the second also needs mpiexec."""

from __future__ import annotations

import subprocess
import sys

import pytest
from distributed_launch import ROOT, SCRIPTS, env, launch, skip_reason

pytestmark = pytest.mark.gpu


CUPY = {"GPUCHAIN_BACKEND": "cupy"}


def test_nccl_path_at_world_size_one():
    pytest.importorskip("cupy")
    proc = subprocess.run([sys.executable, str(SCRIPTS / "gpu_checks.py"), "nccl"],
                          capture_output=True, text=True, timeout=300, env=env() | CUPY,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK nccl rank 0" in proc.stdout


def test_cupy_arrays_over_mpi_through_host_memory():
    pytest.importorskip("cupy")
    if skip_reason():
        pytest.skip(skip_reason())
    proc = launch(2, str(SCRIPTS / "gpu_checks.py"), "host", timeout=300, extra_env=CUPY)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "OK host rank 0" in out and "OK host rank 1" in out
