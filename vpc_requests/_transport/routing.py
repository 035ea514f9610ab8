"""The routing decision of docs/semantics.rst (S1-S5): for a URL and a service, where the
connection goes (origin and port) and what the request says (Host, SNI).

Pure functions of their arguments, cached per (service, scheme, netloc), so the
adapter pays for parsing once per distinct host, not once per request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from .._errors import RoutingError
from .._model.hosts import DEFAULT_PORTS, host_port, ip_text, is_ip
from .._model.service import VPCService

__all__ = ["Route", "route"]


@dataclass(frozen=True)
class Route:
    """Where one request goes.

    :ivar scheme: ``http`` or ``https`` (lower case).
    :ivar url_host: the URL's host, lower case, without brackets.
    :ivar host_header: the ``Host`` header to send (S4).
    :ivar server_hostname: the TLS name: SNI and certificate check (S5);
        ``None`` for plain http.
    :ivar connect_host: the service's host, which is connected to (S1).
    :ivar port: the service's port for ``scheme`` (S2).
    """

    scheme: str
    url_host: str
    host_header: str
    server_hostname: str | None
    connect_host: str
    port: int

    @property
    def origin(self) -> str:
        """``host:port`` actually connected to, for messages and logs."""
        return host_port(self.connect_host, self.port)


def route(service: VPCService, url: str, binding: str | None = None) -> Route:
    """Decide where ``url`` goes through ``service``.

    :param service: the binding's service.
    :param url: an absolute http or https URL.
    :param binding: the binding's name, for error messages.
    :returns: the :class:`Route`.
    :raises RoutingError: for a URL that is not absolute http(s) (S7), whose
        scheme the service has no port for (S3), or any URL when the service
        is a ``tcp`` service (reached with ``connect()``, never ``fetch()``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _refuse(url, binding, "it is not an absolute URL")
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1 and found < end:
            end = found
    return _route(service, scheme.lower(), rest[:end], binding)


@functools.lru_cache(maxsize=1024)
def _route(service: VPCService, scheme: str, netloc: str, binding: str | None) -> Route:
    hostport = netloc.rpartition("@")[2]
    url = f"{scheme}://{hostport}/"  # for messages: never the userinfo
    if service.type != "http":
        raise RoutingError(
            f"binding {binding or '(unnamed)'!r}: its service "
            f"{service.name or service.origin_host!r} is a {service.type} service "
            f"({service.describe()}), not an http service, so {url!r} is refused before "
            "any connection; reach it with binding.connect() or 'vpc-requests forward'"
        )
    if scheme not in DEFAULT_PORTS:
        raise _refuse(url, binding, f"scheme {scheme!r} is not http or https")
    if any(c <= " " or c == "\x7f" for c in netloc):
        # urlsplit would silently drop tabs and newlines; requests refuses them
        raise _refuse(url, binding, "its host has whitespace or control characters")
    try:
        parts = urlsplit(f"{scheme}://{netloc}/")
        url_port = parts.port
    except ValueError as exc:
        raise _refuse(url, binding, str(exc)) from None
    host = parts.hostname
    if not host:
        raise _refuse(url, binding, "it has no host")
    port = service.port_for(scheme)
    if port is None:
        other = "http" if scheme == "https" else "https"
        raise RoutingError(
            f"binding {binding or '(unnamed)'!r}: its service "
            f"{service.name or service.origin_host!r} has no {scheme}_port, so "
            f"{scheme}:// URLs are refused; use {other}:// or set {scheme}_port "
            "on the service"
        )
    literal_host = hostport
    if url_port is not None or hostport.endswith(":"):  # "host:" is the default port
        literal_host = hostport[: hostport.rfind(":")]
    host_header = literal_host
    if url_port is not None and url_port != DEFAULT_PORTS[scheme]:
        host_header = f"{literal_host}:{url_port}"
    server_hostname = None
    if scheme == "https":
        server_hostname = host.rstrip(".") if not is_ip(host) else ip_text(host)
    return Route(
        scheme=scheme,
        url_host=host,
        host_header=host_header,
        server_hostname=server_hostname,
        connect_host=service.origin_host,
        port=port,
    )


def _refuse(url: str, binding: str | None, why: str) -> RoutingError:
    return RoutingError(
        f"binding {binding or '(unnamed)'!r} only fetches absolute http:// or https:// "
        f"URLs; refused {url!r}: {why}"
    )
