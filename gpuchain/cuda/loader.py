"""Locate, preprocess and (lazily) compile the CUDA sources in ``kernels/``.

Everything except :func:`get_module` is pure Python and works without CuPy.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# choose_cache_dir / apply_cache_dir live in gpuchain.backend (they must run before CuPy's
# first import); re-exported here, where the kernel loader's callers look for them.
from gpuchain.backend._cupy_env import apply_cache_dir, choose_cache_dir, import_cupy  # noqa: F401
from gpuchain.errors import BackendUnavailableError

_PKG_DIR = Path(__file__).resolve().parents[1]  # .../gpuchain
ENV_KERNEL_DIR = "GPUCHAIN_KERNEL_DIR"
KERNEL_FILES = ("dense.cu", "softmax_xent.cu", "optim.cu", "layernorm.cu")

FLOAT_TYPES = ("float", "double", "__half")
LABEL_TYPES = ("int", "long long")
# (parameter type, optimizer-state type)
OPTIM_TYPES = (("float", "float"), ("double", "double"), ("__half", "__half"), ("__half", "float"))

NVRTC_OPTIONS = ("--std=c++17",)


def kernel_dir_candidates() -> list[Path]:
    """Where the kernel sources may live, in order of preference.

    $GPUCHAIN_KERNEL_DIR, then ``gpuchain/_kernels`` (installed wheel), then
    ``<repo root>/kernels`` (source checkout). The wheel location goes first so
    that an unrelated ``site-packages/kernels`` can never shadow it.
    """
    out = []
    env = os.environ.get(ENV_KERNEL_DIR)
    if env:
        out.append(Path(env))
    out.append(_PKG_DIR / "_kernels")
    out.append(_PKG_DIR.parent / "kernels")
    return out


def kernel_dir() -> Path:
    """The first candidate directory that holds ``common.cuh``."""
    cands = kernel_dir_candidates()
    for cand in cands:
        if (cand / "common.cuh").is_file():
            return cand
    raise BackendUnavailableError(
        "gpuchain CUDA kernels not found; looked for common.cuh in: "
        + ", ".join(str(c) for c in cands)
    )


_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
_PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\s*$")


def inline_includes(path: str | os.PathLike[str]) -> str:
    """Return the text of ``path`` with every local ``#include "..."`` inlined.

    Headers are resolved relative to the including file, inlined recursively
    and at most once each (``#pragma once`` semantics, which also breaks
    cycles). ``#include <...>`` lines are left for the compiler.
    """
    return "".join(_inline(Path(path).resolve(), set(), None))


def _inline(path: Path, seen: set[Path], includer: str | None) -> list[str]:
    if path in seen:
        return []
    seen.add(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = f" (included from {includer})" if includer else ""
        raise FileNotFoundError(f"CUDA source {path} not found{where}") from None
    # #line keeps compiler messages pointing at the original file and line.
    out = [f'#line 1 "{path.name}"\n']
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        m = _INCLUDE_RE.match(line)
        if m:
            out.extend(_inline((path.parent / m.group(1)).resolve(), seen, f"{path}:{lineno}"))
            out.append(f'#line {lineno + 1} "{path.name}"\n')
        elif _PRAGMA_ONCE_RE.match(line):
            out.append("\n")
        else:
            out.append(line if line.endswith("\n") else line + "\n")
    return out


_ACT_ROW_RE = re.compile(r"^\s*X\(\s*(\d+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)")
_SAVES_RE = re.compile(
    r"struct\s+(\w+)\s*\{(?:\s*//[^\n]*)*\s*static\s+constexpr\s+bool\s+kSavesOutput\s*=\s*(\w+)"
)


def parse_activation_table(common_text: str) -> tuple[tuple[str, int, bool], ...]:
    """Parse ``GC_ACTIVATION_TABLE`` in common.cuh: ((name, id, saves_output), ...)."""
    start = common_text.find("#define GC_ACTIVATION_TABLE")
    if start < 0:
        raise ValueError("GC_ACTIVATION_TABLE not found in common.cuh")
    saves = {m.group(1): m.group(2) == "true" for m in _SAVES_RE.finditer(common_text)}
    rows = []
    for line in common_text[start:].splitlines()[1:]:
        m = _ACT_ROW_RE.match(line)
        if not m:
            break
        ident, name, struct = int(m.group(1)), m.group(2), m.group(3)
        if struct not in saves:
            raise ValueError(f"activation {name}: struct {struct} has no kSavesOutput")
        rows.append((name, ident, saves[struct]))
        if not line.rstrip().endswith("\\"):
            break
    if [r[1] for r in rows] != list(range(len(rows))):
        raise ValueError("GC_ACTIVATION_TABLE ids must be 0, 1, 2, ... in order")
    return tuple(rows)


def activation_table() -> tuple[tuple[str, int, bool], ...]:
    return parse_activation_table((kernel_dir() / "common.cuh").read_text(encoding="utf-8"))


def name_expressions(
    filename: str, dtypes: Iterable[str] | None = None, n_activations: int | None = None
) -> list[str]:
    """Every template instantiation of one kernel file, optionally only those whose
    first template argument (the storage type) is in ``dtypes`` (C names, e.g. "__half")."""
    if n_activations is None:
        n_activations = len(activation_table())
    acts = range(n_activations)
    types = [t for t in FLOAT_TYPES if dtypes is None or t in set(dtypes)]
    if filename == "dense.cu":
        names = []
        for kernel in ("bias_act_fwd", "act_grad_bias", "dense_jvp"):
            names += [f"{kernel}<{t}, {a}>" for t in types for a in acts]
        names += [f"column_sum_finalize<{t}>" for t in types]
        return names
    if filename == "softmax_xent.cu":
        return [
            f"{k}<{t}, {lab}>"
            for k in ("softmax_xent_fwd", "softmax_xent_bwd")
            for t in types
            for lab in LABEL_TYPES
        ]
    if filename == "optim.cu":
        return [
            f"{k}<{t}, {s}>"
            for k in ("sgd_step", "adam_step")
            for t, s in OPTIM_TYPES
            if t in types
        ]
    if filename == "layernorm.cu":
        return [
            f"{k}<{t}>"
            for k in ("layernorm_fwd", "layernorm_bwd", "layernorm_bwd_finalize")
            for t in types
        ]
    raise ValueError(f"unknown kernel file {filename!r}; known: {', '.join(KERNEL_FILES)}")


def cuda_include_dirs() -> list[str]:
    """Directories holding cuda_fp16.h from the NVIDIA pip wheels or CUDA_PATH."""
    found: list[str] = []
    try:
        import nvidia  # namespace package from nvidia-cuda-runtime (CUDA 12: cuda_runtime/,
        # CUDA 13: cu13/)

        roots: Iterable[str] = list(nvidia.__path__)
    except ImportError:
        roots = []
    for root in roots:
        for header in sorted(Path(root).glob("*/include/cuda_fp16.h")):
            found.append(str(header.parent))
    for var in ("CUDA_PATH", "CUDA_HOME"):
        base = os.environ.get(var)
        if base and (Path(base) / "include" / "cuda_fp16.h").is_file():
            found.append(str(Path(base) / "include"))
    if Path("/usr/local/cuda/include/cuda_fp16.h").is_file():
        found.append("/usr/local/cuda/include")
    return list(dict.fromkeys(found))


_modules: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def get_module(filename: str, ctype: str) -> Any:
    """The compiled ``cupy.RawModule`` holding every instantiation of ``filename``
    for storage type ``ctype`` ("float", "double" or "__half"); compiled once per
    process. CuPy's own disk cache keys on the inlined source text."""
    key = (filename, ctype)
    with _lock:
        mod = _modules.get(key)
        if mod is not None:
            return mod
        try:
            cupy = import_cupy()
        except ImportError as exc:
            raise BackendUnavailableError(f"CUDA kernel {filename}: CuPy is not installed") from exc
        code = inline_includes(kernel_dir() / filename)
        options = NVRTC_OPTIONS + tuple(f"-I{d}" for d in cuda_include_dirs()[:1])
        mod = cupy.RawModule(
            code=code, options=options, name_expressions=name_expressions(filename, [ctype])
        )
        _modules[key] = mod
        return mod


def get_function(filename: str, name_expression: str) -> Any:
    """One kernel instantiation, e.g. ``get_function("dense.cu", "bias_act_fwd<float, 1>")``."""
    ctype = name_expression[name_expression.index("<") + 1 :].split(",")[0].strip(" >")
    return get_module(filename, ctype).get_function(name_expression)
