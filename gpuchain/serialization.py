"""gc.save / gc.load: Tensors, arrays and (nested) state dicts in .npz, with no pickled code.

Layout: one array per leaf ("a0", "a1", ...) plus "__manifest__", a UTF-8 JSON document
(stored as a uint8 array) that describes the structure. Scalars, strings and None live in
the manifest; NumPy scalars are stored as 0-d arrays so their dtype round-trips. Files
are written to a temporary file in the target directory and renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from gpuchain.backend import move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import SerializationError

FORMAT = "gpuchain-npz"
VERSION = 1
_MANIFEST = "__manifest__"



def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (Tensor, array, scalar, str, None, or dicts/lists of them) to ``path``
    atomically: a failure leaves any existing file untouched."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, arrays, "obj")
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[_MANIFEST] = np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gpuchain-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return {"k": "py", "v": obj}
    if isinstance(obj, int) and not isinstance(obj, bool):
        return {"k": "int", "v": str(obj)}  # any size, exactly
    if isinstance(obj, float):
        return {"k": "float", "v": obj.hex()}  # bit-exact, NaN and inf included
    if isinstance(obj, Tensor):
        return {"k": "tensor", "a": _store(obj.data, arrays, where),
                "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.generic):
        return {"k": "npscalar", "a": _store(np.asarray(obj), arrays, where)}
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return {"k": "array", "a": _store(obj, arrays, where)}
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise SerializationError(f"save: dict keys must be str; {where} has key "
                                         f"{key!r} ({type(key).__name__})")
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]")])
        return {"k": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"k": "list" if isinstance(obj, list) else "tuple",
                "items": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise SerializationError(f"save: cannot store {where} of type {type(obj).__name__}; "
                             "supported: Tensor, arrays, scalars, str, None, dict, list, tuple")


def _store(array: Any, arrays: dict[str, np.ndarray], where: str) -> str:
    a = np.asarray(move_array(array, "cpu"))
    if a.dtype.hasobject or a.dtype.fields is not None:
        raise SerializationError(f"save: {where} has dtype {a.dtype}, which needs pickling")
    key = f"a{len(arrays)}"
    arrays[key] = a
    return key


def load(path: str | os.PathLike[str]) -> Any:
    """Read an object written by ``save``; arrays come back as NumPy arrays (CPU) and
    Tensors as CPU Tensors. A missing, foreign or corrupted file raises SerializationError."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files") or _MANIFEST not in npz.files:
                raise SerializationError(f"load: {path} is not a gpuchain archive "
                                         "(no manifest)")
            arrays = {name: npz[name] for name in npz.files}
    except SerializationError:
        raise
    except FileNotFoundError as exc:
        raise SerializationError(f"load: no such file: {path}") from exc
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise SerializationError(f"load: {path} is corrupted or not a gpuchain archive "
                                 f"({type(exc).__name__}: {exc})") from exc
    try:
        manifest = json.loads(arrays.pop(_MANIFEST).tobytes().decode("utf-8"))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}")
        if manifest.get("version") != VERSION:
            raise ValueError(f"unsupported version {manifest.get('version')!r}")
        return _decode(manifest["tree"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise SerializationError(f"load: {path} has an invalid manifest "
                                 f"({type(exc).__name__}: {exc})") from exc


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    kind = node["k"]
    if kind == "py":
        return node["v"]
    if kind == "int":
        return int(node["v"])
    if kind == "float":
        return float.fromhex(node["v"])
    if kind == "array":
        return arrays[node["a"]]
    if kind == "npscalar":
        return arrays[node["a"]][()]
    if kind == "tensor":
        return Tensor(arrays[node["a"]], requires_grad=bool(node["requires_grad"]))
    if kind == "dict":
        return {str(k): _decode(v, arrays) for k, v in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    raise ValueError(f"unknown node kind {kind!r}")
