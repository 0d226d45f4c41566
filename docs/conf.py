"""Sphinx configuration of the li-neurons documentation.

Build (warnings are errors) and run every example as a doctest:

    python -m sphinx -W --keep-going -b html    docs docs/_build/html
    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

Generated at build time, never typed by hand (see ``_ext/li_docs.py``): the
backend capabilities table (from ``li_core.list_backends()``), the ``li``
command help, and the benchmark table and chart (from ``benchmarks.json``,
the output of ``li bench --json``).
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
# under ``-b doctest``. Examples that need PyTorch say ``:skipif: not HAS_TORCH``.
doctest_global_setup = """
import numpy as np
import li_core
HAS_TORCH = any(info.name == "torch" and info.available for info in li_core.list_backends())
"""
doctest_default_flags = (
    __import__("doctest").ELLIPSIS
    | __import__("doctest").NORMALIZE_WHITESPACE
    | __import__("doctest").DONT_ACCEPT_TRUE_FOR_1
)

# the li_docs extension: where ``li bench --json`` results live
li_bench_results = "benchmarks.json"
