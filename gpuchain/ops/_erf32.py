"""erf of float32 NumPy arrays, vectorized: about twice as fast as SciPy's float32 erf
(whose per-element branches stall on normally distributed inputs) and as accurate.

    erf(x) = c · F(c²/8 - 1) with c = clip(x, -4, 4)

F(y) is a degree-18 polynomial approximating erf(t)/t for t² = 8(y + 1) in [0, 16]
(a Chebyshev least-squares fit weighted for relative error, written out in the monomial
basis of y in [-1, 1]: the coefficients' absolute values sum to 1.1, so Horner's scheme
loses nothing). Its relative error is below 1e-9 everywhere on [0, 4], and the whole
evaluation runs in float64, so the float32 result is the correctly rounded erf except
where the exact value lies within 0.02 ulp of a rounding boundary (then 1 ulp off): max
error 0.52 ulp. For |x| >= 4, float32 erf(x) rounds to ±1 (1 - erf(4) = 1.5e-8 is below
half an ulp of 1), which is what the clipped evaluation gives. NaN stays NaN. The test
``tests/test_erf32.py`` checks all this against the float64 erf over a dense grid.

``erf_float32(x, scale, offset, factor)`` gives ``offset + factor·erf(scale·x)`` in the
same float64 pass (the normal CDF is ``(1/√2, 0.5, 0.5)``), rounded to float32 once; with
an offset, erf saturates to ±1 where |scale·x| >= 4, so the far tails are exact at ±inf
and off by at most factor·erfc(4) = factor·1.5e-8 before. The work goes in chunks whose
float64 temporaries stay in cache.
"""

from __future__ import annotations

import numpy as np

# F's coefficients in y, highest degree first (fitted in float64 to SciPy's erf).
_COEFFS = (
    9.186755519906732e-05,
    -0.00024306828960230382,
    0.00018273923517434594,
    -0.00033943458054356353,
    0.0013929084734956045,
    -0.002886005199654338,
    0.004791669434429854,
    -0.00840540676561483,
    0.014371685913778607,
    -0.022551638619680903,
    0.03305632265394688,
    -0.04574746377834553,
    0.05988728777309807,
    -0.07473000745533184,
    0.09020898865792575,
    -0.10771032537978846,
    0.13167511624169045,
    -0.17657623516408752,
    0.3535309956511457,
)
_CLIP = 4.0
CHUNK = 1 << 15  # elements per chunk: three float64 temporaries of 256 KiB each


def erf_float32(x: np.ndarray, scale: float = 1.0, offset: float = 0.0,
                factor: float = 1.0) -> np.ndarray:
    """``offset + factor·erf(scale·x)`` of a float32 array (any shape, 0-d included) as a
    new float32 array, evaluated in float64 and rounded once.

    Parameters
    ----------
    x : numpy.ndarray of float32
    scale : float
        Multiplies x inside erf (> 0).
    offset, factor : float
        The affine map applied to erf's value.

    Returns
    -------
    numpy.ndarray of float32, shape of ``x``
    """
    if x.dtype != np.float32:
        raise TypeError(f"erf_float32: expected a float32 array, got {x.dtype}{x.shape}")
    if not scale > 0:
        raise ValueError(f"erf_float32: scale must be > 0, got {scale!r}")
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, dtype=np.float32)
    n = flat.size
    work = np.empty((3, min(CHUNK, max(n, 1))))
    # c = clip(x, ±4/scale): erf(scale·x) = scale·c·F(scale²·c²/8 - 1)
    # (a float64 bound: a Python float would be cast to float32 for the float32 input)
    bound, y_scale, out_scale = np.float64(_CLIP / scale), 0.125 * scale * scale, factor * scale
    first, second, rest = _COEFFS[0], _COEFFS[1], _COEFFS[2:]
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        c, y, r = work[0, :hi - lo], work[1, :hi - lo], work[2, :hi - lo]
        np.clip(flat[lo:hi], -bound, bound, out=c)
        np.multiply(c, c, out=y)
        y *= y_scale
        y -= 1.0
        np.multiply(y, first, out=r)
        r += second
        for coef in rest:
            r *= y
            r += coef
        if out_scale == 1.0 and not offset:
            np.multiply(r, c, out=out[lo:hi])
            continue
        r *= c  # erf(scale·x)/scale
        if offset:  # erf(±4) = ±(1 - 1.5e-8) would survive the offset: saturate to ±1
            np.copysign(1.0 / scale, c, out=r, where=np.abs(c) >= bound)
        r *= out_scale
        np.add(r, offset, out=out[lo:hi])
    return out.reshape(x.shape)
