"""Data-parallel training: delegates to ``python -m gpuchain.distributed.benchmark``.

That module (the distributed package's own benchmark) launches its processes itself;
this suite runs it in a child process with ``--quick`` and ``--backend`` passed through,
keeps its exit status and the tail of its output, and reads rows from its JSON when it
writes one (``--json PATH``: a list of {"case", "system", "median", "min", "max",
"repeats"} in seconds). Skipped when the module does not exist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gpuchain.bench._runner import (
    Check,
    Config,
    Row,
    SuiteResult,
    SuiteSkipped,
    run_single_suite,
    say,
    set_ratios,
)

SUITE = "distributed"
MODULE = "gpuchain.distributed.benchmark"
TIMEOUT_S = 900


def available() -> bool:
    """True when ``gpuchain.distributed.benchmark`` can be found."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ModuleNotFoundError:  # gpuchain.distributed itself is absent
        return False


def _rows(payload: Any) -> list[Row]:
    rows = []
    for item in payload if isinstance(payload, list) else payload.get("rows", []):
        rows.append(Row(SUITE, str(item["case"]), str(item["system"]), float(item["median"]),
                        float(item.get("min", item["median"])),
                        float(item.get("max", item["median"])), int(item.get("repeats", 1)),
                        extra={k: v for k, v in item.items()
                               if k not in ("case", "system", "median", "min", "max")}))
    return rows


def run(cfg: Config) -> SuiteResult:
    """Run the distributed benchmark in a child process and collect what it reports."""
    if not available():
        raise SuiteSkipped(f"{MODULE} does not exist in this gpuchain")
    res = SuiteResult()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "distributed.json"
        cmd = [sys.executable, "-m", MODULE, "--backend", cfg.backend, "--json", str(out)]
        if cfg.quick:
            cmd.append("--quick")
        say(cfg, f"{SUITE}: {' '.join(cmd[1:])}")
        pkg_parent = str(Path(__file__).resolve().parents[2])
        env = os.environ | {"PYTHONPATH": os.pathsep.join(
            filter(None, [pkg_parent, os.environ.get("PYTHONPATH")]))}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                  timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            res.checks.append(Check(SUITE, "run", MODULE, "error", None,
                                    f"no result after {TIMEOUT_S} s"))
            return res
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        status = "ok" if proc.returncode == 0 else "error"
        res.checks.append(Check(SUITE, "run", MODULE, status, None,
                                f"exit {proc.returncode}: " + " | ".join(tail)[:300]))
        if out.is_file():
            try:
                rows = _rows(json.loads(out.read_text()))
                for case in dict.fromkeys(r.case for r in rows):  # gpuchain ÷ peer per case
                    set_ratios([r for r in rows if r.case == case])
                res.rows += rows
            except (ValueError, KeyError, TypeError) as exc:
                res.notes.append(f"distributed: could not read {MODULE}'s JSON: {exc}")
    res.notes.append(f"distributed: run by {MODULE} in a child process")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
