"""Sphinx configuration for cyrelu's documentation.

Build (warnings are errors, as in CI), against an installed or in-place-built cyrelu:

    pip install '.[docs]'
    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import cyrelu

project = "cyrelu"
author = "cyrelu contributors"
copyright = "cyrelu contributors"
version = release = cyrelu.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

# numpydoc: document what the module's __all__ names, no autosummary tables of members.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"

html_theme = "alabaster"
html_title = "cyrelu %s" % release
