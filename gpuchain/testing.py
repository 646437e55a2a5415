"""gradcheck: derivatives checked against central finite differences in float64.

In one random direction per input, the reverse mode's ⟨Jᵀu, v⟩ and the forward mode's
⟨u, Jv⟩ are compared with ⟨u, (f(x+εv) − f(x−εv)) / 2ε⟩ (as HIPS/autograd's check_grads
does); ``order=2`` repeats the check on the gradient map itself, so second derivatives
(rules of rules) are checked too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gpuchain.engine.mode import no_grad
from gpuchain.engine.tensor import Tensor
from gpuchain.errors import GradcheckError
from gpuchain.functional import jvp, vjp
from gpuchain.ops import concatenate, reshape


def _flat_output(f: Callable, args: Sequence[Tensor]) -> Tensor:
    out = f(*args)
    if isinstance(out, (tuple, list)):
        out = concatenate([reshape(o, (-1,)) for o in out])
    return out


def _to64(x: Any) -> Tensor:
    data = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    return Tensor(np.array(data, dtype=np.float64))


def _check_first_order(f: Callable, xs: list[Tensor], eps: float, atol: float, rtol: float,
                       modes: Sequence[str], rng: np.random.Generator, label: str) -> None:
    out, pullback = vjp(f, *xs) if "rev" in modes else (_flat_output(f, xs), None)
    if isinstance(out, (tuple, list)):
        raise TypeError("gradcheck: f must return one Tensor")
    u = rng.standard_normal(out.shape)
    rev = pullback(Tensor(u)) if pullback is not None else None
    worst: tuple[float, str] | None = None
    for i, x in enumerate(xs):
        v = rng.standard_normal(x.shape)
        with no_grad():
            plus = [Tensor(a.data + eps * v) if k == i else a for k, a in enumerate(xs)]
            minus = [Tensor(a.data - eps * v) if k == i else a for k, a in enumerate(xs)]
            numeric = float(np.sum(u * (f(*plus).numpy() - f(*minus).numpy())) / (2 * eps))
        analytic = {}
        if rev is not None:
            analytic["reverse"] = float(np.sum(rev[i].numpy() * v))
        if "fwd" in modes:
            tangents = [Tensor(v) if k == i else Tensor(np.zeros(a.shape)) for k, a in
                        enumerate(xs)]
            _, tan = jvp(f, xs, tangents)
            analytic["forward"] = float(np.sum(u * tan.numpy()))
        for mode, value in analytic.items():
            err = abs(value - numeric)
            allowed = atol + rtol * abs(numeric)
            excess = err / allowed
            if worst is None or excess > worst[0]:
                worst = (excess, f"{label}{mode} mode, input {i} (shape {x.shape}): analytic "
                                 f"{value:.10g} vs finite difference {numeric:.10g} "
                                 f"(|diff| {err:.3g} > atol + rtol·|fd| = {allowed:.3g})")
    if worst is not None and worst[0] > 1:
        raise GradcheckError(worst[1])


def gradcheck(f: Callable, inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, order: int = 1, modes: Sequence[str] = ("rev", "fwd"),
              seed: int = 0) -> bool:
    """Check ``f``'s derivatives at ``inputs`` (cast to float64) in reverse and forward mode,
    to ``order`` 1 or 2. Returns True or raises GradcheckError naming the worst mismatch."""
    if order not in (1, 2):
        raise ValueError("gradcheck: order must be 1 or 2")
    rng = np.random.default_rng(seed)
    xs = [_to64(x) for x in inputs]
    _check_first_order(f, xs, eps, atol, rtol, modes, rng, "")
    if order == 2:
        u = Tensor(rng.standard_normal(_flat_output(f, xs).shape))

        def gradient_map(*args: Tensor) -> Tensor:
            _, pull = vjp(f, *args)
            return concatenate([reshape(g, (-1,)) for g in pull(u)])

        _check_first_order(gradient_map, xs, eps, atol, rtol, modes, rng, "second order, ")
    return True


__all__ = ["GradcheckError", "gradcheck"]
