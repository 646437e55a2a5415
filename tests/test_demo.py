"""The spirals demo trains to > 95% accuracy and reports what the CLI prints."""

from __future__ import annotations

import io

import numpy as np

from gpuchain.demo import run_demo, spirals


def test_spirals_are_balanced_and_reproducible():
    x, y = spirals(300, seed=1)
    assert x.shape == (300, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100, 100]
    assert np.array_equal(spirals(300, seed=1)[0], x)
    assert np.abs(x).max() <= 1.0 + 1e-6


def test_demo_reaches_95_percent_and_reports():
    out = io.StringIO()
    result = run_demo(steps=300, points=1000, seed=0, out=out)
    assert result["accuracy"] > 0.95
    assert set(result) >= {"loss", "accuracy", "steps_per_second", "backend", "device",
                           "seconds"}
    assert result["backend"] == "numpy" and result["device"].startswith("cpu")
    text = out.getvalue()
    assert "\r" not in text  # not a terminal: plain lines only
    assert "final loss" in text and "steps/s" in text
    assert len(text.splitlines()) <= 8
