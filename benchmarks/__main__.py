"""``python -m benchmarks [SUITE ...] [--quick] [--out DIR] [--backend numpy|cupy]``

(``--suite NAME ...`` works too; ``gpuchain bench SUITE ... --quick`` from a checkout.)

Runs the named suites (default: all) and writes ``results.json``, ``results.md`` and
``results.png`` under ``benchmarks/results/<machine>-<date>/`` (or ``--out``). Exit
status 1 when any cross-check failed, 2 on a usage or backend error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SUITES: dict[str, tuple[str, str]] = {
    "engine": ("benchmarks.engine_overhead", "op dispatch + tape overhead vs PyTorch eager"),
    "train": ("benchmarks.train_suite", "MLP train step (small..xl) vs PyTorch / JAX"),
    "jacobian": ("benchmarks.jacobian", "input and per-sample Jacobians vs torch.func / JAX"),
    "fused": ("benchmarks.fused", "fused dense op vs composed matmul+add+act"),
    "bandwidth": ("benchmarks.bandwidth", "GPU: act-grad+bias-grad kernel vs D2D copy"),
    "memory": ("benchmarks.memory", "peak memory of a train step"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help=f"suites to run (default: all): {', '.join(SUITES)}")
    p.add_argument("--suite", nargs="+", default=[], metavar="NAME", help="same as SUITE")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few repeats (whole run within ~2 minutes on 2 cores)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default benchmarks/results/<machine>-<date>)")
    p.add_argument("--out-root", type=Path, default=None,
                   help="parent of the <machine>-<date> folder (default benchmarks/results; "
                        "the Docker images use /results)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per block")
    p.add_argument("--peers", nargs="*", default=["torch", "jax"], metavar="PEER",
                   help="peers to compare against when installed (default: torch jax; "
                        "give none to time gpuchain alone)")
    p.add_argument("--sizes", nargs="+", default=None, help="train/memory: model sizes")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for NumPy/OpenBLAS, PyTorch and XLA (default: 1 on the "
                        "numpy backend, for stable figures on shared machines; 0: library "
                        "defaults)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    return p


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _thread_env(threads: int) -> dict[str, str]:
    env = {k: str(threads) for k in _THREAD_VARS}
    env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                        f"intra_op_parallelism_threads={threads}").strip()
    return env


def _pin_threads(threads: int, argv: list[str]) -> int | None:
    """Set thread counts; NumPy reads them only at import, so when it is already imported
    (e.g. under ``gpuchain bench``) rerun in a fresh interpreter and return its status."""
    if all(os.environ.get(k) == str(threads) for k in _THREAD_VARS):
        pass
    elif "numpy" in sys.modules:
        root = str(Path(__file__).resolve().parent.parent)
        env = os.environ | _thread_env(threads)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        return subprocess.call([sys.executable, "-m", "benchmarks", *argv], env=env, cwd=root)
    else:
        os.environ.update(_thread_env(threads))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv[:1] == ["--"]:  # `gpuchain bench -- --quick` passes the separator through
        argv = argv[1:]
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [s for s in args.suites + args.suite if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    if args.list:
        for name, (_, about) in SUITES.items():
            print(f"{name:10s} {about}")
        return 0
    threads = args.threads if args.threads is not None else (1 if args.backend == "numpy" else 0)
    if threads > 0:
        status = _pin_threads(threads, argv)
        if status is not None:
            return status

    import gpuchain as gc
    from benchmarks import _runner as R

    try:
        gc.set_backend(args.backend)
    except gc.GpuchainError as exc:
        print(f"backend {args.backend!r} is not usable here: {exc}", file=sys.stderr)
        return 2
    cfg = R.Config(backend=args.backend, quick=args.quick, peers=tuple(args.peers), threads=threads,
                   sizes=tuple(args.sizes) if args.sizes else None,
                   progress=R.Progress(enabled=not args.no_progress))
    cfg.repeats = args.repeats or (3 if args.quick else 7)
    cfg.warmup = 1 if args.quick else 2
    cfg.rounds = 1 if args.quick else 3
    torch = R.peer(cfg, "torch")
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)

    names = list(dict.fromkeys(args.suites + args.suite)) or list(SUITES)
    rows, checks, notes, skipped = [], [], [], {}
    t0 = time.perf_counter()
    for i, name in enumerate(names, 1):
        R.say(cfg, f"suite {i}/{len(names)}: {name}")
        module = importlib.import_module(SUITES[name][0])
        try:
            res = module.run(cfg)
        except R.SuiteSkipped as exc:
            skipped[name] = str(exc)
            R.say(cfg, f"suite {name} skipped: {exc}")
            continue
        rows += res.rows
        checks += res.checks
        notes += res.notes
    if cfg.progress is not None:
        cfg.progress.done()

    env = R.environment(cfg)
    env["elapsed_s"] = round(time.perf_counter() - t0, 1)
    env["suites"] = names
    out = args.out or (args.out_root or R.RESULTS_DIR) / (
        f"{R.machine_slug(env)}-{env['date']}{'-quick' if args.quick else ''}")
    R.write_results(Path(out), env, rows, checks, notes, skipped)
    print(R.markdown(env, rows, checks, []).split("\n## cross-checks")[0].rstrip())
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    failed = [c for c in checks if c.status != "ok"]
    for c in failed:
        print(f"CROSS-CHECK {c.status.upper()}: {c.suite}/{c.case} {c.system}: {c.detail}",
              file=sys.stderr)
    print(f"results written to {out}  ({env['elapsed_s']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
