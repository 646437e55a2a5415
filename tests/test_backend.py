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
    assert main(["demo", "--examples"]) == 0
    out = capsys.readouterr().out
    assert "closed form" in out and "worst relative error" in out


# --- CUPY_CACHE_DIR before CuPy's first import ----------------------------------------

FAKE_CUPY = '''
import os
# like CuPy 14 (cupy.cuda.compiler): the disk cache directory is created at import
cache = os.environ.get("CUPY_CACHE_DIR", os.path.expanduser("~/.cupy/kernel_cache"))
os.makedirs(cache, exist_ok=True)
CACHE_AT_IMPORT = cache
def is_available():
    return False
'''


def _unwritable_home(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    return str(blocker / "home")  # under a regular file: never creatable, even by root


def _env_without_cache(**extra):
    env = {k: v for k, v in os.environ.items() if k != "CUPY_CACHE_DIR"}
    return env | extra


def test_cache_dir_is_set_before_cupy_is_first_imported(tmp_path):
    fake = tmp_path / "site" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_CUPY)
    env = _env_without_cache(HOME=_unwritable_home(tmp_path), GPUCHAIN_BACKEND="auto",
                             PYTHONPATH=os.pathsep.join([str(tmp_path / "site"),
                                                         os.environ.get("PYTHONPATH", "")]))
    code = ("import gpuchain as gc, gpuchain.backend as b, cupy, os\n"
            "print(gc.get_backend().name); print(b.cupy_unavailable_reason())\n"
            "print(cupy.CACHE_AT_IMPORT == os.environ['CUPY_CACHE_DIR'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    name, reason, same = r.stdout.strip().splitlines()
    assert name == "numpy" and "no usable CUDA device" in reason, reason
    assert same == "True"


def test_user_cache_dir_is_left_alone(tmp_path):
    mine = str(tmp_path / "mine")
    env = _env_without_cache(HOME=_unwritable_home(tmp_path), CUPY_CACHE_DIR=mine)
    r = subprocess.run([sys.executable, "-c", "import gpuchain, os; "
                        "print(os.environ['CUPY_CACHE_DIR'])"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == mine


def test_real_cupy_imports_with_an_unwritable_home(tmp_path):
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed (pip install cupy-cuda13x to run this check)")
    env = _env_without_cache(HOME=_unwritable_home(tmp_path), GPUCHAIN_BACKEND="auto")
    code = ("import gpuchain.backend as b; print(b.cupy_unavailable_reason())\n"
            "import cupy, os; print(cupy.__version__, os.environ['CUPY_CACHE_DIR'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    reason, versions = r.stdout.strip().splitlines()
    assert "could not be imported" not in reason, reason
    assert "gpuchain-cupy-cache" in versions
