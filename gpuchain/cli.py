"""The ``gpuchain`` command: ``info``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence


def _info(_: argparse.Namespace) -> int:
    import numpy as np

    import gpuchain as gc
    from gpuchain import backend

    print(f"gpuchain {gc.__version__}  python {platform.python_version()}  numpy {np.__version__}")
    b = gc.get_backend()
    print(f"backend: {b.name} ({backend.selection_note()})")
    reason = backend.cupy_unavailable_reason()
    print("cupy: usable" if not reason else f"cupy: not usable — {reason}")
    print(f"matmul precision: {gc.get_matmul_precision()}")
    try:
        from gpuchain.cuda.telemetry import device_info, telemetry_status
    except ImportError as exc:  # the CUDA package is optional in a trimmed install
        print(f"GPUs: unavailable ({exc})")
        return 0
    devices = device_info()
    if not devices:
        print(f"GPUs: {telemetry_status()}")
    for d in devices:
        print("GPU " + ", ".join(f"{k}={v}" for k, v in d.items()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.seeds:
        from gpuchain.seeds import print_seed_table

        worst = print_seed_table()
        print(f"worst relative error against the closed forms: {worst:.2e}")
        return 0 if worst < 1e-9 else 1
    from gpuchain.demo import run_demo

    options = {k: getattr(args, k) for k in ("steps", "width", "depth", "seed")
               if getattr(args, k) is not None}
    result = run_demo(backend=args.backend, **options)
    return 0 if result.get("ok", True) else 1


def _bench(args: argparse.Namespace) -> int:
    try:
        from benchmarks.__main__ import main as bench_main
    except ImportError:
        print("gpuchain bench runs from a source checkout (the benchmarks/ folder beside the "
              "package); clone the repository and run it from its root", file=sys.stderr)
        return 2
    return bench_main(args.bench_args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # everything after "bench" belongs to the benchmark runner, options included
        return _bench(argparse.Namespace(bench_args=argv[1:]))
    parser = argparse.ArgumentParser(prog="gpuchain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="backend, versions and GPUs").set_defaults(run=_info)
    demo = sub.add_parser("demo", help="train an MLP on two spirals (the main job)")
    demo.add_argument("--backend", choices=("numpy", "cupy", "auto"), default=None)
    demo.add_argument("--steps", type=int)
    demo.add_argument("--width", type=int)
    demo.add_argument("--depth", type=int)
    demo.add_argument("--seed", type=int)
    demo.add_argument("--seeds", action="store_true",
                      help="print the seed chain-rule examples against their closed forms")
    demo.set_defaults(run=_demo)
    bench = sub.add_parser("bench", help="run the benchmark suites (see benchmarks/)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
