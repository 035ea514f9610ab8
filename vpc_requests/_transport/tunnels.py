"""Tunnel transports: how a binding reaches its service's network when this
machine is not inside it (docs/tunnels.rst).

A transport is named by a URL (``tunnel=`` on the adapter or binding, or the
services file's ``[tunnels]`` table)::

    None / "direct"              connect to the service's address directly
    socks5://[user:pw@]host:port SOCKS5; the service's name is resolved here
    socks5h://...                SOCKS5; the name is sent to the proxy, which
                                 resolves it (names only the far end knows work)
    http://[user:pw@]host:port   HTTP CONNECT tunnel, for http and https URLs
    https://...                  the same, over TLS to the proxy

The tunnel only carries bytes: the target it is asked for is always the
service's origin and the scheme's port (never the URL's host), and Host, SNI
and certificate checks stay as in direct mode, end to end. An HTTP proxy is
only ever asked to ``CONNECT``, never to forward a request.

The functions here open one connection through one transport;
:class:`vpc_requests._transport.connection.Dialer` decides what to dial. Failures raise
:class:`~vpc_requests.ProxyError` whose message names the tunnel.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, cast
from urllib.parse import unquote, urlsplit

from .._errors import CODE_CLASSES, ConfigError, ProxyError, proxy_error
from .._util import deadlines
from .routing import is_ip

__all__ = [
    "DEFAULT_TUNNEL_PORTS",
    "TUNNEL_SCHEMES",
    "Transport",
    "describe_transport",
    "http_connect",
    "open_socket",
    "parse_tunnel",
    "probe_tunnel",
    "redact_url",
    "require_socks",
    "socks_connect",
]

log = logging.getLogger("vpc_requests.tunnels")  # the name it had before the layers; users filter on it

#: The transport URL schemes (besides ``direct``).
TUNNEL_SCHEMES: tuple[str, ...] = ("socks5", "socks5h", "http", "https")

#: The proxy port when the transport URL gives none.
DEFAULT_TUNNEL_PORTS = {"socks5": 1080, "socks5h": 1080, "http": 80, "https": 443}

_ALLOWED = "'direct' or a URL socks5://, socks5h://, http:// or https://"
_MAX_HEAD = 65536

Watch = Optional[Callable[[socket.socket], None]]
SocketOptions = Any


@dataclass(frozen=True)
class Transport:
    """A parsed transport URL (see :func:`parse_tunnel`).

    :ivar scheme: ``direct``, ``socks5``, ``socks5h``, ``http`` or ``https``.
    :ivar host: the proxy's host (no brackets); empty for ``direct``.
    :ivar port: the proxy's port; 0 for ``direct``.
    :ivar username: from the URL's userinfo, percent-decoded.
    :ivar password: from the URL's userinfo, percent-decoded; never printed.
    """

    scheme: str
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Transport({self.url!r})"

    @property
    def kind(self) -> str:
        """``direct``, ``socks`` or ``connect``."""
        if self.scheme == "direct":
            return "direct"
        return "socks" if self.scheme.startswith("socks") else "connect"

    @property
    def resolves_remotely(self) -> bool:
        """Whether the far end resolves the service's hostname (``socks5h``,
        ``http``, ``https``), rather than this machine."""
        return self.scheme in ("socks5h", "http", "https")

    @property
    def address(self) -> str:
        """``host:port`` of the proxy, IPv6 in brackets."""
        return _authority(self.host, self.port)

    @property
    def url(self) -> str:
        """The transport URL fit for messages, through :func:`redact_url`:
        ``user:***@`` for a password, ``***@`` for a lone user name (it may
        be a token)."""
        if self.kind == "direct":
            return "direct"
        user = ""
        if self.username is not None:
            user = self.username + (":" if self.password is not None else "") + "@"
        return redact_url(f"{self.scheme}://{user}{self.address}")


#: What may come before the userinfo of a transport URL, written well
#: (``http://``) or not (``http:/``, ``socks5h//``).
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:?/+")


def redact_url(url: str) -> str:
    """``url`` fit to print: its userinfo as ``user:***@`` (``***@`` for a
    user name alone, which may be a token). The one redaction of transport
    URLs, for every message, ``repr`` and log line that shows one; it works
    on malformed URLs too (``http:/u:pw@h``, ``socks5h//u:pw@h``,
    ``u:pw@h:1080``): everything between the scheme and the last ``@`` is
    taken as userinfo, and everything after its first ``:`` is hidden.

    :param url: a transport URL, well formed or not.
    :returns: the URL with no password in it; unchanged when it has no ``@``.
    """
    if "@" not in url:
        return url
    prefix = _SCHEME_PREFIX.match(url)
    start = prefix.end() if prefix else 0
    userinfo, _, hostport = url[start:].rpartition("@")
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else "***"
    return f"{url[:start]}{shown}@{hostport}"


def parse_tunnel(url: str | None) -> Transport:
    """Parse and validate a transport URL.

    :param url: ``None`` or ``"direct"``, or
        ``scheme://[user[:password]@]host[:port]`` with a scheme of
        :data:`TUNNEL_SCHEMES`; the port defaults to 1080 for SOCKS, 80 for
        ``http`` and 443 for ``https``. User and password may be
        percent-encoded.
    :returns: the :class:`Transport`.
    :raises ConfigError: for anything else (``.field`` is ``tunnel``).
    """
    if url is None or url == "direct":
        return Transport("direct")
    if not isinstance(url, str):
        # Its value is not shown: it may hold a password in a form redact_url
        # does not know.
        raise ConfigError(f"must be {_ALLOWED}, got a {type(url).__name__}", field="tunnel")
    return _parse_tunnel(url)


@functools.lru_cache(maxsize=256)
def _parse_tunnel(url: str) -> Transport:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018  (raises ValueError for a bad bracketed host)
    except ValueError as exc:
        # urllib's text never holds the URL; from None keeps it out of tracebacks
        raise ConfigError(
            f"{shown!r} is not a valid URL ({exc}); write e.g. socks5h://127.0.0.1:1080, "
            "an IPv6 address in brackets: http://[::1]:3128",
            field="tunnel",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in TUNNEL_SCHEMES or "://" not in url:
        raise ConfigError(f"unsupported transport {shown!r}; use {_ALLOWED}", field="tunnel")
    if any(ch.isspace() for ch in url) or not parts.hostname:
        raise ConfigError(
            f"{shown!r} has no valid host; write e.g. socks5h://127.0.0.1:1080", field="tunnel"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{shown!r} has an invalid port; ports are 1-65535", field="tunnel")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"{shown!r} has a path, query or fragment; give only scheme://[user:password@]host[:port]",
            field="tunnel",
        )
    host = parts.hostname
    if "%" in host:
        raise ConfigError(f"{shown!r}: IPv6 zone ids are not supported", field="tunnel")
    return Transport(
        scheme=scheme,
        host=host,
        port=port or DEFAULT_TUNNEL_PORTS[scheme],
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def describe_transport(tunnel: str | None) -> str:
    """One line saying how a binding reaches its service, for
    ``vpc-requests check`` and logs. Never shows a password.

    :param tunnel: a transport URL, ``"direct"`` or ``None``.
    :returns: e.g. ``SOCKS5 proxy 127.0.0.1:1080 (names resolved by the
        proxy)``, or ``direct``.
    :raises ConfigError: for an invalid transport URL.
    """
    transport = parse_tunnel(tunnel)
    if transport.kind == "direct":
        return "direct"
    if transport.kind == "socks":
        where = "by the proxy" if transport.resolves_remotely else "here"
        text = f"SOCKS5 proxy {transport.address} (names resolved {where})"
    elif transport.scheme == "http":
        text = f"HTTP CONNECT proxy {transport.address}"
    else:
        text = f"HTTPS CONNECT proxy {transport.address} (TLS to the proxy)"
    if transport.username is not None and transport.password is not None:
        text += f", user {transport.username!r}"  # a user name alone may be a token
    return text


def probe_tunnel(tunnel: str | None, timeout: float = 5.0) -> tuple[bool, str]:
    """Check that the tunnel itself answers, without asking it for any target.

    A SOCKS proxy is greeted (and given the URL's credentials, if any); an
    HTTP CONNECT proxy must accept a TCP connection (and, for ``https://``,
    complete a TLS handshake with a valid certificate). Nothing is sent
    through the tunnel.

    :param tunnel: a transport URL, ``"direct"`` or ``None``.
    :param timeout: seconds for the whole probe.
    :returns: ``(ok, detail)``, e.g. ``(True, "SOCKS5 proxy 127.0.0.1:1080
        answered in 0.4 ms (no authentication)")``.
    :raises ConfigError: for an invalid transport URL.
    """
    transport = parse_tunnel(tunnel)
    if transport.kind == "direct":
        return True, "direct connection: no tunnel to probe"
    started = time.perf_counter()
    try:
        sock = _connect_proxy(transport, timeout, None, None, None)
    except ProxyError as exc:
        return False, exc.detail
    try:
        if transport.kind == "socks":
            how = _socks_greet(transport, sock)
        elif transport.scheme == "https":
            sock = _wrap_proxy_tls(transport, sock, None)
            how = f"TLS certificate valid for {transport.host}"
        else:
            how = "TCP connection accepted"
    except ProxyError as exc:
        return False, exc.detail
    finally:
        sock.close()
    elapsed = (time.perf_counter() - started) * 1000
    name = "SOCKS5 proxy" if transport.kind == "socks" else f"{transport.scheme.upper()} CONNECT proxy"
    return True, f"{name} {transport.address} answered in {elapsed:.1f} ms ({how})"


# -- opening sockets ------------------------------------------------------------


def open_socket(
    family: int,
    kind: int,
    proto: int,
    sockaddr: Any,
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: SocketOptions,
    watch: Watch,
    factory: Callable[..., socket.socket] = socket.socket,
) -> socket.socket:
    """Create a socket, register it with ``watch`` (the abort scope) and
    only then connect it to ``sockaddr``.

    :param factory: makes the socket (``socket.socket``, or a configured
        PySocks ``socksocket`` whose ``connect`` also negotiates).
    :returns: the connected socket.
    :raises OSError: what connecting raised; the socket is closed.
    """
    sock = factory(family, kind, proto)
    try:
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        if watch is not None:
            watch(sock)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def require_socks() -> Any:
    """Import PySocks.

    :returns: the ``socks`` module.
    :raises ImportError: naming the extra to install.
    """
    try:
        import socks
    except ImportError as exc:
        raise ImportError(
            "socks5:// and socks5h:// tunnels need PySocks: pip install 'vpc_requests[socks]'"
        ) from exc
    return socks


def socks_connect(
    transport: Transport,
    host: str,
    port: int,
    *,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: SocketOptions = None,
    watch: Watch = None,
) -> socket.socket:
    """Open a connection to ``host:port`` through a SOCKS5 proxy (PySocks).

    ``host`` is sent as given: an IP literal as an address, a name as a
    domain name for the proxy to resolve (``socks5h``). The caller resolves
    names itself for ``socks5``.

    :param timeout: seconds for reaching the proxy and its answer.
    :returns: a plain connected socket, positioned after the SOCKS reply.
    :raises ProxyError: the tunnel is unreachable or refused the target;
        the message names the tunnel and the target.
    """
    socks = require_socks()
    deadline = deadlines.after(timeout)
    error: ProxyError | None = None
    for family, sockaddr in _proxy_addresses(transport):

        def factory(fam: int, kind: int, proto: int, _addr: Any = sockaddr) -> socket.socket:
            sock = socks.socksocket(fam, kind, proto)
            sock.set_proxy(
                socks.SOCKS5, _addr[0], _addr[1], rdns=transport.resolves_remotely,
                username=transport.username, password=transport.password,
            )
            return cast(socket.socket, sock)  # PySocks is untyped; a socksocket is a socket.socket

        try:
            sock = open_socket(
                family, socket.SOCK_STREAM, 0, (host, port), deadlines.left(deadline),
                source_address, socket_options, watch, factory,
            )
        except socks.ProxyConnectionError as exc:  # the proxy itself: try its next address
            error = _unreachable(transport, exc.socket_err or exc, timeout)
            continue
        except (socks.ProxyError, OSError) as exc:
            raise _socks_failure(transport, host, port, exc, timeout) from exc
        log.debug("tunnel %s open to %s", transport.url, _authority(host, port))
        return _plain(sock, watch)
    assert error is not None
    raise error


def http_connect(
    transport: Transport,
    host: str,
    port: int,
    *,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: SocketOptions = None,
    watch: Watch = None,
) -> socket.socket:
    """Open a connection to ``host:port`` through an HTTP proxy's
    ``CONNECT`` method (over TLS to the proxy for ``https://``), with
    ``Proxy-Authorization: Basic`` from the URL's userinfo.

    :param timeout: seconds for reaching the proxy and its answer.
    :returns: the socket (an ``ssl.SSLSocket`` to the proxy for
        ``https://``), positioned after the proxy's 2xx answer: what is
        written next reaches the target.
    :raises ProxyError: the tunnel is unreachable or answered other than
        2xx (the code follows the status, or the proxy's ``Proxy-Status``).
    """
    deadline = deadlines.after(timeout)
    sock = _connect_proxy(transport, timeout, source_address, socket_options, watch)
    try:
        if transport.scheme == "https":
            sock = _wrap_proxy_tls(transport, sock, watch)
        target = _authority(host, port)
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if transport.username is not None:
            token = f"{transport.username}:{transport.password or ''}".encode()
            lines.append(f"Proxy-Authorization: Basic {base64.b64encode(token).decode('ascii')}")
        sock.settimeout(deadlines.left(deadline))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        status, reason, headers = _read_head(sock)
        if not 200 <= status < 300:
            raise _connect_refused(transport, target, status, reason, headers)
    except ProxyError:
        sock.close()
        raise
    except (OSError, ValueError, EOFError) as exc:
        sock.close()
        raise _broken(transport, "the CONNECT exchange", exc, timeout) from exc
    log.debug("tunnel %s open to %s", transport.url, target)
    return sock


# -- helpers --------------------------------------------------------------------


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proxy_addresses(transport: Transport) -> list[tuple[int, Any]]:
    """Where the proxy listens (its host resolved by the system, on this
    machine: the proxy is in our network)."""
    try:
        infos = socket.getaddrinfo(transport.host, transport.port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise proxy_error(
            "dns_error", detail=f"tunnel {transport.url}: its host {transport.host!r} does not resolve ({exc})"
        ) from exc
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def _connect_proxy(
    transport: Transport,
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: SocketOptions,
    watch: Watch,
) -> socket.socket:
    """A TCP connection to the proxy itself."""
    deadline = deadlines.after(timeout)
    error: ProxyError | None = None
    for family, sockaddr in _proxy_addresses(transport):
        try:
            return open_socket(
                family, socket.SOCK_STREAM, 0, sockaddr, deadlines.left(deadline),
                source_address, socket_options, watch,
            )
        except OSError as exc:
            error = _unreachable(transport, exc, timeout)
    assert error is not None
    raise error


def _unreachable(transport: Transport, exc: BaseException, timeout: float | None) -> ProxyError:
    """The tunnel itself could not be reached (it is down)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return proxy_error(
            "connection_timeout",
            detail=f"tunnel {transport.url} did not accept a connection within {timeout} s",
        )
    if isinstance(exc, ConnectionRefusedError):
        return proxy_error(
            "connection_refused",
            detail=f"tunnel {transport.url} refused the connection: nothing listens at "
            f"{transport.address} (is the {'tunnel, e.g. ssh -D,' if transport.kind == 'socks' else 'proxy'} running?)",
        )
    return proxy_error(
        "destination_unavailable", detail=f"tunnel {transport.url} is unreachable: {exc}"
    )


def _broken(transport: Transport, during: str, exc: BaseException, timeout: float | None) -> ProxyError:
    """The tunnel was reached but failed while setting up the connection."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return proxy_error(
            "connection_timeout",
            detail=f"tunnel {transport.url} did not complete {during} within {timeout} s",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return proxy_error(
            "tls_certificate_error",
            detail=f"tunnel {transport.url}: the proxy's certificate is not valid for "
            f"{transport.host}: {exc.verify_message or exc}",
        )
    if isinstance(exc, ssl.SSLError):
        return proxy_error("tls_protocol_error", detail=f"tunnel {transport.url}: TLS to the proxy failed: {exc}")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, EOFError)):
        return proxy_error(
            "connection_terminated", detail=f"tunnel {transport.url} closed the connection during {during}"
        )
    if isinstance(exc, ValueError):
        return proxy_error(
            "proxy_internal_error", detail=f"tunnel {transport.url} is not answering as an HTTP proxy: {exc}"
        )
    return proxy_error("proxy_internal_error", detail=f"tunnel {transport.url} failed during {during}: {exc}")


def _plain(sock: socket.socket, watch: Watch) -> socket.socket:
    """The connected file descriptor of a PySocks socket as a plain socket
    (PySocks' send/recv wrappers are for UDP only)."""
    timeout = sock.gettimeout()
    plain = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    plain.settimeout(timeout)
    if watch is not None:
        watch(plain)
    return plain


# RFC 1928 replies -> (code, text). 0x02 gets destination_ip_prohibited for an
# IP target (see _socks_failure).
_SOCKS_REPLIES = {
    0x01: ("destination_unavailable", "general SOCKS server failure"),
    0x02: ("http_request_denied", "connection not allowed by ruleset"),
    0x03: ("destination_ip_unroutable", "network unreachable"),
    0x04: ("destination_unavailable", "host unreachable"),
    0x05: ("connection_refused", "connection refused"),
    0x06: ("connection_timeout", "TTL expired"),
    0x07: ("proxy_configuration_error", "command not supported"),
    0x08: ("proxy_configuration_error", "address type not supported"),
}


def _socks_failure(
    transport: Transport, host: str, port: int, exc: BaseException, timeout: float | None
) -> ProxyError:
    socks = require_socks()
    target = _authority(host, port)
    inner = getattr(exc, "socket_err", None)
    while isinstance(inner, socks.ProxyError):
        # PySocks' errors are OSErrors, so its connect() wraps them again.
        exc = inner
        inner = getattr(exc, "socket_err", None)
    if isinstance(exc, socks.SOCKS5Error):
        try:
            reply = int(str(exc.msg)[:4], 16)
        except ValueError:
            reply = 0x01
        code, text = _SOCKS_REPLIES.get(reply, ("proxy_internal_error", "unknown reply"))
        if reply == 0x02 and is_ip(host):
            code = "destination_ip_prohibited"
        hint = ""
        if reply in (0x01, 0x04) and not is_ip(host):
            hint = "; the tunnel end also resolves the name"
        if reply == 0x08 and not is_ip(host):
            hint = "; use socks5:// to resolve names here"
        return proxy_error(
            code,
            detail=f"tunnel {transport.url} could not connect to {target}: "
            f"SOCKS5 reply {reply:#04x} ({text}){hint}",
        )
    if isinstance(exc, socks.SOCKS5AuthError):
        given = "its username/password were rejected" if transport.username else (
            "it requires a username and password: give them in the URL, socks5h://user:password@host:port"
        )
        return proxy_error("proxy_configuration_error", detail=f"tunnel {transport.url}: {given} ({exc.msg})")
    cause = getattr(exc, "socket_err", None)
    if cause is not None:
        return _broken(transport, "the SOCKS5 handshake", cause, timeout)
    if isinstance(exc, socks.GeneralProxyError) and "closed" in str(exc.msg).lower():
        return proxy_error(
            "connection_terminated",
            detail=f"tunnel {transport.url} closed the connection during the SOCKS5 handshake",
        )
    if isinstance(exc, socks.ProxyError):
        return proxy_error(
            "proxy_internal_error",
            detail=f"tunnel {transport.url} is not answering as a SOCKS5 server: {exc.msg}",
        )
    return _broken(transport, "the SOCKS5 handshake", exc, timeout)


def _socks_greet(transport: Transport, sock: socket.socket) -> str:
    """RFC 1928 method negotiation (and RFC 1929 login) only: no request."""
    creds = transport.username is not None and transport.password is not None
    try:
        sock.sendall(b"\x05\x02\x00\x02" if creds else b"\x05\x01\x00")
        answer = _recv_exactly(sock, 2)
        if answer[0] != 5:
            raise proxy_error(
                "proxy_internal_error",
                detail=f"tunnel {transport.url} is not a SOCKS5 server (it answered {answer!r})",
            )
        if answer[1] == 0x00:
            return "no authentication"
        if answer[1] == 0x02 and creds:
            user = (transport.username or "").encode("utf-8")
            word = (transport.password or "").encode("utf-8")
            sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(word)]) + word)
            if _recv_exactly(sock, 2)[1] != 0:
                raise proxy_error(
                    "proxy_configuration_error",
                    detail=f"tunnel {transport.url}: its username/password were rejected",
                )
            return f"username/password accepted for {transport.username!r}"
    except ProxyError:
        raise
    except (OSError, EOFError) as exc:
        raise _broken(transport, "the SOCKS5 greeting", exc, sock.gettimeout()) from exc
    raise proxy_error(
        "proxy_configuration_error",
        detail=f"tunnel {transport.url} accepts none of the offered authentication methods"
        + ("" if creds else "; it probably needs a username and password in the URL"),
    )


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


@functools.lru_cache(maxsize=8)
def _proxy_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # The system trust store, as urllib3 uses for HTTPS proxies; OpenSSL reads
    # SSL_CERT_FILE / SSL_CERT_DIR (the arguments only key the cache).
    return ssl.create_default_context()


def _wrap_proxy_tls(transport: Transport, sock: socket.socket, watch: Watch) -> socket.socket:
    """TLS to the proxy itself, checked against the system trust store."""
    context = _proxy_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    try:
        wrapped = context.wrap_socket(sock, server_hostname=transport.host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    timeout = wrapped.gettimeout()
    try:
        if watch is not None:
            watch(wrapped)
        wrapped.do_handshake()
    except OSError as exc:
        wrapped.close()
        raise _broken(transport, "the TLS handshake with the proxy", exc, timeout) from exc
    return wrapped


def _read_head(sock: socket.socket) -> tuple[int, str, list[tuple[str, str]]]:
    """The proxy's answer to CONNECT, read byte by byte so that nothing after
    it (the target's first bytes) is consumed."""
    data = bytearray()
    while not data.endswith(b"\r\n\r\n") and not data.endswith(b"\n\n"):
        byte = sock.recv(1)
        if not byte:
            raise EOFError("the proxy closed the connection before answering CONNECT")
        data += byte
        if len(data) > _MAX_HEAD:
            raise ValueError("the proxy's answer to CONNECT is too long")
    lines = data.decode("latin-1").split("\n")
    status_line = lines[0].rstrip("\r")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(f"not an HTTP answer to CONNECT: {status_line[:80]!r}")
    headers = []
    for line in lines[1:]:
        key, sep, value = line.rstrip("\r").partition(":")
        if sep:
            headers.append((key.strip(), value.strip()))
    return int(code), reason.strip(), headers


def _connect_refused(
    transport: Transport, target: str, status: int, reason: str, headers: list[tuple[str, str]]
) -> ProxyError:
    """A non-2xx answer to CONNECT. RFC 9209's Proxy-Status error, when the
    proxy sends one, is the code; else the status decides."""
    text = f"tunnel {transport.url} refused CONNECT {target}: {status} {reason}".rstrip()
    code, details = _proxy_status(headers)
    if code is None:
        if status == 407:
            code = "proxy_configuration_error"
            text += (
                "; it needs credentials: http://user:password@host:port"
                if transport.username is None else "; it rejected the URL's credentials"
            )
        elif status == 404:
            code = "destination_not_found"
        elif status in (502, 503):
            code = "destination_unavailable"
        elif status == 504:
            code = "connection_timeout"
        elif 400 <= status < 500:
            code = "http_request_denied"
        else:
            code = "proxy_internal_error"
    if details:
        text += f" ({details})"
    return proxy_error(code, detail=text)


def _proxy_status(headers: list[tuple[str, str]]) -> tuple[str | None, str]:
    for key, value in headers:
        if key.lower() != "proxy-status":
            continue
        for member in value.split(","):
            params = dict(
                (name.strip().lower(), val.strip().strip('"'))
                for name, _, val in (p.partition("=") for p in member.split(";")[1:])
            )
            if params.get("error") in CODE_CLASSES:
                return params["error"], params.get("details", "")
    return None, ""

