"""urllib3 connection and pool classes that dial a binding's service.

The adapter's pool manager makes pools of these classes (through urllib3's
``pool_classes_by_scheme`` and ``key_fn_by_scheme``). A pool is created for the
service's host and port; its connections open their socket with the binding's
:class:`Dialer`, which knows the service's addresses (IPv6 first, then IPv4)
and how to reach them, and register the socket with the running fetch's abort
scope so an abort can interrupt it in any phase.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolKey

from .._compat import DialHook, TLSTunnelHook, has_header, header_items, pool_key_normalizer
from .._errors import ProxyConnectionError, ProxyConnectTimeout, ProxyError, proxy_error
from .._model.service import VPCService
from .._util import deadlines
from .abort import current_scope, watch
from .resolver import require_dns, resolver_for
from .tunnels import (
    SocketOptions,
    Transport,
    http_connect,
    open_socket,
    parse_tunnel,
    redact_url,
    require_socks,
    socks_connect,
)

__all__ = [
    "EXCHANGE",
    "Exchange",
    "Dialer",
    "VPCHTTPConnection",
    "VPCHTTPConnectionPool",
    "VPCHTTPSConnection",
    "VPCHTTPSConnectionPool",
    "VPCPoolKey",
    "key_fn",
]

log = logging.getLogger("vpc_requests.connection")  # the name it had before the layers; users filter on it


@dataclass(frozen=True)
class Dialer:
    """Opens TCP connections to one service, directly or through a tunnel.

    Direct: the service's addresses are tried in order (dual stack: IPv6,
    then IPv4); a hostname is resolved by its ``resolver_ips`` when it has
    some (:mod:`vpc_requests._transport.resolver`), else by the system. Through a
    tunnel (:mod:`vpc_requests._transport.tunnels`) the tunnel is asked for the
    service's origin and the port: by name for ``socks5h``, ``http`` and
    ``https`` (the far end resolves it), by address for ``socks5`` (resolved
    here, as in direct mode).

    :param service: the service whose addresses are dialed.
    :param tunnel: a transport URL (``socks5://``, ``socks5h://``,
        ``http://``, ``https://``) or ``None``/``"direct"`` for a direct
        connection.
    :raises ConfigError: for an invalid transport URL.
    :raises ImportError: when the transport (socksio) or ``resolver_ips``
        (dnspython) need an extra that is not installed.
    """

    service: VPCService
    tunnel: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        # It is in every pool key (VPCPoolKey.key_vpc_dialer): never the password.
        shown = "" if self.tunnel is None else f", tunnel={redact_url(self.tunnel)!r}"
        return f"Dialer(service={self.service!r}{shown})"

    def __post_init__(self) -> None:
        transport = parse_tunnel(self.tunnel)
        if transport.kind == "socks":
            require_socks()
        if self.service.hostname is not None and self.service.resolver_ips and not transport.resolves_remotely:
            require_dns()

    @property
    def transport(self) -> Transport:
        """The parsed :attr:`tunnel`."""
        return parse_tunnel(self.tunnel)

    def connect(
        self,
        port: int,
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        socket_options: SocketOptions = None,
    ) -> socket.socket:
        """Open a connection to the service on ``port``.

        Everything (name lookup, tunnel handshake, every address tried)
        happens within ``timeout``. When several addresses are tried, each
        but the last gets a share of the time left, so a hanging IPv6 path
        still leaves time for IPv4.

        :returns: a connected socket, registered with the running fetch's
            abort scope.
        :raises ProxyError: for a tunnel failure or a ``resolver_ips``
            lookup failure (``.code`` says which).
        :raises OSError: the last direct connect error (``socket.timeout``
            for a timeout, ``socket.gaierror`` for a name the system
            resolver does not know).
        """
        deadline = deadlines.after(timeout)
        transport = self.transport
        if transport.kind == "direct":
            return self._direct(port, deadline, source_address, socket_options)
        return self._tunneled(transport, port, deadline, source_address, socket_options)

    def _direct(
        self,
        port: int,
        deadline: float | None,
        source_address: tuple[str, int] | None,
        socket_options: SocketOptions,
    ) -> socket.socket:
        service = self.service
        candidates = []
        if service.hostname is not None and service.resolver_ips:
            for ip in resolver_for(service.resolver_ips).resolve(service.hostname, deadlines.left(deadline)):
                candidates.extend(socket.getaddrinfo(ip, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST))
        else:
            for address in service.addresses:
                candidates.extend(socket.getaddrinfo(address, port, 0, socket.SOCK_STREAM))
        error: OSError | None = None
        for index, (family, kind, proto, _, sockaddr) in enumerate(candidates):
            try:
                return open_socket(
                    family, kind, proto, sockaddr, deadlines.share(deadline, len(candidates) - index),
                    source_address, socket_options, watch,
                )
            except OSError as exc:
                log.debug("connect to %s failed: %s", sockaddr[0], exc)
                error = exc
            if deadlines.expired(deadline):
                break
        if error is None:
            raise OSError(f"no address to connect to for {service.origin_host}")
        raise error

    def _tunneled(
        self,
        transport: Transport,
        port: int,
        deadline: float | None,
        source_address: tuple[str, int] | None,
        socket_options: SocketOptions,
    ) -> socket.socket:
        targets = self._tunnel_targets(transport, port, deadline)
        dial = socks_connect if transport.kind == "socks" else http_connect
        error: ProxyError | None = None
        for index, host in enumerate(targets):
            try:
                return dial(
                    transport, host, port, timeout=deadlines.share(deadline, len(targets) - index),
                    source_address=source_address, socket_options=socket_options, watch=watch,
                )
            except ProxyError as exc:
                error = exc
            if deadlines.expired(deadline):
                break
        assert error is not None
        raise error

    def _tunnel_targets(self, transport: Transport, port: int, deadline: float | None) -> list[str]:
        """What the tunnel is asked to connect to: the origin's name, or its
        addresses (IPv6 first)."""
        service = self.service
        if service.hostname is None or transport.resolves_remotely:
            return list(service.addresses)
        # socks5://: resolve here, exactly as in direct mode.
        if service.resolver_ips:
            return list(resolver_for(service.resolver_ips).resolve(service.hostname, deadlines.left(deadline)))
        try:
            infos = socket.getaddrinfo(service.hostname, port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            failure = proxy_error(
                "dns_error",
                detail=f"{service.hostname} does not resolve on this machine ({exc}); "
                f"tunnel {transport.url} resolves names here: use socks5h:// to have "
                "the tunnel end resolve it",
            )
        else:
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        raise failure


class _DialFailed(ProxyConnectionError):
    """A dial failure carried through urllib3 to :func:`~vpc_requests._errors.translate`,
    which finds its ``.code``. Its text is only the detail: the translated
    error puts ``ProxyError: <code> (binding, origin)`` in front."""

    def __str__(self) -> str:
        return self.detail


class _DialTimedOut(_DialFailed, ProxyConnectTimeout):
    """A dial failure that is a timeout (``dns_timeout``, ``connection_timeout``)."""


def _as_urllib3(obj: object, text: str) -> str:
    """``text`` (``str()`` of one of our pool or connection classes) as
    urllib3 prints its own class: urllib3 puts pools and connections in its
    errors' text, and requests users match ``HTTPConnectionPool(host=...``
    there. urllib3 2.0 prints a connection as ``<urllib3.connection.
    HTTPConnection object at 0x...>``, later versions as
    ``HTTPConnection(host=..., port=...)``."""
    ours = type(obj)
    base = next(cls for cls in ours.__mro__ if cls.__module__.startswith("urllib3."))
    text = text.replace(f"{ours.__module__}.{ours.__qualname__}", f"{base.__module__}.{base.__qualname__}")
    return text.replace(f"{ours.__name__}(", f"{base.__name__}(")


class _DialerMixin(DialHook):
    """Opens the socket through the pool's :class:`Dialer` and ties the
    connection to the running fetch's abort scope."""

    def __str__(self) -> str:
        return _as_urllib3(self, super().__str__())

    def __repr__(self) -> str:
        # urllib3 2.0 puts repr(connection) in ConnectTimeoutError's text
        return _as_urllib3(self, super().__repr__())

    vpc_dialer: Dialer
    vpc_scope: Any = None
    vpc_response_sock: Any = None

    def __init__(self, *args: Any, vpc_dialer: Dialer, **kwargs: Any) -> None:
        self.vpc_dialer = vpc_dialer
        super().__init__(*args, **kwargs)

    def vpc_new_conn(self) -> socket.socket:
        # Same contract and exceptions as urllib3's HTTPConnection._new_conn.
        try:
            return self.vpc_dialer.connect(self.port, self.timeout, self.source_address, self.socket_options)
        except ProxyError as exc:
            log.debug("dial failed: %s", exc, exc_info=True)
            failed = exc
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except socket.timeout as exc:
            raise ConnectTimeoutError(
                self,
                f"Connection to {self.host} timed out. (connect timeout={self.timeout})",
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {exc}"
            ) from exc
        # Raised outside the except clause so that the chain ends at the
        # ProxyError's own message (translate() reports the innermost one).
        carried = (_DialTimedOut if isinstance(failed, ProxyConnectTimeout) else _DialFailed)(
            failed.code, detail=failed.detail
        )
        error: Exception
        if isinstance(carried, ProxyConnectTimeout):
            error = ConnectTimeoutError(self, f"Connection to {self.host} timed out: {failed.detail}")
        else:
            error = NewConnectionError(self, f"Failed to establish a new connection: {failed.detail}")
        raise error from carried

    def request(self, *args: Any, **kwargs: Any) -> None:
        active = current_scope()
        if active is not None:
            active.watch_connection(self)
        else:
            self.vpc_scope = None
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        # http.client drops self.sock when the response will close the
        # connection, yet the body is still read from that socket: keep it,
        # so that an abort while streaming such a body can shut it down.
        self.vpc_response_sock = self.sock
        return super().getresponse()


class VPCHTTPConnection(_DialerMixin, HTTPConnection):
    """A plain http connection to a binding's service."""

class VPCHTTPSConnection(TLSTunnelHook, _DialerMixin, HTTPSConnection):
    """A TLS connection to a binding's service (SNI from the URL).

    Through an ``https://`` tunnel the dialed socket already speaks TLS to
    the proxy; the origin's TLS then runs inside it, with urllib3's own
    TLS-in-TLS (as for its CONNECT tunnels): see
    :class:`~vpc_requests._compat.TLSTunnelHook`.
    """


class Exchange(NamedTuple):
    """What :meth:`VPCServiceAdapter.send <vpc_requests.VPCServiceAdapter.send>`
    decided for the request it is sending, for the pool and the adapter's
    hooks further down the same call.

    :ivar adapter: the adapter sending it.
    :ivar route: its :class:`~vpc_requests._transport.routing.Route`.
    :ivar drop_proxy_authorization: leave out the ``Proxy-Authorization``
        header requests made from a proxy URL the binding never uses (S9).
    """

    adapter: Any
    route: Any
    drop_proxy_authorization: bool


#: The exchange being sent in this thread (set by the adapter around
#: HTTPAdapter.send, so that the caller's request object itself, unchanged,
#: is what requests, and any mock patching it, sees).
EXCHANGE: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "vpc_requests_exchange", default=None
)


class _ExchangeMixin:
    """Sends the headers of the request with ``Host`` from the URL first (as
    http.client puts it), unless the caller set ``Host``; never changes the
    mapping it is given. Printed as urllib3 prints its pool."""

    def __str__(self) -> str:
        return _as_urllib3(self, super().__str__())

    def urlopen(self, method: str, url: str, body: Any = None, headers: Any = None, *args: Any, **kwargs: Any) -> Any:
        exchange = EXCHANGE.get()
        if exchange is not None and headers is not None:
            headers = _outgoing_headers(headers, exchange)
        return super().urlopen(method, url, body, headers, *args, **kwargs)  # type: ignore[misc]


def _outgoing_headers(headers: Mapping[str, Any], exchange: Exchange) -> Mapping[str, Any]:
    has_host = has_header(headers, "Host") if isinstance(headers, CaseInsensitiveDict) else any(
        name.lower() == "host" for name in headers
    )
    if has_host and not exchange.drop_proxy_authorization:
        return headers
    outgoing: dict[str, Any] = {} if has_host else {"Host": exchange.route.host_header}
    if not exchange.drop_proxy_authorization:
        outgoing.update(header_items(headers))
        return outgoing
    for name, value in header_items(headers):
        if name.lower() != "proxy-authorization":
            outgoing[name] = value
    return outgoing


class VPCHTTPConnectionPool(_ExchangeMixin, HTTPConnectionPool):
    ConnectionCls = VPCHTTPConnection

class VPCHTTPSConnectionPool(_ExchangeMixin, HTTPSConnectionPool):
    ConnectionCls = VPCHTTPSConnection

def _pool_key_class() -> type[PoolKey]:
    """A namedtuple of urllib3's ``PoolKey`` fields (which vary across urllib3
    versions) plus ``key_vpc_dialer``: what urllib3 asks of a key class, a
    namedtuple with at least ``PoolKey``'s fields."""
    fields = (*PoolKey._fields, "key_vpc_dialer")
    return cast("type[PoolKey]", collections.namedtuple("VPCPoolKey", fields))


#: urllib3's pool key plus the dialer, so pools of different bindings or
#: transports never mix.
VPCPoolKey = _pool_key_class()

key_fn = functools.partial(pool_key_normalizer(), VPCPoolKey)
