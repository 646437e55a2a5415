"""NumPy-coverage ops (issue #11): forward + backward against PyTorch and JAX.

Cases: einsum contractions (a matrix product, a batched attention-score product and a
three-operand chain whose order ``np.einsum_path`` picks), ``tensordot``, ``cumsum``,
``sort``, ``linalg.solve`` and ``linalg.cholesky``, at sizes 64 to 1024 (64 and 256 with
``--quick``). Each case is ``loss = sum(f(x) * w)`` for a fixed ``w``, differentiated with
respect to every input; the gradients are cross-checked before timing. JAX runs
``jax.jit(jax.grad(loss))`` (compile time excluded, in the warm-up).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpuchain.bench._runner import (
    Config,
    Contender,
    SuiteResult,
    compare,
    peer,
    run_single_suite,
)

SUITE = "ops"
SIZES = (64, 256, 1024)
QUICK_SIZES = (64, 256)


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
        return [t.grad._data for t in ts]

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


def _values(step: Callable[[], list]) -> Callable[[], dict[str, Any]]:
    return lambda: {f"grad {i}": g for i, g in enumerate(step())}


def contenders(cfg: Config, case: Case, xs: list[np.ndarray], w: np.ndarray
               ) -> list[Contender]:
    """gpuchain, then PyTorch and JAX where installed, for one case at one size."""
    g = _gc_step(case, xs, w)
    out = [Contender("gpuchain", g, _values(g))]
    torch = peer(cfg, "torch")
    if torch is not None:
        t = _torch_step(torch, case, xs, w)
        out.append(Contender(f"torch {torch.__version__}", t, _values(t)))
    if peer(cfg, "jax") is not None:
        j = _jax_step(case, xs, w)
        if j is not None:
            out.append(Contender("jax (jit)", j, _values(j)))
    return out


def run(cfg: Config) -> SuiteResult:
    """Every case at every size, float32 on the CPU (the numpy backend)."""
    res = SuiteResult()
    rng = np.random.default_rng(0)
    for n in QUICK_SIZES if cfg.quick else SIZES:
        for case in _cases():
            xs = case.prepare([rng.standard_normal(s).astype(np.float32)
                               for s in case.shapes(n)])
            import gpuchain as gc

            w = rng.standard_normal(np.shape(case.gc_fn(*[gc.tensor(x) for x in xs]).data)
                                    ).astype(np.float32)
            res.add(compare(cfg, SUITE, f"{case.name}, n={n}", contenders(cfg, case, xs, w),
                            rtol=1e-3, atol=1e-3, extra={"n": n}))
    res.notes.append("ops: loss = sum(f(x)·w), gradients w.r.t. every input, float32; "
                     "inputs made SPD / well conditioned / tie-free where the op needs it.")
    return res


if __name__ == "__main__":
    sys.exit(run_single_suite(SUITE))
