"""Sphinx configuration for torchrl-psp."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "torchrl-psp"
author = "torchrl-psp developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build", "recipe_compare.rst", "_static/*.rst"]
html_theme = "alabaster"
nitpicky = False
