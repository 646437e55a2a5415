"""The ops benchmark suite runs end to end through the one harness at quick sizes:
gradients agree with PyTorch's before timing. Timings are not asserted."""

from __future__ import annotations

import json

import pytest


def test_ops_suite_runs_through_the_harness(tmp_path):
    pytest.importorskip("torch")
    from gpuchain.bench import main

    status = main(["ops", "--quick", "--repeats", "1", "--min-sample", "0.0001",
                   "--peers", "torch", "--no-progress", "--out", str(tmp_path)])
    assert status == 0
    (result,) = tmp_path.glob("*.json")
    data = json.loads(result.read_text())
    text = json.dumps(data)
    for case in ("einsum ij,jk,kl->il", "sort axis=-1", "linalg.cholesky"):
        assert case in text
    assert "torch" in text and "gpuchain" in text
