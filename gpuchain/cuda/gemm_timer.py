"""Time the GEMMs gpuchain issues, for the benchmarks' "share of the step in GEMMs".

gpuchain's dense op and its matmul op call ``xp.matmul`` (``xp`` = the numpy or cupy
module) and look the attribute up at each call, so :class:`GemmTimer` replaces
``xp.matmul`` for the duration of a ``with`` block with a wrapper that records the
operand shapes and layouts and, on CuPy, a CUDA event pair on the current stream around
each call (on NumPy, the wall time). Nothing in gpuchain changes when no timer is active.
A GEMM issued another way (``a @ b``, ``cupy.dot``) is not seen: compare
:meth:`GemmTimer.flops` with the FLOPs the model must do to find out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class GemmCall:
    """One recorded ``matmul``: operand shapes, whether each 2-D operand is a transposed
    view (Fortran-ordered), dtype, FLOPs (2·batch·m·k·n) and its time in seconds."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    a_transposed: bool
    b_transposed: bool
    dtype: str
    flops: int
    seconds: float

    @property
    def key(self) -> tuple[Any, ...]:
        """Shapes, layouts and dtype: calls with the same key run the same cuBLAS GEMM."""
        return (self.a_shape, self.b_shape, self.a_transposed, self.b_transposed, self.dtype)


def matmul_flops(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> int:
    """2·batch·m·k·n for ``matmul`` of arrays of these shapes (1-D operands promoted)."""
    a = (1, *a_shape) if len(a_shape) == 1 else a_shape
    b = (*b_shape, 1) if len(b_shape) == 1 else b_shape
    if a[-1] != b[-2]:
        raise ValueError(f"matmul_flops: inner dimensions differ: {a_shape} @ {b_shape}")
    batch = 1
    for d in (a[:-2] if len(a) >= len(b) else b[:-2]):
        batch *= d
    return 2 * batch * a[-2] * a[-1] * b[-1]


def _transposed(x: Any) -> bool:
    flags = getattr(x, "flags", None)
    return bool(flags is not None and x.ndim == 2 and not flags.c_contiguous
                and flags.f_contiguous)


class GemmTimer:
    """Context manager recording every ``xp.matmul`` call made inside it.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``: the module whose ``matmul`` is wrapped.

    Examples
    --------
    >>> import numpy as np
    >>> with GemmTimer(np) as t:
    ...     _ = np.matmul(np.ones((4, 3)), np.ones((3, 2)))
    >>> t.flops(), len(t.calls())
    (48, 1)
    """

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp
        self._gpu = xp.__name__.split(".")[0] == "cupy"
        self._pending: list[tuple[Any, ...]] = []
        self._original: Callable[..., Any] | None = None

    def __enter__(self) -> GemmTimer:
        if self._original is not None:
            raise RuntimeError("GemmTimer: already active (not re-entrant)")
        xp: Any = self.xp  # numpy or cupy
        original = self._original = xp.matmul
        gpu, pending = self._gpu, self._pending
        cuda: Any = xp.cuda if gpu else None

        def timed_matmul(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
            if gpu:
                start, end = cuda.Event(), cuda.Event()
                start.record()
                out = original(a, b, *args, **kwargs)
                end.record()
                t: Any = (start, end)
            else:
                t0 = time.perf_counter()
                out = original(a, b, *args, **kwargs)
                t = time.perf_counter() - t0
            pending.append((tuple(a.shape), tuple(b.shape), _transposed(a), _transposed(b),
                            str(out.dtype), t))
            return out

        xp.matmul = timed_matmul
        return self

    def __exit__(self, *exc: object) -> None:
        xp: Any = self.xp
        xp.matmul = self._original
        self._original = None

    def reset(self) -> None:
        """Forget the calls recorded so far."""
        self._pending.clear()

    def calls(self) -> list[GemmCall]:
        """The recorded calls with their times (waits for the device on CuPy)."""
        out = []
        for a_shape, b_shape, a_t, b_t, dtype, t in self._pending:
            if self._gpu:
                start, end = t
                end.synchronize()
                t = self.xp.cuda.get_elapsed_time(start, end) / 1e3
            out.append(GemmCall(a_shape, b_shape, a_t, b_t, dtype, matmul_flops(a_shape,
                                                                                 b_shape), t))
        return out

    def seconds(self) -> float:
        """Total time of the recorded calls."""
        return sum(c.seconds for c in self.calls())

    def flops(self) -> int:
        """Total FLOPs of the recorded calls."""
        return sum(matmul_flops(p[0], p[1]) for p in self._pending)
