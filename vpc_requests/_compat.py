"""The one place that touches private names of requests, urllib3 and tomlkit.

Everything else in vpc_requests goes through the public API of its
dependencies, or through a function here (a test parses the package and
fails on a private access anywhere else: ``tests/test_compat.py``). Each
entry says the versions it is tested on (CI's two lanes: the oldest
supported pair, requests 2.32.3 + urllib3 2.0.7, and the newest, requests
2.34.2 + urllib3 2.8.0; tomlkit 0.15.2 on both) and what breaks if it changes.
CI's pre-release lane (``.ci/run``) runs the suite on the next releases, so a
change here is seen before users see it.

This module imports nothing from vpc_requests: it is the bottom layer.
"""

from __future__ import annotations

import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, TypeVar, cast

from requests.auth import _basic_auth_str
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.poolmanager import PoolKey, _default_key_normalizer

__all__ = [
    "DialHook",
    "TLSTunnelHook",
    "basic_auth_header",
    "body_position",
    "body_was_read",
    "copy_headers",
    "grow_pool",
    "has_header",
    "header_items",
    "init_response",
    "insert_key_at",
    "mark_body_read",
    "pool_key_normalizer",
    "reclass",
    "request_cookies",
    "response_headers",
    "set_request_cookies",
]

_T = TypeVar("_T")

# -- requests -------------------------------------------------------------------


def basic_auth_header(username: str | bytes, password: str | bytes) -> str:
    """The ``Basic ...`` value requests itself makes from a proxy URL's
    credentials, so that the adapter recognises exactly that header (S9);
    the CONNECT tunnel's ``Proxy-Authorization`` is made by it too (from
    UTF-8 bytes, which it does not re-encode).

    ``requests.auth._basic_auth_str``, requests 2.32.3-2.34.2. If it moves or
    changes its encoding (latin-1), proxy credentials requests adds on a
    redirect would no longer be recognised and dropped: tests/test_adapter.py
    fails.
    """
    return _basic_auth_str(username, password)


def mark_body_read(response: Response, body: bytes) -> None:
    """Give ``response`` the already read ``body``, as ``Response.content``
    does after reading (``_content``, ``_content_consumed``), so ``.content``,
    ``.text`` and ``.json()`` work without touching ``.raw``.

    requests 2.32.3-2.34.2 (unchanged since 2.0). If the names change, an
    error response (errors.error_response) reads its body from ``.raw`` again:
    still correct, but tests/test_errors.py sees ``.raw`` drained.
    """
    response._content = body
    response._content_consumed = True


def init_response(response: Response) -> bool:
    """Set what ``Response.__init__`` sets on ``response`` (a subclass's new
    instance), except ``headers`` and ``cookies``: the adapter's
    ``build_response`` replaces the headers at once, and its response type
    makes the cookie jar on first use (an http.cookiejar policy, an RLock and
    a walk of the empty jar per response otherwise).

    requests 2.32.3-2.34.2: ``Response()`` sets exactly the attributes
    checked at import (:data:`_RESPONSE_ATTRIBUTES`). When a requests sets
    others, this does nothing and returns ``False``: the caller then runs
    ``Response.__init__`` itself (still correct, a little slower;
    tests/test_adapter.py checks every attribute of a plain ``Response()``
    is there).

    :returns: whether ``response`` was initialised.
    """
    if not _RESPONSE_INIT_KNOWN:
        return False
    response._content = False
    response._content_consumed = False
    response._next = None
    response.status_code = None  # type: ignore[assignment]
    response.raw = None
    response.url = None  # type: ignore[assignment]
    response.encoding = None
    response.history = []
    response.reason = None  # type: ignore[assignment]
    response.elapsed = timedelta(0)
    response.request = None  # type: ignore[assignment]
    return True


_RESPONSE_ATTRIBUTES = frozenset({
    "_content", "_content_consumed", "_next", "status_code", "headers", "raw", "url",
    "encoding", "history", "reason", "cookies", "elapsed", "request",
})
_RESPONSE_INIT_KNOWN = frozenset(vars(Response())) == _RESPONSE_ATTRIBUTES


def body_was_read(response: Response) -> bool:
    """Whether ``response``'s body has been read to the end (requests'
    ``_content_consumed``; requests 2.32.3-2.34.2). If it changes, the
    body-done callbacks (adapter.on_body_done) never fire: tests/test_batch.py
    and tests/test_adapter.py fail."""
    return bool(response._content_consumed)


def request_cookies(prepared: PreparedRequest) -> CookieJar | None:
    """The cookie jar ``prepared`` was prepared with (``_cookies``), which
    ``Session.resolve_redirects`` also reads for every hop; requests
    2.32.3-2.34.2. If it changes, redirects followed by vpc_requests lose the
    caller's cookies: tests/test_binding.py and tests/test_mount.py fail."""
    jar: CookieJar | None = prepared._cookies
    return jar


def set_request_cookies(prepared: PreparedRequest, jar: CookieJar) -> None:
    """Give ``prepared`` an (empty) jar without a ``Cookie`` header, as
    ``prepare_cookies`` would, for the redirect hops to add to; requests
    2.32.3-2.34.2 (see :func:`request_cookies`)."""
    prepared._cookies = jar


def body_position(prepared: PreparedRequest) -> Any:
    """Where ``prepared``'s file-like body started (``_body_position``), set
    by ``prepare_body`` and read by ``requests.utils.rewind_body``: not
    ``None`` means a redirect hop must rewind the body. requests
    2.32.3-2.34.2; if it changes, a 307/308 resend sends an empty body:
    tests/test_binding.py fails."""
    return prepared._body_position


def reclass(obj: object, cls: type[_T]) -> _T:
    """``obj`` (a requests ``Response`` or ``Session``) turned into ``cls``,
    a subclass of its class that adds methods and no state, in place.

    requests builds both objects itself (``HTTPAdapter.build_response``
    makes a plain ``Response``; the caller owns the ``Session`` that
    ``mount()`` confines) and has no factory hook; copying them instead would
    break identity (hooks, ``Response.history``, the caller's reference).
    Works while neither class uses ``__slots__`` (requests 2.32.3-2.34.2);
    otherwise ``TypeError``, which confine.py reports.
    """
    obj.__class__ = cls
    return cast(_T, obj)


def header_items(headers: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """The ``(name, value)`` pairs of ``headers`` in order; for a
    :class:`~requests.structures.CaseInsensitiveDict` straight from its
    store (``_store``: ``name.lower() -> (name, value)``), without the two
    Python calls per item its ``items()`` makes (the header check and the
    pool's header dict run on every request).

    requests 2.32.3-2.34.2 (``_store`` unchanged since 1.0). Anything that is
    not exactly a CaseInsensitiveDict with that store takes ``items()``; if
    the store's shape changed, headers would be checked or sent wrongly:
    tests/test_adapter.py and tests/test_compat.py fail.
    """
    if type(headers) is CaseInsensitiveDict:
        store = getattr(headers, "_store", None)
        if isinstance(store, OrderedDict):
            return store.values()
    return headers.items()


def has_header(headers: CaseInsensitiveDict[Any], name: str) -> bool:
    """``name in headers`` for a
    :class:`~requests.structures.CaseInsensitiveDict`, looked up in its store
    (its ``__contains__`` is ``Mapping``'s: a ``__getitem__`` that raises
    ``KeyError`` for every header absent, as ``Set-Cookie`` and ``Host``
    mostly are). requests 2.32.3-2.34.2, as :func:`header_items`; otherwise
    ``in``."""
    store = getattr(headers, "_store", None)
    if type(headers) is not CaseInsensitiveDict or not isinstance(store, OrderedDict):
        return name in headers
    return name.lower() in store


def copy_headers(headers: CaseInsensitiveDict[Any]) -> CaseInsensitiveDict[Any]:
    """``headers.copy()``, made by copying its store (``copy()`` sets every
    item again through ``__setitem__``): the binding's checked default
    headers, copied for each fetch. requests 2.32.3-2.34.2, as
    :func:`header_items`; otherwise ``copy()``."""
    store = getattr(headers, "_store", None)
    if type(headers) is not CaseInsensitiveDict or not isinstance(store, OrderedDict):
        return headers.copy()
    copy: CaseInsensitiveDict[Any] = CaseInsensitiveDict()
    copy._store = store.copy()
    return copy


# -- urllib3 --------------------------------------------------------------------


def response_headers(headers: Any) -> CaseInsensitiveDict[str]:
    """``CaseInsensitiveDict(headers)``, what ``HTTPAdapter.build_response``
    makes of a urllib3 response's headers (each name as first received, its
    values joined with ``", "``), for an :class:`~urllib3.HTTPHeaderDict`
    made from its container (``_container``: ``name.lower() -> [name,
    value, ...]``) in one comprehension instead of two Python calls per
    field. urllib3 2.0.7-2.8.0; anything else takes the public way; if the
    container's shape changed, response headers would be wrong:
    tests/test_compat.py compares both ways.
    """
    container = getattr(headers, "_container", None)
    if type(headers) is not HTTPHeaderDict or type(container) is not dict:
        return CaseInsensitiveDict(headers)
    made: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    made._store = OrderedDict([(key, (values[0], ", ".join(values[1:]))) for key, values in container.items()])
    return made




def pool_key_normalizer() -> Callable[..., PoolKey]:
    """urllib3's ``_default_key_normalizer(key_class, request_context)``:
    turns a pool manager's request context into a key of ``key_class`` (the
    scheme and host lower-cased, dicts frozen). urllib3 2.0.7-2.8.0; if it
    changes, the pool keys (connection.key_fn) are built wrongly and pools of
    different bindings may mix: tests/test_adapter.py fails."""
    return cast("Callable[..., PoolKey]", _default_key_normalizer)


def grow_pool(pool: Any, maxsize: int) -> None:
    """Let ``pool`` (a urllib3 connection pool) keep ``maxsize`` connections,
    keeping those it holds: the empty slots go to the bottom of its LIFO
    queue (``pool.pool``, a ``queue.LifoQueue``), under the idle connections,
    which are still handed out first.

    urllib3 has no public way to resize a pool; a new pool would throw the
    idle connections away (benchmarks/ measures that they are kept).
    urllib3 2.0.7-2.8.0 keeps its free slots in ``pool.pool`` as ``None``;
    ``queue.LifoQueue`` keeps its items in ``.queue`` under ``.mutex``. If
    either changes, fetch_many opens connections it then closes:
    tests/test_batch.py counts them.
    """
    slots = pool.pool
    if slots is None:  # closed
        return
    with slots.mutex:
        extra = maxsize - slots.maxsize
        if extra <= 0:
            return
        slots.maxsize = maxsize
        slots.queue[0:0] = [None] * extra
        slots.not_empty.notify(extra)


if TYPE_CHECKING:
    # Type checkers see the hooks as the urllib3 connection they are mixed into.
    _Conn = HTTPConnection
    _TLSConn = HTTPSConnection
else:
    _Conn = _TLSConn = object


class DialHook(_Conn):
    """Mixed into a urllib3 connection class: its socket comes from
    :meth:`vpc_new_conn` (the dialler), with the contract and exceptions of
    urllib3's ``HTTPConnection._new_conn``, which urllib3's ``connect()``
    calls (urllib3 2.0.7-2.8.0). If urllib3 renames it, connections bypass
    the dialler (no tunnel, no abort): most of tests/ fails."""

    def vpc_new_conn(self) -> socket.socket:
        """Open the connection's socket. Should not be called from user code."""
        raise NotImplementedError

    def _new_conn(self) -> socket.socket:
        return self.vpc_new_conn()


class TLSTunnelHook(_TLSConn):
    """Mixed into a urllib3 HTTPS connection class whose dialler may return
    a socket that already speaks TLS to an ``https://`` proxy (after
    ``CONNECT``): the origin's TLS then runs inside it, with urllib3's own
    TLS-in-TLS, as for urllib3's own CONNECT tunnels.

    urllib3's ``HTTPSConnection.connect`` wraps the origin's TLS inside the
    socket (``tls_in_tls``) when ``_tunnel_host`` is set and
    ``_tunnel_scheme`` is ``https``; it then calls ``_connect_tls_proxy``
    (TLS to the proxy) and ``_tunnel`` (``CONNECT``), both already done by
    the dialler. urllib3 2.0.7-2.8.0. A public seam would be an overridden
    ``connect()``, which would have to repeat urllib3's certificate and
    hostname checks, fingerprints and ``is_verified`` bookkeeping. If these
    names change, https over an https:// tunnel fails:
    tests/test_tunnels.py fails.
    """

    _vpc_tls_tunnel = False

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._vpc_tls_tunnel = isinstance(sock, ssl.SSLSocket)
        if self._vpc_tls_tunnel:
            self._tunnel_host = self.host
            self._tunnel_port = self.port
            self._tunnel_scheme = "https"
        return sock

    def _connect_tls_proxy(self, hostname: str, sock: socket.socket) -> ssl.SSLSocket:
        if self._vpc_tls_tunnel:
            return cast(ssl.SSLSocket, sock)  # the dialler did it: _new_conn saw an SSLSocket
        return super()._connect_tls_proxy(hostname, sock)

    def _tunnel(self) -> None:
        if not self._vpc_tls_tunnel:  # the dialler sent CONNECT
            super()._tunnel()

    def close(self) -> None:
        if self._vpc_tls_tunnel:
            self._vpc_tls_tunnel = False
            self._tunnel_host = self._tunnel_port = None
        super().close()


# -- tomlkit --------------------------------------------------------------------


def insert_key_at(table: Any, index: int, key: str, value: Any) -> None:
    """Insert ``key = value`` at position ``index`` of a tomlkit table's body
    (``table.value`` is its ``Container``), with tomlkit's own whitespace
    handling: tomlkit's public ``add``/``append`` put a key at the end, after
    trailing comments.

    ``Container._insert_at``, tomlkit 0.15.2. If it changes
    (``AttributeError``/``ValueError``), services_file.py falls back to plain
    assignment: still valid TOML, the key at the table's end;
    tests/test_services_edit.py shows the placement.
    """
    table.value._insert_at(index, key, value)
