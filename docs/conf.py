"""Sphinx configuration for the vpc_requests documentation.

Built by CI (``.ci/run``) with ``sphinx-build -W --keep-going -n``: every
warning, including a cross reference that resolves nowhere, fails the build.
No intersphinx: the build must not need the network, so references to other
libraries' objects are listed in ``nitpick_ignore_regex`` below instead.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _installed_version

sys.path.insert(0, os.path.abspath(".."))

import vpc_requests  # noqa: E402  (after the path is set)

project = "vpc_requests"
author = "the vpc_requests authors"
copyright = "the vpc_requests authors, MIT license"
release = getattr(vpc_requests, "__version__", None) or _installed_version("vpc_requests")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
]

exclude_patterns = ["_build"]
nitpicky = True
default_role = "any"
# Keep "--option" as typed: smart quotes would turn it into an en dash.
smartquotes = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}

html_theme = "furo"
html_title = f"vpc_requests {release}"

# Other libraries' and the standard library's objects, met in signatures and
# docstrings. Without intersphinx (no network at build time) they cannot
# resolve; they are not ours to document.
_EXTERNAL_MODULES = [
    "requests", "urllib3", "tomlkit", "trustme", "socks", "dns", "tqdm", "dask", "distributed",
    "collections", "concurrent", "contextlib", "dataclasses", "pathlib", "socket", "ssl", "typing", "os",
]
# Unqualified names in our own annotations (requests' Response, urllib3's
# RequestHistory, batch.py's type alias Item, the Literal aliases of
# vpc_requests._model.modes, whose values each docstring lists) and the
# builtin generator's methods, which FetchResults documents by inheritance.
_UNQUALIFIED = [
    "Response", "RequestHistory", "Item", "ErrorMode", "RedirectMode", "CertVerificationMode", "ServiceType",
    "AppProtocol", r"generator\.\w+",
]

nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(_EXTERNAL_MODULES)})(\..+)?"),
    (r"py:.*", rf"({'|'.join(_UNQUALIFIED)})"),
]
