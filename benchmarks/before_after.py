"""Before/after check: the same benchmark suites on an older gpuchain and on this one,
back to back in one run (``python -m benchmarks.before_after BASE_TREE``).

``BASE_TREE`` is a checkout of the older commit (``git worktree add /tmp/gpuchain-base
<commit>``). Both sides run *this* tree's harness (``gpuchain/bench`` is laid over a copy
of the older package, so only the library differs), each suite as ``BEFORE, AFTER``
(``--rounds 2``: ``BEFORE, AFTER, AFTER, BEFORE``), pinned to the same core. Prints and
writes (``--out``) a table: gpuchain's median before and after, and gpuchain ÷ peer
before and after, per case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gpuchain.bench._report import fmt_time

ROOT = Path(__file__).resolve().parent.parent


def overlay(base: Path, work: Path) -> Path:
    """A copy of ``base``'s gpuchain package with this tree's gpuchain/bench laid over it."""
    dst = work / "before"
    shutil.copytree(base / "gpuchain", dst / "gpuchain",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if (base / "kernels").is_dir():
        shutil.copytree(base / "kernels", dst / "kernels")
    shutil.rmtree(dst / "gpuchain" / "bench", ignore_errors=True)
    shutil.copytree(ROOT / "gpuchain" / "bench", dst / "gpuchain" / "bench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def run_side(tree: Path, suite: str, out: Path, extra: list[str]) -> dict[str, Any]:
    """One suite on one tree (a fresh interpreter); its results.json."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "gpuchain.bench", suite, "--out", str(out), "--no-progress",
           *extra]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{suite} on {tree} exited {proc.returncode}: {proc.stderr[-800:]}")
    return json.loads((out / "results.json").read_text())


def table(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: per case and system, medians and ratios before and after."""
    def index(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for data in runs:
            for r in data["rows"]:
                out.setdefault((r["suite"], r["case"], r["system"]), []).append(r)
        return out

    b, a = index(before), index(after)
    lines = ["| suite | case | system | before median | after median | after ÷ before | "
             "gpuchain ÷ system before | after |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for key in b:
        if key not in a:
            continue
        mb = min(r["per_unit"] for r in b[key])
        ma = min(r["per_unit"] for r in a[key])
        rb = [r["gpuchain_over_system"] for r in b[key] if r["gpuchain_over_system"]]
        ra = [r["gpuchain_over_system"] for r in a[key] if r["gpuchain_over_system"]]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {fmt_time(mb)} | "
                     f"{fmt_time(ma)} | {ma / mb:.2f} | "
                     f"{'/'.join(f'{x:.2f}' for x in rb)} | {'/'.join(f'{x:.2f}' for x in ra)} |")
    return lines


def _commit(tree: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    """Run the suites before and after; print the table; 0 on success."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.before_after",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("base", type=Path, help="checkout of the older commit")
    p.add_argument("--after", type=Path, default=ROOT,
                   help="the newer tree (default: this checkout)")
    p.add_argument("--suites", nargs="+", default=["engine", "train"])
    p.add_argument("--rounds", type=int, default=1, choices=(1, 2))
    p.add_argument("--out", type=Path, default=None, help="folder for every run's results")
    p.epilog = "Arguments after -- go to every run (e.g. -- --quick)."
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    a = p.parse_args(argv[:cut])
    extra = argv[cut + 1:]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out = a.out or work / "runs"
        sides = {"before": overlay(a.base.resolve(), work), "after": a.after.resolve()}
        order = ["before", "after"] + (["after", "before"] if a.rounds == 2 else [])
        runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for suite in a.suites:
            for k, side in enumerate(order):
                print(f"[before_after] {suite}: {side} ({k + 1}/{len(order)})", flush=True)
                runs[side].append(run_side(sides[side], suite, out / f"{side}-{suite}-{k}",
                                           extra))
        commits = {s: _commit(t) for s, t in (("before", a.base), ("after", a.after))}
        lines = [f"before: {a.base} ({commits['before']}), after: {a.after} "
                 f"({commits['after']}); load average at the end "
                 f"{runs['after'][-1]['environment']['load_average_1_5_15']}", "",
                 *table(runs["before"], runs["after"]),
                 "", "Medians: the lower of the rounds' medians, per unit (per op for engine)."]
        text = "\n".join(lines) + "\n"
        print(text)
        if a.out:
            a.out.mkdir(parents=True, exist_ok=True)
            (a.out / "before_after.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
