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
