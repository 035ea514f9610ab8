"""Sphinx configuration for the vpc_requests documentation.

Built by CI (``.ci/run``) with ``sphinx-build -W --keep-going -n``: every
warning, including a cross reference that resolves nowhere, fails the build.
No intersphinx: the build must not need the network, so references to other
libraries' objects are listed in ``nitpick_ignore_regex`` below instead.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import vpc_requests  # noqa: E402  (after the path is set)

project = "vpc_requests"
author = "the vpc_requests authors"
copyright = "the vpc_requests authors, MIT license"
release = vpc_requests.__version__ if hasattr(vpc_requests, "__version__") else "0.1.0"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
]

exclude_patterns = ["_build", "README.new.rst"]
nitpicky = True
default_role = "any"

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

# Names from other libraries and the standard library, which autodoc meets in
# signatures and docstrings. Without intersphinx they cannot resolve; they are
# not ours to document.
nitpick_ignore_regex = [
    (r"py:.*", r"(requests|urllib3|socket|ssl|socks|dns|tomlkit|tqdm|trustme|dask|distributed)(\..*)?"),
    (r"py:.*", r"(concurrent|collections|typing|typing_extensions|threading|os|pathlib|types|argparse|logging|http|email|io|json|warnings|contextlib|ipaddress|enum|dataclasses|datetime|selectors|abc)(\..*)?"),
    # Unqualified names in our own annotations: requests' Response, the
    # builtin generator's methods, and batch.py's private type alias.
    (r"py:.*", r"(Response|PreparedRequest|Request|Session|Retry|RequestHistory|Item|generator\..*)"),
    (r"py:.*", r"(int|str|bytes|bool|float|dict|list|tuple|set|frozenset|object|type|None|Any|Iterator|Iterable|Mapping|Sequence|Callable|Literal|Optional|Union|TypeVar|NamedTuple|BaseException|Exception|ValueError|UserWarning|KeyError|AttributeError|ImportError|TimeoutError|OSError|KeyboardInterrupt|PathLike|StrPath|Self)"),
]
