"""The array ``Tensor.data`` hands out: a view of the tensor's memory that stamps the
storage's version counter on every write through it.

``y = (x * w).sum(); w.data[...] = 0; y.backward()`` must not give a silently wrong
``x.grad``: the write goes through :class:`TrackedArray`, which stamps ``w``'s storage
(see :mod:`gpuchain.engine.versions`), and backward then refuses the stale saved value.

Seen: item and slice assignment, in-place operators (``+=`` ...), any ufunc with ``out=``
or ``ufunc.at``, the writing methods (``fill``, ``sort``, ``partition``, ``put``,
``setfield``, ``byteswap(inplace=True)``, ``resize``), NumPy's writing functions
(``np.copyto``, ``np.put``, ``np.place``, ``np.putmask``, ``np.put_along_axis``,
``np.fill_diagonal``) and any NumPy function given it as ``out=`` (``np.dot`` ...).
Views of a TrackedArray are TrackedArrays; copies and the results of computations are
plain ndarrays (new memory needs no tracking). Not seen: writes through an untracked
alias (``np.asarray(t.data)``, a DLPack consumer, ``.flat``, ``memoryview``,
``ctypes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.engine.versions import mark_written

__all__ = ["TrackedArray", "plain"]


def plain(arr: Any) -> Any:
    """``arr`` as a base-class ndarray view when it is a TrackedArray, else unchanged."""
    return arr.view(np.ndarray) if isinstance(arr, TrackedArray) else arr


def _copying_method(name: str) -> Any:
    base = getattr(np.ndarray, name)

    def method(self: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        return base(self.view(np.ndarray), *args, **kwargs)  # new memory: a plain array

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


def _writing_method(name: str) -> Any:
    base = getattr(np.ndarray, name)

    def method(self: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        try:
            return base(self, *args, **kwargs)
        finally:
            mark_written(self)

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


class TrackedArray(np.ndarray):
    """A NumPy view of tensor memory whose writes bump the storage's version counter."""

    fill = _writing_method("fill")
    sort = _writing_method("sort")
    partition = _writing_method("partition")
    put = _writing_method("put")
    setfield = _writing_method("setfield")
    resize = _writing_method("resize")
    copy = _copying_method("copy")
    astype = _copying_method("astype")
    flatten = _copying_method("flatten")
    __copy__ = _copying_method("__copy__")
    __deepcopy__ = _copying_method("__deepcopy__")

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            np.ndarray.__setitem__(self, key, plain(value))
        finally:
            mark_written(self)

    def byteswap(self, inplace: bool = False) -> Any:  # type: ignore[override]
        result = np.ndarray.byteswap(self, inplace)
        if inplace:
            mark_written(self)
        return result

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = tuple(plain(x) for x in inputs)
        out = kwargs.get("out")
        written = [o for o in out if isinstance(o, TrackedArray)] if out else []
        if out:
            kwargs["out"] = tuple(plain(o) for o in out)
        if method == "at" and isinstance(inputs[0], TrackedArray):
            written.append(inputs[0])
        try:
            result = getattr(ufunc, method)(*args, **kwargs)
        finally:
            for o in written:
                mark_written(o)
        if out:  # hand back the caller's own arrays (``a += 1`` keeps ``a`` tracked)
            return out[0] if len(out) == 1 else out
        return result

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        written = [kwargs["out"]] if "out" in kwargs else []  # np.dot(..., out=a) & co.
        if func in _WRITING_FUNCTIONS:
            written.append(args[0] if args else next(iter(kwargs.values()), None))
        try:
            return super().__array_function__(func, types, args, kwargs)
        finally:
            for target in written:
                for a in target if isinstance(target, tuple) else (target,):
                    if isinstance(a, TrackedArray):
                        mark_written(a)

    def __reduce__(self) -> Any:  # pickles as a plain ndarray
        return np.ndarray.__reduce__(self.view(np.ndarray))

    def __repr__(self) -> str:  # shown as the ndarray it is
        return repr(self.view(np.ndarray))


_WRITING_FUNCTIONS = frozenset([np.copyto, np.put, np.place, np.putmask, np.put_along_axis,
                                np.fill_diagonal])
