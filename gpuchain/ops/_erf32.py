"""erf of float32 NumPy arrays, vectorized: about 2.3 times as fast as SciPy's float32
erf (whose per-element branches stall on normally distributed inputs) and as accurate.

    erf(x) = c · F(c²/8 - 1) with c = clip(x, -4, 4)

F(y) is a degree-18 polynomial approximating erf(t)/t for t² = 8(y + 1) in [0, 16]
(a Chebyshev least-squares fit weighted for relative error, written out in the monomial
basis of y in [-1, 1]: the coefficients' absolute values sum to 1.1, so Horner's scheme
loses nothing). Most inputs of a network lie in |x| <= 2, where a degree-10 polynomial G
of t²/2 - 1 fitted the same way is as accurate: each chunk evaluates G on every element
and F only on the few beyond 2 (gathered, evaluated and scattered back; a chunk where
they are many evaluates F on everything). Both relative errors are below 1e-9 everywhere
on their intervals, and the whole evaluation runs in float64, so the float32 result is
the correctly rounded erf except where the exact value lies within 0.02 ulp of a
rounding boundary (then 1 ulp off): max error 0.52 ulp. For |x| >= 4, float32 erf(x)
rounds to ±1 (1 - erf(4) = 1.5e-8 is below half an ulp of 1), which is what the clipped
evaluation gives. NaN stays NaN. The test ``tests/test_erf32.py`` checks all this against
the float64 erf over a dense grid.

``erf_float32(x, scale, offset, factor)`` gives ``offset + factor·erf(scale·x)`` in the
same float64 pass (the normal CDF is ``(1/√2, 0.5, 0.5)``), rounded to float32 once; with
an offset, erf saturates to ±1 where |scale·x| >= 4, so the far tails are exact at ±inf
and off by at most factor·erfc(4) = factor·1.5e-8 before. The work goes in chunks whose
float64 temporaries stay in the last-level cache.
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
# G's coefficients in y = t²/2 - 1 for t = |x| in [0, 2], highest degree first
# (relative error below 6e-10)
_CENTRAL_COEFFS = (
    2.594896387510997e-06,
    -1.5090507652021475e-05,
    7.176078359276146e-05,
    -0.0003339986030194782,
    0.0014050517702721222,
    -0.005235372298109404,
    0.017128371721893763,
    -0.04866269022848477,
    0.11947913431155142,
    -0.26111186518365154,
    0.6749332361356595,
)
_CLIP = 4.0
_CENTRAL = 2.0
CHUNK = 1 << 17  # elements per chunk: three float64 temporaries of 1 MiB each (measured
# fastest: smaller chunks fit L2 but pay more per-call overhead than they gain)


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
    size = min(CHUNK, max(n, 1))
    work = np.empty((3, size))
    beyond = np.empty(size, dtype=bool)
    # r = factor·erf(scale·c) = c·P(y) with the polynomial's coefficients times
    # factor·scale; the wide one takes c = clip(x, ±4/scale) and y = scale²·c²/8 - 1
    # (a float64 bound: a Python float would be cast to float32 for the float32 input)
    wide = _Piece(_COEFFS, factor * scale, 0.125 * scale * scale)
    central = _Piece(_CENTRAL_COEFFS, factor * scale, 0.5 * scale * scale)
    bound, central_sq = np.float64(_CLIP / scale), (_CENTRAL / scale) ** 2
    saturate = factor if offset else None
    with np.errstate(over="ignore", invalid="ignore"):  # central values where |x| > 2
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            c, c2, r = work[0, :hi - lo], work[1, :hi - lo], work[2, :hi - lo]
            np.copyto(c, flat[lo:hi])
            np.multiply(c, c, out=c2)
            far = np.greater(c2, central_sq, out=beyond[:hi - lo])  # NaN: central
            n_far = int(np.count_nonzero(far))
            if 4 * n_far > hi - lo:
                wide.at_clipped(c, bound, saturate, c2, r)
            else:
                if n_far:
                    at = np.flatnonzero(far)
                    c_far = c[at]
                    r_far = wide.at_clipped(c_far, bound, saturate, c2[at], np.empty_like(c_far))
                central.at(c, c2, r)
                if n_far:
                    r[at] = r_far
            if offset:
                r += offset
            np.copyto(out[lo:hi], r, casting="same_kind")
    return out.reshape(x.shape)


class _Piece:
    """c·P(per_unit·c² - 1) for one of the polynomials, its coefficients (highest degree
    first) multiplied by ``factor``."""

    def __init__(self, coeffs: tuple[float, ...], factor: float, per_unit: float) -> None:
        self.coeffs = tuple(factor * k for k in coeffs)
        self.per_unit = per_unit

    def at(self, c: np.ndarray, c2: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The value at ``c`` into ``out``, given c² in ``c2`` (overwritten)."""
        c2 *= self.per_unit
        c2 -= 1.0
        k = self.coeffs
        r = np.multiply(c2, k[0], out=out)
        r += k[1]
        for coef in k[2:]:
            r *= c2
            r += coef
        r *= c
        return r

    def at_clipped(self, c: np.ndarray, bound: np.float64, saturate: float | None,
                   work: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The value at clip(c, ±bound) into ``out`` (``c`` clipped in place, ``work``
        overwritten); where |c| >= bound it is ±``saturate`` unless that is None."""
        np.clip(c, -bound, bound, out=c)
        r = self.at(c, np.multiply(c, c, out=work), out)
        if saturate is not None:  # erf(±4) = ±(1 - 1.5e-8) would survive an offset
            np.multiply(np.sign(c), saturate, out=r, where=np.abs(c) >= bound)
        return r
