"""The transport adapter: :class:`VPCServiceAdapter`, a
:class:`requests.adapters.HTTPAdapter` that sends every request it is given to
one VPC service (docs/semantics.rst, S1-S15).

It extends requests only through HTTPAdapter's documented hooks:
``init_poolmanager`` (pool classes that dial the service),
``build_connection_pool_key_attributes`` and
``get_connection_with_tls_context`` (the service's host and port, SNI from the
URL, TLS settings; never a proxy; the deprecated ``get_connection`` routes the
same way), ``cert_verify`` (settings live in the pool
key, so nothing is mutated per request), ``build_response`` and ``send``
(``Host`` from the URL on a copy of the request; errors translated).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any, Callable

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.models import PreparedRequest, Response
from requests.utils import get_auth_from_url, get_encoding_from_headers
from urllib3.poolmanager import PoolKey

from .._compat import basic_auth_header, grow_pool, has_header, header_items, response_headers
from .._errors import AbortError, ProxyError, error_response, from_transport, translate
from .._model.modes import ErrorMode, error_mode
from .._model.service import VPCService
from .._util import forks
from .abort import current_scope
from .connection import EXCHANGE, Dialer, Exchange, VPCHTTPConnectionPool, VPCHTTPSConnectionPool, key_fn
from .response import TranslatingResponse, log_failure
from .retry import default_retry
from .routing import Route, route
from .tls import CertificateFiles, certificate_map, service_files
from .tls import pool_kwargs as tls_pool_kwargs
from .tracing import annotate, instrumented

if not hasattr(HTTPAdapter, "build_connection_pool_key_attributes"):  # pragma: no cover
    from requests.__version__ import __version__ as _found

    raise ImportError(
        f"vpc_requests needs requests >= 2.32.3 (found {_found}), "
        "whose HTTPAdapter has build_connection_pool_key_attributes and "
        "get_connection_with_tls_context; upgrade with: pip install -U 'requests>=2.32.3'"
    )

__all__ = ["VPCServiceAdapter", "pool_key", "route_of"]

log = logging.getLogger("vpc_requests.adapter")  # the name it had before the layers; users filter on it

# Errors raised by HTTPAdapter.send that mean "could not reach or hear from
# the service" (S11); anything else (InvalidURL, InvalidHeader, RetryError)
# passes through as requests raised it.
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout)
class VPCServiceAdapter(HTTPAdapter):
    """Sends every request to ``service``, whatever the URL's host and port.

    Mount it on a :class:`requests.Session` for the URL prefixes that should
    go through the binding::

        session.mount("https://", VPCServiceAdapter(service, binding="API"))

    :param service: the :class:`~vpc_requests.VPCService` to connect to.
    :param binding: the binding's name, used in errors and logs.
    :param tunnel: how to reach the service: ``None`` (directly) or a
        transport URL (see the README's tunnels section).
    :param errors: ``"raise"`` (default) raises
        :class:`~vpc_requests.ProxyError` from :meth:`send` when the service
        cannot be reached; ``"response"`` returns what Workers code sees
        instead: a ``500`` ``text/plain`` response whose body is
        ``ProxyError: <code>`` (errors while streaming a body still raise).
    :param certificates: the local files of the certificate ids the
        service's ``tls_settings`` name: ``id`` -> ``{"ca": path}`` or
        ``{"cert": path, "key": path}`` (or
        :class:`~vpc_requests._transport.tls.CertificateFiles`), as the services file's
        ``[certificates]`` table. An id the service names and this lacks
        makes https requests fail with a :class:`~vpc_requests.ConfigError`
        naming it, before any connection (unless ``verify=False`` makes the
        CA unnecessary, or ``cert=`` replaces the client certificate).
    :param kwargs: :class:`~requests.adapters.HTTPAdapter` arguments
        (``pool_connections``, ``pool_maxsize``, ``max_retries``,
        ``pool_block``). Without ``max_retries`` the adapter uses
        :func:`~vpc_requests._transport.retry.default_retry`: an idempotent request whose pooled connection
        the service had closed is retried once on a new connection; a
        ``POST`` is never sent twice. A ``max_retries`` given is used as
        given (``0``: no retry at all, as requests' default).
    """

    __attrs__ = HTTPAdapter.__attrs__ + ["service", "binding", "tunnel", "errors", "certificates"]

    def __init__(
        self,
        service: VPCService,
        binding: str | None = None,
        tunnel: str | None = None,
        *,
        errors: ErrorMode = "raise",
        certificates: Mapping[str, CertificateFiles | Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        errors = error_mode(errors)
        if not isinstance(service, VPCService):
            raise TypeError(
                f"VPCServiceAdapter needs a VPCService, got {type(service).__name__}; "
                "build one with VPCService(hostname=...) or VPCService.from_api(...)"
            )
        self.service = service
        self.binding = binding
        self.tunnel = tunnel
        self.errors = errors
        self.certificates = certificate_map(certificates)
        if "max_retries" not in kwargs:
            kwargs["max_retries"] = default_retry()
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Create the pool manager, with pools that dial the service.

        This method should not be called from user code, and is only exposed
        for use when subclassing.
        """
        dialer = Dialer(self.service, self.tunnel)
        # Read once per pool manager (also after unpickling), not per request.
        self._tls_files = service_files(self.service, self.certificates, self.binding)
        super().init_poolmanager(connections, maxsize, block, vpc_dialer=dialer, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": VPCHTTPConnectionPool,
            "https": VPCHTTPSConnectionPool,
        }
        self.poolmanager.key_fn_by_scheme = {"http": pool_key, "https": pool_key}
        self._pool_keys: dict[tuple[str, str, int, int], tuple[Any, Any, PoolKey, dict[str, Any]]] = {}
        self._routes: tuple[VPCService, str | None, dict[str, Route]] = (self.service, self.binding, {})
        self._generation = forks.generation()

    def ensure_pool_maxsize(self, maxsize: int) -> None:
        """Let every pool keep at least ``maxsize`` idle connections, so
        ``maxsize`` threads sharing this adapter never open a connection only
        to throw it away (a pool too small discards the surplus). Pools grow
        in place and keep their connections; pools made later get the new
        size. Never shrinks.

        :param maxsize: the number of connections each pool should keep.
        """
        with _RESIZE_LOCK:
            if maxsize <= self._pool_maxsize:
                return
            self._pool_maxsize = maxsize
            manager = self.poolmanager
            # A new dict, not a change to the shared one; maxsize is not in
            # the pool key (pool_key), so existing pools stay in use.
            manager.connection_pool_kw = {**manager.connection_pool_kw, "maxsize": maxsize}
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    grow_pool(pool, maxsize)

    def route(self, url: str) -> Route:
        """Where ``url`` goes: the service's origin and port, Host and SNI.

        :raises ~vpc_requests.RoutingError: for a URL the binding refuses.
        """
        # Cached by the URL's scheme://netloc (what routing.route reads).
        service, binding, routes = self._routes
        origin = _ORIGIN.match(url) if isinstance(url, str) else None
        if origin is None or service is not self.service or binding != self.binding:
            return route(self.service, url, self.binding)
        prefix = origin.group()
        found = routes.get(prefix)
        if found is None:
            found = route(service, url, binding)
            if len(routes) >= _ROUTES_KEPT:
                routes.clear()
            routes[prefix] = found
        return found

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pool for ``request``: the service's host and the port for the
        URL's scheme; for https, SNI and TLS settings (which are in urllib3's
        pool key, so two names never share a connection).

        This method should not be called from user code, and is only exposed
        for use when subclassing.
        """
        where = route_of(self, request)
        host_params = {"scheme": where.scheme, "host": where.connect_host, "port": where.port}
        if where.server_hostname is None:
            return host_params, {}
        files = self._tls_files
        if files.ca_problem is not None or files.client_problem is not None:
            files.check(verify, cert)
        return host_params, tls_pool_kwargs(
            where.server_hostname, self.service.cert_verification_mode, verify, cert or files.client, files.ca
        )

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        """The connection pool for ``request``; proxies are never used (S9).

        This method should not be called from user code, and is only exposed
        for use when subclassing.
        """
        if self._generation != forks.generation():
            # A forked child must never share its parent's pooled sockets.
            self.init_poolmanager(self._pool_connections, self._pool_maxsize, self._pool_block)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        return self._pool_for(host_params, pool_kwargs)

    def _pool_for(self, host_params: dict[str, Any], pool_kwargs: dict[str, Any]) -> Any:
        """The pool manager's pool for these attributes: what
        ``PoolManager.connection_from_host`` returns, with the pool key and
        context made once per route and settings, not per request.

        The key is cached by the identity of ``pool_kwargs`` (the TLS
        settings: one cached dict per settings and file versions) and of the
        manager's ``connection_pool_kw`` (a new dict when the manager is
        made again or a pool size grows), so a change of either makes a
        new key."""
        manager = self.poolmanager
        base = manager.connection_pool_kw
        cache_key = (host_params["scheme"], host_params["host"], host_params["port"],
                     id(pool_kwargs) if pool_kwargs else 0)
        kept = self.__dict__.get("_pool_keys")
        if kept is None:  # a subclass whose init_poolmanager does not make it
            kept = self._pool_keys = {}
        cached = kept.get(cache_key)
        if cached is None or cached[0] is not base or (pool_kwargs and cached[1] is not pool_kwargs):
            # PoolManager.connection_from_host's context, step by step.
            context = dict(base)
            for name, value in pool_kwargs.items():
                if value is None:
                    context.pop(name, None)
                else:
                    context[name] = value
            context.update(host_params)
            key = manager.key_fn_by_scheme[host_params["scheme"]](context)
            if len(kept) >= _POOL_KEYS_KEPT:
                kept.clear()
            cached = (base, pool_kwargs, key, context)
            kept[cache_key] = cached
        # A copy: a pool made from the context takes items out of it.
        return manager.connection_from_pool_key(cached[2], request_context=dict(cached[3]))

    def get_connection(self, url: str, proxies: Mapping[str, str] | None = None) -> Any:
        """DEPRECATED in requests 2.32.2 (and warns as requests does): the
        connection pool for ``url``, routed like
        :meth:`get_connection_with_tls_context` with requests' defaults
        (``verify=True``, no client certificate); proxies are never used.

        This method should not be called from user code.

        :raises ~vpc_requests.RoutingError: for a URL the binding refuses.
        """
        warnings.warn(
            "`get_connection` has been deprecated in favor of `get_connection_with_tls_context`; "
            "VPCServiceAdapter routes it the same way, with verify=True and no client certificate",
            DeprecationWarning,
            stacklevel=2,
        )
        request = PreparedRequest()
        request.url = url
        return self.get_connection_with_tls_context(request, True)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Do nothing: TLS settings are pool keyword arguments here, so pools
        are never changed per request.

        This method should not be called from user code.
        """

    def request_url(self, request: PreparedRequest, proxies: Any) -> str:
        """The request target: always the URL's path (never a proxy's
        absolute form).

        This method should not be called from user code.
        """
        return str(request.path_url)

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        """Send ``request`` to the service; ``proxies`` are ignored (S9).

        :returns: the response, whatever its status (S12); its ``.request``
            is the caller's request, unchanged (S13).
        :raises ~vpc_requests.RoutingError: for a URL the binding refuses.
        :raises ~vpc_requests.ProxyError: when the service cannot be reached
            or heard from (S11); also the matching ``requests`` exception.
            With ``errors="response"`` the ``500`` response is returned instead.
        :raises requests.exceptions.InvalidHeader: for a header name or value
            with CR, LF or NUL; nothing is sent.
        :raises ~vpc_requests.AbortError: when the fetch's signal fired.
        """
        where = self.route(str(request.url))
        if instrumented():
            annotate(self.binding, where)
        _check_headers(request.headers)
        drop = proxies is not None and _is_proxy_credential(request.headers.get("Proxy-Authorization"), proxies)
        # The request goes down unchanged (S13), as plain requests sends it;
        # Host is added where the pool sends the headers (connection.py).
        token = EXCHANGE.set(Exchange(self, where, drop))
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        try:
            response = super().send(request, stream, timeout, verify, cert, None)
        except _TRANSPORT_ERRORS as exc:
            if not from_transport(exc):
                # Raised in the transport's place, not by the network (a mock
                # such as responses): the caller gets it as raised.
                raise
            failure = self._failure(exc, where, request)
            log_failure(self.binding, request, where.url_host, where.origin, failure, started)
            if self.errors == "response" and isinstance(failure, ProxyError):
                return error_response(failure, request, connection=self)
            raise failure from exc
        finally:
            EXCHANGE.reset(token)
        if debug:
            log.debug(
                "binding=%s %s %s -> %s status=%s elapsed=%.1fms",
                self.binding, request.method, where.url_host, where.origin,
                response.status_code, (time.perf_counter() - started) * 1000,
            )
        return response

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        """Build the :class:`requests.Response`; body errors read later (also
        while streaming) are translated like send errors.

        This method should not be called from user code.
        """
        # HTTPAdapter.build_response, line for line, except that a response
        # without Set-Cookie skips the cookie parsing (http.cookiejar's mock
        # request and response; it finds nothing there) and the response is
        # a TranslatingResponse from the start.
        response = TranslatingResponse()
        response.status_code = getattr(resp, "status", None)  # type: ignore[assignment]
        headers = response_headers(getattr(resp, "headers", {}))
        response.headers = headers
        response.encoding = get_encoding_from_headers(headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url  # type: ignore[assignment]
        if has_header(headers, "set-cookie") or has_header(headers, "set-cookie2"):
            extract_cookies_to_jar(response.cookies, req, resp)
        response.request = req
        response.connection = self
        response._vpc = (self, route_of(self, req), current_scope())
        return response

    def _failure(self, exc: BaseException, where_origin: Route | str, request: Any) -> Exception:
        origin = where_origin if isinstance(where_origin, str) else where_origin.origin
        active = current_scope()
        if active is not None and active.signal.aborted:
            return AbortError(active.signal.reason, request=request)
        if isinstance(exc, (ProxyError, AbortError)):
            return exc
        return translate(exc, binding=self.binding, origin=origin, request=request)


_RESIZE_LOCK = threading.Lock()
# Pool keys and routes an adapter keeps (then it starts again).
_POOL_KEYS_KEPT = 256
_ROUTES_KEPT = 1024
# A URL's "scheme://netloc", as routing.route splits it (the scheme: up to
# the first "://"; the netloc: up to the first "/", "?" or "#").
_ORIGIN = re.compile(r"[^:/?#]*://[^/?#]*")


def _key_without_maxsize(
    make_key: Callable[[dict[str, Any]], PoolKey], request_context: dict[str, Any]
) -> PoolKey:
    return make_key({**request_context, "maxsize": None})


#: urllib3's pool key (plus the dialer) without ``maxsize``, so
#: :meth:`VPCServiceAdapter.ensure_pool_maxsize` keeps using the pools it
#: grew. A ``functools.partial``, as urllib3's own ``key_fn_by_scheme`` entries.
pool_key = functools.partial(_key_without_maxsize, key_fn)


def route_of(adapter: VPCServiceAdapter, request: PreparedRequest) -> Route:
    """The route :meth:`VPCServiceAdapter.send` computed for the exchange
    under way, else a fresh one."""
    exchange = EXCHANGE.get()
    if exchange is not None and exchange.adapter is adapter:
        return exchange.route  # type: ignore[no-any-return]
    return adapter.route(str(request.url))


_FORBIDDEN = re.compile("[\r\n\x00]")
_FORBIDDEN_BYTES = re.compile(b"[\r\n\x00]")


def _check_headers(headers: Mapping[str, Any]) -> None:
    """Refuse CR, LF and NUL anywhere in a header name or value (RFC 9110
    5.5), before anything is sent. requests checks headers when it prepares
    a request, but 2.32.3 lets a trailing newline through, and a
    PreparedRequest's headers can change after it was prepared. The message
    names the header, never its value (it may be a credential).

    :raises requests.exceptions.InvalidHeader: for a forbidden character.
    """
    try:
        # One scan of every name and value (the common case: all str, clean).
        text = " ".join(map(" ".join, header_items(headers)))
    except TypeError:  # a bytes (or other) name or value
        pass
    else:
        if "\r" not in text and "\n" not in text and "\x00" not in text:
            return
    for name, value in headers.items():
        for where, part in (("name", name), ("value", value)):
            if isinstance(part, str):
                bad = _FORBIDDEN.search(part) is not None
            elif isinstance(part, bytes):
                bad = _FORBIDDEN_BYTES.search(part) is not None
            else:
                continue
            if bad:
                raise requests.exceptions.InvalidHeader(
                    f"header {name!r} has a CR, LF or NUL character in its {where}; refused before sending"
                )


def _is_proxy_credential(value: Any, proxies: Mapping[str, str]) -> bool:
    """Whether ``value`` is the ``Proxy-Authorization`` header requests makes
    from a proxy URL's credentials (on every redirect hop): the binding never
    uses that proxy, so its credentials must not reach the service (S9). A
    header the caller set otherwise is sent as given."""
    if not value:
        return False
    for proxy in proxies.values():
        if not proxy:
            continue
        username, password = get_auth_from_url(proxy)
        if username and value == basic_auth_header(username, password):
            return True
    return False
