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
import functools
import socket
import time
from dataclasses import dataclass
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolKey, _default_key_normalizer

from .abort import current_scope
from .service import VPCService

__all__ = [
    "Dialer",
    "VPCHTTPConnection",
    "VPCHTTPConnectionPool",
    "VPCHTTPSConnection",
    "VPCHTTPSConnectionPool",
    "VPCPoolKey",
    "key_fn",
]

SocketOptions = Any


@dataclass(frozen=True)
class Dialer:
    """Opens TCP connections to one service, directly or through a tunnel.

    :param service: the service whose addresses are dialed.
    :param tunnel: a transport URL (``socks5://``, ``socks5h://``,
        ``http://``, ``https://``) or ``None``/``"direct"`` for a direct
        connection.
    """

    service: VPCService
    tunnel: str | None = None

    def connect(
        self,
        port: int,
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        socket_options: SocketOptions = None,
    ) -> socket.socket:
        """Open a connection to the service on ``port``.

        Addresses are tried in order (for a dual-stack service: IPv6, then
        IPv4), all within ``timeout``.

        :raises OSError: the last connect error (``socket.timeout`` for a
            timeout, ``socket.gaierror`` for a name that does not resolve).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        error: OSError | None = None
        for address in self.service.addresses:
            for family, kind, proto, _, sockaddr in socket.getaddrinfo(
                address, port, 0, socket.SOCK_STREAM
            ):
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
                try:
                    return _open(family, kind, proto, sockaddr, remaining, source_address, socket_options)
                except OSError as exc:
                    error = exc
        if error is None:
            raise OSError(f"no address to connect to for {self.service.origin_host}")
        raise error


def _open(
    family: int,
    kind: int,
    proto: int,
    sockaddr: Any,
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: SocketOptions,
) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        active = current_scope()
        if active is not None:
            active.watch_socket(sock)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _DialerMixin:
    """Opens the socket through the pool's :class:`Dialer` and ties the
    connection to the running fetch's abort scope."""

    vpc_dialer: Dialer
    vpc_scope: Any = None

    def __init__(self, *args: Any, vpc_dialer: Dialer, **kwargs: Any) -> None:
        self.vpc_dialer = vpc_dialer
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        # Same contract and exceptions as urllib3's HTTPConnection._new_conn.
        try:
            return self.vpc_dialer.connect(
                self.port,  # type: ignore[attr-defined]
                self.timeout,  # type: ignore[attr-defined]
                self.source_address,  # type: ignore[attr-defined]
                self.socket_options,  # type: ignore[attr-defined]
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[attr-defined,arg-type]
        except socket.timeout as exc:
            raise ConnectTimeoutError(
                self,
                f"Connection to {self.host} timed out. (connect timeout={self.timeout})",  # type: ignore[attr-defined]
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {exc}"  # type: ignore[arg-type]
            ) from exc

    def request(self, *args: Any, **kwargs: Any) -> None:
        active = current_scope()
        if active is not None:
            active.watch_connection(self)
        else:
            self.vpc_scope = None
        super().request(*args, **kwargs)  # type: ignore[misc]


class VPCHTTPConnection(_DialerMixin, HTTPConnection):
    """A plain http connection to a binding's service."""


class VPCHTTPSConnection(_DialerMixin, HTTPSConnection):
    """A TLS connection to a binding's service (SNI from the URL)."""


class VPCHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = VPCHTTPConnection


class VPCHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = VPCHTTPSConnection


#: urllib3's pool key plus the dialer, so pools of different bindings or
#: transports never mix.
VPCPoolKey = collections.namedtuple(  # type: ignore[misc]
    "VPCPoolKey", PoolKey._fields + ("key_vpc_dialer",)
)

key_fn = functools.partial(_default_key_normalizer, VPCPoolKey)
