"""The ``ops`` suite: forward + backward of NumPy-coverage ops against PyTorch (CPU) and
JAX (when installed), in one run, on equal cores.

Cases: einsum contractions (a matrix product, a batched attention-score product and a
three-operand chain whose order ``np.einsum_path`` picks), ``tensordot``, ``cumsum``,
``sort``, ``linalg.solve`` and ``linalg.cholesky``, at sizes 64 to 1024. Each case is
``loss = sum(f(x) * w)`` for a fixed ``w``, differentiated with respect to every input;
gradients are cross-checked against PyTorch before timing. Timings are medians over
interleaved rounds (gpuchain, torch, jax, gpuchain, ...), ratios are gpuchain's median
over the peer's; JAX runs ``jax.jit(jax.grad(loss))`` (compiled, compile time excluded).

Run ``python -m benchmarks.ops_suite`` (``--quick`` for sizes 64 and 256, ``--sizes``,
``--threads``, ``--out``). Results go to ``benchmarks/results/ops-<machine>-<date>.json``
and ``.md`` with the machine, library versions and date.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Case:
    """One benchmark case: input shapes at size ``n`` and the function in each library."""

    name: str
    shapes: Callable[[int], list[tuple[int, ...]]]
    prepare: Callable[[list[np.ndarray]], list[np.ndarray]]  # e.g. make a matrix SPD
    gc_fn: Callable[..., Any]
    torch_fn: Callable[..., Any]
    jax_fn: Callable[..., Any] | None


def _spd(xs: list[np.ndarray]) -> list[np.ndarray]:
    a = xs[0]
    n = a.shape[-1]
    return [(a @ a.T / n + np.eye(n)).astype(a.dtype)] + xs[1:]


def _well_conditioned(xs: list[np.ndarray]) -> list[np.ndarray]:
    a = xs[0]
    return [(a + 4.0 * np.sqrt(a.shape[-1]) * np.eye(a.shape[-1])).astype(a.dtype)] + xs[1:]


def _same(xs: list[np.ndarray]) -> list[np.ndarray]:
    return xs


def _distinct(xs: list[np.ndarray]) -> list[np.ndarray]:
    """Distinct values (float32 draws tie often enough to make sort's gradient, which
    is unique only without ties, differ between libraries)."""
    x = xs[0]
    values = np.random.default_rng(1).permutation(x.size).reshape(x.shape) / x.size
    return [values.astype(x.dtype)]


def _cases() -> list[Case]:
    from gpuchain import linalg as gla
    from gpuchain.ops import contraction as con
    from gpuchain.ops import indexing as ix
    from gpuchain.ops import reduce as red

    def t_sort(t, x):
        return t.sort(x, dim=-1).values

    def j(name):
        try:
            import jax.numpy as jnp
        except ImportError:
            return None
        return {
            "matmul": lambda a, b: jnp.einsum("ij,jk->ik", a, b),
            "attention": lambda q, k: jnp.einsum("bhid,bhjd->bhij", q, k),
            "chain": lambda a, b, c: jnp.einsum("ij,jk,kl->il", a, b, c, optimize="greedy"),
            "tensordot": lambda a, b: jnp.tensordot(a, b, axes=2),
            "cumsum": lambda x: jnp.cumsum(x, axis=1),
            "sort": lambda x: jnp.sort(x, axis=-1),
            "solve": lambda a, b: jnp.linalg.solve(a, b),
            "cholesky": lambda a: jnp.linalg.cholesky(a),
        }[name]

    return [
        Case("einsum ij,jk->ik", lambda n: [(n, n), (n, n)], _same,
             lambda a, b: con.einsum("ij,jk->ik", a, b),
             lambda t, a, b: t.einsum("ij,jk->ik", a, b), j("matmul")),
        Case("einsum bhid,bhjd->bhij", lambda n: [(2, 4, n, 64), (2, 4, n, 64)], _same,
             lambda q, k: con.einsum("bhid,bhjd->bhij", q, k),
             lambda t, q, k: t.einsum("bhid,bhjd->bhij", q, k), j("attention")),
        Case("einsum ij,jk,kl->il", lambda n: [(n, 64), (64, n), (n, 64)], _same,
             lambda a, b, c: con.einsum("ij,jk,kl->il", a, b, c),
             lambda t, a, b, c: t.einsum("ij,jk,kl->il", a, b, c), j("chain")),
        Case("tensordot axes=2", lambda n: [(n, 16, 16), (16, 16, n)], _same,
             lambda a, b: con.tensordot(a, b, axes=2),
             lambda t, a, b: t.tensordot(a, b, dims=2), j("tensordot")),
        Case("cumsum axis=1", lambda n: [(n, n)], _same, lambda x: red.cumsum(x, axis=1),
             lambda t, x: t.cumsum(x, dim=1), j("cumsum")),
        Case("sort axis=-1", lambda n: [(n, n)], _distinct, lambda x: ix.sort(x, axis=-1),
             t_sort, j("sort")),
        Case("linalg.solve (n x n, n x 16)", lambda n: [(n, n), (n, 16)], _well_conditioned,
             lambda a, b: gla.solve(a, b), lambda t, a, b: t.linalg.solve(a, b), j("solve")),
        Case("linalg.cholesky", lambda n: [(n, n)], _spd, lambda a: gla.cholesky(a),
             lambda t, a: t.linalg.cholesky(a), j("cholesky")),
    ]


# --- the three contenders ------------------------------------------------------------

def _gc_step(case: Case, xs: list[np.ndarray], w: np.ndarray) -> Callable[[], list]:
    import gpuchain as gc

    def step():
        ts = [gc.tensor(x, requires_grad=True) for x in xs]
        (case.gc_fn(*ts) * w).sum().backward()
        return [t.grad.data for t in ts]

    return step


def _torch_step(torch: Any, case: Case, xs: list[np.ndarray], w: np.ndarray
                ) -> Callable[[], list]:
    wt = torch.from_numpy(w)

    def step():
        ts = [torch.from_numpy(x).requires_grad_(True) for x in xs]
        (case.torch_fn(torch, *ts) * wt).sum().backward()
        return [t.grad.numpy() for t in ts]

    return step


def _jax_step(case: Case, xs: list[np.ndarray], w: np.ndarray) -> Callable[[], list] | None:
    if case.jax_fn is None:
        return None
    import jax

    fn = case.jax_fn
    # w is an argument, not a closure constant (XLA would constant-fold through it)
    grad = jax.jit(jax.grad(lambda w, *a: (fn(*a) * w).sum(), argnums=tuple(range(1, len(xs) + 1))))
    args = [jax.device_put(x) for x in [w] + xs]

    def step():
        return [np.asarray(g.block_until_ready()) for g in grad(*args)]

    return step


# --- timing --------------------------------------------------------------------------

def _calls_for(fn: Callable[[], Any], min_sample_s: float) -> int:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, min(1000, int(min_sample_s / max(dt, 1e-7))))


def _interleaved(steps: dict[str, Callable[[], Any]], rounds: int, min_sample_s: float
                 ) -> dict[str, list[float]]:
    """Seconds per call of each step: ``rounds`` samples each, taken in turn."""
    calls = {}
    for name, fn in steps.items():
        fn()  # warm-up (and JAX's compilation)
        calls[name] = _calls_for(fn, min_sample_s)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            k = calls[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t0) / k)
    return times


def _max_rel_err(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        scale = float(np.max(np.abs(y))) or 1.0
        worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) - y))) / scale)
    return worst


# --- machine, versions, output -------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions(torch: Any, jax_ok: bool) -> dict[str, str]:
    import gpuchain

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "gpuchain": gpuchain.__version__}
    if torch is not None:
        out["torch"] = torch.__version__
    if jax_ok:
        import jax

        out["jax"] = jax.__version__
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = ", ".join(sorted({f"{i['internal_api']} {i['version']}"
                                        for i in threadpool_info()}))
    except ImportError:
        pass
    return out


def _pin(threads: int) -> Callable[[], None]:
    """Use the same cores for every library: the process is pinned to ``threads`` CPUs
    and NumPy's BLAS, PyTorch and XLA get that many threads. Returns the undo."""
    undo: list[Callable[[], None]] = []
    if hasattr(os, "sched_setaffinity"):
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, sorted(before)[:threads])
        undo.append(lambda: os.sched_setaffinity(0, before))
    try:
        from threadpoolctl import threadpool_limits

        undo.append(threadpool_limits(threads).restore_original_limits)
    except ImportError:
        pass
    try:
        import torch

        before_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        undo.append(lambda: torch.set_num_threads(before_threads))
    except ImportError:
        pass

    def restore() -> None:
        for u in reversed(undo):
            u()

    return restore


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _markdown(meta: dict, rows: list[dict]) -> str:
    peers = [p for p in ("torch", "jax") if any(p in r["median_s"] for r in rows)]
    head = "| case | n | gpuchain ms | " + " | ".join(f"{p} ms | gc/{p}" for p in peers) + \
        " | grad rel. err vs torch |"
    lines = [f"# ops suite: {meta['machine']['cpu']} ({meta['machine']['threads']} threads)", "",
             f"{meta['date']}; versions: " + ", ".join(f"{k} {v}" for k, v in
                                                        meta["versions"].items()), "",
             "Forward + backward, medians of interleaved rounds; ratio = gpuchain / peer "
             "(below 1: gpuchain faster). JAX is jit-compiled (compile time excluded).", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [r["case"], str(r["n"]), f"{1e3 * r['median_s']['gpuchain']:.3f}"]
        for p in peers:
            if p in r["median_s"]:
                cells += [f"{1e3 * r['median_s'][p]:.3f}", f"{r['ratio'][p]:.2f}"]
            else:
                cells += ["-", "-"]
        cells.append("-" if r["grad_rel_err"] is None else f"{r['grad_rel_err']:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ops suite and write its results.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``): ``--sizes 64 256 1024``,
        ``--quick``, ``--threads N``, ``--rounds R``, ``--min-sample S``, ``--out DIR``,
        ``--cases SUBSTRING...``.

    Returns
    -------
    int
        0 when every gradient agreed with PyTorch's, 1 otherwise.
    """
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ops_suite", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--quick", action="store_true", help="sizes 64 and 256, 3 rounds")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0))
                    if hasattr(os, "sched_getaffinity") else os.cpu_count())
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-sample", type=float, default=0.05,
                    help="seconds of calls per timed sample")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--cases", nargs="*", default=None, help="run cases whose name has one "
                    "of these substrings")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    sizes = [64, 256] if args.quick else args.sizes
    rounds = 3 if args.quick else args.rounds
    unpin = _pin(args.threads)
    try:
        return _run(args, sizes, rounds)
    finally:
        unpin()


def _run(args: argparse.Namespace, sizes: list[int], rounds: int) -> int:
    try:
        import torch
    except ImportError:
        torch = None
    try:
        import jax

        jax.config.update("jax_platforms", "cpu")
        jax_ok = True
    except ImportError:
        jax_ok = False
    import gpuchain as gc

    rng = np.random.default_rng(0)
    rows, ok = [], True
    for case in _cases():
        if args.cases and not any(s in case.name for s in args.cases):
            continue
        for n in sizes:
            xs = case.prepare([rng.standard_normal(s).astype(np.float32)
                               for s in case.shapes(n)])
            out_shape = case.gc_fn(*[gc.tensor(x) for x in xs]).shape
            w = rng.standard_normal(out_shape).astype(np.float32)
            steps = {"gpuchain": _gc_step(case, xs, w)}
            err = None
            if torch is not None:
                steps["torch"] = _torch_step(torch, case, xs, w)
                err = _max_rel_err(steps["gpuchain"](), steps["torch"]())
                ok &= err < 1e-3
            if jax_ok:
                step = _jax_step(case, xs, w)
                if step is not None:
                    steps["jax"] = step
            times = _interleaved(steps, rounds, args.min_sample)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"case": case.name, "n": n, "median_s": med,
                         "min_s": {k: min(v) for k, v in times.items()},
                         "ratio": {k: med["gpuchain"] / v for k, v in med.items()
                                   if k != "gpuchain"},
                         "grad_rel_err": err})
            ratio = " ".join(f"gc/{k} {v:.2f}" for k, v in rows[-1]["ratio"].items())
            print(f"{case.name:32s} n={n:5d} gpuchain {1e3 * med['gpuchain']:9.3f} ms  "
                  f"{ratio}  grad err {err if err is None else f'{err:.1e}'}", flush=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {"suite": "ops", "date": now,
            "machine": {"cpu": _cpu_model(), "threads": args.threads,
                        "platform": platform.platform()},
            "versions": _versions(torch, jax_ok), "rounds": rounds, "dtype": "float32",
            "command": "python -m benchmarks.ops_suite " + " ".join(args.argv)}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"ops-{_slug(meta['machine']['cpu'])}-{args.threads}t-{meta['date'][:10]}"
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / f"{stem}.md").write_text(_markdown(meta, rows))
    print(f"wrote {args.out / stem}.json and .md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
