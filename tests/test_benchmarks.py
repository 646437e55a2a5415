"""The benchmark runner (gpuchain.bench) and the GPU check script, without timing
assertions (timings vary by machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gpuchain.bench import SUITES, main
from gpuchain.bench import _report as out
from gpuchain.bench import _runner as R

ROOT = Path(__file__).resolve().parent.parent
QUIET = ["--no-progress", "--threads", "0", "--peers"]  # --peers last: gpuchain alone


def _run(tmp_path: Path, *suites: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    rc = main(["--suite", *suites, "--quick", "--out", str(tmp_path), "--repeats", "1",
               *extra, *QUIET])
    return rc, json.loads((tmp_path / "results.json").read_text())


def test_quick_run_writes_json_and_markdown_with_environment(tmp_path: Path) -> None:
    rc, data = _run(tmp_path, "engine", "jacobian")
    assert rc == 0
    env = data["environment"]
    for key in ("date", "timestamp", "versions", "git", "machine", "backend", "threads"):
        assert key in env
    assert env["machine"]["cores"] and env["machine"]["cpu"] and env["machine"]["platform"]
    assert env["versions"]["numpy"] == np.__version__ and env["versions"]["gpuchain"]
    assert env["quick"] is True
    assert {r["suite"] for r in data["rows"]} == {"engine", "jacobian"}
    assert all(r["median"] > 0 and r["system"].startswith("gpuchain") for r in data["rows"])
    assert all(r["extra"]["calls_per_sample"] >= 1 for r in data["rows"])
    assert all(c["status"] == "ok" for c in data["checks"])
    md = (tmp_path / "results.md").read_text()
    assert env["date"] in md and "## engine" in md and "## jacobian" in md
    assert "numpy " + np.__version__ in md


def test_gpu_suite_skips_with_a_reason_on_cpu(tmp_path: Path) -> None:
    rc, data = _run(tmp_path, "bandwidth")
    assert rc == 0
    assert "GPU" in data["skipped"]["bandwidth"]
    assert "bandwidth skipped" in (tmp_path / "results.md").read_text()


def _contender(name: str, scale: float = 1.0) -> R.Contender:
    x = np.linspace(0, 1, 5, dtype=np.float32)
    return R.Contender(name, lambda: x.sum(), lambda: {"loss": x.sum() * scale, "grad": x * scale})


def _cfg(**kw) -> R.Config:
    return R.Config(repeats=1, warmup=0, pause_s=0.0, min_sample_s=0.001, **kw)


def test_cross_check_catches_a_mismatched_peer_and_does_not_time_it() -> None:
    rows, checks = R.compare(_cfg(), "t", "case", [_contender("gpuchain"),
                                                    _contender("honest peer"),
                                                    _contender("wrong peer", 1.01)])
    status = {c.system: c.status for c in checks}
    assert status == {"gpuchain": "ok", "honest peer": "ok", "wrong peer": "mismatch"}
    assert [r.system for r in rows] == ["gpuchain", "honest peer"]
    assert rows[1].gpuchain_over_system is not None


def test_cross_check_reports_a_failing_peer() -> None:
    def broken() -> dict:
        raise RuntimeError("peer exploded")

    bad = R.Contender("broken", lambda: None, broken)
    rows, checks = R.compare(_cfg(), "t", "case", [_contender("gpuchain"), bad])
    assert checks[1].status == "error" and "peer exploded" in checks[1].detail
    assert [r.system for r in rows] == ["gpuchain"]


def test_cross_check_shapes_and_missing_values() -> None:
    ref = {"g": np.zeros(3)}
    with pytest.raises(R.CrossCheckError):
        R.cross_check(ref, {"g": np.zeros(4)}, rtol=1e-5, atol=0)
    with pytest.raises(R.CrossCheckError):
        R.cross_check(ref, {}, rtol=1e-5, atol=0)
    assert R.cross_check(ref, {"g": np.full(3, 1e-9)}, rtol=1e-5, atol=1e-8) == pytest.approx(1e-9)


def test_fast_calls_are_timed_many_per_sample() -> None:
    calls = []
    fast = lambda: calls.append(1)  # noqa: E731
    n = R.calls_per_sample(fast, 0.01)
    assert n > 10
    calls.clear()
    times = R.time_block(fast, warmup=2, repeats=3, number=n)
    assert len(times) == 3 and len(calls) == 2 + 3 * n
    slow = lambda: time.sleep(0.02)  # noqa: E731
    assert R.calls_per_sample(slow, 0.01) == 1


def test_bounded_warmup_is_reported_apart_and_a_runaway_one_is_not_timed() -> None:
    compiled = []

    def first_values_compile() -> dict:
        if not compiled:
            time.sleep(0.01)
            compiled.append(1)
        return {"loss": np.float32(0.0)}

    warm = R.Contender("peer compiled", lambda: None, first_values_compile,
                       warmup_limit_s=5.0)
    hung = R.Contender("peer hung", lambda: None,
                       lambda: time.sleep(3) or {"loss": np.float32(0.0)}, warmup_limit_s=0.2)
    ref = R.Contender("gpuchain", lambda: None, lambda: {"loss": np.float32(0.0)})
    rows, checks = R.compare(_cfg(), "t", "case", [ref, warm, hung])
    assert [c.status for c in checks] == ["ok", "ok", "error"]
    assert "bound reached" in checks[2].detail
    assert [r.system for r in rows] == ["gpuchain", "peer compiled"]
    assert 0.005 < rows[1].extra["warmup_s"] < 5.0


def test_runner_exit_status_is_one_on_a_mismatch(tmp_path: Path, monkeypatch) -> None:
    from gpuchain.bench import engine

    def run(cfg: R.Config) -> R.SuiteResult:
        res = R.SuiteResult()
        res.add(R.compare(cfg, "engine", "rigged", [_contender("gpuchain"),
                                                     _contender("peer", 2.0)]))
        return res

    monkeypatch.setattr(engine, "run", run)
    rc, data = _run(tmp_path, "engine")
    assert rc == 1
    assert [c["status"] for c in data["checks"]] == ["ok", "mismatch"]


def test_machine_slug_and_formatting() -> None:
    env = {"backend": "numpy", "gpu": {}, "machine": {"cpu": "Intel(R) Xeon(R) Gold 6354",
                                                       "cores": 2}}
    assert out.machine_slug(env) == "cpu-intel-xeon-gold-6354-2c"
    assert out.fmt_time(1.5e-3) == "1.5 ms" and out.fmt_bytes(3 * 2**20) == "3 MiB"


def test_every_suite_module_has_run() -> None:
    import importlib

    for name, (module, _) in SUITES.items():
        assert callable(importlib.import_module(module).run), name


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("kind,sizes", [("fwd+bwd", (8, 16, 4)), ("train step", (8, 16, 4))])
def test_memory_child_measures_a_step(kind, sizes) -> None:
    from gpuchain.bench.memory import child

    got = child("gpuchain composed ops", kind, sizes, 8, "relu", "numpy")
    assert got["peak_bytes"] >= 0 and got["tracemalloc_peak_bytes"] > 0
    assert got["process_peak_bytes"] > 0 and np.isfinite(got["loss"])


@pytest.mark.torch
@pytest.mark.parametrize("size", ["small", "modern_small"])
def test_train_suite_systems_agree_with_torch(size: str) -> None:
    pytest.importorskip("torch")
    from gpuchain.bench import train

    if size in train.MODERN and train.modern_available():
        pytest.skip(train.modern_available())
    cfg = _cfg(peers=("torch",))
    rows, checks = R.compare(cfg, "train", size, train.contenders(cfg, size),
                             rtol=1e-3, atol=1e-5)
    assert [c.status for c in checks] == ["ok", "ok"], checks


def test_modern_mlp_runs_or_says_what_is_missing(tmp_path: Path) -> None:
    from gpuchain.bench import train

    rc, data = _run(tmp_path, "train", extra=("--sizes", "modern_small"))
    assert rc == 0
    why = train.modern_available()
    if why is None:
        assert [r["case"].split()[0] for r in data["rows"]] == ["modern_small"]
    else:
        assert not data["rows"] and any(why in n for n in data["notes"])


def test_cli_reaches_the_runner(capsys) -> None:
    from gpuchain.cli import main as cli_main

    assert cli_main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in SUITES)


def test_benchmarks_shim_runs_the_same_runner() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "target" in proc.stdout and "distributed" in proc.stdout


def test_positional_suite_names_and_usage_errors(tmp_path: Path, capsys) -> None:
    rc = main(["bandwidth", "--quick", "--out", str(tmp_path), *QUIET])
    assert rc == 0 and (tmp_path / "results.md").exists()
    assert main(["no-such-suite", "--out", str(tmp_path), *QUIET]) == 2
    assert main(["--repeats", "many"]) == 2
    err = capsys.readouterr().err
    assert "no-such-suite" in err and "many" in err


def test_jax_is_told_not_to_preallocate_the_gpu() -> None:
    code = ("import os; os.environ.pop('XLA_PYTHON_CLIENT_PREALLOCATE', None)\n"
            "import gpuchain.bench, sys\n"
            "print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'], 'jax' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["false", "False"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_threads_pin_every_system_to_the_same_cores(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "gpuchain.bench", "engine", "--quick",
                           "--repeats", "1", "--threads", "1", "--no-progress", "--out",
                           str(tmp_path), "--peers"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=os.environ | {"OMP_NUM_THREADS": ""})
    assert proc.returncode == 0, proc.stderr
    threads = json.loads((tmp_path / "results.json").read_text())["environment"]["threads"]
    assert threads["cpu_affinity"] == sorted(os.sched_getaffinity(0))[:1]
    assert threads["OMP_NUM_THREADS"] == threads["OPENBLAS_NUM_THREADS"] == "1"


def test_target_suite_at_cpu_scale_counts_every_gemm() -> None:
    from gpuchain.bench import target

    cfg = _cfg(quick=True, peers=())
    batch, sizes = target.size(cfg)
    assert (batch, sizes) == target.CPU_QUICK_SIZE
    assert target.GPU_SIZE == (8192, [1024, 4096, 4096, 4096, 4096, 10])
    res = target.run(cfg)
    gc_rows = [r for r in res.rows if r.system == "gpuchain"]
    assert [r.extra["precision"] for r in gc_rows] == ["fp32", "tf32"]
    for r in gc_rows:
        assert r.extra["gemm_flops_all_seen"], r.extra
        assert r.extra["gemm_calls_per_step"] == 3 * (len(sizes) - 1) - 1
        assert 0 < r.extra["gemm_share_events"] <= 1.0
        assert 0 < r.extra["gemm_share_from_flops"]
    import gpuchain as gc

    assert gc.get_matmul_precision() == "fp32"  # restored after the TF32 case


@pytest.mark.torch
def test_target_precision_switches_torch_and_gpuchain_together() -> None:
    torch = pytest.importorskip("torch")
    import gpuchain as gc
    from gpuchain.bench import target

    before = torch.get_float32_matmul_precision()
    with target.precision("tf32"):
        assert gc.get_matmul_precision() == "tf32"
        assert torch.get_float32_matmul_precision() == "high"
    with target.precision("fp32"):
        assert torch.get_float32_matmul_precision() == "highest"
    assert torch.get_float32_matmul_precision() == before


def test_distributed_suite_skips_or_delegates(tmp_path: Path, monkeypatch) -> None:
    from gpuchain.bench import distributed

    if not distributed.available():
        with pytest.raises(R.SuiteSkipped, match="does not exist"):
            distributed.run(_cfg())
    pkg = tmp_path / "fake_dist_bench.py"
    pkg.write_text("import json, sys\n"
                   "path = sys.argv[sys.argv.index('--json') + 1]\n"
                   "json.dump([{'case': '2 ranks', 'system': 'gpuchain DDP', 'median': 0.5},"
                   " {'case': '2 ranks', 'system': 'torch DDP', 'median': 0.25}],"
                   " open(path, 'w'))\nprint('ran', sys.argv[1:])\n")
    monkeypatch.setattr(distributed, "MODULE", "fake_dist_bench")
    monkeypatch.setattr(distributed, "available", lambda: True)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    res = distributed.run(_cfg(quick=True))
    assert [c.status for c in res.checks] == ["ok"] and "--quick" in res.checks[0].detail
    assert [(r.case, r.system, r.median) for r in res.rows] == [
        ("2 ranks", "gpuchain DDP", 0.5), ("2 ranks", "torch DDP", 0.25)]
    assert res.rows[1].gpuchain_over_system == 2.0


def test_before_after_table_pairs_cases_and_ratios() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.before_after import table

    def run(median: float, ratio: float) -> dict:
        return {"rows": [{"suite": "engine", "case": "chain", "system": "gpuchain",
                          "per_unit": median, "gpuchain_over_system": 1.0},
                         {"suite": "engine", "case": "chain", "system": "torch eager",
                          "per_unit": median / ratio, "gpuchain_over_system": ratio}]}

    lines = table([run(2e-6, 1.5)], [run(1e-6, 0.75)])
    assert lines[2].startswith("| engine | chain | gpuchain | 2 µs | 1 µs | 0.50 |")
    assert lines[3].endswith("| 1.50 | 0.75 |")


def test_bounded_call_off_the_main_thread_uses_a_worker() -> None:
    import threading

    seen = {}

    def body() -> None:
        try:
            R.bounded_call(lambda: time.sleep(2), 0.1, "slow")
        except R.WarmupTimeout as exc:
            seen["error"] = str(exc)
        seen["fast"] = R.bounded_call(lambda: 42, 5.0, "fast")

    t = threading.Thread(target=body)
    t.start()
    t.join(10)
    assert "bound reached" in seen["error"] and seen["fast"][0] >= 0 and seen["fast"][1] == 42


def test_bounded_warmup_does_not_step_before_the_cross_check() -> None:
    """The compile warm-up runs values() (forward + backward), not a training step, so the
    compiled system is cross-checked at the same weights as the reference."""
    state = {"steps": 0}

    def step() -> None:
        state["steps"] += 1

    ref = R.Contender("gpuchain", lambda: None, lambda: {"loss": np.float32(0.0)})
    compiled = R.Contender("torch.compile", step,
                           lambda: {"loss": np.float32(state["steps"])}, warmup_limit_s=5.0)
    _, checks = R.compare(_cfg(), "t", "case", [ref, compiled])
    assert [c.status for c in checks] == ["ok", "ok"], checks


def test_a_crashing_suite_is_reported_and_the_others_still_run(tmp_path: Path,
                                                                monkeypatch) -> None:
    from gpuchain.bench import jacobian

    def run(cfg: R.Config) -> R.SuiteResult:
        raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setattr(jacobian, "run", run)
    rc, data = _run(tmp_path, "jacobian", "engine")
    assert rc == 1
    bad = [c for c in data["checks"] if c["status"] != "ok"]
    assert len(bad) == 1 and "illegal memory access" in bad[0]["detail"]
    assert {r["suite"] for r in data["rows"]} == {"engine"}


def test_target_keeps_its_timings_when_the_gemm_share_fails(monkeypatch) -> None:
    from gpuchain.bench import target

    def broken(*args, **kwargs):
        raise RuntimeError("no events")

    monkeypatch.setattr(target, "gemm_share", broken)
    res = target.run(_cfg(quick=True, peers=()))
    assert [r.extra["precision"] for r in res.rows] == ["fp32", "tf32"]
    assert all("no events" in r.extra["gemm_share_status"] for r in res.rows)
    assert sum("GEMM share not measured" in n for n in res.notes) == 2


def test_an_interrupted_run_still_writes_what_it_measured(tmp_path: Path, monkeypatch) -> None:
    from gpuchain.bench import jacobian

    def run(cfg: R.Config) -> R.SuiteResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(jacobian, "run", run)
    rc = main(["engine", "jacobian", "bandwidth", "--quick", "--repeats", "1", "--out",
               str(tmp_path), *QUIET])
    assert rc == 130
    data = json.loads((tmp_path / "results.json").read_text())
    assert {r["suite"] for r in data["rows"]} == {"engine"}
    assert set(data["skipped"]) == {"jacobian", "bandwidth"}
    assert "interrupted" in data["skipped"]["jacobian"]


@pytest.mark.parametrize("argv", [["--repeats", "-1"], ["--threads", "-3"], ["--bogus"],
                                  ["--min-sample", "0"], ["--compile-limit", "nan"]])
def test_bench_bad_options_are_one_line_and_status_2(argv, capsys):
    from gpuchain.bench import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpuchain bench: error:") and "\n" not in err
