"""gc.save / gc.load: Tensors, arrays and (nested) state dicts, with no pickled code.

Formats
-------
``"npz"`` (default): one array per leaf ("a0", "a1", ...) plus "__manifest__", a UTF-8
JSON document (stored as a uint8 array) describing the structure. Scalars, strings and
None live in the manifest; NumPy scalars are stored as 0-d arrays so their dtype
round-trips. A checkpoint is one call:
``gc.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
"scheduler": sched.state_dict()}, path)``.

``"safetensors"``: a flat ``{name: array}`` mapping (model weights; a state dict's
``"*._extra_state"`` entries, such as Dropout generator states, are left out) in the
safetensors layout (8-byte header length, JSON header, raw little-endian data), readable by the
``safetensors`` package and other frameworks. Written and read here without that
package.

Writes go to a temporary file next to the target (created with the user's umask) and are
renamed into place, so a failure or a kill leaves any existing file untouched; temporary
files left by earlier killed saves to the same path are removed by the next save.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from gpuchain.backend import move_array
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import SerializationError
from gpuchain.nn.torch_compat import TorchLoadReport, load_torch_state_dict

__all__ = ["SerializationError", "TorchLoadReport", "load", "load_torch_state_dict", "save"]

FORMAT = "gpuchain-npz"
VERSION = 1
_MANIFEST = "__manifest__"
MAX_DEPTH = 100  # nesting depth of saved containers (dicts, lists, tuples)
_TMP_TAG = ".gpuchain-tmp-"


def save(obj: Any, path: str | os.PathLike[str], format: str = "npz") -> None:  # noqa: A002
    """Write ``obj`` to ``path`` atomically: a failure leaves any existing file untouched.

    Parameters
    ----------
    obj : Tensor, array, scalar, str, None, or dicts/lists/tuples of them
        For ``format="safetensors"``: a flat mapping of str names to arrays or Tensors.
    path : str or os.PathLike
        Target file.
    format : {"npz", "safetensors"}
    """
    if format == "npz":
        payload = _npz_payload(obj)
    elif format == "safetensors":
        payload = _safetensors_payload(obj)
    else:
        raise SerializationError(f"save: unknown format {format!r}; expected 'npz' or "
                                 "'safetensors'")
    _atomic_write(os.fspath(path), payload)


def _npz_payload(obj: Any) -> Any:
    arrays: dict[str, Any] = {}  # Any: np.savez(**arrays) would clash with allow_pickle
    try:
        tree = _encode(obj, arrays, "obj", 0)
    except RecursionError:
        raise SerializationError("save: the object is nested too deeply") from None
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[_MANIFEST] = np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8)
    return lambda f: np.savez(f, **arrays)


def _atomic_write(path: str, write: Any) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _remove_stale_temporaries(directory, base)
    tmp = os.path.join(directory, f".{base}{_TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}")
    # os.open with 0o666 applies the user's umask (mkstemp would force 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete temporaries of earlier saves to the same path whose process is gone."""
    prefix = f".{base}{_TMP_TAG}"
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _alive(int(pid_text)):
            continue  # another live process is saving to the same path right now
        if pid_text.isdigit() and int(pid_text) == os.getpid():
            continue  # a concurrent save in this process (another thread)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise SerializationError(f"save: {where} is nested deeper than {MAX_DEPTH} levels")
    if obj is None or isinstance(obj, (bool, str)):
        return {"k": "py", "v": obj}
    if isinstance(obj, int) and not isinstance(obj, bool):
        return {"k": "int", "v": str(obj)}  # any size, exactly
    if isinstance(obj, float):
        return {"k": "float", "v": obj.hex()}  # bit-exact, NaN and inf included
    if isinstance(obj, Tensor):
        return {"k": "tensor", "a": _store(obj._data, arrays, where),
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
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]", depth + 1)])
        return {"k": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"k": "list" if isinstance(obj, list) else "tuple",
                "items": [_encode(v, arrays, f"{where}[{i}]", depth + 1)
                          for i, v in enumerate(obj)]}
    hint = " (save its state_dict())" if hasattr(obj, "state_dict") else ""
    raise SerializationError(f"save: cannot store {where} of type {type(obj).__name__}{hint}; "
                             "supported: Tensor, arrays, scalars, str, None, dict, list, tuple")


def _store(array: Any, arrays: dict[str, np.ndarray], where: str) -> str:
    a = np.asarray(move_array(array, "cpu"))
    if a.dtype.hasobject or a.dtype.fields is not None:
        raise SerializationError(f"save: {where} has dtype {a.dtype}, which needs pickling")
    key = f"a{len(arrays)}"
    arrays[key] = a
    return key


def load(path: str | os.PathLike[str]) -> Any:
    """Read an object written by ``save`` (either format, detected from the file); arrays
    come back as NumPy arrays (CPU) and Tensors as CPU Tensors. A missing, foreign or
    corrupted file raises SerializationError.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``gc.save`` (npz or safetensors).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError as exc:
        raise SerializationError(f"load: no such file: {path}") from exc
    except OSError as exc:
        raise SerializationError(f"load: cannot read {path} ({exc})") from exc
    if not head.startswith(b"PK"):
        if len(head) == 8 and 2 <= int.from_bytes(head, "little") < (1 << 27):
            return _load_safetensors(path)
        kind = "a .npy array file" if head.startswith(b"\x93NUMPY") else "not a zip archive"
        raise SerializationError(f"load: {path} is corrupted or not a gpuchain archive "
                                 f"({kind})")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise SerializationError(f"load: {path} is not a gpuchain archive")
        with npz:
            if _MANIFEST not in npz.files:
                raise SerializationError(f"load: {path} is not a gpuchain archive "
                                         "(no manifest)")
            arrays = {name: npz[name] for name in npz.files}
    except SerializationError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise SerializationError(f"load: {path} is corrupted or not a gpuchain archive "
                                 f"({type(exc).__name__}: {exc})") from exc
    try:
        manifest = json.loads(arrays.pop(_MANIFEST).tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("unknown format")
        if manifest.get("version") != VERSION:
            raise ValueError(f"unsupported version {manifest.get('version')!r}")
        return _decode(manifest["tree"], arrays, 0)
    except SerializationError:
        raise
    except RecursionError:
        raise SerializationError(f"load: {path} has a manifest nested too deeply") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise SerializationError(f"load: {path} has an invalid manifest "
                                 f"({type(exc).__name__}: {exc})") from exc


def _decode(node: Any, arrays: dict[str, np.ndarray], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise SerializationError(f"load: the manifest is nested deeper than {MAX_DEPTH} levels")
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
        return {str(k): _decode(v, arrays, depth + 1) for k, v in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays, depth + 1) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    raise ValueError(f"unknown node kind {kind!r}")


# --- safetensors ------------------------------------------------------------------------------

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
              "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8",
              "BOOL": "?"}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def _safetensors_payload(obj: Any) -> Any:
    if not isinstance(obj, Mapping):
        raise SerializationError(f"save(format='safetensors'): expected a flat mapping of "
                                 f"names to arrays, got {type(obj).__name__}")
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name, value in obj.items():
        if isinstance(name, str) and name.rpartition(".")[2] == "_extra_state":
            continue  # module extra state is not weights
        if not isinstance(name, str) or name == "__metadata__":
            raise SerializationError(f"save(format='safetensors'): invalid name {name!r}")
        a = value._data if isinstance(value, Tensor) else value
        if not (hasattr(a, "shape") and hasattr(a, "dtype")):
            raise SerializationError(f"save(format='safetensors'): {name!r} is a "
                                     f"{type(value).__name__}, not an array or Tensor")
        a = np.ascontiguousarray(move_array(a, "cpu"))
        code = _ST_NAMES.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if code is None:
            raise SerializationError(f"save(format='safetensors'): {name!r} has dtype "
                                     f"{a.dtype}; supported: {sorted(_ST_DTYPES)}")
        raw = a.astype(_ST_DTYPES[code], copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes

    def write(f: Any) -> None:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for raw in blobs:
            f.write(raw)

    return write


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n).decode("utf-8"))
            data = f.read()
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        out = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(_ST_DTYPES[entry["dtype"]])
            lo, hi = (int(v) for v in entry["data_offsets"])
            shape = tuple(int(s) for s in entry["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            if not 0 <= lo <= hi <= len(data) or hi - lo != count * dtype.itemsize:
                raise ValueError(f"{name!r}: data offsets {lo}..{hi} do not fit shape {shape}")
            out[name] = np.frombuffer(data[lo:hi], dtype=dtype).reshape(shape).astype(
                dtype.newbyteorder("="))
        return out
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise SerializationError(f"load: {path} is neither a gpuchain archive nor a valid "
                                 f"safetensors file ({type(exc).__name__}: {exc})") from exc
