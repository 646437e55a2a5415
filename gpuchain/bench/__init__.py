"""gpuchain's benchmark suites, shipped with the package (``gpuchain bench``).

Peers (PyTorch, JAX, matplotlib for the plot) are optional imports: a suite compares
against those that are installed and names the rest as skipped.

>>> from gpuchain.bench import main
>>> main(["--list"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from gpuchain.bench._cli import DEFAULT_SUITES, SUITES


def main(argv: Sequence[str] | None = None) -> int:
    """Run benchmark suites as ``gpuchain bench ARGS`` does.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments without the program name (default: ``sys.argv[1:]``),
        e.g. ``["engine", "train", "--quick"]``; ``["--list"]`` lists the suites.

    Returns
    -------
    int
        Exit status: 0 when every cross-check agreed, 1 when one failed, 2 on a usage
        or backend error.
    """
    from gpuchain.bench._cli import main as _main

    return _main(argv)


__all__ = ["DEFAULT_SUITES", "SUITES", "main"]
