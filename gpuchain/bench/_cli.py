"""``gpuchain bench [SUITE ...] [--quick] [--out DIR] [--backend numpy|cupy]``

(also ``python -m gpuchain.bench`` and, in a source checkout, ``python -m benchmarks``;
``--suite NAME ...`` works too.)

Runs the named suites (default: all but distributed) and writes ``results.json``,
``results.md`` and ``results.png`` under ``benchmarks/results/<machine>-<date>/`` in a
source checkout, else ``./benchmark-results/<machine>-<date>/`` (or ``--out``). Exit
status 1 when any cross-check failed, 2 on a usage or backend error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

# JAX must not take most of the GPU's memory at start: set before any import of JAX.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

SUITES: dict[str, tuple[str, str]] = {
    "engine": ("gpuchain.bench.engine", "op dispatch + tape overhead vs PyTorch eager"),
    "train": ("gpuchain.bench.train", "MLP train step (small..large, modern_*) vs PyTorch "
                                      "/ JAX"),
    "target": ("gpuchain.bench.target", "GPU target: batch 8192, 4x4096 relu MLP + Adam, TF32 "
                                        "off/on, GEMM share, vs torch eager / compile"),
    "jacobian": ("gpuchain.bench.jacobian", "input and per-sample Jacobians vs torch.func / "
                                            "JAX"),
    "fused": ("gpuchain.bench.fused", "fused dense op vs composed matmul+add+act"),
    "ops": ("gpuchain.bench.ops", "einsum, tensordot, cumsum, sort, solve, cholesky (fwd+bwd) "
                                  "vs PyTorch / JAX"),
    "bandwidth": ("gpuchain.bench.bandwidth", "GPU: act-grad+bias-grad kernel vs D2D copy"),
    "memory": ("gpuchain.bench.memory", "peak memory of a forward+backward and of a full "
                                        "train step"),
    "distributed": ("gpuchain.bench.distributed", "data-parallel training (delegates to "
                                                  "gpuchain.distributed.benchmark)"),
}
DEFAULT_SUITES = ("engine", "train", "target", "jacobian", "fused", "bandwidth", "memory")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PINNED_ENV = "GPUCHAIN_BENCH_CPUS"


def _parser() -> argparse.ArgumentParser:
    # the CLI's parser and number checks: a bad value is one line and exit status 2
    from gpuchain.cli import _count_int, _Parser, _positive_float, _positive_int

    p = _Parser(prog="gpuchain bench", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help=f"suites to run (default: {' '.join(DEFAULT_SUITES)}): "
                        f"{', '.join(SUITES)}")
    p.add_argument("--suite", nargs="+", default=[], metavar="NAME", help="same as SUITE")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few repeats (whole run within ~2 minutes on 2 cores)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default <results>/<machine>-<date>)")
    p.add_argument("--out-root", type=Path, default=None,
                   help="parent of the <machine>-<date> folder (default benchmarks/results in "
                        "a checkout, else ./benchmark-results; the Docker images use /results)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--repeats", type=_positive_int, default=None, help="timed samples per system")
    p.add_argument("--min-sample", type=_positive_float, default=None, metavar="SECONDS",
                   help="each timed sample repeats the call until it lasts this long "
                        "(default 0.05; 0.01 with --quick)")
    p.add_argument("--peers", nargs="*", default=["torch", "jax"], metavar="PEER",
                   help="peers to compare against when installed (default: torch jax; "
                        "give none to time gpuchain alone)")
    p.add_argument("--sizes", nargs="+", default=None, help="train/memory: model sizes")
    p.add_argument("--threads", type=_count_int, default=None,
                   help="CPU threads AND cores for every library: the run is re-executed "
                        "pinned to that many cores (CPU affinity), each library told to use "
                        "that many threads (default: 1 on the numpy backend; 0: no pinning, "
                        "library defaults)")
    p.add_argument("--compile-limit", type=_positive_float, default=240.0, metavar="SECONDS",
                   help="bound on torch.compile's warm-up per variant (reported apart)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    return p


def _cores(threads: int) -> list[int]:
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return available[:threads]


def _pinned_child(threads: int, argv: list[str]) -> int | None:
    """Re-run in a fresh interpreter pinned to ``threads`` cores (set before it starts, so
    every thread any library creates inherits it) with each library's thread count set;
    return its exit status, or None when this process already is that child."""
    cores = _cores(threads)
    if not cores or len(cores) < threads:
        print(f"gpuchain bench: --threads {threads} but only {len(cores)} core(s) are "
              "available to this process; running unpinned", file=sys.stderr)
        return None
    want = ",".join(map(str, cores))
    if os.environ.get(PINNED_ENV) == want and sorted(os.sched_getaffinity(0)) == cores:
        return None
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env = os.environ | {k: str(threads) for k in _THREAD_VARS} | {PINNED_ENV: want}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
    return subprocess.call([sys.executable, "-m", "gpuchain.bench", *argv], env=env,
                           preexec_fn=lambda: os.sched_setaffinity(0, cores))


def main(argv: Sequence[str] | None = None) -> int:
    """Run benchmark suites; ``argv`` as on the command line (without the program name).

    Returns the exit status: 0 when every cross-check agreed, 1 when one failed, 2 on a
    usage or backend error, 130 when interrupted (what was measured is still written).
    """
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv[:1] == ["--"]:  # `gpuchain bench -- --quick` passes the separator through
        argv = argv[1:]
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on errors, 0 on --help
        return int(exc.code or 0)
    unknown = [s for s in args.suites + args.suite if s not in SUITES]
    if unknown:
        print(f"gpuchain bench: unknown suite(s) {', '.join(unknown)}; choose from "
              f"{', '.join(SUITES)}", file=sys.stderr)
        return 2
    if args.list:
        for name, (_, about) in SUITES.items():
            print(f"{name:12s} {about}")
        return 0
    threads = args.threads if args.threads is not None else (1 if args.backend == "numpy" else 0)
    if threads > 0 and hasattr(os, "sched_setaffinity"):
        status = _pinned_child(threads, argv)
        if status is not None:
            return status
    return _run(args, threads)


def _config(args: argparse.Namespace, threads: int):  # type: ignore[no-untyped-def]
    from gpuchain.bench import _runner as R

    cfg = R.Config(backend=args.backend, quick=args.quick, peers=tuple(args.peers),
                   threads=threads, sizes=tuple(args.sizes) if args.sizes else None,
                   compile_limit_s=args.compile_limit,
                   progress=R.Progress(enabled=not args.no_progress))
    cfg.repeats = args.repeats or (3 if args.quick else 7)
    cfg.warmup = 1 if args.quick else 2
    cfg.rounds = 1 if args.quick else 3
    cfg.min_sample_s = args.min_sample if args.min_sample is not None else (
        0.01 if args.quick else 0.05)
    return cfg


def _run(args: argparse.Namespace, threads: int) -> int:
    from gpuchain.backend import set_backend
    from gpuchain.bench import _report as out
    from gpuchain.bench import _runner as R
    from gpuchain.errors import GpuchainError

    try:
        set_backend(args.backend)
    except GpuchainError as exc:
        print(f"gpuchain bench: backend {args.backend!r} is not usable here: {exc}",
              file=sys.stderr)
        return 2
    cfg = _config(args, threads)
    torch = R.peer(cfg, "torch")
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)
    names = list(dict.fromkeys(args.suites + args.suite)) or list(DEFAULT_SUITES)
    rows, checks, notes, skipped = [], [], [], {}
    interrupted = False
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
        except KeyboardInterrupt:  # e.g. a time cap's SIGINT: keep what is measured
            for rest in names[i - 1:]:
                skipped[rest] = "interrupted (SIGINT) before it finished"
            interrupted = True
            break
        except Exception as exc:  # noqa: BLE001 - one broken suite must not lose the others
            traceback.print_exc()
            checks.append(R.Check(name, "(whole suite)", "gpuchain", "error", None,
                                  f"suite {name} raised {type(exc).__name__}: {exc}"[:500]))
            continue
        rows += res.rows
        checks += res.checks
        notes += res.notes
    if cfg.progress is not None:
        cfg.progress.done()
    env = out.environment(cfg)
    env["elapsed_s"] = round(time.perf_counter() - t0, 1)
    env["suites"] = names
    folder = args.out or (args.out_root or out.default_results_dir()) / (
        f"{out.machine_slug(env)}-{env['date']}{'-quick' if args.quick else ''}")
    out.write_results(Path(folder), env, rows, checks, notes, skipped)
    print(out.markdown(env, rows, checks, []).split("\n## cross-checks")[0].rstrip())
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    failed = [c for c in checks if c.status != "ok"]
    for c in failed:
        print(f"CROSS-CHECK {c.status.upper()}: {c.suite}/{c.case} {c.system}: {c.detail}",
              file=sys.stderr)
    print(f"results written to {folder}  ({env['elapsed_s']} s)")
    return 130 if interrupted else (1 if failed else 0)
