"""Special functions NumPy lacks, on whichever array module is in use."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

_np_erf: Callable[[np.ndarray], np.ndarray] | None = None


def erf(xp: Any, x: Any) -> Any:
    """The exact error function (SciPy's or CuPy's when present, else math.erf per element)."""
    global _np_erf
    if xp is not np:
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x)
    fn = _np_erf
    if fn is None:
        try:
            from scipy.special import erf as scipy_erf

            fn = scipy_erf
        except ImportError:
            fn = _erf_per_element
        _np_erf = fn
    return fn(x)


_erf_vectorized = np.frompyfunc(math.erf, 1, 1)


def _erf_per_element(a: np.ndarray) -> np.ndarray:
    return np.asarray(_erf_vectorized(a), dtype=a.dtype)
