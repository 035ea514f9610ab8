"""Raw TCP connections to a ``tcp`` VPC Service: what ``env.DB.connect()``
does in a Worker (:meth:`vpc_requests.Binding.connect`).

The socket is opened by the binding's :class:`~vpc_requests._transport.connection.Dialer`,
exactly as an HTTP request of the binding would be (direct, ``resolver_ips``,
SOCKS5/5h or CONNECT tunnels, dual stack, one deadline for every step), to the
service's host and ``tcp_port``. The address the caller gives never decides
the route: like a URL's host for ``fetch()``, it only names the TLS server
(SNI) when ``tls=True``.

Failures raise the :class:`~vpc_requests.ProxyError` subclasses HTTP raises,
with the same Cloudflare codes (``connection_refused``,
``connection_timeout``, ``dns_error``, ``tls_certificate_error``, ...) and the
binding's name in the message.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, Union

from .._errors import AbortError, ConfigError, ProxyError, RoutingError, VPCError, proxy_error
from .._model.hosts import host_port
from .._model.service import VPCService
from .._util import deadlines
from . import abort
from .abort import AbortSignal
from .connection import Dialer
from .tls import CertificateFiles, VerifyType, service_context
from .tunnels import describe_transport

__all__ = ["Address", "address_host", "check_tcp", "open_connection"]

log = logging.getLogger("vpc_requests.tcp")  # the name it had before the layers; users filter on it

#: What ``connect()`` takes as its address: ``"host:port"``, ``"host"``,
#: ``"[v6]:port"``, a ``(host, port)`` pair or Workers' ``{"hostname": ...,
#: "port": ...}``.
Address = Union[str, tuple[str, int], Mapping[str, Any], None]


def address_host(address: Address) -> str | None:
    """The host named by ``address`` (used only for SNI, never to route).

    :raises TypeError: for a value of another type.
    :raises ValueError: for an empty host.
    """
    if address is None:
        return None
    if isinstance(address, str):
        text = address.strip()
        if text.startswith("["):
            host = text[1:].partition("]")[0]
        elif text.count(":") == 1:
            host = text.partition(":")[0]
        else:
            host = text  # a name, or a bare IPv6 address
    elif isinstance(address, tuple) and len(address) >= 1 and isinstance(address[0], str):
        host = address[0]
    elif isinstance(address, Mapping) and isinstance(address.get("hostname"), str):
        host = address["hostname"]
    else:
        raise TypeError(
            "connect() takes an address as 'host:port', (host, port) or "
            f"{{'hostname': ..., 'port': ...}}; got {type(address).__name__} {address!r}"
        )
    host = host.strip().strip("[]").rstrip(".")
    if not host:
        raise ValueError(f"connect(): the address {address!r} has no host")
    return host


def check_tcp(service: VPCService, binding: str | None) -> int:
    """The port ``connect()`` dials for ``service``.

    :raises RoutingError: for a service that is not of type ``tcp``, or one
        without a ``tcp_port``; the message names the type and the binding.
    """
    name = service.name or service.origin_host
    if service.type != "tcp":
        raise RoutingError(
            f"binding {binding or '(unnamed)'!r}: its service {name!r} is of type "
            f"{service.type!r}; connect() needs a service of type 'tcp' (use fetch() for 'http')"
        )
    if service.tcp_port is None:
        raise RoutingError(
            f"binding {binding or '(unnamed)'!r}: its tcp service {name!r} has no tcp_port; set one"
        )
    return service.tcp_port


def open_connection(
    service: VPCService,
    *,
    binding: str | None = None,
    tunnel: str | None = None,
    address: Address = None,
    timeout: float | None = None,
    signal: AbortSignal | None = None,
    tls: bool = False,
    server_hostname: str | None = None,
    certificates: Mapping[str, CertificateFiles] | None = None,
    port: int | None = None,
) -> socket.socket:
    """A connected socket to ``service``'s host and ``tcp_port``.

    :param service: a service of type ``tcp`` (or any service when ``port``
        is given: a network binding dials its own targets this way).
    :param binding: the binding's name, for messages and logs.
    :param tunnel: the binding's transport URL (``None``: direct).
    :param address: accepted for parity with Workers; never routes. Its host
        is the TLS name when ``server_hostname`` is not given.
    :param timeout: seconds for everything up to a usable socket: name
        lookup, tunnel handshake, every address tried, the TLS handshake. The
        socket keeps it as its timeout, as with
        :func:`socket.create_connection`.
    :param signal: aborts the connection attempt (connect and handshake).
    :param tls: wrap the socket in TLS, checked as the service's
        ``tls_settings`` say (``cert_verification_mode``).
    :param server_hostname: SNI and the name checked; default: the address's
        host, else the service's host.
    :param certificates: the ``[certificates]`` table: the local files of
        the ids the service's ``tls_settings`` name (its CA becomes the trust
        store, its client certificate is presented). Without a service CA,
        ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` or the default bundle is
        used, as by ``fetch()``.
    :param port: dial this port instead of the service's ``tcp_port``.
    :returns: the connected socket (an :class:`ssl.SSLSocket` with ``tls``).
    :raises RoutingError: for a service that is not ``tcp``.
    :raises ConfigError: with ``tls``, for a certificate id that has no
        local files; nothing is dialled.
    :raises ProxyError: when the service cannot be reached (``.code`` says
        why); also ``requests.ConnectionError`` / ``ConnectTimeout`` /
        ``SSLError``.
    :raises AbortError: when ``signal`` fired.
    """
    if port is None:
        port = check_tcp(service, binding)
    name = server_hostname or address_host(address) or service.origin_host
    dialer = Dialer(service, tunnel)
    context = _tls_context(service, certificates or {}, binding) if tls else None
    origin = _origin(service, port)
    started = time.perf_counter()
    deadline = deadlines.after(timeout)
    active = abort.scope(signal) if signal is not None else None
    try:
        if active is not None:
            active.__enter__()
        try:
            sock = _dial(dialer, port, timeout, binding, origin)
            if context is not None:
                sock = _handshake(sock, context, name, deadline, timeout, binding, origin)
        finally:
            if active is not None:
                active.__exit__(None, None, None)
    except (ProxyError, OSError) as exc:
        if signal is not None and signal.aborted:
            raise AbortError(signal.reason) from exc
        if isinstance(exc, ProxyError) and log.isEnabledFor(logging.DEBUG):
            log.debug("binding=%s connect -> %s failed code=%s elapsed=%.1fms",
                      binding, origin, exc.code, (time.perf_counter() - started) * 1000)
        raise
    finally:
        if active is not None:
            active.release()
    sock.settimeout(timeout)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("binding=%s connect -> %s via %s tls=%s elapsed=%.1fms", binding, origin,
                  describe_transport(tunnel), tls, (time.perf_counter() - started) * 1000)
    return sock


def _origin(service: VPCService, port: int) -> str:
    return host_port(service.origin_host, port)


def _dial(dialer: Dialer, port: int, timeout: float | None, binding: str | None, origin: str) -> socket.socket:
    """Dial through the binding's transport; failures as ProxyErrors naming the binding."""
    try:
        return dialer.connect(port, timeout)
    except ProxyError as exc:
        failure = proxy_error(exc.code, binding=binding, origin=origin, detail=exc.detail)
        raise failure from exc
    except OSError as exc:
        code = _dial_code(exc)
        detail = f"could not connect to {origin}: {exc}"
        if code == "connection_timeout":
            detail = f"no connection to {origin} within {timeout} s"
        raise proxy_error(code, binding=binding, origin=origin, detail=detail) from exc


def _dial_code(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "dns_error"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "connection_timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "connection_terminated"
    return "destination_unavailable"


def _tls_context(
    service: VPCService, certificates: Mapping[str, CertificateFiles], binding: str | None
) -> ssl.SSLContext:
    """The SSL context of the service's ``tls_settings``, under the rules of
    its https pools (:func:`vpc_requests._transport.tls.service_context`), with
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` as ``fetch()`` honours them.

    :raises ConfigError: for a certificate id without local files, or a
        file that does not exist.
    """
    verify: VerifyType = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    try:
        return service_context(service, certificates, binding=binding, verify=verify)
    except OSError as exc:
        raise ConfigError(str(exc)) from exc


def _handshake(
    sock: socket.socket,
    context: ssl.SSLContext,
    name: str,
    deadline: float | None,
    timeout: float | None,
    binding: str | None,
    origin: str,
) -> ssl.SSLSocket:
    """TLS on ``sock``; closes ``sock`` on failure."""
    if isinstance(sock, ssl.SSLSocket):
        sock.close()
        raise VPCError(
            f"binding {binding or '(unnamed)'!r}: tls=True through an https:// tunnel (TLS inside "
            "TLS) is not supported by connect(); use an http:// or socks5h:// tunnel"
        )
    try:
        wrapped = context.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        wrapped.settimeout(deadlines.left(deadline))
        wrapped.do_handshake()
    except OSError as exc:
        wrapped.close()
        code, what = _tls_code(exc)
        detail = f"TLS with {origin} as {name!r} failed: {what}"
        if code == "connection_timeout":
            detail = f"TLS handshake with {origin} did not complete within {timeout} s"
        raise proxy_error(code, binding=binding, origin=origin, detail=detail) from exc
    return wrapped


def _tls_code(exc: OSError) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_certificate_error", str(exc.verify_message or exc)
    if isinstance(exc, ssl.SSLError):
        return "tls_protocol_error", str(exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "connection_timeout", str(exc)
    return "connection_terminated", str(exc) or type(exc).__name__
