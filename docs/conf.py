"""Sphinx configuration: furo theme, MyST Markdown pages, API reference from docstrings."""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import shutil
import tempfile

project = "keymgmt"
author = "keymgmt developers"
copyright = "2026, keymgmt developers"
release = importlib.metadata.version("keymgmt")
version = release

extensions = [
    # MyST-NB: the MyST parser for the Markdown pages (it loads myst_parser)
    # and the reader for the tutorial notebook.
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "myst-nb", ".rst": "restructuredtext", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Offline builds: no inventories are fetched unless explicitly allowed.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "furo"
html_title = "keymgmt"
nitpicky = False
suppress_warnings = ["myst.xref_missing"]

# -- the tutorial notebook ------------------------------------------------------
# docs/tutorial.ipynb is committed without outputs (tests/docs/test_notebook.py
# checks that, so nothing from a run, let alone a secret, lands in git); the
# build executes it and renders its outputs, and a failing cell fails the
# build. Every run starts from a fresh in-memory store with a fake clock,
# and keymgmt's views never show key material, so the rendered outputs hold
# none either.
nb_execution_mode = "force"
nb_execution_timeout = 180
# A failing cell is reported as a warning that shows the cell and its
# traceback, and -W turns it into a failed build (raising instead would end
# the build with a crash report that names only the notebook).
nb_execution_raise_on_error = False
nb_execution_allow_errors = False
nb_execution_show_tb = True
nb_execution_in_temp = True  # files the notebook writes go to a temporary directory
nb_merge_streams = True

# The kernel must be this interpreter (the one with keymgmt installed). An
# installed "python3" kernelspec runs whatever `python` is first on PATH,
# which under CI is not the build's venv; so the build writes its own spec
# pointing at sys.executable and maps the notebook's kernel name to it.
_kernels = tempfile.mkdtemp(prefix="keymgmt-docs-kernels-")
atexit.register(shutil.rmtree, _kernels, ignore_errors=True)
try:
    from ipykernel.kernelspec import write_kernel_spec
except ImportError:  # pragma: no cover - ipykernel is in the docs extra
    pass
else:
    write_kernel_spec(
        os.path.join(_kernels, "kernels", "keymgmt-docs"),
        overrides={"display_name": "keymgmt docs build"},
    )
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [_kernels, *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    nb_kernel_rgx_aliases = {"python3": "keymgmt-docs"}
