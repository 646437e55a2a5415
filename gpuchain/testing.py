"""gradcheck: derivatives checked against central finite differences in float64.

For a function ``f`` of float64 inputs (its output flattened to one vector):

* reverse mode: ⟨Jᵀu, v⟩ against ⟨u, (f(x+εv) − f(x−εv)) / 2ε⟩ for a random cotangent u;
* forward mode: J·v, element by element, against the same finite difference;

each for a random direction ``v`` in one input at a time (so a wrong or zero partial
derivative cannot hide behind the others) and in all inputs jointly. An analytic
derivative holding NaN or Inf fails, and so does a finite difference that is not finite
(``f`` is then not differentiable at the point). The primal outputs ``vjp`` and ``jvp``
return must equal ``f``'s own, and an optional ``reference`` checks the forward value.

``order=2`` repeats the whole check on the two derivative maps, the gradient map
``x ↦ Jᵀ(x)u`` and the tangent map ``x ↦ J(x)v``, each in both modes: reverse∘reverse,
forward∘reverse, reverse∘forward and forward∘forward (higher orders recurse).

Default tolerances (float64): ``eps=1e-6``, ``atol=1e-5``, ``rtol=1e-5``. JAX's
``check_grads`` uses a step of 1e-4 with atol = rtol = 1e-5 for float64; the tolerances
here are the same and the smaller step keeps the finite difference's truncation error
(∝ ε²) far below them, while its rounding error (∝ 1e-16/ε) stays near 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpuchain.engine.mode import no_grad
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import GradcheckError
from gpuchain.functional import jvp, vjp
from gpuchain.ops.shape import concatenate, reshape
from gpuchain.pytree import tree_leaves

MODES = ("rev", "fwd")
_MODE_NAMES = {"rev": "reverse", "fwd": "forward"}


@dataclass
class _Tolerance:
    eps: float
    atol: float
    rtol: float


@dataclass
class _Report:
    """The worst mismatch seen so far (by how far it exceeds its tolerance)."""

    worst: tuple[float, str] | None = None
    failures: list[str] = field(default_factory=list)

    def compare(self, analytic: np.ndarray, numeric: np.ndarray, tol: _Tolerance,
                label: str) -> None:
        analytic = np.asarray(analytic, dtype=np.float64)
        numeric = np.asarray(numeric, dtype=np.float64)
        if not np.all(np.isfinite(analytic)):
            self.fail(f"{label}: the analytic derivative holds NaN or Inf "
                      f"({_summary(analytic)}); finite difference {_summary(numeric)}")
            return
        if not np.all(np.isfinite(numeric)):
            self.fail(f"{label}: the finite difference is not finite ({_summary(numeric)}): "
                      "f is not differentiable at this point")
            return
        if analytic.size == 0:
            return
        err = np.abs(analytic - numeric)
        allowed = tol.atol + tol.rtol * np.abs(numeric)
        k = int(np.argmax(err / allowed))
        excess = float(err.flat[k] / allowed.flat[k])
        where = f" at element {np.unravel_index(k, err.shape)}" if err.ndim else ""
        msg = (f"{label}{where}: analytic {analytic.flat[k]:.10g} vs finite difference "
               f"{numeric.flat[k]:.10g} (|diff| {err.flat[k]:.3g} > atol + rtol·|fd| = "
               f"{allowed.flat[k]:.3g})")
        if excess > 1:
            self.failures.append(msg)
        if self.worst is None or excess > self.worst[0]:
            self.worst = (excess, msg)

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        self.worst = (float("inf"), msg)

    def raise_if_failed(self) -> None:
        if self.failures:
            assert self.worst is not None
            others = [m for m in self.failures if m != self.worst[1]]
            extra = "".join(f"\n  also: {m}" for m in others[:4])
            if len(others) > 4:
                extra += f"\n  and {len(others) - 4} more"
            raise GradcheckError(f"gradcheck: {self.worst[1]}{extra}")


def _summary(a: np.ndarray) -> str:
    if a.size <= 6:
        return np.array2string(a.reshape(-1), precision=6)
    return f"{a.size} values, {int(np.sum(~np.isfinite(a)))} not finite"


def _flat(out: Any) -> Tensor:
    """An output pytree as one vector (a single Tensor output keeps its shape)."""
    if isinstance(out, Tensor):
        return out
    leaves = [x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
              for x in tree_leaves(out)]
    if not leaves:
        raise GradcheckError("gradcheck: f returned no arrays")
    if len(leaves) == 1:
        return leaves[0]
    return concatenate([reshape(o, (-1,)) for o in leaves])


def _flat_fn(f: Callable) -> Callable[..., Tensor]:
    return lambda *args: _flat(f(*args))


def _to64(x: Any) -> Tensor:
    data = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if data.dtype.kind == "c":
        raise GradcheckError(f"gradcheck: complex input {data.dtype}{data.shape}; complex "
                             "numbers are not supported")
    return Tensor(np.array(data, dtype=np.float64))


def _directions(xs: Sequence[Tensor], rng: np.random.Generator
                ) -> list[tuple[str, int | None, list[np.ndarray]]]:
    """One random direction per input alone (the other inputs then held constant, so the
    rules see no tangent or cotangent for them), then all inputs jointly."""
    dirs: list[tuple[str, int | None, list[np.ndarray]]] = [
        (f"input {i} (shape {tuple(x.shape)})", i, [rng.standard_normal(x.shape)])
        for i, x in enumerate(xs)]
    if len(xs) > 1:
        dirs.append(("all inputs jointly", None, [rng.standard_normal(a.shape) for a in xs]))
    return dirs


def _restricted(f: Callable, xs: Sequence[Tensor], i: int | None
                ) -> tuple[Callable, list[Tensor]]:
    """``f`` as a function of input ``i`` alone (all inputs when ``i`` is None)."""
    if i is None:
        return f, list(xs)

    def g(x: Tensor) -> Tensor:
        args = list(xs)
        args[i] = x
        return f(*args)

    return g, [xs[i]]


def _finite_difference(f: Callable, xs: Sequence[Tensor], v: Sequence[np.ndarray],
                       eps: float) -> np.ndarray:
    with no_grad():
        plus = f(*[Tensor(a._data + eps * d) for a, d in zip(xs, v)]).numpy()
        minus = f(*[Tensor(a._data - eps * d) for a, d in zip(xs, v)]).numpy()
    return (plus - minus) / (2 * eps)


def _check_value(got: Tensor, expected: np.ndarray, tol: _Tolerance, label: str,
                 report: _Report) -> None:
    got_a = got.numpy()
    if got_a.shape != expected.shape:
        report.fail(f"{label}: output shape {got_a.shape}, expected {expected.shape}")
        return
    report.compare(got_a, expected, tol, label)


def _check_first_order(f: Callable, xs: list[Tensor], tol: _Tolerance, modes: Sequence[str],
                       rng: np.random.Generator, label: str, report: _Report) -> None:
    with no_grad():
        value = f(*xs).numpy()
    u = rng.standard_normal(value.shape)
    for where, i, v in _directions(xs, rng):
        g, args = _restricted(f, xs, i)
        numeric = _finite_difference(g, args, v, tol.eps)
        if "rev" in modes:
            out, pullback = vjp(g, *args)
            _check_value(out, value, tol, f"{label}value returned by vjp", report)
            rev = [ct.numpy() for ct in pullback(Tensor(u))]
            finite = all(np.all(np.isfinite(ct)) for ct in rev)
            analytic = sum(float(np.sum(ct * d)) for ct, d in zip(rev, v)) if finite else np.nan
            report.compare(np.array(analytic), np.array(float(np.sum(u * numeric))), tol,
                           f"{label}reverse mode, {where}, ⟨Jᵀu, v⟩")
        if "fwd" in modes:
            out, tan = jvp(g, args, [Tensor(d) for d in v])
            _check_value(out, value, tol, f"{label}value returned by jvp", report)
            report.compare(tan.numpy(), numeric, tol, f"{label}forward mode, {where}, J·v")


def _derivative_maps(f: Callable, xs: Sequence[Tensor], modes: Sequence[str],
                     rng: np.random.Generator) -> list[tuple[str, str, Callable]]:
    """``(inner mode, description, map)`` for the derivative maps of ``f``."""
    maps = []
    if "rev" in modes:
        with no_grad():
            u = Tensor(rng.standard_normal(f(*xs).shape))

        def gradient_map(*args: Tensor) -> Tensor:
            _, pull = vjp(f, *args)
            return _flat(pull(u))

        maps.append(("rev", "the gradient map x ↦ Jᵀ(x)u", gradient_map))
    if "fwd" in modes:
        v = [Tensor(rng.standard_normal(x.shape)) for x in xs]

        def tangent_map(*args: Tensor) -> Tensor:
            return jvp(f, list(args), v)[1]

        maps.append(("fwd", "the tangent map x ↦ J(x)v", tangent_map))
    return maps


def _check(f: Callable, xs: list[Tensor], order: int, tol: _Tolerance, modes: Sequence[str],
           rng: np.random.Generator, label: str, report: _Report) -> None:
    _check_first_order(f, xs, tol, modes, rng, label, report)
    if order == 1:
        return
    for inner, what, fmap in _derivative_maps(f, xs, modes, rng):
        for outer in modes:
            sub = f"{label}{_MODE_NAMES[outer]}∘{_MODE_NAMES[inner]} ({what}): "
            _check(fmap, xs, order - 1, tol, (outer,), rng, sub, report)


def gradcheck(f: Callable, inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-5, order: int = 1, modes: Sequence[str] = MODES,
              seed: int = 0, reference: Callable | None = None) -> bool:
    """Check ``f``'s derivatives at ``inputs`` against central finite differences.

    Parameters
    ----------
    f : callable
        Takes Tensors; returns a Tensor or a pytree of Tensors (flattened to one vector).
    inputs : sequence of array-like
        The point, cast to float64.
    eps : float
        Finite-difference step.
    atol, rtol : float
        A check passes when ``|analytic − fd| ≤ atol + rtol·|fd|`` (element by element
        for forward mode, on the inner product for reverse mode).
    order : int
        1 checks first derivatives; 2 also checks every composition of two modes
        (reverse∘reverse, forward∘reverse, reverse∘forward, forward∘forward).
    modes : sequence of {"rev", "fwd"}
        The modes checked (and composed at higher order).
    seed : int
        Seeds the random directions and cotangents.
    reference : callable, optional
        A NumPy function of the input arrays; ``f``'s forward value must match it.

    Returns
    -------
    bool
        True; a mismatch raises :class:`~gpuchain.errors.GradcheckError` naming the worst
        case and how many checks failed.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"gradcheck: order must be a positive integer, got {order!r}")
    modes = tuple(modes)
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"gradcheck: modes must be a non-empty subset of {MODES}, got "
                         f"{modes!r}")
    rng = np.random.default_rng(seed)
    xs = [_to64(x) for x in inputs]
    tol = _Tolerance(eps, atol, rtol)
    report = _Report()
    flat = _flat_fn(f)
    if reference is not None:
        with no_grad():
            got = flat(*xs)
        expected = _flat(reference(*[x.numpy() for x in xs])).numpy()
        _check_value(got, expected, tol, "forward value against the reference", report)
    _check(flat, xs, order, tol, modes, rng, "", report)
    report.raise_if_failed()
    return True


__all__ = ["GradcheckError", "gradcheck"]
