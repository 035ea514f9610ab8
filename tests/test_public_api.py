"""The public API: ``vpc_requests.__all__`` is exactly what the package
exports (as httpx tests it), every name in it exists, and the names DESIGN
section 3 fixes are there."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import types
from pathlib import Path

import pytest

import vpc_requests

#: Names DESIGN section 3 promises at the top level.
DESIGN_NAMES = {
    "VPCService", "VPCServiceAdapter", "Binding", "load_env", "mount",
    "AbortController", "AbortSignal",
    "VPCError", "ConfigError", "ProxyError", "AbortError",
}


def public_names(module: types.ModuleType) -> set[str]:
    """What ``module`` really exports: names not starting with ``_`` that
    are not modules (submodules, ``logging``) or ``__future__`` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }


def test_all_matches_the_real_exports() -> None:
    assert set(vpc_requests.__all__) == public_names(vpc_requests)


def test_all_is_sorted_without_duplicates() -> None:
    assert vpc_requests.__all__ == sorted(set(vpc_requests.__all__))


def test_every_name_in_all_exists() -> None:
    for name in vpc_requests.__all__:
        assert getattr(vpc_requests, name) is not None, name


def test_star_import_gives_all() -> None:
    namespace: dict[str, object] = {}
    exec("from vpc_requests import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(vpc_requests.__all__)


def test_design_names_are_public() -> None:
    assert DESIGN_NAMES <= set(vpc_requests.__all__)


def test_public_names_have_docstrings() -> None:
    for name in vpc_requests.__all__:
        assert (getattr(vpc_requests, name).__doc__ or "").strip(), name


def test_exceptions_are_vpc_errors() -> None:
    for name in vpc_requests.__all__:
        value = getattr(vpc_requests, name)
        if isinstance(value, type) and issubclass(value, BaseException) and not issubclass(value, Warning):
            assert issubclass(value, vpc_requests.VPCError), name


SUBMODULES = sorted(
    info.name for info in pkgutil.iter_modules(vpc_requests.__path__) if not info.name.startswith("_")
)


@pytest.mark.parametrize("name", SUBMODULES)
def test_submodule_all_names_exist(name: str) -> None:
    module = importlib.import_module(f"vpc_requests.{name}")
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"vpc_requests.{name} has no __all__"
    for item in exported:
        assert hasattr(module, item), f"vpc_requests.{name}.__all__ names missing {item!r}"
    assert len(set(exported)) == len(exported)


def test_logging_null_handler() -> None:
    handlers = logging.getLogger("vpc_requests").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_package_is_typed() -> None:
    assert (Path(vpc_requests.__file__).parent / "py.typed").is_file()
