"""The vectorized float32 erf against the float64 erf (math.erf, no SciPy needed): errors
in float32 ulps over a dense grid, tiny values, tails and special values."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpuchain as gc
from gpuchain.ops._erf32 import CHUNK, erf_float32

_erf64 = np.frompyfunc(math.erf, 1, 1)


def _reference(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erf64(x.astype(np.float64)), dtype=np.float64)


def _ulp_errors(x: np.ndarray) -> np.ndarray:
    got = erf_float32(x).astype(np.float64)
    ref = _reference(x)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    return np.abs(got - ref) / ulp


def _grid() -> np.ndarray:
    tiny = np.logspace(-38, -2, 20_001)
    parts = [
        np.linspace(-5, 5, 1_000_001),
        np.linspace(-0.01, 0.01, 100_001),
        tiny, -tiny,
        np.array([1e-40, 1e-45, 0.0, -0.0, 4.0, -4.0, 3.9, 10.0, 1e3, 1e30, 3.4e38]),
    ]
    return np.concatenate(parts).astype(np.float32)


def test_within_float32_rounding_over_a_dense_grid_and_tails() -> None:
    x = _grid()
    err = _ulp_errors(x)
    # the float64 evaluation's own error is below 0.02 ulp: max 0.52 ulp from the exact value
    assert err.max() <= 0.52, (x[err.argmax()], err.max())
    # correctly rounded except where the exact value lies within 0.02 ulp of a boundary
    mismatched = erf_float32(x) != _reference(x).astype(np.float32)
    assert mismatched.mean() < 0.01
    assert np.abs(erf_float32(x[np.abs(x) >= 4])).min() == 1.0


def test_odd_and_exact_at_zero() -> None:
    x = np.linspace(0, 5, 10_001, dtype=np.float32)
    np.testing.assert_array_equal(erf_float32(-x), -erf_float32(x))
    assert erf_float32(np.zeros(3, np.float32)).tolist() == [0.0, 0.0, 0.0]
    assert math.copysign(1.0, float(erf_float32(np.array(-0.0, np.float32)))) == -1.0


def test_special_values() -> None:
    got = erf_float32(np.array([np.inf, -np.inf, np.nan], np.float32))
    assert got[0] == 1.0 and got[1] == -1.0 and np.isnan(got[2])


@pytest.mark.parametrize("make", [
    lambda r: np.float32(0.7) * np.ones((), np.float32),  # 0-d
    lambda r: np.zeros((0, 3), np.float32),  # empty
    lambda r: r.standard_normal((3, 2 * CHUNK + 5)).astype(np.float32)[:, ::2],  # strided
    lambda r: r.standard_normal((2, 3, 4)).astype(np.float32),
])
def test_shapes_and_layouts(make, rng) -> None:
    x = make(rng)
    got = erf_float32(x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(x), rtol=1.2e-7, atol=0)


def test_normal_cdf_form_offset_plus_factor_times_erf_of_scaled_x() -> None:
    # Φ(x) = 0.5 + 0.5·erf(x/√2), evaluated in float64 and rounded once; clipping at
    # |x/√2| = 4 leaves at most erfc(4)/2 = 7.7e-9 (0.13 ulp of 1) in the far tails
    x = np.concatenate([np.linspace(-9, 9, 400_001), [np.inf, -np.inf]]).astype(np.float32)
    got = erf_float32(x, 1 / math.sqrt(2), 0.5, 0.5).astype(np.float64)
    ref = 0.5 * np.asarray(_erf64(x.astype(np.float64) / math.sqrt(2)), dtype=np.float64) + 0.5
    half_ulp = 0.5 * np.spacing(ref.astype(np.float32)).astype(np.float64)
    err = np.abs(got - ref) - half_ulp
    assert err.max() <= 7.8e-9
    assert err[np.abs(x) < 5.6].max() <= 1e-9
    assert got[-2] == 1.0 and got[-1] == 0.0 and got[np.argmin(np.abs(x))] == 0.5


def test_only_float32_and_a_positive_scale() -> None:
    with pytest.raises(TypeError, match="float32"):
        erf_float32(np.zeros(2))
    with pytest.raises(ValueError, match="scale"):
        erf_float32(np.zeros(2, np.float32), scale=0.0)


def test_gc_erf_uses_it_for_float32_and_stays_exact_for_float64(rng) -> None:
    x = rng.standard_normal(1000)
    np.testing.assert_array_equal(gc.erf(gc.tensor(x.astype(np.float32))).numpy(),
                                  erf_float32(x.astype(np.float32)))
    np.testing.assert_allclose(gc.erf(gc.tensor(x)).numpy(), _reference(x), rtol=1e-15,
                               atol=1e-16)


@pytest.mark.parametrize("far_share", [0.002, 0.2, 0.3, 1.0])
def test_values_beyond_two_within_a_chunk_of_central_ones(far_share, rng) -> None:
    # |x| > 2 goes through the wide polynomial: gathered when few, on the whole chunk
    # when more than a quarter (both paths, and their seams, at every share)
    x = rng.uniform(-2, 2, CHUNK).astype(np.float32)
    far = rng.random(CHUNK) < far_share
    x[far] = rng.uniform(2, 6, far.sum()) * rng.choice([-1, 1], far.sum())
    x[:8] = [2.0, -2.0, np.nextafter(2, 3), 4.0, -np.inf, np.nan, 1e30, -0.0]
    err = _ulp_errors(x)
    assert np.nanmax(err) <= 0.52
    assert np.isnan(erf_float32(x)[5])
    cdf = erf_float32(x, 1 / math.sqrt(2), 0.5, 0.5).astype(np.float64)
    ref = 0.5 * np.asarray(_erf64(x.astype(np.float64) / math.sqrt(2)), np.float64) + 0.5
    ok = ~np.isnan(x)
    assert (np.abs(cdf - ref)[ok] <= 0.5 * np.spacing(ref[ok].astype(np.float32)) + 8e-9).all()
    # each element's value does not depend on its neighbours (which path its chunk took)
    np.testing.assert_array_equal(erf_float32(x[far]), erf_float32(x)[far])
