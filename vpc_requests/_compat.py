"""The private names of dependencies that vpc_requests relies on, in one place
(DESIGN section 5; STYLE 11), each with a public-API fallback.

Tested with requests 2.32.3 to 2.34.2: a
:class:`~requests.structures.CaseInsensitiveDict` keeps its items in
``_store``, an ordered dict of ``name.lower() -> (name, value)``; with
urllib3 2.0 to 2.8: an :class:`~urllib3.HTTPHeaderDict` keeps its fields in
``_container``, a dict of ``name.lower() -> [name, value, ...]``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict

__all__ = ["copy_headers", "header_items", "response_headers"]


def header_items(headers: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """The ``(name, value)`` pairs of ``headers``, in order; for a
    :class:`~requests.structures.CaseInsensitiveDict`, read from its store
    (without a Python call per item).

    :param headers: any mapping of headers.
    """
    if type(headers) is CaseInsensitiveDict:
        store = getattr(headers, "_store", None)
        if store is not None:
            return store.values()  # type: ignore[no-any-return]
    return headers.items()


def copy_headers(headers: CaseInsensitiveDict[Any]) -> CaseInsensitiveDict[Any]:
    """A copy of ``headers`` (as ``headers.copy()``), made from its store.

    :param headers: a :class:`~requests.structures.CaseInsensitiveDict`.
    """
    store = getattr(headers, "_store", None)
    if type(headers) is not CaseInsensitiveDict or store is None:
        return headers.copy()
    copy: CaseInsensitiveDict[Any] = CaseInsensitiveDict()
    copy._store = store.copy()
    return copy


def response_headers(headers: Any) -> CaseInsensitiveDict[str]:
    """``CaseInsensitiveDict(headers)`` (what requests makes of a urllib3
    response's headers: each name as first received, its values joined
    with ``", "``), for an :class:`~urllib3.HTTPHeaderDict` made from its
    container (without two Python calls per field).

    :param headers: a urllib3 response's headers (or any mapping).
    """
    container = getattr(headers, "_container", None)
    if type(headers) is not HTTPHeaderDict or type(container) is not dict:
        return CaseInsensitiveDict(headers)
    made: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    made._store = OrderedDict([(key, (values[0], ", ".join(values[1:]))) for key, values in container.items()])
    return made
