"""Data parallelism under ``mpiexec -n 1, 2, 3`` (skipped without mpi4py/mpiexec).

Each world size runs tests/distributed_scripts/checks.py once; every rank computes its own
single-process, full-batch oracle and writes what it found; these tests read it.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from distributed_launch import SCRIPTS, launch, needs_mpi

pytestmark = needs_mpi
WORLD_SIZES = (1, 2, 3)
_runs: dict[int, list[dict]] = {}


@pytest.fixture(params=WORLD_SIZES, ids=lambda n: f"n{n}")
def ranks(request, tmp_path_factory) -> list[dict]:
    n = request.param
    if n not in _runs:
        out = tmp_path_factory.mktemp(f"mpi{n}")
        proc = launch(n, str(SCRIPTS / "checks.py"), str(out))
        assert proc.returncode == 0, f"mpiexec -n {n} failed:\n{proc.stdout}\n{proc.stderr}"
        _runs[n] = [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]
    return _runs[n]


def test_ranks_and_world_size(ranks):
    n = len(ranks)
    assert [r["rank"] for r in ranks] == list(range(n))
    assert {r["world_size"] for r in ranks} == {n}
    assert sorted(r["local_rank"] for r in ranks) == list(range(n))  # one machine
    assert {r["backend"] for r in ranks} == {"mpi"}


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-13), ("float32", 1e-6)])
@pytest.mark.parametrize("kind", ["even", "uneven"])
def test_gradients_equal_full_batch_and_identical(ranks, dtype, kind, tol):
    for r in ranks:
        (key,) = [k for k in r if k.startswith(f"grads_{dtype}_{kind}_")]
        found = r[key]
        assert found["identical"], f"rank {r['rank']}: gradients differ across ranks ({key})"
        assert found["rel_err"] <= tol, (key, found)
        assert found["in_slots"], "gradients should live in the flat gradient buffer"
    if kind == "uneven" and len(ranks) > 1:
        assert len({r[key]["shard"] for r in ranks}) == 2  # the shards really differ


def test_adam_ten_steps_match_one_process(ranks):
    for r in ranks:
        found = r["adam_10_steps"]
        assert found["identical"]
        assert found["rel_err"] <= 1e-12, found
        assert found["moved"] > 1e-2  # the parameters did change over the 10 steps


def test_no_sync_accumulates_locally_then_averages(ranks):
    for r in ranks:
        found = r["no_sync"]
        assert found["local_rel_err"] <= 1e-14, found  # no communication inside no_sync
        assert found["rel_err"] <= 1e-13, found
        assert found["identical"]
        if len(ranks) > 1:
            assert not found["first_identical"]  # local gradients differed before the sync


def test_broadcast_at_construction(ranks):
    assert all(r["broadcast_at_construction"]["equal_root"] for r in ranks)
    if len(ranks) > 1:
        assert any(r["broadcast_at_construction"]["differed"] for r in ranks)


def test_parameter_without_gradient_is_reduced_as_zero(ranks):
    for r in ranks:
        assert r["unused_param"]["identical"]
        assert r["unused_param"]["rel_err"] <= 1e-14


def test_collectives_on_dtypes_and_shapes(ranks):
    for r in ranks:
        assert r["collectives"]["failed"] == []
        assert r["collectives"]["count"] > 100


def test_mismatched_shapes_raise_on_every_rank(ranks):
    n = len(ranks)
    for r in ranks:
        assert r["mismatch"]["after"] == n  # the group kept working
        if n == 1:
            assert r["mismatch"]["message"] == r["mismatch"]["layout"] == ""
            assert r["mismatch"]["buckets"] == ""
        else:
            msg, layout = r["mismatch"]["message"], r["mismatch"]["layout"]
            for k in range(n):
                assert f"rank {k}: all_reduce(cpu float32({3 + k},)" in msg, msg
                assert f"rank {k}: 4 parameters [0.weight float32(3, {4 + k})" in layout, layout
                assert f"bucket {(1 + k) << 20} bytes" in r["mismatch"]["buckets"]


def test_checkpoint_saved_on_rank0_loads_everywhere(ranks):
    for r in ranks:
        assert r["checkpoint"] == {"params_equal": True, "extra": {"epoch": 3}, "step": 1}


@pytest.mark.parametrize("n", [2, 3])
def test_failing_rank_ends_the_job(n):
    start = time.monotonic()
    proc = launch(n, str(SCRIPTS / "fail.py"), timeout=30)  # a hang fails by timeout
    elapsed = time.monotonic() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"rank {n - 1} of {n} failed" in out, out
    assert f"deliberate failure on rank {n - 1}" in out
    assert "UNREACHABLE" not in out
    print(f"job of {n} ended {elapsed:.1f} s after launch")


def test_demo_runs_data_parallel():
    import io

    from gpuchain.demo import run_demo

    proc = launch(2, "-m", "gpuchain", "demo", "--steps", "30", "--points", "300")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "world size 2" in out, out
    assert out.count("final loss") == 1, out  # rank 0 reports; the others stay quiet
    # the same training as one process on all points (float32 rounding apart)
    alone = run_demo(backend="numpy", steps=30, points=300, out=io.StringIO())["loss"]
    parallel = float(re.search(r"final loss (\S+)", out).group(1))
    assert parallel == pytest.approx(alone, abs=2e-4)


def test_benchmark_allreduce_worker_reports_bandwidth(tmp_path):
    out = tmp_path / "rows.json"
    proc = launch(2, "-m", "gpuchain.distributed.benchmark", "--worker", "allreduce",
                  "--quick", "--worker-out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert [r["bytes"] for r in rows] == [4 << 10, 1 << 20]
    for r in rows:
        assert r["min"] <= r["median"] <= r["max"] and r["repeats"] >= 5
        assert r["algbw_GBps"] == pytest.approx(r["bytes"] / r["median"] / 1e9)
        assert r["busbw_GBps"] == pytest.approx(r["algbw_GBps"])  # 2 ranks: 2(n-1)/n = 1


def test_rank_that_leaves_early_is_caught_by_the_timeout():
    proc = launch(2, str(SCRIPTS / "exit_early.py"), "2", timeout=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"rank 0 of 2: all_reduce.* did not complete within 2 s", out), out
    assert "UNREACHABLE" not in out
