"""The ops benchmark suite runs end to end at a tiny size: gradients agree with
PyTorch's and the results (JSON and Markdown, with machine and versions) are written.
Timings are not asserted."""

from __future__ import annotations

import json

import pytest


def test_ops_suite_smoke(tmp_path):
    pytest.importorskip("torch")
    from benchmarks.ops_suite import main

    status = main(["--sizes", "8", "--rounds", "1", "--min-sample", "0.0001", "--threads",
                   "1", "--out", str(tmp_path), "--cases", "einsum ij,jk,kl", "sort", "solve"])
    assert status == 0
    (result,) = tmp_path.glob("ops-*.json")
    data = json.loads(result.read_text())
    assert {r["case"] for r in data["rows"]} == {
        "einsum ij,jk,kl->il", "sort axis=-1", "linalg.solve (n x n, n x 16)"}
    assert all(r["grad_rel_err"] < 1e-3 and r["median_s"]["gpuchain"] > 0 for r in data["rows"])
    assert {"numpy", "gpuchain", "torch"} <= set(data["meta"]["versions"])
    assert result.with_suffix(".md").read_text().startswith("# ops suite")
