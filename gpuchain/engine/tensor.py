"""The Tensor: an array (NumPy or CuPy) plus what reverse and forward mode need.

The class declares its whole surface. Arithmetic and array methods delegate to the
public op functions of :mod:`gpuchain.ops` (imported on first use, so the engine does
not import the ops layer at import time); the reverse pass needs none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuchain.backend import (
    array_module_of,
    device_of,
    get_backend,
    get_default_dtype,
    is_cupy_array,
    move_array,
)
from gpuchain.engine.tracked import TrackedArray, plain
from gpuchain.engine.versions import mark_written, version_of
from gpuchain.errors import DTypeError, ShapeError

if TYPE_CHECKING:  # engine.op imports this module
    from gpuchain.engine.op import AccumulateGrad, Node


class _Lazy:
    """Stands in for a module of the ops layer until its first use, then replaces itself
    (the engine does not import the ops layer at import time)."""

    def __init__(self, global_name: str, module: str) -> None:
        self._names = (global_name, module)

    def __getattr__(self, name: str) -> Any:
        import importlib

        global_name, module = self._names
        mod = importlib.import_module(module)
        globals()[global_name] = mod
        return getattr(mod, name)


_ops: Any = _Lazy("_ops", "gpuchain.ops")
_ew: Any = _Lazy("_ew", "gpuchain.ops.elementwise")  # the operators' primitives
_inplace: Any = _Lazy("_inplace", "gpuchain.engine.inplace")


def _shape_args(args: tuple[Any, ...]) -> Any:
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` alike."""
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        return args[0]
    return args


class Tensor:
    """An n-dimensional array that records the ops applied to it for differentiation.

    Parameters
    ----------
    data : array_like
        A NumPy or CuPy array (kept as is, not copied) or Python data.
    requires_grad : bool
        Whether reverse mode should compute a gradient for this tensor (leaves only;
        floating dtypes only).

    Attributes
    ----------
    grad : Tensor or None
        The accumulated gradient of a leaf after ``backward()``.
    requires_grad : bool
        Whether ops on this tensor are recorded for reverse mode.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_node", "_acc", "_fw", "__weakref__")
    _is_tensor = True
    # NumPy must defer to Tensor: ``ndarray + Tensor`` calls Tensor.__radd__.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        if type(data) is not np.ndarray and not is_cupy_array(data):
            data = as_array(data)
        self._data = data
        self.grad: Tensor | None = None
        self._node: Node | None = None
        self._acc: AccumulateGrad | None = None
        self._fw: dict[int, Tensor] | None = None  # forward-mode level -> tangent
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: Any, node: Any) -> Tensor:
        t = cls.__new__(cls)
        t._data = data
        t.grad = None
        t._node = node
        t._acc = None
        t._fw = None
        t.requires_grad = node is not None
        return t

    # --- properties -------------------------------------------------------------------
    @property
    def data(self) -> Any:
        """The tensor's array, sharing its memory (not differentiable).

        On NumPy it is a :class:`~gpuchain.engine.tracked.TrackedArray` view: a write
        through it (``w.data[...] = 0``, ``w.data -= g``, ``np.copyto(w.data, v)``) bumps
        the version counter, so a backward through an op that saved ``w`` earlier raises
        instead of using the changed value. On CuPy it is the array itself (writes are not
        tracked there; use the in-place Tensor methods). Assigning ``t.data = array``
        replaces the array and counts as a write.
        """
        arr = self._data
        return arr.view(TrackedArray) if type(arr) is np.ndarray else arr

    @data.setter
    def data(self, value: Any) -> None:
        arr = as_array(value, xp=array_module_of(self._data))
        if self.requires_grad and arr.dtype.kind != "f":
            raise DTypeError(f"Tensor.data: a tensor that requires grad needs floating data, "
                             f"got {arr.dtype}{tuple(arr.shape)}")
        self._data = arr
        mark_written(arr)

    @property
    def _version(self) -> int:
        """The version counter of this tensor's storage (bumped by every in-place write)."""
        return version_of(self._data)

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self._data.size

    @property
    def device(self) -> str:
        """``"cpu"`` (NumPy) or ``"cuda"`` (CuPy)."""
        return device_of(self._data)

    @property
    def is_leaf(self) -> bool:
        """True for a tensor no recorded op produced (its gradient lands in ``.grad``)."""
        return self._node is None

    @property
    def at(self) -> Any:
        """Out-of-place index updates in JAX's style (``x.at[idx].set(v)``, ``.add(v)``,
        ``.get()``), returning new Tensors, differentiable in ``x`` and ``v``."""
        from gpuchain.ops.indexing import At

        return At(self)

    @property
    def T(self) -> Tensor:
        """The transpose (axes reversed)."""
        return _ops.transpose(self)

    # --- autograd ---------------------------------------------------------------------
    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (leaves only) and return the tensor."""
        if flag and self._data.dtype.kind != "f":
            raise DTypeError(
                f"only floating tensors can require grad; this one is {self._data.dtype} "
                f"with shape {tuple(self._data.shape)} (cast it with .astype('float32'))")
        if self._node is not None and not flag:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = flag
        return self

    def detach(self) -> Tensor:
        """The same data, cut from the graph (and from forward-mode tangents)."""
        return Tensor._from_op(self._data, None)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    def backward(self, grad: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        Parameters
        ----------
        grad : array_like, optional
            The cotangent seeding the pass; implied as 1 for a one-element output.
        retain_graph : bool, optional
            Keep the saved values so the graph can be differentiated again; defaults to
            ``create_graph`` (a graph of the gradient refers back to them).
        create_graph : bool
            Record the backward pass itself, so the gradients are differentiable.
        """
        from gpuchain.engine.backward import backward

        if retain_graph is None:
            retain_graph = create_graph
        backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, hook: Any) -> Any:
        """Call ``hook(grad)`` each time a reverse pass has computed this tensor's gradient.

        ``grad`` is the total over every path (a Tensor, with the cotangent's batch axes
        in vectorized transforms). A hook that returns a Tensor or array of the same shape
        replaces the gradient for the rest of the pass. Returns a handle whose
        ``remove()`` unregisters the hook. As ``torch.Tensor.register_hook``.
        """
        from gpuchain.engine.hooks import register_hook

        return register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()`` (leaves
        keep theirs anyway)."""
        from gpuchain.engine.hooks import retain_grad

        retain_grad(self)

    @property
    def grad_fn(self) -> Node | None:
        """The recorded op that produced this tensor (None for a leaf or a constant)."""
        return self._node

    # --- conversions ------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array: for a CPU tensor its own memory (writes are tracked,
        as through :attr:`data`); for a CuPy tensor a copy from the GPU."""
        arr = self._data
        return arr.view(TrackedArray) if type(arr) is np.ndarray else move_array(arr, "cpu")

    def item(self) -> Any:
        """The value of a one-element tensor as a Python scalar."""
        if self._data.size != 1:
            raise ValueError(f"item(): tensor has {self._data.size} elements, expected 1")
        return self._data.reshape(()).item()

    def tolist(self) -> Any:
        """The data as nested Python lists."""
        return self.numpy().tolist()

    def to(self, device: str) -> Tensor:
        """A copy on ``device`` (``"cpu"`` or ``"cuda"``), differentiable; self if already there."""
        return _ops.to(self, device)

    def astype(self, dtype: Any) -> Tensor:
        """The tensor cast to ``dtype`` (gradients flow back cast to the original dtype)."""
        return _ops.astype(self, dtype)

    def copy(self) -> Tensor:
        """A differentiable copy with its own array."""
        return _ops.copy(self)

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
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError(f"only integer tensors of one element can be used as an index; "
                            f"this one is {self._data.dtype}{tuple(self._data.shape)}")
        return int(self.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # NumPy hands the caller a base-class array anyway: no tracked view to make
        arr = self._data if type(self._data) is np.ndarray else move_array(self._data, "cpu")
        return arr if dtype is None else arr.astype(dtype)

    def __hash__(self) -> int:
        return id(self)

    # --- sequence protocol ------------------------------------------------------------
    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._data.shape[0]):
            yield _ops.getitem(self, i)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value`` in place (leaves under ``no_grad``, or tensors that need no
        grad); see :mod:`gpuchain.engine.inplace`."""
        _inplace.setitem(self, index, value)

    # --- in-place updates (PyTorch's rules; each bumps the version counter) --------------
    def __iadd__(self, other: Any) -> Tensor:
        return _inplace.iadd(self, other)

    def __isub__(self, other: Any) -> Tensor:
        return _inplace.isub(self, other)

    def __imul__(self, other: Any) -> Tensor:
        return _inplace.imul(self, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace.idiv(self, other)

    def zero_(self) -> Tensor:
        """Set every element to 0 in place and return the tensor."""
        return _inplace.zero_(self)

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` in place and return the tensor."""
        return _inplace.fill_(self, value)

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape) into this tensor in place."""
        return _inplace.copy_(self, src)

    # --- interchange ------------------------------------------------------------------
    def __dlpack__(self, *, stream: Any = None, max_version: Any = None,
                   dl_device: Any = None, copy: bool | None = None) -> Any:
        """The DLPack capsule of the data (memory shared; the graph is not exported)."""
        from gpuchain.interop import tensor_dlpack

        return tensor_dlpack(self, stream=stream, max_version=max_version,
                             dl_device=dl_device, copy=copy)

    def __dlpack_device__(self) -> tuple[int, int]:
        """(DLPack device type, device id) of the data."""
        from gpuchain.interop import tensor_dlpack_device

        return tensor_dlpack_device(self)

    # --- arithmetic -------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _ew.add_p(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ew.add_p(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ew.sub_p(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ew.sub_p(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ew.mul_p(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ew.mul_p(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ew.div_p(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ew.div_p(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return _ops.mod(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return _ops.mod(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ew.power_p(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ew.power_p(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ew.neg_p(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    # --- comparisons (not differentiable: boolean tensors) -------------------------------
    def __lt__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self._data < _raw(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self._data <= _raw(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self._data > _raw(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self._data >= _raw(other))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self._data == _raw(other))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self._data != _raw(other))

    # --- array methods (each is the gpuchain function of the same name) -------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis``; see :func:`gpuchain.sum`."""
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis``; see :func:`gpuchain.mean`."""
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; see :func:`gpuchain.max`."""
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; see :func:`gpuchain.min`."""
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Product over ``axis``; see :func:`gpuchain.prod`."""
        return _ops.prod(self, axis=axis, keepdims=keepdims)

    def var(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
        """Variance over ``axis``; see :func:`gpuchain.var`."""
        return _ops.var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
        """Standard deviation over ``axis``; see :func:`gpuchain.std`."""
        return _ops.std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis: int | None = None) -> Tensor:
        """Index of the maximum (not differentiable); see :func:`gpuchain.argmax`."""
        return _ops.argmax(self, axis=axis)

    def argmin(self, axis: int | None = None) -> Tensor:
        """Index of the minimum (not differentiable); see :func:`gpuchain.argmin`."""
        return _ops.argmin(self, axis=axis)

    def cumsum(self, axis: int | None = None) -> Tensor:
        """Cumulative sum; see :func:`gpuchain.cumsum`."""
        return _ops.cumsum(self, axis=axis)

    def cumprod(self, axis: int | None = None) -> Tensor:
        """Cumulative product; see :func:`gpuchain.cumprod`."""
        return _ops.cumprod(self, axis=axis)

    def all(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Whether all elements are true (not differentiable)."""
        return _ops.all(self, axis=axis, keepdims=keepdims)

    def any(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Whether any element is true (not differentiable)."""
        return _ops.any(self, axis=axis, keepdims=keepdims)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """log(sum(exp(x))) over ``axis``, computed stably; see :func:`gpuchain.logsumexp`."""
        return _ops.logsumexp(self, axis=axis, keepdims=keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        """Softmax along ``axis``; see :func:`gpuchain.softmax`."""
        return _ops.softmax(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """Log-softmax along ``axis``; see :func:`gpuchain.log_softmax`."""
        return _ops.log_softmax(self, axis=axis)

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (``t.reshape(2, 3)`` or ``t.reshape((2, 3))``)."""
        return _ops.reshape(self, _shape_args(shape))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reversed when none are given)."""
        axes = _shape_args(axes)
        return _ops.transpose(self, axes if axes != () else None)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes."""
        return _ops.swapaxes(self, axis1, axis2)

    def broadcast_to(self, shape: Any) -> Tensor:
        """Broadcast to ``shape``; gradients are summed back."""
        return _ops.broadcast_to(self, shape)

    def flatten(self) -> Tensor:
        """A 1-D copy of the elements."""
        return _ops.ravel(self)

    def ravel(self) -> Tensor:
        """The elements as a 1-D tensor."""
        return _ops.ravel(self)

    def squeeze(self, axis: Any = None) -> Tensor:
        """Drop axes of length 1."""
        return _ops.squeeze(self, axis=axis)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        """Limit the values to [min, max]; see :func:`gpuchain.clip`."""
        return _ops.clip(self, min, max)

    def dot(self, other: Any) -> Tensor:
        """Dot product (NumPy's ``dot``)."""
        return _ops.dot(self, other)

    def sort(self, axis: int = -1) -> Tensor:
        """Sorted copy along ``axis`` (differentiable: gradients follow the permutation)."""
        return _ops.sort(self, axis=axis)

    def argsort(self, axis: int = -1) -> Tensor:
        """Indices that sort along ``axis`` (not differentiable)."""
        return _ops.argsort(self, axis=axis)

    def repeat(self, repeats: Any, axis: int | None = None) -> Tensor:
        """Repeat each element; see :func:`gpuchain.repeat`."""
        return _ops.repeat(self, repeats, axis=axis)

    def take(self, indices: Any, axis: int | None = None) -> Tensor:
        """Elements at ``indices`` along ``axis``; see :func:`gpuchain.take`."""
        return _ops.take(self, indices, axis=axis)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The diagonal; see :func:`gpuchain.diagonal`."""
        return _ops.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """Sum of the diagonal; see :func:`gpuchain.trace`."""
        return _ops.trace(self, offset=offset, axis1=axis1, axis2=axis2)

    def round(self, decimals: int = 0) -> Tensor:
        """Round to ``decimals`` (derivative 0); see :func:`gpuchain.round`."""
        return _ops.round(self, decimals=decimals)

    # --- elementwise functions as methods ------------------------------------------------
    def abs(self) -> Tensor:
        """The absolute value, elementwise."""
        return _ops.abs(self)

    def exp(self) -> Tensor:
        """e**x, elementwise."""
        return _ops.exp(self)

    def log(self) -> Tensor:
        """Natural logarithm, elementwise."""
        return _ops.log(self)

    def sin(self) -> Tensor:
        """Sine, elementwise."""
        return _ops.sin(self)

    def cos(self) -> Tensor:
        """Cosine, elementwise."""
        return _ops.cos(self)

    def tan(self) -> Tensor:
        """Tangent, elementwise."""
        return _ops.tan(self)

    def sqrt(self) -> Tensor:
        """Square root, elementwise."""
        return _ops.sqrt(self)

    def square(self) -> Tensor:
        """x**2, elementwise."""
        return _ops.square(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent, elementwise."""
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        """Logistic sigmoid 1/(1+e**-x), elementwise."""
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        """max(x, 0), elementwise."""
        return _ops.relu(self)


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


_SUPPORTED_KINDS = "biuf"


def _check_kind(arr: Any, data: Any) -> None:
    kind = arr.dtype.kind
    if kind in _SUPPORTED_KINDS:
        return
    if kind == "c":
        raise DTypeError(f"complex data ({arr.dtype}) is not supported: gpuchain "
                         "differentiates real-valued functions only")
    raise DTypeError(f"cannot make a tensor from {type(data).__name__} data of dtype "
                     f"{arr.dtype}: expected numbers (bool, int or float)")


def as_array(data: Any, dtype: Any = None, xp: Any = None, copy: bool = False) -> Any:
    """Data -> array of the current backend, keeping array dtypes and turning Python
    scalars and lists into the default float dtype."""
    if xp is None:
        xp = get_backend().xp
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, np.ndarray) or is_cupy_array(data):
        data = plain(data)  # storage is always a base-class array
        _check_kind(data, data)
        arr = data if dtype is None else data.astype(dtype, copy=False)
        if xp is not np and isinstance(arr, np.ndarray):
            arr = xp.asarray(arr)
        elif copy and arr is data:
            arr = arr.copy()
        return arr
    if isinstance(data, np.generic):
        arr = np.asarray(data)
        _check_kind(arr, data)
        return xp.asarray(arr, dtype=dtype)
    if data is None or isinstance(data, (str, bytes, dict, set)):
        raise DTypeError(f"cannot make a tensor from {type(data).__name__} "
                         f"({data!r:.40}): expected numbers, nested lists of numbers or an "
                         "array")
    try:
        arr = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise ShapeError(f"cannot make a tensor from {type(data).__name__}: {exc}") from None
    _check_kind(arr, data)
    if dtype is None:
        dtype = np.dtype(bool) if arr.dtype == bool else get_default_dtype()
    return xp.asarray(arr, dtype=dtype)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Make a leaf Tensor from data (always a copy, as ``torch.tensor``).

    Parameters
    ----------
    data : array_like
        NumPy/CuPy arrays keep their dtype; Python numbers and lists become the default
        float dtype (float32 unless changed with ``gc.set_default_dtype``).
    dtype : dtype, optional
        Cast to this dtype.
    requires_grad : bool
        Whether reverse mode should compute a gradient for this tensor.

    Returns
    -------
    Tensor
        A leaf whose array later writes to ``data`` cannot change.

    Examples
    --------
    >>> import gpuchain as gc
    >>> gc.tensor([1.0, 2.0]).dtype
    dtype('float32')
    """
    return Tensor(as_array(data, dtype, copy=True), requires_grad=requires_grad)


def _scalar_dtype(value: Any, reference: np.dtype | None) -> np.dtype:
    """A Python scalar combined with a tensor takes the tensor's dtype where that keeps
    its value (float with float, int with int); otherwise the default float dtype."""
    if reference is not None:
        if reference.kind in "fc" or (isinstance(value, (bool, int)) and reference.kind in "iub"):
            return reference
    if isinstance(value, bool):
        return np.dtype(bool)
    return get_default_dtype()


def _holds_tensor(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and any(
        isinstance(e, Tensor) or _holds_tensor(e) for e in x)


def coerce_inputs(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    """Wrap scalars, lists and arrays given to an op as constant Tensors; a list or tuple
    holding Tensors is stacked (and stays differentiable)."""
    ref = next((x for x in inputs if isinstance(x, Tensor)), None)
    ref_dtype = ref.dtype if ref is not None else None
    xp = array_module_of(ref._data) if ref is not None else None
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            out.append(x)
        elif (isinstance(x, (int, float, bool)) and not isinstance(x, np.generic)) or (
                isinstance(x, (np.number, np.bool_)) and ref is not None):
            # NumPy scalars next to a Tensor act as Python scalars (as in PyTorch);
            # alone they keep their dtype
            x = x.item() if isinstance(x, np.generic) else x
            out.append(Tensor(as_array(x, _scalar_dtype(x, ref_dtype), xp)))
        elif _holds_tensor(x):
            out.append(_ops.stack(list(x)))
        else:
            out.append(Tensor(as_array(x, None, xp if not is_cupy_array(x) else None)))
    return tuple(out)
