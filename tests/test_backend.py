"""Backend selection, array-module dispatch and the command line."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gpuchain as gc
from gpuchain import backend
from gpuchain.cli import main


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_auto_falls_back_to_numpy_and_keeps_the_reason():
    if not backend.cupy_unavailable_reason():
        pytest.skip("CuPy is usable here")
    r = _run("import gpuchain as gc, gpuchain.backend as b; print(gc.get_backend().name);"
             "print(b.selection_note())", GPUCHAIN_BACKEND="auto")
    assert r.returncode == 0, r.stderr
    name, note = r.stdout.splitlines()
    assert name == "numpy" and "chose numpy because" in note


def test_explicit_numpy_backend_and_unknown_name():
    r = _run("import gpuchain as gc; print(gc.get_backend().name)", GPUCHAIN_BACKEND="numpy")
    assert r.stdout.strip() == "numpy"
    with pytest.raises(ValueError, match="unknown backend"):
        gc.set_backend("tpu")


def test_import_works_without_cupy():
    # Hide CuPy even if it is installed: the package must still import and compute.
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import gpuchain as gc\n"
            "x = gc.tensor([1.0, 2.0], requires_grad=True); (x * x).sum().backward()\n"
            "print(gc.get_backend().name, x.grad.tolist())")
    r = _run(code, GPUCHAIN_BACKEND="auto")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "numpy [2.0, 4.0]"


def test_get_array_module_and_backend_object():
    b = gc.get_backend()
    assert b.name == "numpy" and b.xp is np
    assert gc.get_array_module(np.ones(2), gc.tensor([1.0])) is np
    assert gc.set_backend("numpy").name == "numpy"


def test_matmul_precision_setting():
    assert gc.get_matmul_precision() == "fp32"
    gc.set_matmul_precision("tf32")
    try:
        assert gc.get_matmul_precision() == "tf32"
    finally:
        gc.set_matmul_precision("fp32")
    with pytest.raises(ValueError, match="tf32"):
        gc.set_matmul_precision("bf16")


def test_cli_info_reports_backend_and_gpu_status(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend: numpy" in out and "GPU" in out


def test_cli_demo_seeds_match_closed_forms(capsys):
    assert main(["demo", "--seeds"]) == 0
    out = capsys.readouterr().out
    assert "closed form" in out and "worst relative error" in out
