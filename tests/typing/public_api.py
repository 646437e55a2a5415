"""User code that must type-check against gpuchain's public API (``mypy`` in .ci/run).

Not a test module: mypy reads it, pytest does not collect it. Each line is something a
user writes; a name the type checker cannot see (attached at run time) fails here.
"""

from __future__ import annotations

import numpy as np

import gpuchain as gc
from gpuchain import nn, optim
from gpuchain.nn.functional import cross_entropy
from gpuchain.optim import lr_scheduler


def loss_fn(w: gc.Tensor, x: gc.Tensor) -> gc.Tensor:
    return gc.sum(gc.tanh(x @ w) ** 2) + gc.mean(gc.exp(-gc.abs(w)))


def main() -> float:
    x = gc.tensor(np.ones((4, 3), dtype=np.float32))
    w = gc.tensor(np.zeros((3, 2), dtype=np.float32), requires_grad=True)
    loss = loss_fn(w, x)
    loss.backward()
    g: gc.Tensor | None = w.grad
    grads = gc.grad(loss_fn)(w, x)
    value, _ = gc.value_and_grad(loss_fn)(w, x)
    _, tangent = gc.jvp(lambda v: gc.sin(v) * 2.0, (x,), (x,))
    jac = gc.jacobian(lambda v: gc.tanh(v), x)

    model = nn.MLP([3, 8, 2], activation="relu", seed=0)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = lr_scheduler.StepLR(opt, step_size=10)
    labels = gc.tensor(np.zeros(4, dtype=np.int64))
    with gc.no_grad():
        logits = model(x)
    step_loss = cross_entropy(model(x), labels)
    step_loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()
    try:
        gc.set_backend("numpy")
    except gc.BackendUnavailableError:
        pass
    shape: tuple[int, ...] = logits.shape
    return float(value.item()) + float(tangent.sum().item()) + float(jac.sum().item()) \
        + float(grads.sum().item()) + len(shape) + (0.0 if g is None else 1.0)
