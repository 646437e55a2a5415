"""The ``gpuchain`` command: ``info``, ``demo`` and ``bench``.

Every usage error (a bad option value, an unknown option, a backend that cannot run here,
a missing optional package) is reported on one line of standard error, with exit status 2
and no traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_REEXEC_MARK = "GPUCHAIN_CLI_THREADS_PINNED"


class UsageError(Exception):
    """A problem with the command line or the environment; reported on one line, status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(kind: type, test: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted  # argparse names the type in some messages
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_count_int = _number(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _number(float, lambda v: v > 0, "a positive number")


def _version() -> str:
    import gpuchain

    return gpuchain.__version__


# --- BLAS threads ------------------------------------------------------------------------

def _thread_limit(threads: int | None, backend: str | None) -> int | None:
    """Threads to pin BLAS to (``--threads``), or None to leave the library defaults."""
    if threads is None:
        # the demo's GEMMs are small: one thread is fastest, and stable on a loaded machine
        return None if backend == "cupy" else 1
    return threads or None


@contextmanager
def _blas_threads(limit: int | None, argv: Sequence[str] | None) -> Iterator[None]:
    """Pin BLAS/OpenMP threads to ``limit`` for the block.

    With threadpoolctl installed the already-loaded BLAS is limited in this process. Without
    it only environment variables work, and they are read when NumPy loads its BLAS, which
    has happened by now (``import gpuchain`` imports NumPy); so the real command line re-runs
    itself once with the variables set (``argv`` is that command line; ``None`` when called
    from Python, where a one-line note is printed instead).
    """
    if limit is None or all(os.environ.get(k) == str(limit) for k in _THREAD_VARS[:3]):
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=limit):
            yield
        return
    if argv is not None and not os.environ.get(_REEXEC_MARK):
        env = os.environ | {k: str(limit) for k in _THREAD_VARS} | {_REEXEC_MARK: "1"}
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *_relaunch_command(), *argv], env)
    print(f"gpuchain demo: note: BLAS threads not pinned to {limit} (install threadpoolctl, "
          f"or set OMP_NUM_THREADS={limit} before starting Python)", file=sys.stderr)
    yield


def _relaunch_command() -> list[str]:
    """How to start this command again with the same gpuchain: the installed script
    itself (its folder, not the working directory, goes first on ``sys.path``), or
    ``-m gpuchain`` when it was started that way."""
    script = sys.argv[0] if sys.argv else ""
    if script and os.path.isfile(script) and not script.endswith("__main__.py"):
        return [script]
    return ["-m", "gpuchain"]


# --- commands ------------------------------------------------------------------------------

def _check_backend(name: str | None) -> None:
    """Raise UsageError when the requested (or GPUCHAIN_BACKEND) backend cannot run here."""
    from gpuchain import backend

    wanted = (name or os.environ.get("GPUCHAIN_BACKEND", "auto")).strip().lower() or "auto"
    source = "--backend" if name else "GPUCHAIN_BACKEND"
    if wanted not in ("numpy", "cupy", "auto"):
        raise UsageError(f"{source}={wanted!r} is not a backend; expected numpy, cupy or auto")
    if wanted == "cupy":
        reason = backend.cupy_unavailable_reason()
        if reason:
            fallback = "use --backend numpy" if name else "set GPUCHAIN_BACKEND=numpy"
            hint = ("install gpuchain[cuda13] or gpuchain[cuda12] on a CUDA machine, or "
                    + fallback if "import" in reason else fallback)
            raise UsageError(f"backend 'cupy' is unavailable: {reason} ({hint})")


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    import gpuchain as gc
    from gpuchain import backend

    print(f"gpuchain {gc.__version__}  python {platform.python_version()}  numpy {np.__version__}")
    reason = backend.cupy_unavailable_reason()
    print("cupy: usable" if not reason else f"cupy: not usable — {reason}")
    try:
        _check_backend(None)
    except UsageError as exc:  # show the rest of the diagnosis, then fail as a usage error
        problem: UsageError | None = exc
        print("backend: none")
    else:
        problem = None
        print(f"backend: {gc.get_backend().name} ({backend.selection_note()})")
    print(f"matmul precision: {gc.get_matmul_precision()}")
    try:
        from gpuchain.cuda.telemetry import device_info, telemetry_status
    except ImportError as exc:  # the CUDA package is optional in a trimmed install
        print(f"GPUs: unavailable ({exc})")
    else:
        devices = device_info()
        if not devices:
            print(f"GPUs: {telemetry_status()}")
        for d in devices:
            print("GPU " + ", ".join(f"{k}={v}" for k, v in d.items()))
    if problem is not None:
        raise problem
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.examples:
        from gpuchain.worked_examples import print_worked_examples

        worst = print_worked_examples()
        print(f"worst relative error against the closed forms: {worst:.2e}")
        return 0 if worst < 1e-9 else 1
    _check_backend(args.backend)
    if args.plot is not None:
        from gpuchain.plotting import require_matplotlib

        try:
            require_matplotlib("--plot")
        except ModuleNotFoundError as exc:
            raise UsageError(str(exc)) from None
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            raise UsageError(f"--plot {args.plot}: folder {folder} does not exist")
    from gpuchain.demo import run_demo

    options = {k: getattr(args, k) for k in ("steps", "width", "depth", "seed", "lr", "points")
               if getattr(args, k) is not None}
    with _blas_threads(_thread_limit(args.threads, args.backend), args.reexec_argv):
        result = run_demo(backend=args.backend, **options)
    if args.plot is not None and _is_first_rank():
        from gpuchain.plotting import plot_demo

        plot_demo(result, args.plot)
        print(f"plot written to {args.plot}")
    return 0 if result.get("ok", True) else 1


def _is_first_rank() -> bool:
    """True unless this process is a rank other than 0 of a data-parallel run."""
    from gpuchain import distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


def _bench(argv: list[str]) -> int:
    try:
        from gpuchain.bench import main as bench_main
    except ModuleNotFoundError as exc:
        if exc.name not in ("gpuchain.bench", "gpuchain.bench.__main__"):
            raise
        raise UsageError("the benchmark suites (gpuchain.bench) are not part of this "
                         f"gpuchain {_version()} installation") from None
    status: int = bench_main(argv)
    return status


def _parser() -> _Parser:
    parser = _Parser(prog="gpuchain", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--version", action="version", version=f"gpuchain {_version()}",
                        help="print the gpuchain version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    sub.add_parser("info", help="backend, versions and GPUs found",
                   description="Show versions, the selected backend and the GPUs found."
                   ).set_defaults(run=_info)
    demo = sub.add_parser(
        "demo", help="train an MLP on three interleaved spirals (the main job)",
        description="Train an MLP with Adam on three interleaved spirals (noisy, full batch) "
                    "and report loss, accuracy and steps per second.")
    demo.add_argument("--backend", choices=("numpy", "cupy", "auto"), default=None,
                      help="array backend (default: GPUCHAIN_BACKEND, else auto: CuPy when a "
                           "CUDA device is usable, else NumPy)")
    demo.add_argument("--steps", type=_positive_int, metavar="N",
                      help="training steps (default 1000)")
    demo.add_argument("--width", type=_positive_int, metavar="N",
                      help="hidden layer width (default 64)")
    demo.add_argument("--depth", type=_positive_int, metavar="N",
                      help="number of hidden layers (default 3)")
    demo.add_argument("--points", type=_number(int, lambda v: v >= 3, "an integer >= 3"),
                      metavar="N", help="data set size (default 2000)")
    demo.add_argument("--lr", type=_positive_float, metavar="RATE",
                      help="Adam peak learning rate (default 0.01, cosine-decayed)")
    demo.add_argument("--seed", type=_count_int, metavar="N",
                      help="seed of the data and the initial weights (default 0)")
    demo.add_argument("--threads", type=_count_int, default=None, metavar="N",
                      help="BLAS threads on the CPU (default 1: the demo's matrices are "
                           "small; 0 keeps the library default)")
    demo.add_argument("--plot", metavar="FILE.png", default=None,
                      help="after training, draw the decision boundary over the data and the "
                           "loss curve into FILE.png (needs matplotlib: gpuchain[plot])")
    demo.add_argument("--examples", action="store_true",
                      help="instead of training, print the worked chain-rule examples (the seed "
                           "documents) against their closed forms")
    demo.set_defaults(run=_demo)
    sub.add_parser("bench", help="run the benchmark suites (gpuchain bench --help)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpuchain`` command line; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``None`` reads ``sys.argv`` (the installed
        ``gpuchain`` script), which also lets ``demo`` re-run itself once to pin BLAS
        threads when threadpoolctl is missing.

    Returns
    -------
    int
        0 on success, 1 when the job ran but failed its check, 2 on a usage error.
    """
    real_command_line = argv is None
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["bench"]:
            # everything after "bench" belongs to the benchmark runner, options included
            return _bench(args_list[1:])
        args = _parser().parse_args(args_list)
        args.reexec_argv = args_list if real_command_line else None
        status: int = args.run(args)
        return status
    except UsageError as exc:
        command = " ".join(["gpuchain", *args_list[:1]])
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpuchain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
