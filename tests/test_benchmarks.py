"""Smoke tests of the benchmark runner (no timing assertions: timings vary by machine)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _runner as R  # noqa: E402
from benchmarks.__main__ import SUITES, main  # noqa: E402

QUIET = ["--no-progress", "--threads", "0", "--peers"]  # --peers last: gpuchain alone


def _run(tmp_path: Path, *suites: str) -> tuple[int, dict]:
    rc = main(["--suite", *suites, "--quick", "--out", str(tmp_path), "--repeats", "1",
               *QUIET])
    return rc, json.loads((tmp_path / "results.json").read_text())


def test_quick_run_writes_json_and_markdown_with_environment(tmp_path: Path) -> None:
    rc, data = _run(tmp_path, "engine", "jacobian")
    assert rc == 0
    env = data["environment"]
    for key in ("date", "timestamp", "versions", "git", "machine", "backend"):
        assert key in env
    assert env["machine"]["cores"] and env["machine"]["cpu"] and env["machine"]["platform"]
    assert env["versions"]["numpy"] == np.__version__ and env["versions"]["gpuchain"]
    assert env["quick"] is True
    suites = {r["suite"] for r in data["rows"]}
    assert suites == {"engine", "jacobian"}
    assert all(r["median"] > 0 and r["system"].startswith("gpuchain") for r in data["rows"])
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


def test_cross_check_catches_a_mismatched_peer_and_does_not_time_it() -> None:
    cfg = R.Config(repeats=1, warmup=0, pause_s=0.0)
    rows, checks = R.compare(cfg, "t", "case", [_contender("gpuchain"),
                                                 _contender("honest peer"),
                                                 _contender("wrong peer", 1.01)])
    status = {c.system: c.status for c in checks}
    assert status == {"gpuchain": "ok", "honest peer": "ok", "wrong peer": "mismatch"}
    assert [r.system for r in rows] == ["gpuchain", "honest peer"]
    assert rows[1].gpuchain_over_system is not None


def test_cross_check_reports_a_failing_peer() -> None:
    def broken() -> dict:
        raise RuntimeError("peer exploded")

    cfg = R.Config(repeats=1, warmup=0, pause_s=0.0)
    bad = R.Contender("broken", lambda: None, broken)
    rows, checks = R.compare(cfg, "t", "case", [_contender("gpuchain"), bad])
    assert checks[1].status == "error" and "peer exploded" in checks[1].detail
    assert [r.system for r in rows] == ["gpuchain"]


def test_cross_check_shapes_and_missing_values() -> None:
    ref = {"g": np.zeros(3)}
    with pytest.raises(R.CrossCheckError):
        R.cross_check(ref, {"g": np.zeros(4)}, rtol=1e-5, atol=0)
    with pytest.raises(R.CrossCheckError):
        R.cross_check(ref, {}, rtol=1e-5, atol=0)
    assert R.cross_check(ref, {"g": np.full(3, 1e-9)}, rtol=1e-5, atol=1e-8) == pytest.approx(1e-9)


def test_runner_exit_status_is_one_on_a_mismatch(tmp_path: Path, monkeypatch) -> None:
    from benchmarks import engine_overhead

    def run(cfg: R.Config) -> R.SuiteResult:
        res = R.SuiteResult()
        res.add(R.compare(cfg, "engine", "rigged", [_contender("gpuchain"),
                                                     _contender("peer", 2.0)]))
        return res

    monkeypatch.setattr(engine_overhead, "run", run)
    rc, data = _run(tmp_path, "engine")
    assert rc == 1
    assert [c["status"] for c in data["checks"]] == ["ok", "mismatch"]


def test_machine_slug_and_formatting() -> None:
    env = {"backend": "numpy", "gpu": {}, "machine": {"cpu": "Intel(R) Xeon(R) Gold 6354",
                                                       "cores": 2}}
    assert R.machine_slug(env) == "cpu-intel-xeon-gold-6354-2c"
    assert R.fmt_time(1.5e-3) == "1.5 ms" and R.fmt_bytes(3 * 2**20) == "3 MiB"


def test_every_suite_module_has_run() -> None:
    import importlib

    for name, (module, _) in SUITES.items():
        assert callable(importlib.import_module(module).run), name


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_memory_child_measures_a_step() -> None:
    from benchmarks.memory import child

    out = child("gpuchain composed ops", (8, 16, 4), 8, "relu", "numpy")
    assert out["peak_bytes"] >= 0 and out["tracemalloc_peak_bytes"] > 0
    assert np.isfinite(out["loss"])


@pytest.mark.torch
def test_train_suite_systems_agree_with_torch() -> None:
    pytest.importorskip("torch")
    from benchmarks import train_suite

    cfg = R.Config(repeats=1, warmup=0, pause_s=0.0, peers=("torch",))
    rows, checks = R.compare(cfg, "train", "small", train_suite.contenders(cfg, "small"),
                             rtol=1e-3, atol=1e-5)
    assert [c.status for c in checks] == ["ok", "ok"], checks


def test_gpuchain_cli_reaches_the_runner(capsys) -> None:
    from gpuchain.cli import main as cli_main

    assert cli_main(["bench", "--", "--list"]) == 0
    assert "jacobian" in capsys.readouterr().out


def test_positional_suite_names(tmp_path: Path) -> None:
    rc = main(["bandwidth", "--quick", "--out", str(tmp_path), *QUIET])
    assert rc == 0 and (tmp_path / "results.md").exists()
    with pytest.raises(SystemExit):
        main(["no-such-suite", "--out", str(tmp_path), *QUIET])
