"""Figures for the command line: the demo's decision boundary and loss curve.

matplotlib is optional (``pip install "gpuchain[plot]"``); it is imported only when a
figure is drawn, with the non-interactive Agg backend, so nothing here needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_demo", "require_matplotlib"]

_CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def require_matplotlib(what: str) -> Any:
    """Import matplotlib's pyplot on the Agg backend, or raise a one-line usage error.

    Parameters
    ----------
    what : str
        The command or function that needs matplotlib (named in the error).

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Raises
    ------
    ModuleNotFoundError
        When matplotlib is not installed (the message names ``what`` and the extra).
    """
    try:
        import matplotlib
    except ImportError:
        raise ModuleNotFoundError(f"{what} needs matplotlib, which is not installed "
                                  "(pip install \"gpuchain[plot]\")",
                                  name="matplotlib") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _predict_grid(model: Any, lo: np.ndarray, hi: np.ndarray,
                  resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class predicted by ``model`` on a ``resolution``² grid over the box [lo, hi]."""
    from gpuchain.backend import get_backend
    from gpuchain.engine.mode import no_grad
    from gpuchain.engine.tensor import Tensor

    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    with no_grad():
        logits = model(Tensor(get_backend().xp.asarray(grid))).numpy()
    return gx, gy, logits.argmax(axis=1).reshape(gx.shape)


def plot_demo(result: Mapping[str, Any], path: str, resolution: int = 300) -> None:
    """Draw the demo's learned decision boundary over its data, and its loss curve.

    Parameters
    ----------
    result : mapping
        What :func:`gpuchain.demo.run_demo` returns: it must hold ``model`` (the trained
        network, called on an ``(n, 2)`` float32 Tensor), ``points`` (``(n, 2)`` array),
        ``labels`` (``(n,)`` integer array), ``losses`` (the training loss at every step),
        and ``accuracy``, ``backend``, ``steps``.
    path : str
        Where to write the figure; the format follows the suffix (``.png``, ``.svg``,
        ``.pdf``).
    resolution : int, optional
        Grid points per axis for the decision regions (default 300).

    Raises
    ------
    KeyError
        When ``result`` lacks one of the entries above.
    """
    plt = require_matplotlib("plot_demo")
    from matplotlib.colors import ListedColormap

    model, points, labels = result["model"], np.asarray(result["points"]), result["labels"]
    labels = np.asarray(labels)
    losses: Sequence[float] = result["losses"]
    classes = int(labels.max()) + 1
    colours = _CLASS_COLOURS[:classes]
    margin = 0.1 * (points.max(axis=0) - points.min(axis=0))
    lo, hi = points.min(axis=0) - margin, points.max(axis=0) + margin
    gx, gy, regions = _predict_grid(model, lo, hi, resolution)

    fig, (ax_b, ax_l) = plt.subplots(1, 2, figsize=(12, 5.4),
                                     gridspec_kw={"width_ratios": [1, 1.15]})
    ax_b.contourf(gx, gy, regions, levels=np.arange(classes + 1) - 0.5,
                  cmap=ListedColormap(colours), alpha=0.28)
    ax_b.contour(gx, gy, regions, levels=np.arange(classes) + 0.5, colors="k",
                 linewidths=0.6)
    for c in range(classes):
        sel = labels == c
        ax_b.scatter(points[sel, 0], points[sel, 1], s=7, color=colours[c],
                     edgecolors="none", label=f"spiral {c}")
    ax_b.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal", xlabel="x₁",
             ylabel="x₂",
             title=f"decision boundary (training accuracy {result['accuracy']:.2%})")
    ax_b.legend(loc="upper right", fontsize=8, markerscale=2)

    steps = np.arange(1, len(losses) + 1)
    ax_l.plot(steps, losses, color="#333333", linewidth=1.2)
    ax_l.set_yscale("log")
    ax_l.set(xlabel="step", ylabel="cross-entropy loss (log scale)",
             title=f"training loss, final {losses[-1]:.4f}")
    ax_l.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"gpuchain demo: {len(labels)} points on {classes} spirals, "
                 f"{result['steps']} Adam steps on {result['backend']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
