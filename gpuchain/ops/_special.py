"""Special functions NumPy lacks, on whichever array module is in use."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_np_erf = None


def erf(xp: Any, x: Any) -> Any:
    """The exact error function (SciPy's or CuPy's when present, else math.erf per element)."""
    global _np_erf
    if xp is not np:
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x)
    if _np_erf is None:
        try:
            from scipy.special import erf as scipy_erf

            _np_erf = scipy_erf
        except ImportError:
            vectorized = np.frompyfunc(math.erf, 1, 1)

            def _np_erf(a: np.ndarray) -> np.ndarray:
                return np.asarray(vectorized(a), dtype=a.dtype)
    return _np_erf(x)
