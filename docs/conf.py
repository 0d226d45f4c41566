"""Sphinx configuration of the li-neurons documentation.

Build (warnings are errors) and run every example as a doctest:

    python -m sphinx -n -W --keep-going -b html    docs docs/_build/html
    python -m sphinx -n -W --keep-going -b doctest docs docs/_build/doctest

Generated at build time, never typed by hand (see ``_ext/li_docs.py``): the
backend capabilities table (from ``li_core.list_backends()``), the ``li``
command help, the benchmark table and chart (from ``benchmarks.json``, the
output of ``li bench --json``), and the tables stored by the scripts in
``benchmarks/`` under ``results/``.

Nitpicky (``nitpicky = True`` below, ``-n`` on the command line) makes every
cross-reference that does not resolve a warning, so an error under ``-W``.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

import li_core

project = "li-neurons"
author = "the li-neurons developers"
copyright = "the li-neurons developers"
release = li_core.__version__
version = li_core.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "li_docs",
]

nitpicky = True
# The build runs offline (no intersphinx), so types from the standard library
# and from the array libraries in signatures cannot resolve; everything of
# li-neurons' own must.
nitpick_ignore_regex = [
    (r"py:.*", r"(abc|collections\.abc|contextvars|logging|os|numpy|torch|nir)(\..+)?"),
    (r"py:class", r"Module"),  # torch.nn.Module, as the torch_nn docstrings name it
    (r"py:class", r"li_backends\.torch_nn\._LIModule"),  # the modules' private base class
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"li-neurons {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": False}

# Every ``{doctest}`` block (and every ``>>>`` example in a docstring) runs
# under ``-b doctest``, each page in a namespace that starts empty, as a fresh
# interpreter would: a page imports what it uses. The one name defined here is
# the flag for examples that need PyTorch (``:skipif: not HAS_TORCH``), bound
# without binding ``li_core`` itself.
doctest_global_setup = """
HAS_TORCH = any(info.name == "torch" and info.available for info in __import__("li_core").list_backends())
"""
doctest_default_flags = (
    __import__("doctest").ELLIPSIS
    | __import__("doctest").NORMALIZE_WHITESPACE
    | __import__("doctest").DONT_ACCEPT_TRUE_FOR_1
)

# the li_docs extension: where ``li bench --json`` results live
li_bench_results = "benchmarks.json"
