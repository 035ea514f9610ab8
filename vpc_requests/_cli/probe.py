"""Probing a binding's service the way its requests would reach it: what
``vpc-requests check`` runs.

For each scheme the service allows, a probe opens the TCP connection with
the binding's own :class:`~vpc_requests._transport.connection.Dialer` (so a binding
with a tunnel is probed *through* that tunnel, with the same name
resolution, dual-stack order and timeouts as its requests) and, for
``https``, completes a TLS handshake with the SNI the binding would send and
the certificate checks of the service's ``cert_verification_mode``. No HTTP
request is sent. A binding's tunnel is also asked whether it answers at all
(:func:`~vpc_requests._transport.tunnels.probe_tunnel`), so a failure says whether the
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

from urllib3.util.ssl_ import ssl_wrap_socket

from .._errors import ConfigError, ProxyError, advice, classify
from .._model.hosts import host_port, ip_literal, is_ip
from .._model.modes import CertVerificationMode
from .._model.service import VPCService
from .._transport.connection import Dialer
from .._transport.tls import pool_kwargs
from .._transport.tunnels import describe_transport, parse_tunnel, probe_tunnel

if TYPE_CHECKING:
    from .._bindings.binding import Binding
    from .._bindings.network import NetworkBinding

__all__ = ["Probe", "TunnelProbe", "probe_binding", "probe_tunnel_of"]


@dataclass(frozen=True)
class TunnelProbe:
    """Whether a binding's tunnel itself answers (nothing is sent through it).

    :ivar ok: ``True`` when it answered, ``False`` when not, ``None`` for a
        direct binding (no tunnel to ask).
    :ivar ms: how long the probe took, in milliseconds (``None`` when direct).
    :ivar detail: what :func:`~vpc_requests._transport.tunnels.probe_tunnel` said; never
        a password.
    """

    ok: bool | None
    ms: float | None
    detail: str


@dataclass(frozen=True)
class Probe:
    """One probe of one binding's service for one scheme.

    :ivar binding: the binding's name.
    :ivar scheme: ``http`` or ``https``; ``tcp`` for a tcp service (a TCP
        connect to its ``tcp_port``); ``network`` for a network binding
        (only its tunnel is probed).
    :ivar origin: the service's ``host:port`` for the scheme (what the
        tunnel, if any, is asked for).
    :ivar transport: how the binding reaches the service
        (:func:`~vpc_requests._transport.tunnels.describe_transport`: ``direct``,
        ``SOCKS5 proxy 127.0.0.1:1080 (names resolved by the proxy)``, ...).
    :ivar sni: the TLS name sent (``https``: the ``server_name`` given, else
        a hostname service's hostname), else ``None``; no SNI is sent for an
        IP service without ``server_name``, nor for an IP (RFC 6066).
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
    :ivar certificate: what the handshake checked of the origin's
        certificate: ``"full"`` (chain and name), ``"chain"`` (chain only,
        as the service's ``verify_ca`` asks), ``"chain_no_name"`` (chain
        only, although the name should be checked too: an IP service and no
        ``server_name``, so there is no name to check), ``"none"``
        (``disabled`` or ``verify=False``); ``None`` for ``http``.
    :ivar checked_name: the name (or IP) the certificate was checked
        against, ``None`` when no name was checked.
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
    certificate: str | None = None
    checked_name: str | None = None

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


def probe_binding(
    binding: Binding, *, timeout: float, verify: bool | str = True, server_name: str | None = None
) -> list[Probe]:
    """Probe a binding's service for each scheme it allows, as its requests
    would reach it: TCP connect through the binding's transport, then for
    ``https`` a TLS handshake.

    The handshake sends ``server_name`` as SNI, else the service's hostname
    (an IP service sends none), and checks the certificate as the service's
    ``cert_verification_mode`` says: chain and name (``verify_full``), chain
    only (``verify_ca``), nothing (``disabled``). The name checked is the
    SNI name. Requests to an IP service send the URL's host, which a probe
    does not know: without ``server_name`` an IP service's certificate is
    checked for its chain only (:attr:`Probe.certificate` is then
    ``"chain_no_name"``); give the name the requests use, as in
    ``server_name="internal-api.company.local"``, to check it too. An IP
    given as ``server_name`` is checked against the certificate's IP
    addresses, with no SNI.

    :param binding: the binding to probe.
    :param timeout: seconds for each connection (name lookup and tunnel
        included) and for each handshake; also for the tunnel probe.
    :param verify: as ``requests``' ``verify=``: ``False`` checks no
        certificate, a path replaces the CA bundle.
    :param server_name: the name to send as SNI and check the certificate
        against, as a request whose URL has that host would.
    :returns: one :class:`Probe` per scheme, ``http`` first.
    :raises ConfigError: for a ``server_name`` that is neither a DNS name
        nor an IP (before anything is probed).
    :raises OSError: for a CA bundle path that does not exist (before
        anything is probed).
    """
    from .._bindings.network import NetworkBinding

    if isinstance(binding, NetworkBinding):
        return [_probe_network(binding, timeout)]
    service = binding.service
    transport = describe_transport(binding.tunnel)
    if server_name is not None:
        name: str | None = _server_name(server_name)
    else:
        name = service.hostname.rstrip(".") if service.hostname else None
    tls = None
    if "https" in service.schemes:  # a bad CA path is bad input, not a failed probe
        tls = _tls_plan(service, name, verify)
    tunnel = probe_tunnel_of(binding, timeout=timeout)
    dialer = Dialer(service, binding.tunnel)
    probes = []
    schemes = ("tcp",) if service.type == "tcp" and service.tcp_port else service.schemes
    for scheme in schemes:
        probe = _probe(dialer, binding.name, scheme, transport, timeout,
                       tls if scheme == "https" else None, tunnel)
        probes.append(probe)
    return probes


def _probe_network(binding: NetworkBinding, timeout: float) -> Probe:
    """A network binding has no origin to dial (the URL decides): only its
    tunnel is asked whether it answers; a direct network passes."""
    tunnel = probe_tunnel_of(binding, timeout=timeout)
    ok = tunnel.ok is not False
    detail = "" if ok else f"the tunnel did not answer its probe: {tunnel.detail}"
    return Probe(binding.name, "network", f"({binding.network}: the URL decides)", describe_transport(binding.tunnel),
                 None, ok, None if ok else "destination_unavailable", detail, None, None, None, tunnel)


@dataclass(frozen=True)
class _TLSPlan:
    """How a probe's handshake runs: the context, the name passed to
    ``wrap_socket`` (SNI unless an IP), and what gets checked."""

    context: ssl.SSLContext
    server_hostname: str | None
    sni: str | None
    certificate: str
    checked_name: str | None


def _tls_plan(service: VPCService, name: str | None, verify: bool | str) -> _TLSPlan:
    mode = service.cert_verification_mode
    if verify is False or mode == "disabled":
        certificate = "none"
    elif mode == "verify_ca":
        certificate = "chain"
    elif name is None:  # verify_full, but no name to check: the chain, as verify_ca
        certificate, mode = "chain_no_name", "verify_ca"
    else:
        certificate = "full"
    context = _context(mode, name or service.origin_host, verify)
    sni = None if name is None or is_ip(name) else name
    return _TLSPlan(context, name, sni, certificate, name if certificate == "full" else None)


def _server_name(value: str) -> str:
    """A ``server_name`` as a TLS client sends it: a DNS name (validated as
    a service's hostname) or an IP (no SNI then)."""
    address = ip_literal(value)
    if address is not None:
        return str(address)
    try:
        return VPCService(hostname=value).hostname.rstrip(".")  # type: ignore[union-attr]
    except ConfigError as exc:
        raise ConfigError(exc.message, field="server_name") from None


def _context(mode: CertVerificationMode, server_hostname: str, verify: bool | str) -> ssl.SSLContext:
    """The SSL context the adapter would use (:func:`vpc_requests._transport.tls.pool_kwargs`)."""
    context: ssl.SSLContext = pool_kwargs(server_hostname, mode, verify, None)["ssl_context"]
    return context


def _probe(
    dialer: Dialer,
    name: str,
    scheme: str,
    transport: str,
    timeout: float,
    tls: _TLSPlan | None,
    tunnel: TunnelProbe,
) -> Probe:
    service = dialer.service
    port = service.tcp_port if scheme == "tcp" else service.port_for(scheme)
    assert port is not None
    origin = host_port(service.origin_host, port)

    def done(*, code: str | None = None, detail: str = "", connect_ms: float | None = None,
             tls_ms: float | None = None, address: str | None = None) -> Probe:
        if code is None and tunnel.ok is False:  # reached, yet the tunnel does not answer
            detail = f"the tunnel did not answer its probe: {tunnel.detail}"
        ok = code is None and tunnel.ok is not False
        return Probe(name, scheme, origin, transport, tls.sni if tls else None, ok,
                     code, detail, connect_ms, tls_ms, address, tunnel,
                     tls.certificate if tls else None, tls.checked_name if tls else None)

    started = time.perf_counter()
    try:
        sock = dialer.connect(port, timeout)
    except ProxyError as exc:  # a tunnel or resolver_ips failure: the detail names it
        return done(code=exc.code, detail=exc.detail or str(exc))
    except OSError as exc:
        code = "connection_timeout" if isinstance(exc, (TimeoutError, socket.timeout)) else classify(exc)
        return done(code=code, detail=_advised(_text(exc), code, exc, origin))
    connect_ms = _since(started)
    address = _peer(sock) if dialer.transport.kind == "direct" else None
    with sock:
        if tls is None:
            return done(connect_ms=connect_ms, address=address)
        started = time.perf_counter()
        try:
            _handshake(sock, tls.context, tls.server_hostname, timeout)
        except (OSError, ValueError) as exc:
            code = classify(exc)
            return done(code=code, detail=_advised(_tls_text(exc), code, exc, origin),
                        connect_ms=connect_ms, address=address)
        return done(connect_ms=connect_ms, tls_ms=_since(started), address=address)


def _handshake(sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None, timeout: float) -> None:
    """A TLS handshake with the origin over ``sock`` (inside the proxy's TLS
    for an ``https://`` tunnel, as urllib3 does it), then close it."""
    sock.settimeout(timeout)
    if isinstance(sock, ssl.SSLSocket):  # TLS to the proxy: TLS in TLS
        inner = ssl_wrap_socket(sock, ssl_context=context, server_hostname=server_hostname, tls_in_tls=True)
        inner.close()
        return
    with context.wrap_socket(sock, server_hostname=server_hostname):
        pass


def _peer(sock: socket.socket) -> str | None:
    try:
        host, port = sock.getpeername()[:2]
    except (OSError, ValueError):
        return None
    return host_port(host, port)


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _advised(detail: str, code: str, exc: BaseException, origin: str) -> str:
    """``detail`` and what to do about it (:func:`~vpc_requests._errors.advice`)."""
    hint = advice(code, exc, origin)
    return f"{detail}; {hint}" if hint else detail


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _tls_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return _text(exc)
