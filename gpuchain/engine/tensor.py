"""The Tensor: an array (NumPy or CuPy) plus what reverse and forward mode need.

Arithmetic operators and array-style methods are installed by ``gpuchain.ops`` (which
imports this module), so the engine never imports the ops it is used by.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuchain.backend import (
    array_module_of,
    device_of,
    get_backend,
    get_default_dtype,
    is_cupy_array,
    move_array,
)
from gpuchain.errors import DTypeError


class Tensor:
    """An n-dimensional array that records the ops applied to it for differentiation."""

    __slots__ = ("data", "grad", "requires_grad", "_node", "_fw", "__weakref__")
    _is_tensor = True
    # NumPy must defer to Tensor: ``ndarray + Tensor`` calls Tensor.__radd__.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        if type(data) is not np.ndarray and not is_cupy_array(data):
            data = as_array(data)
        self.data = data
        self.grad: Tensor | None = None
        self._node = None
        self._fw = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: Any, node: Any) -> Tensor:
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t._node = node
        t._fw = None
        t.requires_grad = node is not None
        return t

    # --- properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def __len__(self) -> int:
        return len(self.data)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind not in "fc":
            raise DTypeError(
                f"only floating tensors can require grad; this one is {self.data.dtype} "
                f"with shape {tuple(self.data.shape)} (cast it with .astype('float32'))")
        if self._node is not None and not flag:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = flag
        return self

    # --- conversions ------------------------------------------------------------------
    def detach(self) -> Tensor:
        """The same data, cut from the graph (and from forward-mode tangents)."""
        return Tensor._from_op(self.data, None)

    def numpy(self) -> np.ndarray:
        return move_array(self.data, "cpu")

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, expected 1")
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``retain_graph`` defaults to ``create_graph``: a graph of the gradient refers
        back to the values this graph saved.
        """
        from gpuchain.engine.backward import backward

        if retain_graph is None:
            retain_graph = create_graph
        backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph)

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self._node is not None:
            extra += f", op={self._node.op.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __hash__(self) -> int:
        return id(self)


def as_array(data: Any, dtype: Any = None, xp: Any = None) -> Any:
    """Data -> array of the current backend, keeping array dtypes and turning Python
    scalars and lists into the default float dtype."""
    if xp is None:
        xp = get_backend().xp
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) or is_cupy_array(data):
        arr = data if dtype is None else data.astype(dtype, copy=False)
        if xp is not np and isinstance(arr, np.ndarray):
            arr = xp.asarray(arr)
        return arr
    if isinstance(data, np.generic):
        return xp.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if dtype is None:
        dtype = np.dtype(bool) if arr.dtype == bool else get_default_dtype()
    return xp.asarray(arr, dtype=dtype)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Make a leaf Tensor; NumPy/CuPy arrays keep their dtype, Python data becomes float32
    (see ``gc.set_default_dtype``)."""
    return Tensor(as_array(data, dtype), requires_grad=requires_grad)


def _scalar_dtype(value: Any, reference: np.dtype | None) -> np.dtype:
    """A Python scalar combined with a tensor takes the tensor's dtype where that keeps
    its value (float with float, int with int); otherwise the default float dtype."""
    if reference is not None:
        if reference.kind in "fc" or (isinstance(value, (bool, int)) and reference.kind in "iub"):
            return reference
    if isinstance(value, bool):
        return np.dtype(bool)
    return get_default_dtype()


def coerce_inputs(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    """Wrap scalars, lists and arrays given to an op as constant Tensors."""
    ref = next((x for x in inputs if isinstance(x, Tensor)), None)
    ref_dtype = ref.dtype if ref is not None else None
    xp = array_module_of(ref.data) if ref is not None else None
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            out.append(x)
        elif isinstance(x, (int, float, bool)) and not isinstance(x, np.generic):
            out.append(Tensor(as_array(x, _scalar_dtype(x, ref_dtype), xp)))
        else:
            out.append(Tensor(as_array(x, None, xp if not is_cupy_array(x) else None)))
    return tuple(out)
