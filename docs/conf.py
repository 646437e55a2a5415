"""Sphinx configuration of the gpuchain documentation.

Build the site:    sphinx-build -W -b html docs docs/_build/html
Run the examples:  sphinx-build -W -b doctest docs docs/_build/doctest
(or ``pytest tests/test_docs.py``, which does both).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document the checkout, not an older installed copy
os.environ.setdefault("GPUCHAIN_BACKEND", "numpy")  # examples run on the CPU everywhere

import gpuchain  # noqa: E402

project = "gpuchain"
author = "The gpuchain maintainers"
copyright = "2026, The gpuchain maintainers"  # noqa: A001 (Sphinx's name)
version = release = gpuchain.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

# NumPy-style docstrings only (napoleon); signatures carry the type hints, the
# description lists carry the prose.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
autosummary_generate = False  # tables only; the entries are on the same page
autodoc_mock_imports = ["cupy", "cupyx", "pynvml", "mpi4py"]

# Offline build: no inventory is downloaded; intersphinx only resolves explicit mappings
# when a local inventory exists, so the build never touches the network.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

# Every example in the docs runs (sphinx-build -b doctest). Each page starts clean.
doctest_global_setup = """
import numpy as np
import gpuchain as gc
gc.set_backend("numpy")
np.set_printoptions(precision=6, suppress=True)
from gpuchain.pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten
try:
    import torch  # examples that compare with PyTorch run only where it is installed
except ImportError:
    torch = None
"""
doctest_default_flags = (__import__("doctest").ELLIPSIS
                         | __import__("doctest").NORMALIZE_WHITESPACE
                         | __import__("doctest").DONT_ACCEPT_TRUE_FOR_1)
trim_doctest_flags = True

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_title = f"gpuchain {release}"
try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # the docs build without the theme extra too (plainer pages)
    html_theme = "alabaster"
pygments_style = "sphinx"
nitpicky = False
suppress_warnings: list[str] = []


# --- the summary tables of docs/api/gpuchain.rst, generated from the package -------------
# ``.. gpuchain-summary::`` lists every name of ``gpuchain.__all__`` in tables grouped as
# the package groups them (the op families of gpuchain.ops, then transforms, graph
# control, backends, checkpoints, errors), so a new op appears without editing the docs.

_GROUPS = (
    ("gpuchain.engine.tensor", "Tensors"),
    ("gpuchain.functional", "Transforms"),
    ("gpuchain.testing", "Checking derivatives"),
    ("gpuchain.engine.mode", "Graph control"),
    ("gpuchain.backend", "Backends, devices and dtypes"),
    ("gpuchain.serialization", "Checkpoints"),
    ("gpuchain.errors", "Errors"),
)


def _summary_sections() -> list[tuple[str, list[str]]]:
    import inspect

    from gpuchain import ops

    sections: list[tuple[str, list[str]]] = []
    covered: set[str] = set()
    for family in ops.FAMILIES:
        title = (family.__doc__ or family.__name__).strip().splitlines()[0]
        title = title.split(":")[0].rstrip(".")
        names = [n for n in family.__all__ if n in gpuchain.__all__]
        sections.append((title, names))
        covered.update(names)
    rest = [n for n in gpuchain.__all__ if n not in covered
            and not inspect.ismodule(getattr(gpuchain, n))]
    for module, title in _GROUPS:
        names = [n for n in rest if getattr(getattr(gpuchain, n), "__module__", "") == module]
        sections.append((title, names))
        covered.update(names)
    other = [n for n in rest if n not in covered]
    if other:
        sections.append(("Other", other))
    return [(t, n) for t, n in sections if n]


def _summary_rst() -> list[str]:
    lines: list[str] = []
    for title, names in _summary_sections():
        lines += [f".. rubric:: {title}", "", ".. autosummary::", ""]
        lines += [f"   {n}" for n in names]
        lines.append("")
    return lines


def setup(app):  # noqa: ANN001, ANN201 (Sphinx's hook)
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class GpuchainSummary(SphinxDirective):
        def run(self) -> list[nodes.Node]:
            container = nodes.container()
            self.state.nested_parse(StringList(_summary_rst(), source="gpuchain-summary"),
                                    self.content_offset, container)
            return container.children

    app.add_directive("gpuchain-summary", GpuchainSummary)
    return {"parallel_read_safe": True}
