"""The ``gpuchain`` command line: --version, help on every option, and every usage error
reported on one line with exit status 2 and no traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gpuchain as gc
from gpuchain import backend, cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "3", "--points", "30", "--width", "4", "--depth", "1"]


def run_cli(argv, capsys):
    """Run ``gpuchain ARGV`` in this process: (status, stdout, stderr)."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse's --help / --version / errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def run_process(*argv, env=None):
    full_env = os.environ | {"GPUCHAIN_BACKEND": "numpy"} | (env or {})
    return subprocess.run([sys.executable, "-m", "gpuchain", *argv], capture_output=True,
                          text=True, env=full_env, cwd=ROOT, timeout=300)


def assert_usage_error(status, err, *fragments):
    assert status == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_version_in_process_and_from_the_real_command(capsys):
    status, out, _ = run_cli(["--version"], capsys)
    assert status == 0 and out.strip() == f"gpuchain {gc.__version__}"
    proc = run_process("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"gpuchain {gc.__version__}"


def _all_parsers():
    parser = cli._parser()
    yield "gpuchain", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_option_and_command_has_help_text():
    seen = 0
    for name, parser in _all_parsers():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"gpuchain command {choice.dest} has no help"
                continue
            assert action.help and action.help != argparse.SUPPRESS, \
                f"{name} {action.option_strings} has no help text"
            seen += 1
    assert seen >= 12  # --version, demo's options, the -h of each parser


def test_help_lists_the_options(capsys):
    status, out, _ = run_cli(["demo", "--help"], capsys)
    assert status == 0
    out = " ".join(out.split())  # argparse wraps the description
    for option in ("--steps", "--width", "--depth", "--backend", "--plot", "--threads",
                   "--examples", "three interleaved spirals"):
        assert option in out


@pytest.mark.parametrize("argv, fragments", [
    (["demo", "--steps", "-5"], ["--steps", "positive integer", "'-5'"]),
    (["demo", "--steps", "0"], ["--steps", "'0'"]),
    (["demo", "--steps", "many"], ["--steps", "'many'"]),
    (["demo", "--width", "0"], ["--width", "positive integer", "'0'"]),
    (["demo", "--depth", "-1"], ["--depth", "'-1'"]),
    (["demo", "--points", "2"], ["--points", ">= 3"]),
    (["demo", "--lr", "-0.1"], ["--lr", "positive number"]),
    (["demo", "--lr", "nan"], ["--lr", "'nan'"]),
    (["demo", "--lr", "inf"], ["--lr", "'inf'"]),
    (["demo", "--seed", "-3"], ["--seed", "non-negative"]),
    (["demo", "--threads", "-2"], ["--threads", "non-negative"]),
    (["demo", "--backend", "tpu"], ["--backend", "'tpu'"]),
    (["demo", "--bogus"], ["unrecognized arguments", "--bogus"]),
    (["frobnicate"], ["invalid choice", "'frobnicate'"]),
    ([], ["required", "COMMAND"]),
])
def test_bad_option_values_are_one_line_errors(argv, fragments, capsys):
    status, out, err = run_cli(argv, capsys)
    assert_usage_error(status, err, *fragments)
    assert out == ""


def test_bad_option_from_the_real_command_has_no_traceback():
    proc = run_process("demo", "--steps", "-5")
    assert_usage_error(proc.returncode, proc.stderr, "--steps", "'-5'")
    assert "steps/s" not in proc.stdout  # nothing ran


def test_unavailable_cupy_backend_is_a_usage_error(capsys):
    reason = backend.cupy_unavailable_reason()
    if not reason:
        pytest.skip("CuPy is usable on this machine")
    status, _, err = run_cli(["demo", "--backend", "cupy", *TINY], capsys)
    assert_usage_error(status, err, "backend 'cupy' is unavailable", reason)
    proc = run_process("demo", "--backend", "cupy", *TINY)
    assert_usage_error(proc.returncode, proc.stderr, "backend 'cupy' is unavailable")


@pytest.mark.parametrize("command", [["demo", *TINY], ["info"]])
def test_bad_backend_environment_variable(command, capsys, monkeypatch):
    monkeypatch.setenv("GPUCHAIN_BACKEND", "quantum")
    status, _, err = run_cli(command, capsys)
    assert_usage_error(status, err, "GPUCHAIN_BACKEND='quantum'")


def test_info_shows_the_diagnosis_then_fails_on_an_unusable_backend(capsys, monkeypatch):
    reason = backend.cupy_unavailable_reason()
    if not reason:
        pytest.skip("CuPy is usable on this machine")
    monkeypatch.setenv("GPUCHAIN_BACKEND", "cupy")
    status, out, err = run_cli(["info"], capsys)
    assert_usage_error(status, err, "backend 'cupy' is unavailable")
    assert f"cupy: not usable — {reason}" in out and "backend: none" in out


def test_info_reports_versions_and_backend(capsys):
    status, out, err = run_cli(["info"], capsys)
    assert status == 0, err
    assert out.startswith(f"gpuchain {gc.__version__}") and "backend: numpy" in out


def test_plot_without_matplotlib_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    status, out, err = run_cli(["demo", *TINY, "--plot", str(tmp_path / "p.png")], capsys)
    assert_usage_error(status, err, "--plot needs matplotlib", "gpuchain[plot]")
    assert "steps/s" not in out and not (tmp_path / "p.png").exists()


def test_plot_into_a_missing_folder_is_a_usage_error(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "no" / "such" / "p.png"
    status, out, err = run_cli(["demo", *TINY, "--plot", str(target)], capsys)
    assert_usage_error(status, err, "--plot", "does not exist")
    assert "steps/s" not in out


def test_missing_bench_package_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gpuchain.bench", None)
    status, _, err = run_cli(["bench", "--quick"], capsys)
    assert_usage_error(status, err, "gpuchain bench: error:", "gpuchain.bench")


def test_bench_delegates_every_argument(capsys, monkeypatch):
    seen = []
    fake = types.ModuleType("gpuchain.bench")
    fake.main = lambda argv: seen.append(list(argv)) or 7
    monkeypatch.setitem(sys.modules, "gpuchain.bench", fake)
    status, _, _ = run_cli(["bench", "engine", "--quick", "--help"], capsys)
    assert status == 7 and seen == [["engine", "--quick", "--help"]]


def test_demo_runs_and_reports(capsys):
    status, out, err = run_cli(["demo", *TINY, "--seed", "1"], capsys)
    assert status == 0, err
    assert "3 spirals" in out and "final loss" in out and "backend numpy" in out


def test_demo_seeds_table(capsys):
    status, out, _ = run_cli(["demo", "--examples"], capsys)
    assert status == 0 and "closed form" in out and "worst relative error" in out


def test_demo_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "demo.png"
    status, out, err = run_cli(["demo", *TINY, "--plot", str(target)], capsys)
    assert status == 0, err
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    import matplotlib.image

    height, width = matplotlib.image.imread(target).shape[:2]
    assert width > 1.5 * height > 300  # two panels side by side
    assert f"plot written to {target}" in out


def test_blas_threads_are_pinned_during_the_demo():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np

    np.ones((4, 4)) @ np.ones((4, 4))  # make sure the BLAS is loaded
    if not threadpoolctl.threadpool_info():
        pytest.skip("no BLAS thread pool visible to threadpoolctl")
    with cli._blas_threads(1, None):
        inside = {p["num_threads"] for p in threadpoolctl.threadpool_info()}
    assert inside == {1}
    assert cli._thread_limit(None, "numpy") == 1
    assert cli._thread_limit(0, "numpy") is None and cli._thread_limit(3, "cupy") == 3


def test_without_threadpoolctl_the_command_reruns_itself_with_thread_variables(tmp_path):
    (tmp_path / "threadpoolctl.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    for var in cli._THREAD_VARS:
        env[var] = ""
    proc = run_process("demo", *TINY, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "final loss" in proc.stdout
    assert "not pinned" not in proc.stderr  # the re-run had the variables set


def test_without_threadpoolctl_in_process_a_note_is_printed(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    for var in cli._THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    with cli._blas_threads(1, None):
        pass
    assert "BLAS threads not pinned to 1" in capsys.readouterr().err
