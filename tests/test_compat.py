"""A requests without the adapter hooks we rely on is refused at import."""

from __future__ import annotations

import ast
import functools
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import vpc_requests

SCRIPT = """
import requests.adapters
{patch}
try:
    import vpc_requests
except ImportError as exc:
    print("refused:", exc)
else:
    print("imported")
"""


def run(patch: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(patch=patch)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_old_requests_is_refused_with_a_clear_message() -> None:
    out = run("del requests.adapters.HTTPAdapter.build_connection_pool_key_attributes")
    assert out.startswith("refused: vpc_requests needs requests >= 2.32.3")
    assert "pip install -U 'requests>=2.32.3'" in out


def test_current_requests_is_accepted() -> None:
    assert run("") == "imported\n"


# --- vpc_requests._compat: private names of requests and urllib3, each the
# same as the public way (the test of each is its twin with the public way).


def test_response_headers_equal_requests_own() -> None:
    from requests.structures import CaseInsensitiveDict
    from urllib3 import HTTPHeaderDict

    from vpc_requests._compat import response_headers

    fields = HTTPHeaderDict()
    fields.add("Set-Cookie", "a=1")
    fields.add("set-cookie", "b=2")
    fields.add("Content-Type", "application/json")
    made = response_headers(fields)
    assert type(made) is CaseInsensitiveDict
    assert list(made.items()) == list(CaseInsensitiveDict(fields).items())
    assert made["SET-COOKIE"] == "a=1, b=2"


def test_twin_response_headers_of_a_plain_mapping_take_the_public_way() -> None:
    from vpc_requests._compat import response_headers

    made = response_headers({"X-One": "1"})
    assert made["x-one"] == "1"
    assert "x-two" not in made


def test_header_items_and_copy_equal_the_public_way() -> None:
    from requests.structures import CaseInsensitiveDict

    from vpc_requests._compat import copy_headers, header_items

    headers = CaseInsensitiveDict({"Accept": "*/*", "X-Key": "v"})
    assert list(header_items(headers)) == list(headers.items())
    copy = copy_headers(headers)
    assert copy == headers and copy is not headers
    copy["X-Key"] = "changed"
    assert headers["x-key"] == "v"  # a copy, not a view


def test_twin_header_items_of_a_dict_are_its_items() -> None:
    from vpc_requests._compat import header_items

    assert list(header_items({"a": "1"})) == [("a", "1")]
# -- private names of requests, urllib3 and tomlkit live in _compat.py only ----

PACKAGE = Path(vpc_requests.__file__).parent
LIBRARIES = ("requests", "urllib3", "tomlkit")
#: Public API of namedtuples (urllib3's PoolKey), underscored by design.
NAMEDTUPLE_API = frozenset({"_fields", "_replace", "_asdict", "_make", "_field_defaults"})
#: Modules of the libraries that are internals by their own account.
PRIVATE_MODULES = frozenset({"urllib3.util.ssltransport"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in NAMEDTUPLE_API


@functools.cache
def library_private_names() -> frozenset[str]:
    """Every single-underscore name the installed requests, urllib3 and
    tomlkit define or read as an attribute (``_content``, ``_tunnel_host``,
    ``_insert_at``, ...)."""
    names: set[str] = set()
    for library in LIBRARIES:
        root = Path(importlib.import_module(library).__file__ or "").parent
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute):
                    names.add(node.attr)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
    return frozenset(name for name in names if _private(name))


def own_private_names(trees: dict[str, ast.Module]) -> frozenset[str]:
    """The private attributes vpc_requests sets on its own objects
    (``self._name = ...``) and the private methods of its classes that
    derive from none of the libraries' (``_Meter._line``): a library may use
    the same name."""
    names: set[str] = set()
    classes = {node.name for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and all(
                isinstance(base, ast.Name) and base.id in classes for base in node.bases
            ):
                methods = (item for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
                names.update(item.name for item in methods)
            if (
                isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)
    return frozenset(names)


def violations(trees: dict[str, ast.Module], library_names: frozenset[str]) -> list[str]:
    """Private accesses to requests, urllib3 or tomlkit outside _compat.py:
    ``from requests.x import _y``, an import of a private module,
    ``obj._y`` (``obj`` not ``self``/``cls``) and ``def _y`` in a class, where
    ``_y`` is a private name of one of the libraries."""
    ours = own_private_names(trees)
    found = []
    for where, tree in trees.items():
        if Path(where).name == "_compat.py":
            continue
        for node in ast.walk(tree):
            line = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
                parts = node.module.split(".")
                for alias in node.names:
                    if _private(alias.name) or any(_private(part) for part in parts):
                        found.append(f"{line}: from {node.module} import {alias.name}")
                if node.module in PRIVATE_MODULES:
                    found.append(f"{line}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] in LIBRARIES and (
                        alias.name in PRIVATE_MODULES or any(_private(part) for part in parts)
                    ):
                        found.append(f"{line}: import {alias.name}")
            elif isinstance(node, ast.Attribute) and node.attr in library_names and node.attr not in ours:
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"{line}: {ast.unparse(node)}")
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and item.name in library_names and item.name not in ours
                    ):
                        found.append(f"{where}:{item.lineno}: def {node.name}.{item.name} overrides a private hook")
    return found


def package_trees() -> dict[str, ast.Module]:
    # Recursively: modules may live in private subpackages.
    return {
        str(path.relative_to(PACKAGE.parent)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_private_names_of_dependencies_are_reached_only_from_compat() -> None:
    trees = package_trees()
    assert "vpc_requests/_compat.py" in trees
    assert len(trees) > 20  # the walk found the package, subpackages included
    assert violations(trees, library_private_names()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "from requests.auth import _basic_auth_str",
        "from urllib3.poolmanager import _default_key_normalizer as key",
        "import urllib3.util.ssltransport",
        "from urllib3.util.ssltransport import SSLTransport",
        "def f(response):\n    return response._content_consumed",
        "def f(prepared):\n    prepared._cookies = None",
        "def f(table):\n    table.value._insert_at(0, 'k', 1)",
        "class C(HTTPSConnection):\n    def _connect_tls_proxy(self, hostname, sock):\n        return sock",
        "class C(HTTPSConnection):\n    def close(self):\n        super()._tunnel()",
    ],
)
def test_a_private_access_outside_compat_is_found(snippet: str) -> None:
    """The failing twin: each snippet, put in a module of a subpackage, is
    reported; the same snippet in _compat.py is not."""
    names = library_private_names()
    tree = ast.parse(snippet)
    assert violations({"vpc_requests/_transport/dial.py": tree}, names) != []
    assert violations({"vpc_requests/_compat.py": tree}, names) == []


def test_own_private_attributes_and_namedtuple_api_are_not_reported() -> None:
    snippet = (
        "class B:\n"
        "    def __init__(self):\n        self._name = 'x'\n"
        "    def __eq__(self, other):\n        return self._name == other._name\n"
        "def f(key):\n    return key._fields, key._replace(a=1)\n"
    )
    assert violations({"vpc_requests/binding.py": ast.parse(snippet)}, library_private_names()) == []


def test_has_header_is_in_for_a_case_insensitive_dict() -> None:
    from requests.structures import CaseInsensitiveDict

    from vpc_requests._compat import has_header

    headers = CaseInsensitiveDict({"Set-Cookie": "a=1"})
    assert has_header(headers, "set-cookie") and has_header(headers, "SET-COOKIE")
    assert has_header(headers, "Host") is ("Host" in headers) is False


def test_twin_has_header_of_a_dict_is_case_sensitive_in() -> None:
    from vpc_requests._compat import has_header

    assert has_header({"Host": "x"}, "Host")  # type: ignore[arg-type]
    assert not has_header({"Host": "x"}, "host")  # type: ignore[arg-type]
