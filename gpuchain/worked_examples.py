"""The worked chain-rule examples gpuchain grew from, each with its closed form.

Used by the tests, by ``gpuchain demo --seeds`` and by the README.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import gpuchain as gc
from gpuchain.functional import grad, jvp


@dataclass(frozen=True)
class SeedExample:
    name: str
    formula: str
    derivative: Callable[[float], float]
    closed_form: Callable[[float], float]


def _f_sin_exp(t: gc.Tensor) -> gc.Tensor:
    x, y, z = t - 1, t**2, 1 / t
    return gc.sin(x) * gc.exp(y * z**2)


def _closed_sin_exp(t: float) -> float:
    x, y, z = t - 1, t**2, 1 / t
    return np.exp(y * z**2) * (np.cos(x) + 2 * t * z**2 * np.sin(x) - 2 * y * z / t**2 * np.sin(x))


def _f_poly(t: gc.Tensor) -> gc.Tensor:
    x, y, z = t, t**2, t**3
    return x**2 + 5 * y + 10 * z + x * y * z


def _f_sigmoid(x: gc.Tensor) -> gc.Tensor:
    return gc.sigmoid(x)


def _neuron_cost(w: gc.Tensor, b: gc.Tensor, a0: float = 0.8, y: float = 0.3) -> gc.Tensor:
    return (gc.sigmoid(w * a0 + b) - y) ** 2


def _closed_neuron(w: float, b: float, a0: float = 0.8, y: float = 0.3) -> tuple[float, float]:
    s = 1 / (1 + np.exp(-(w * a0 + b)))
    common = 2 * (s - y) * s * (1 - s)
    return common * a0, common


def _scalar_derivative(f: Callable[[gc.Tensor], gc.Tensor]) -> Callable[[float], float]:
    return lambda t: grad(f)(np.float64(t)).item()


EXAMPLES = (
    SeedExample("sin(x)·e^(y z²), x=t−1, y=t², z=1/t", "df/dt",
                _scalar_derivative(_f_sin_exp), _closed_sin_exp),
    SeedExample("x² + 5y + 10z + xyz along (t, t², t³)", "df/dt = 12t + 6t⁵ + 30t²",
                _scalar_derivative(_f_poly), lambda t: 2 * t + 10 * t + 30 * t**2 + 6 * t**5),
    SeedExample("σ(x) = 1/(1+e^(−x))", "dσ/dx = e^(−x)/(1+e^(−x))²",
                _scalar_derivative(_f_sigmoid), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
)


def neuron_gradients(w: float, b: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """(dC/dw, dC/db) from gpuchain and from the closed form, for C = (σ(w·a0 + b) − y)²."""
    gw, gb = grad(_neuron_cost, argnums=(0, 1))(np.float64(w), np.float64(b))
    return (gw.item(), gb.item()), _closed_neuron(w, b)


def directional_derivative(t: float) -> tuple[float, float]:
    """∇f·v by forward mode for f = x² + 5y + 10z + xyz at (t, t², t³), v = (1, 2t, 3t²):
    the chain rule as a Jacobian product, against 12t + 6t⁵ + 30t²."""

    def f(p: gc.Tensor) -> gc.Tensor:
        return p[0] ** 2 + 5 * p[1] + 10 * p[2] + p[0] * p[1] * p[2]

    point = np.array([t, t**2, t**3])
    velocity = np.array([1.0, 2 * t, 3 * t**2])
    _, d = jvp(f, (point,), (velocity,))
    return d.item(), 12 * t + 6 * t**5 + 30 * t**2


def print_worked_examples(ts: tuple[float, ...] = (0.5, 1.0, 2.0)) -> float:
    """Print each example's derivative next to its closed form; returns the worst error."""
    worst = 0.0
    for ex in EXAMPLES:
        print(f"{ex.name}   [{ex.formula}]")
        for t in ts:
            got, want = ex.derivative(t), ex.closed_form(t)
            worst = max(worst, abs(got - want) / max(1.0, abs(want)))
            print(f"  t={t:<5} gpuchain {got:+.12f}   closed form {want:+.12f}")
    (gw, gb), (cw, cb) = neuron_gradients(0.5, -0.2)
    worst = max(worst, abs(gw - cw), abs(gb - cb))
    print("one neuron C = (σ(w·a0 + b) − y)², w=0.5, b=−0.2, a0=0.8, y=0.3")
    print(f"  dC/dw gpuchain {gw:+.12f}   closed form {cw:+.12f}")
    print(f"  dC/db gpuchain {gb:+.12f}   closed form {cb:+.12f}")
    return worst
