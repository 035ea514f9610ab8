"""A VPC Service binding: :class:`Binding`, with Workers' ``fetch()`` and a
``requests.Session`` routed wholly through it.

``fetch()`` takes a lean path: it prepares the request once with requests' own
default headers, skips the environment lookups ``Session.request`` makes on
every call (proxies, ``.netrc``), has no cookie jar (as in Workers), and
follows redirects itself, through this binding only (S8).
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any, Union

import requests
from requests.cookies import RequestsCookieJar
from requests.hooks import dispatch_hook
from requests.models import PreparedRequest, Request, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers
from urllib3.util import Timeout

from .._compat import copy_headers, set_request_cookies
from .._errors import AbortError, ProxyError, RedirectError
from .._errors import error_response as _error_response
from .._model.modes import ErrorMode, RedirectMode, error_mode, redirect_mode
from .._model.service import VPCService
from .._transport import abort
from .._transport.abort import AbortSignal
from .._transport.adapter import VPCServiceAdapter
from .._transport.redirects import MAX_REDIRECTS, next_request
from .._transport.response import on_body_done, read_content
from .._transport.tcp import Address, check_tcp, open_connection
from .._transport.tracing import instrumented, send_traced
from .batch import FetchResults, Item
from .batch import fetch_many as _fetch_many
from .confine import ConfinedSession
from .forward import ListenAddress, forwarding

__all__ = ["MAX_REDIRECTS", "Binding"]

Resource = Union[str, Request, PreparedRequest]
HeadersType = Union[Mapping[str, Any], Iterable[tuple[str, Any]], None]

# Keyword arguments of requests.request() that fetch() accepts as well.
_REQUEST_KWARGS = frozenset(
    {"params", "json", "files", "auth", "cookies", "hooks", "timeout", "stream",
     "verify", "cert", "data", "allow_redirects", "proxies"}
)
# What HTTPAdapter.send makes of timeout=None on every call (urllib3 clones it
# per connection, so one instance serves every fetch).
_NO_TIMEOUT = Timeout(connect=None, read=None)


class Binding:
    """A named binding to one :class:`~vpc_requests.VPCService`.

    :param name: the binding's name, as in ``wrangler.toml`` (``PRIVATE_API``).
    :param service: the service every request of this binding goes to.
    :param tunnel: how to reach the service (``None``: directly; else a
        transport URL, see the README's tunnels section).
    :param errors: ``"raise"`` (default) raises
        :class:`~vpc_requests.ProxyError` when the service cannot be reached;
        ``"response"`` returns what Workers code sees instead: a ``500``
        ``text/plain`` response whose body is ``ProxyError: <code>``, from
        :meth:`fetch` and from the binding's adapter (so also through
        :meth:`session`, where a body the session reads still raises).
    :param adapter_kwargs: passed to :class:`~vpc_requests.VPCServiceAdapter`
        (``pool_maxsize``, ``max_retries``, ...).
    """

    def __init__(
        self,
        name: str,
        service: VPCService,
        *,
        tunnel: str | None = None,
        errors: ErrorMode = "raise",
        **adapter_kwargs: Any,
    ) -> None:
        self._service = service
        self._start(name, tunnel, errors, adapter_kwargs, lambda errors: VPCServiceAdapter(
            service, binding=name, tunnel=tunnel, errors=errors, **adapter_kwargs
        ))

    def _start(
        self,
        name: str,
        tunnel: str | None,
        errors: ErrorMode,
        adapter_kwargs: dict[str, Any],
        adapter: Callable[[ErrorMode], VPCServiceAdapter],
    ) -> None:
        """The state every kind of binding keeps: its name, transport,
        error mode and adapter (made by ``adapter(errors)`` once ``errors``
        is checked). Should not be called from user code."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a binding's name must be a non-empty str, got {name!r}")
        errors = error_mode(errors)
        self._name = name
        self._tunnel = tunnel
        self._errors = errors
        self._adapter_kwargs = adapter_kwargs
        self._adapter = adapter(errors)
        self._headers = default_headers()

    @property
    def name(self) -> str:
        """The binding's name."""
        return self._name

    @property
    def service(self) -> VPCService:
        """The service this binding reaches."""
        return self._service

    @property
    def tunnel(self) -> str | None:
        """The transport URL, or ``None`` for a direct connection."""
        return self._tunnel

    @property
    def adapter(self) -> VPCServiceAdapter:
        """The binding's transport adapter (one pool for all its fetches)."""
        return self._adapter

    def __repr__(self) -> str:
        return f"<Binding {self._name} -> {self._service.describe()}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Binding):
            return NotImplemented
        return (self._name, self._service, self._tunnel) == (other._name, other._service, other._tunnel)

    def __hash__(self) -> int:
        return hash((self._name, self._service, self._tunnel))

    def __getstate__(self) -> dict[str, Any]:
        return {
            "name": self._name, "service": self._service, "tunnel": self._tunnel,
            "errors": self._errors, "adapter_kwargs": self._adapter_kwargs,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(
            self, state["name"], state["service"], tunnel=state["tunnel"],
            errors=state["errors"], **state["adapter_kwargs"],
        )

    def close(self) -> None:
        """Close the binding's pooled connections (they reopen on demand)."""
        self._adapter.close()

    def __enter__(self) -> Binding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self, **attributes: Any) -> requests.Session:
        """A :class:`requests.Session` on which every http and https request,
        and every redirect, goes through this binding (it shares the
        binding's connection pool). A redirect hop to a host other than the
        one its chain started at carries none of that host's credentials or
        cookies (a :class:`~vpc_requests._bindings.confine.ConfinedSession`; copies and
        pickles of it are too).

        :param attributes: session attributes to set (``headers``, ``auth``,
            ``verify``, ``cert``, ``params``, ``trust_env``, ...).
        :raises TypeError: for a name that is not a session attribute.
        """
        session = ConfinedSession()
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        # Every other URL (ftp:, mailto:, also as a redirect's Location) is
        # refused by the binding with a RoutingError naming it (S7), not
        # requests' "No connection adapters" InvalidSchema.
        session.mount("", self._adapter)
        session.max_redirects = MAX_REDIRECTS
        for key, value in attributes.items():
            if key.startswith("_") or not hasattr(session, key) or callable(getattr(session, key)):
                raise TypeError(f"session() got an unexpected attribute {key!r}")
            setattr(session, key, value)
        return session

    def fetch(
        self,
        resource: Resource,
        *,
        method: str | None = None,
        headers: HeadersType = None,
        body: Any = None,
        signal: AbortSignal | None = None,
        redirect: RedirectMode = "follow",
        **kwargs: Any,
    ) -> Response:
        """Make a request through this binding, as ``env.BINDING.fetch()``.

        :param resource: an absolute http(s) URL, a :class:`requests.Request`
            or a :class:`requests.PreparedRequest` (never changed).
        :param method: overrides the method (default ``GET``, or the
            resource's).
        :param headers: headers to send (added to the resource's); a value of
            ``None`` removes a header.
        :param body: the body, as ``requests``' ``data=`` takes it.
        :param signal: an :class:`~vpc_requests.AbortSignal`; when it fires
            the fetch stops with :class:`~vpc_requests.AbortError`.
        :param redirect: ``"follow"`` (through this binding, at most
            :data:`~vpc_requests._bindings.binding.MAX_REDIRECTS`), ``"manual"`` (return the 3xx) or
            ``"error"`` (raise :class:`~vpc_requests.RedirectError`).
        :param kwargs: what ``requests.request`` accepts: ``params``,
            ``json``, ``files``, ``auth``, ``cookies``, ``hooks``,
            ``timeout``, ``stream``, ``verify``, ``cert`` (``proxies`` is
            ignored: the binding is the route). Without ``verify`` (or with
            ``True``) the CA bundle named by ``REQUESTS_CA_BUNDLE`` or
            ``CURL_CA_BUNDLE`` is used when set, as by requests.
        :returns: the :class:`requests.Response`, whatever its status.
        :raises ~vpc_requests.RoutingError: for a URL the binding refuses;
            nothing is sent.
        :raises ~vpc_requests.ProxyError: when the service cannot be reached
            (unless ``errors="response"``).
        """
        if kwargs and not _REQUEST_KWARGS.issuperset(kwargs):
            unknown = set(kwargs) - _REQUEST_KWARGS
            raise TypeError(f"fetch() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        redirect = redirect_mode(redirect)
        if "data" in kwargs:
            if body is not None:
                raise TypeError("fetch() takes body= or data=, not both")
            body = kwargs.pop("data")
        if kwargs.pop("allow_redirects", True) is False:
            redirect = "manual"
        kwargs.pop("proxies", None)
        verify = kwargs.pop("verify", True)
        if verify is True or verify is None:
            # As Session.merge_environment_settings (trust_env is on).
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        send = {
            "stream": kwargs.pop("stream", False),
            "timeout": kwargs.pop("timeout", None),
            "verify": verify,
            "cert": kwargs.pop("cert", None),
        }
        request = self._prepare(resource, method, headers, body, kwargs)
        if instrumented():
            # The instrumentation's client span around the whole exchange,
            # as around Session.send (vpc_requests._transport.tracing).
            return send_traced(request, lambda: self._run(request, redirect, send, signal), send["stream"])
        return self._run(request, redirect, send, signal)

    def _run(
        self, request: PreparedRequest, redirect: str, send: dict[str, Any], signal: AbortSignal | None
    ) -> Response:
        try:
            if signal is None:
                return self._exchange(request, redirect, send)
            return self._exchange_abortable(request, redirect, send, signal)
        except ProxyError as exc:
            if self._errors == "response":
                return _error_response(exc, request, connection=self._adapter)
            raise

    def fetch_many(
        self,
        resources: Iterable[Item],
        *,
        concurrency: int = 8,
        progress: bool = False,
        signal: AbortSignal | None = None,
        total: int | None = None,
        **fetch_kwargs: Any,
    ) -> FetchResults:
        """Fetch many resources, at most ``concurrency`` at a time, and yield
        the results in input order: each a :class:`requests.Response` or the
        exception that item's fetch raised (see
        :func:`vpc_requests._bindings.batch.fetch_many`)::

            for result in env.PRIVATE_API.fetch_many(urls, concurrency=16):
                ...

        :param resources: any iterable (read lazily) of URLs,
            :class:`requests.Request` / :class:`requests.PreparedRequest`
            objects, or mappings of :meth:`fetch` arguments with the
            resource under ``"url"``.
        :param concurrency: the most fetches in flight; the binding's pool is
            grown to keep that many connections.
        :param progress: a progress bar (``tqdm``) or line on stderr.
        :param signal: stops the whole batch; the iteration then raises
            :class:`~vpc_requests.AbortError`.
        :param total: the number of items, for the progress display, when
            ``resources`` has no length.
        :param fetch_kwargs: :meth:`fetch` arguments for every item.
        :returns: a :class:`~vpc_requests._bindings.batch.FetchResults`: an iterator
            and a context manager; leaving its ``with`` block, or
            ``close()``, stops the batch (use ``with`` when you keep the
            results in a variable).
        """
        return _fetch_many(
            self, resources, concurrency=concurrency, progress=progress, signal=signal, total=total,
            **fetch_kwargs,
        )

    def connect(
        self,
        address: Address = None,
        *,
        timeout: float | None = None,
        signal: AbortSignal | None = None,
        tls: bool = False,
        server_hostname: str | None = None,
    ) -> socket.socket:
        """A TCP connection to this binding's ``tcp`` service, as
        ``env.DB.connect(address)`` in a Worker: to the service's host and
        ``tcp_port``, through the binding's transport, whatever ``address``
        says (see the TCP page of the documentation).

        :param address: ``"host:port"``, ``(host, port)`` or
            ``{"hostname": ..., "port": ...}``; never routes, only names the
            TLS server.
        :param timeout: seconds to connect (and handshake); kept as the
            socket's timeout, as :func:`socket.create_connection` does.
        :param signal: an :class:`~vpc_requests.AbortSignal` that stops the
            attempt.
        :param tls: wrap in TLS, checked per the service's ``tls_settings``.
        :param server_hostname: SNI and checked name (default: the address's
            host, else the service's host).
        :returns: the connected socket; the caller closes it.
        :raises ~vpc_requests.RoutingError: for a service not of type ``tcp``.
        :raises ~vpc_requests.ProxyError: when the service cannot be reached.
        """
        return open_connection(
            self._service, binding=self._name, tunnel=self._tunnel, address=address, timeout=timeout,
            signal=signal, tls=tls, server_hostname=server_hostname,
            certificates=self._adapter.certificates,
        )

    def forward(
        self,
        listen: ListenAddress = ("127.0.0.1", 0),
        *,
        allow_remote: bool = False,
        timeout: float | None = 30.0,
    ) -> AbstractContextManager[ListenAddress]:
        """A local TCP forwarder to this binding's ``tcp`` service, for
        clients that dial ``host:port`` themselves (see
        the forward module)::

            with env.DB.forward() as (host, port):
                psycopg.connect(host=host, port=port)

        :param listen: where to listen; port 0 picks a free port.
        :param allow_remote: allow a non-loopback listen address (logged as
            a warning).
        :param timeout: connect timeout of each upstream connection.
        :returns: a context manager giving the ``(host, port)`` listened on.
        :raises ~vpc_requests.RoutingError: for a service not of type ``tcp``.
        :raises ValueError: for a non-loopback address without ``allow_remote``.
        """
        check_tcp(self._service, self._name)
        return forwarding(
            lambda signal: self.connect(timeout=timeout, signal=signal), listen, allow_remote=allow_remote,
            name=self._name,
        )

    def _exchange_abortable(
        self, request: PreparedRequest, redirect: str, send: dict[str, Any], signal: AbortSignal
    ) -> Response:
        active = abort.scope(signal)
        done = False
        try:
            with active:
                response = self._exchange(request, redirect, send)
            if send["stream"]:
                # The caller reads the body: the signal covers it until the
                # body is read or the response closed.
                on_body_done(response, active.release)
            else:
                done = True
            return response
        except (requests.RequestException, OSError, ValueError) as exc:
            done = True
            if signal.aborted and not isinstance(exc, AbortError):
                raise AbortError(signal.reason, request=request) from exc
            raise
        finally:
            if done:
                active.release()

    def _prepare(
        self,
        resource: Resource,
        method: str | None,
        headers: HeadersType,
        body: Any,
        extra: dict[str, Any],
    ) -> PreparedRequest:
        if isinstance(resource, PreparedRequest):
            self._adapter.route(str(resource.url))
            prepared = resource.copy()
            if method is not None:
                prepared.prepare_method(method)
            if headers is not None:
                prepared.headers = _merge_headers(prepared.headers, headers)
            if extra.get("params"):
                prepared.prepare_url(str(prepared.url), extra["params"])
            if body is not None or extra.get("json") is not None or extra.get("files"):
                for name in ("Content-Length", "Transfer-Encoding", "Content-Type"):
                    prepared.headers.pop(name, None)
                prepared.prepare_body(body, extra.get("files"), extra.get("json"))
            if extra.get("auth") is not None:
                prepared.prepare_auth(extra["auth"])
            if extra.get("cookies") is not None:
                prepared.headers.pop("Cookie", None)
                prepared.prepare_cookies(extra["cookies"])
            if extra.get("hooks"):
                # copy() shares the hooks dict with the caller's request (S13)
                prepared.hooks = {event: list(funcs) for event, funcs in resource.hooks.items()}
                prepared.prepare_hooks(extra["hooks"])
            return prepared
        if isinstance(resource, Request):
            url = resource.url
            method = method or resource.method or "GET"
            merged = _merge_headers(_merge_headers(self._headers, resource.headers or {}), headers)
            data = resource.data if body is None else body
            json = extra.get("json", resource.json)
            files = extra.get("files", resource.files)
            params = extra.get("params", resource.params)
            auth = extra.get("auth", resource.auth)
            cookies = extra.get("cookies", resource.cookies)
            hooks = extra.get("hooks", resource.hooks)
        elif isinstance(resource, str):
            url = resource
            method = method or "GET"
            # prepare_headers() copies them: no merge needed without extras.
            merged = self._headers if headers is None else _merge_headers(self._headers, headers)
            data, json, files, params = body, extra.get("json"), extra.get("files"), extra.get("params")
            auth, cookies, hooks = extra.get("auth"), extra.get("cookies"), extra.get("hooks")
        else:
            raise TypeError(
                "fetch() takes a URL string, a requests.Request or a requests.PreparedRequest; "
                f"got {type(resource).__name__}"
            )
        target = str(url)  # a str: route() refuses anything else
        self._adapter.route(target)
        # PreparedRequest.prepare(), step by step, without its work for
        # nothing: empty params and data are None (an empty dict costs
        # requests an encoding pass), no cookies an empty jar (no Cookie
        # header lookup).
        prepared = PreparedRequest()
        prepared.prepare_method(method)
        if params:
            prepared.prepare_url(target, params)
            final = str(prepared.url)
        else:
            final = prepared.url = _prepared_url(target)
        if merged is self._headers:
            prepared.headers = copy_headers(self._checked_headers())
        else:
            prepared.prepare_headers(merged)
        if cookies is None:
            set_request_cookies(prepared, RequestsCookieJar())
        else:
            prepared.prepare_cookies(cookies)
        if data or files or json is not None:
            prepared.prepare_body(data or None, files, json)
        else:
            # What prepare_body(None, None, None) does.
            prepared.prepare_content_length(None)
        if auth is not None or "@" in final:
            # Without auth=, prepare_auth() only looks for credentials in
            # the URL, which has none without an "@".
            prepared.prepare_auth(auth, target)
        if hooks:
            prepared.prepare_hooks(hooks)
        return prepared

    def _checked_headers(self) -> CaseInsensitiveDict[Any]:
        """The default headers as ``prepare_headers()`` makes them, checked
        once per binding (a URL fetch without ``headers=`` gets a copy)."""
        checked = self.__dict__.get("_prepared_headers")
        if checked is None or checked[0] is not self._headers:
            template = PreparedRequest()
            template.prepare_headers(self._headers)
            checked = self._prepared_headers = (self._headers, template.headers)
        return checked[1]

    def _exchange(self, request: PreparedRequest, redirect: str, send: dict[str, Any]) -> Response:
        """Send ``request`` and follow redirects through this binding."""
        history: list[Response] = []
        response = self._send(request, send)
        while response.is_redirect and redirect != "manual":
            if redirect == "error":
                response.close()
                raise RedirectError(
                    f"binding {self._name!r} got a {response.status_code} redirect to "
                    f"{response.headers.get('Location')!r} with redirect='error'",
                    response=response, request=request,
                )
            if len(history) >= MAX_REDIRECTS:
                response.close()
                raise requests.TooManyRedirects(
                    f"Exceeded {MAX_REDIRECTS} redirects.", response=response
                )
            _drain(response)  # first: a refused next hop must not keep the connection
            history.append(response)
            request = next_request(request, response)
            self._adapter.route(str(request.url))
            response = self._send(request, send)
        if history:
            response.history = history
        if not send["stream"]:
            try:
                read_content(response)
            except BaseException:
                response.close()  # the caller never gets it: free the connection now
                raise
        return response

    def _send(self, request: PreparedRequest, send: dict[str, Any]) -> Response:
        started = time.perf_counter()
        timeout = send["timeout"]
        response = self._adapter.send(
            request, send["stream"], _NO_TIMEOUT if timeout is None else timeout, send["verify"], send["cert"]
        )
        response.elapsed = timedelta(seconds=time.perf_counter() - started)
        if request.hooks.get("response"):
            try:
                response = dispatch_hook("response", request.hooks, response, proxies={}, **send)
            except BaseException:
                response.close()
                raise
        return response


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> str:
    """``PreparedRequest.prepare_url(url, None)``'s URL (it depends on
    nothing else), made once per distinct URL; errors are raised, not
    cached."""
    prepared = PreparedRequest()
    prepared.prepare_url(url, None)
    return str(prepared.url)


def _drain(response: Response) -> None:
    """Read a redirect's body so its connection goes back to the pool, and
    close it; a broken body is skipped as ``Session.resolve_redirects``
    skips it (a redirect is followed whatever its body)."""
    try:
        response.content  # noqa: B018
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError, RuntimeError):
        response.raw.read(decode_content=False)
    finally:
        response.close()


def _merge_headers(base: Mapping[str, Any], extra: HeadersType) -> CaseInsensitiveDict[Any]:
    merged: CaseInsensitiveDict[Any] = CaseInsensitiveDict(base)
    if extra is not None:
        items = extra.items() if isinstance(extra, Mapping) else extra
        for key, value in items:
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
    return merged
