"""VPC Network bindings (``vpc_networks`` in the wrangler file): a binding
to a whole tunnel or Cloudflare Mesh network, where the URL's host and port
(or ``connect()``'s address) decide the destination, inside that network.

:class:`NetworkBinding` has the surface of :class:`~vpc_requests.Binding`
(``fetch``, ``session()``, ``fetch_many``, ``connect``, ``forward``,
``errors=``, ``signal``); its :class:`~vpc_requests._bindings.network.NetworkAdapter` dials each URL's host
through the network's transport with the same
:class:`~vpc_requests._transport.connection.Dialer` a service binding uses: directly
when this machine is inside the network, else through the tunnel named for
the network's ``tunnel_id`` / ``network_id`` in the services file's
``[tunnels]`` table. What stays as for service bindings: redirects are
followed through the same network binding, proxy environment variables never
divert it, failures are :class:`~vpc_requests.ProxyError` with Cloudflare's
codes, and logs carry no secrets.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

from .._errors import ConfigError, RoutingError
from .._model.hosts import DEFAULT_PORTS, is_ip
from .._model.modes import DEFAULT_CERT_VERIFICATION_MODE, ErrorMode, error_mode
from .._model.service import VPCService
from .._transport.abort import AbortSignal
from .._transport.adapter import VPCServiceAdapter, pool_key, route_of
from .._transport.connection import Dialer, VPCHTTPConnectionPool, VPCHTTPSConnectionPool
from .._transport.retry import default_retry
from .._transport.routing import Route, route
from .._transport.tcp import Address, address_host, open_connection
from .._transport.tls import CertificateFiles
from .._transport.tls import pool_kwargs as tls_pool_kwargs
from .._transport.tunnels import describe_transport, parse_tunnel, require_socks
from .._util import forks
from .binding import Binding
from .forward import ListenAddress, forwarding

__all__ = ["NetworkAdapter", "NetworkBinding", "destination"]



@functools.lru_cache(maxsize=1024)
def destination(host: str, port: int, scheme: str = "tcp") -> VPCService:
    """The one-off service a network binding dials for ``host:port``.

    :param scheme: ``http`` or ``https`` (the port is that scheme's), or
        ``tcp`` (a ``tcp`` service, for ``connect()``).
    :raises RoutingError: for a host that is no valid DNS name or IP.
    """
    host = host.strip("[]")
    kwargs: dict[str, Any] = (
        {"type": "tcp", "tcp_port": port} if scheme == "tcp" else {f"{scheme}_port": port}
    )
    if is_ip(host):
        kwargs["ipv6" if ":" in host else "ipv4"] = host.split("%", 1)[0]
    else:
        kwargs["hostname"] = host
    try:
        return VPCService(**kwargs)
    except ConfigError as exc:
        raise RoutingError(f"{host!r} is not a host a network binding can reach: {exc.message}") from None


def _url_route(url: str, binding: str | None) -> Route:
    """Where ``url`` goes through a network: its own host and port."""
    # A first pass with any service refuses what every binding refuses
    # (relative URLs, other schemes, bad ports) with the same messages.
    probe = route(_ANY, url, binding)
    port = _url_port(probe)
    return route(destination(probe.url_host, port, probe.scheme), url, binding)


def _url_port(probe: Route) -> int:
    host_header = probe.host_header
    if host_header.rsplit(":", 1)[-1].isdigit() and not host_header.endswith("]"):
        return int(host_header.rsplit(":", 1)[1])
    return DEFAULT_PORTS[probe.scheme]


_ANY = VPCService(hostname="network.invalid")


class NetworkAdapter(VPCServiceAdapter):
    """A transport adapter that sends each request to its own URL's host and
    port, through one network's transport (never through a proxy of the
    environment).

    :param binding: the binding's name, for errors and logs.
    :param tunnel: the network's transport URL; ``None``: direct.
    :param errors: as :class:`~vpc_requests.VPCServiceAdapter`.
    :param kwargs: :class:`~requests.adapters.HTTPAdapter` arguments.
    """

    def __init__(
        self,
        binding: str | None = None,
        tunnel: str | None = None,
        *,
        errors: ErrorMode = "raise",
        **kwargs: Any,
    ) -> None:
        errors = error_mode(errors)
        if parse_tunnel(tunnel).kind == "socks":
            require_socks()
        self.service = _ANY
        self.certificates: dict[str, CertificateFiles] = {}  # a network has no tls_settings: the default store
        self.binding = binding
        self.tunnel = tunnel
        self.errors = errors
        self._dialers: dict[tuple[str, int, str], Dialer] = {}
        self._dialers_lock = threading.Lock()
        if "max_retries" not in kwargs:
            kwargs["max_retries"] = default_retry()
        HTTPAdapter.__init__(self, **kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Create the pool manager; each pool gets its host's dialer.

        This method should not be called from user code, and is only exposed
        for use when subclassing.
        """
        HTTPAdapter.init_poolmanager(self, connections, maxsize, block, vpc_dialer=None, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": VPCHTTPConnectionPool,
            "https": VPCHTTPSConnectionPool,
        }
        self.poolmanager.key_fn_by_scheme = {"http": pool_key, "https": pool_key}
        self._generation = forks.generation()

    def route(self, url: str) -> Route:
        """Where ``url`` goes: its own host and port (default 80 / 443).

        :raises ~vpc_requests.RoutingError: for a URL the binding refuses.
        """
        return _url_route(url, self.binding)

    def dialer(self, host: str, port: int, scheme: str = "tcp") -> Dialer:
        """The (shared) dialer for ``host:port`` through this network."""
        key = (host, port, scheme)
        with self._dialers_lock:
            found = self._dialers.get(key)
            if found is None:
                if len(self._dialers) >= 1024:
                    self._dialers.clear()
                found = self._dialers[key] = Dialer(destination(host, port, scheme), self.tunnel)
        return found

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pool for ``request``: its URL's host and port, with the dialer
        for them (in the pool key); for https, SNI and TLS settings.

        This method should not be called from user code, and is only exposed
        for use when subclassing.
        """
        where = route_of(self, request)
        host_params = {"scheme": where.scheme, "host": where.connect_host, "port": where.port}
        extra: dict[str, Any] = {"vpc_dialer": self.dialer(where.connect_host, where.port, where.scheme)}
        if where.server_hostname is not None:
            extra.update(tls_pool_kwargs(where.server_hostname, DEFAULT_CERT_VERIFICATION_MODE, verify, cert))
        return host_params, extra

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._dialers = {}
        self._dialers_lock = threading.Lock()
        super().__setstate__(state)


class NetworkBinding(Binding):
    """A ``vpc_networks`` binding: the URL (or address) decides where, the
    network's transport decides how.

    :param name: the binding's name (``NET``).
    :param tunnel: the network's transport URL (``None``: direct, this
        machine is inside the network).
    :param tunnel_id: the network's ``tunnel_id``, when bound by tunnel.
    :param network_id: the network's ``network_id`` (``cf1:network``), when
        bound by network.
    :param errors: ``"raise"`` or ``"response"``, as for
        :class:`~vpc_requests.Binding`.
    :param adapter_kwargs: passed to :class:`~vpc_requests._bindings.network.NetworkAdapter`.
    """

    def __init__(
        self,
        name: str,
        *,
        tunnel: str | None = None,
        tunnel_id: str | None = None,
        network_id: str | None = None,
        errors: ErrorMode = "raise",
        **adapter_kwargs: Any,
    ) -> None:
        self.tunnel_id = tunnel_id
        self.network_id = network_id
        self._start(name, tunnel, errors, adapter_kwargs,
                    lambda errors: NetworkAdapter(name, tunnel, errors=errors, **adapter_kwargs))

    @property
    def service(self) -> VPCService:
        """A network binding has no single service.

        :raises AttributeError: always; the URL decides the destination.
        """
        raise AttributeError(f"network binding {self._name!r} has no service: the URL decides the destination")

    @property
    def network(self) -> str:
        """``tunnel_id <id>``, ``network_id <id>`` or ``network``."""
        if self.tunnel_id is not None:
            return f"tunnel_id {self.tunnel_id}"
        if self.network_id is not None:
            return f"network_id {self.network_id}"
        return "network"

    def describe(self) -> str:
        """One line: the network and how it is reached (no secret)."""
        return f"{self.network} via {describe_transport(self._tunnel)}"

    def __repr__(self) -> str:
        return f"<NetworkBinding {self._name} -> {self.describe()}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Binding):
            return NotImplemented
        return isinstance(other, NetworkBinding) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        return (self._name, self._tunnel, self.tunnel_id, self.network_id)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "name": self._name, "tunnel": self._tunnel, "tunnel_id": self.tunnel_id,
            "network_id": self.network_id, "errors": self._errors, "adapter_kwargs": self._adapter_kwargs,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        NetworkBinding.__init__(
            self, state["name"], tunnel=state["tunnel"], tunnel_id=state["tunnel_id"],
            network_id=state["network_id"], errors=state["errors"], **state["adapter_kwargs"],
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
        """A TCP connection to ``address`` inside the network.

        :param address: ``"host:port"``, ``(host, port)`` or
            ``{"hostname": ..., "port": ...}``: here it decides the
            destination, so it must carry a port.
        :param timeout: seconds to connect (and handshake).
        :param signal: stops the attempt.
        :param tls: wrap in TLS, checked against ``server_hostname`` or the
            address's host (chain and name).
        :param server_hostname: SNI and checked name.
        :returns: the connected socket.
        :raises ValueError: for an address without a port.
        :raises ~vpc_requests.ProxyError: when the destination cannot be reached.
        """
        host, port = _host_port(address)
        adapter: NetworkAdapter = self._adapter  # type: ignore[assignment]
        target = adapter.dialer(host, port).service
        return open_connection(
            target, binding=self._name, tunnel=self._tunnel, address=address, timeout=timeout,
            signal=signal, tls=tls, server_hostname=server_hostname, port=port,
        )

    def forward(
        self,
        listen: ListenAddress = ("127.0.0.1", 0),
        *,
        allow_remote: bool = False,
        timeout: float | None = 30.0,
        address: Address = None,
    ) -> AbstractContextManager[ListenAddress]:
        """A local forwarder to ``address`` inside the network (see
        :meth:`Binding.forward <vpc_requests.Binding.forward>`).

        :param address: the destination, with its port (required).
        :raises ValueError: for no address, or one without a port.
        """
        _host_port(address)
        return forwarding(
            lambda signal: self.connect(address, timeout=timeout, signal=signal), listen,
            allow_remote=allow_remote, name=self._name,
        )


def _host_port(address: Address) -> tuple[str, int]:
    """The destination ``address`` names in a network."""
    host = address_host(address)
    port: Any = None
    if isinstance(address, str):
        text = address.strip()
        tail = text.rpartition("]")[2] if text.startswith("[") else text
        if tail.count(":") == 1:
            port = tail.rpartition(":")[2]
    elif isinstance(address, tuple) and len(address) >= 2:
        port = address[1]
    elif isinstance(address, Mapping):
        port = address.get("port")
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = 0
    if host is None or not 1 <= number <= 65535:
        raise ValueError(
            f"a network binding connects where the address says: give 'host:port', got {address!r}"
        )
    return host, number
