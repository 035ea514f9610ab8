"""Probing a binding's service the way its requests would reach it: what
``vpc-requests check`` runs.

For each scheme the service allows, a probe opens the TCP connection with
the binding's own :class:`~vpc_requests.connection.Dialer` (so a binding
with a tunnel is probed *through* that tunnel, with the same name
resolution, dual-stack order and timeouts as its requests) and, for
``https``, completes a TLS handshake with the SNI the binding would send and
the certificate checks of the service's ``cert_verification_mode``. No HTTP
request is sent. A binding's tunnel is also asked whether it answers at all
(:func:`~vpc_requests.tunnels.probe_tunnel`), so a failure says whether the
tunnel or what lies behind it is at fault.

::

    for probe in probe_binding(env.PRIVATE_API, timeout=5):
        print(probe.scheme, probe.result, probe.detail)
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from urllib3.util.ssltransport import SSLTransport

from .connection import Dialer
from .errors import ProxyError, classify
from .service import VPCService
from .tls import pool_kwargs
from .tunnels import describe_transport, parse_tunnel, probe_tunnel

if TYPE_CHECKING:
    from .binding import Binding

__all__ = ["Probe", "TunnelProbe", "probe_binding", "probe_tunnel_of"]


@dataclass(frozen=True)
class TunnelProbe:
    """Whether a binding's tunnel itself answers (nothing is sent through it).

    :ivar ok: ``True`` when it answered, ``False`` when not, ``None`` for a
        direct binding (no tunnel to ask).
    :ivar ms: how long the probe took, in milliseconds (``None`` when direct).
    :ivar detail: what :func:`~vpc_requests.tunnels.probe_tunnel` said; never
        a password.
    """

    ok: bool | None
    ms: float | None
    detail: str


@dataclass(frozen=True)
class Probe:
    """One probe of one binding's service for one scheme.

    :ivar binding: the binding's name.
    :ivar scheme: ``http`` or ``https``.
    :ivar origin: the service's ``host:port`` for the scheme (what the
        tunnel, if any, is asked for).
    :ivar transport: how the binding reaches the service
        (:func:`~vpc_requests.tunnels.describe_transport`: ``direct``,
        ``SOCKS5 proxy 127.0.0.1:1080 (names resolved by the proxy)``, ...).
    :ivar sni: the TLS name sent (``https`` to a hostname service), else
        ``None``; an IP service sends none (RFC 6066).
    :ivar ok: whether the connection (and handshake) succeeded and the
        tunnel, if any, answered.
    :ivar code: Cloudflare's error code for a failure (``connection_refused``,
        ``tls_certificate_error``, ...), ``None`` when ``ok``.
    :ivar detail: what failed, in words (empty when ``ok``); a tunnel failure
        names the tunnel.
    :ivar connect_ms: milliseconds to open the connection (name lookup and
        tunnel set-up included), ``None`` when it failed.
    :ivar tls_ms: milliseconds for the TLS handshake, ``None`` for ``http``
        or when it failed.
    :ivar address: the address connected to (direct connections only:
        through a tunnel it is the tunnel end that connects).
    :ivar tunnel: whether the binding's tunnel answers.
    """

    binding: str
    scheme: str
    origin: str
    transport: str
    sni: str | None
    ok: bool
    code: str | None
    detail: str
    connect_ms: float | None
    tls_ms: float | None
    address: str | None
    tunnel: TunnelProbe

    @property
    def result(self) -> str:
        """``OK`` or ``FAIL``."""
        return "OK" if self.ok else "FAIL"

    def to_json(self) -> dict[str, Any]:
        """The probe as plain JSON values (``result`` included)."""
        return {**dataclasses.asdict(self), "result": self.result}


def probe_tunnel_of(binding: Binding, *, timeout: float) -> TunnelProbe:
    """Ask a binding's tunnel whether it answers.

    :param binding: the binding.
    :param timeout: seconds for the whole probe.
    :returns: the result; ``ok`` is ``None`` for a direct binding.
    """
    if parse_tunnel(binding.tunnel).kind == "direct":
        return TunnelProbe(None, None, "direct connection: no tunnel")
    started = time.perf_counter()
    ok, detail = probe_tunnel(binding.tunnel, timeout)
    return TunnelProbe(ok, _since(started), detail)


def probe_binding(binding: Binding, *, timeout: float, verify: bool | str = True) -> list[Probe]:
    """Probe a binding's service for each scheme it allows, as its requests
    would reach it: TCP connect through the binding's transport, then for
    ``https`` a TLS handshake.

    The handshake sends the service's hostname as SNI (an IP service sends
    none) and checks the certificate as the service's
    ``cert_verification_mode`` says: chain and name (``verify_full``), chain
    only (``verify_ca``), nothing (``disabled``). The name checked is the
    hostname, or for an IP service the address connected to (through a
    tunnel: the first of the service's addresses, IPv6 first).

    :param binding: the binding to probe.
    :param timeout: seconds for each connection (name lookup and tunnel
        included) and for each handshake; also for the tunnel probe.
    :param verify: as ``requests``' ``verify=``: ``False`` checks no
        certificate, a path replaces the CA bundle.
    :returns: one :class:`Probe` per scheme, ``http`` first.
    :raises OSError: for a CA bundle path that does not exist (before
        anything is probed).
    """
    service = binding.service
    transport = describe_transport(binding.tunnel)
    sni = service.hostname.rstrip(".") if service.hostname else None
    context = None
    if "https" in service.schemes:  # a bad CA path is bad input, not a failed probe
        context = _context(service, sni or service.origin_host, verify)
    tunnel = probe_tunnel_of(binding, timeout=timeout)
    dialer = Dialer(service, binding.tunnel)
    probes = []
    for scheme in service.schemes:
        probe = _probe(dialer, binding.name, scheme, transport, timeout,
                       context if scheme == "https" else None, sni, tunnel)
        probes.append(probe)
    return probes


def _context(service: VPCService, server_hostname: str, verify: bool | str) -> ssl.SSLContext:
    """The SSL context the adapter would use (:func:`vpc_requests.tls.pool_kwargs`)."""
    context: ssl.SSLContext = pool_kwargs(server_hostname, service.cert_verification_mode, verify, None)[
        "ssl_context"
    ]
    return context


def _probe(
    dialer: Dialer,
    name: str,
    scheme: str,
    transport: str,
    timeout: float,
    context: ssl.SSLContext | None,
    sni: str | None,
    tunnel: TunnelProbe,
) -> Probe:
    service = dialer.service
    port = service.port_for(scheme)
    assert port is not None

    def done(*, code: str | None = None, detail: str = "", connect_ms: float | None = None,
             tls_ms: float | None = None, address: str | None = None) -> Probe:
        if code is None and tunnel.ok is False:  # reached, yet the tunnel does not answer
            detail = f"the tunnel did not answer its probe: {tunnel.detail}"
        ok = code is None and tunnel.ok is not False
        return Probe(name, scheme, service.origin(scheme), transport, sni if context else None, ok,
                     code, detail, connect_ms, tls_ms, address, tunnel)

    started = time.perf_counter()
    try:
        sock = dialer.connect(port, timeout)
    except ProxyError as exc:  # a tunnel or resolver_ips failure: the detail names it
        return done(code=exc.code, detail=exc.detail or str(exc))
    except OSError as exc:
        code = "connection_timeout" if isinstance(exc, (TimeoutError, socket.timeout)) else classify(exc)
        return done(code=code, detail=_text(exc))
    connect_ms = _since(started)
    address = _peer(sock) if dialer.transport.kind == "direct" else None
    with sock:
        if context is None:
            return done(connect_ms=connect_ms, address=address)
        server_hostname = sni or _ip_of(address) or service.addresses[0]
        started = time.perf_counter()
        try:
            _handshake(sock, context, server_hostname, timeout)
        except (OSError, ValueError) as exc:
            return done(code=classify(exc), detail=_tls_text(exc), connect_ms=connect_ms, address=address)
        return done(connect_ms=connect_ms, tls_ms=_since(started), address=address)


def _handshake(sock: socket.socket, context: ssl.SSLContext, server_hostname: str, timeout: float) -> None:
    """A TLS handshake with the origin over ``sock`` (inside the proxy's TLS
    for an ``https://`` tunnel, as urllib3 does it), then close it."""
    sock.settimeout(timeout)
    if isinstance(sock, ssl.SSLSocket):  # TLS to the proxy: TLS in TLS
        inner = SSLTransport(sock, context, server_hostname)
        inner.close()
        return
    with context.wrap_socket(sock, server_hostname=server_hostname):
        pass


def _peer(sock: socket.socket) -> str | None:
    try:
        host, port = sock.getpeername()[:2]
    except (OSError, ValueError):
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _ip_of(address: str | None) -> str | None:
    """The host of ``host:port`` / ``[v6]:port``."""
    return None if address is None else address.rpartition(":")[0].strip("[]")


def _tls_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return _text(exc)
