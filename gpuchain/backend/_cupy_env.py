"""CuPy's environment, set before CuPy is first imported.

CuPy reads ``CUPY_CACHE_DIR`` and creates its kernel-cache directory *while it is being
imported* (CuPy 14: ``cupy.cuda.compiler`` makes its disk cache backend at module
level). With an unwritable ``$HOME`` and no ``CUPY_CACHE_DIR``, ``import cupy`` then
fails. :func:`apply_cache_dir` therefore runs when :mod:`gpuchain.backend` is imported
(before any gpuchain module can import CuPy), and :func:`import_cupy` applies it again
for code that reaches CuPy another way.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import ModuleType


def _writable_dir(path: Path) -> bool:
    """True when ``path`` exists writable, or can be created."""
    p = path
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


def choose_cache_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The ``CUPY_CACHE_DIR`` gpuchain should set, or None to leave CuPy's default.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default ``os.environ``).

    Returns
    -------
    str or None
        None when the user set ``CUPY_CACHE_DIR`` or when CuPy's default
        (``~/.cupy/kernel_cache``) is writable; otherwise a per-user directory under the
        system's temporary directory.
    """
    env = os.environ if environ is None else environ
    if env.get("CUPY_CACHE_DIR"):
        return None
    home = env.get("HOME") or os.path.expanduser("~")
    if home and _writable_dir(Path(home) / ".cupy" / "kernel_cache"):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"gpuchain-cupy-cache-{uid}")


def apply_cache_dir(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``CUPY_CACHE_DIR`` when :func:`choose_cache_dir` says so; return what was set.

    Parameters
    ----------
    environ : mutable mapping, optional
        The environment to update (default ``os.environ``).

    Returns
    -------
    str or None
        The directory set, or None when nothing needed setting.
    """
    env = os.environ if environ is None else environ
    chosen = choose_cache_dir(env)
    if chosen is not None:
        env["CUPY_CACHE_DIR"] = chosen
    return chosen


def import_cupy() -> ModuleType:
    """``import cupy`` with ``CUPY_CACHE_DIR`` applied first (a no-op once imported).

    Raises
    ------
    ImportError
        When CuPy is not installed; other errors CuPy raises at import pass through.
    """
    if "cupy" not in sys.modules:
        apply_cache_dir()
    import cupy

    return cupy
