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

import functools
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional, Union
from urllib.parse import unquote, urlsplit

from .._compat import basic_auth_header
from .._errors import CODE_CLASSES, ConfigError, ProxyError, proxy_error
from .._model.hosts import DEFAULT_PORTS, host_port, ip_literal, is_ip
from .._util import deadlines

if TYPE_CHECKING:
    import h11

__all__ = [
    "DEFAULT_TUNNEL_PORTS",
    "SocketOptions",
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
DEFAULT_TUNNEL_PORTS = {"socks5": 1080, "socks5h": 1080, **DEFAULT_PORTS}

_ALLOWED = "'direct' or a URL socks5://, socks5h://, http:// or https://"
_MAX_HEAD = 65536

Watch = Optional[Callable[[socket.socket], None]]
#: ``(level, option, value)`` triples set on a new socket, as urllib3 takes them.
SocketOptions = Optional[Sequence[tuple[int, int, Union[int, bytes]]]]


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
        return host_port(self.host, self.port)

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
    if parts.netloc.rpartition("@")[2].startswith("[") and getattr(ip_literal(host), "version", 0) != 6:
        # Python 3.11 and later refuse a bracketed host that is no IPv6
        # address in urlsplit() (above); 3.9 and 3.10 accept it.
        raise ConfigError(
            f"{shown!r} is not a valid URL (Invalid IPv6 URL); write e.g. socks5h://127.0.0.1:1080, "
            "an IPv6 address in brackets: http://[::1]:3128",
            field="tunnel",
        )
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
            _, how = _socks_handshake(transport, sock, "the SOCKS5 greeting", sock.gettimeout())
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

    :param factory: makes the socket (``socket.socket`` unless a test
        says otherwise).
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


def require_socks() -> ModuleType:
    """Import socksio (sans-IO SOCKS5, as httpcore uses it).

    :returns: the ``socksio.socks5`` module.
    :raises ImportError: naming the extra to install.
    """
    try:
        from socksio import socks5
    except ImportError as exc:
        raise ImportError(
            "socks5:// and socks5h:// tunnels need socksio: pip install 'vpc_requests[socks]'"
        ) from exc
    return socks5


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
    """Open a connection to ``host:port`` through a SOCKS5 proxy: RFC 1928
    (and RFC 1929's username/password) spoken by ``socksio`` on the socket
    this function opens, under its deadline and ``watch``.

    ``host`` is sent as given: an IP literal as an address, a name as a
    domain name for the proxy to resolve (``socks5h``). The caller resolves
    names itself for ``socks5``.

    :param timeout: seconds for reaching the proxy and its answer.
    :returns: a plain connected socket, positioned after the SOCKS reply.
    :raises ProxyError: the tunnel is unreachable or refused the target;
        the message names the tunnel and the target.
    """
    socks5 = require_socks()
    deadline = deadlines.after(timeout)
    sock = _connect_proxy(transport, timeout, source_address, socket_options, watch)
    initial = sock.gettimeout()
    try:
        sock.settimeout(deadlines.left(deadline))
        connection, _ = _socks_handshake(transport, sock, "the SOCKS5 handshake", timeout)
        try:
            connection.send(socks5.SOCKS5CommandRequest.from_address(socks5.SOCKS5Command.CONNECT, (host, port)))
            sock.sendall(connection.data_to_send())
            reply = connection.receive_data(_socks_reply(sock))
        except (OSError, EOFError) as exc:
            raise _broken(transport, "the SOCKS5 handshake", exc, timeout) from exc
        except _socks_error() as exc:
            raise _not_socks(transport, exc) from exc
        if reply.reply_code != socks5.SOCKS5ReplyCode.SUCCEEDED:
            raise _socks_refused(transport, host, port, reply.reply_code.value[0])
        sock.settimeout(initial)
    except BaseException:
        sock.close()
        raise
    log.debug("tunnel %s open to %s", transport.url, host_port(host, port))
    return sock


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
        target = host_port(host, port)
        headers = [("Host", target)]
        if transport.username is not None:
            # UTF-8, as this tunnel always sent (requests' own encoding of a str is latin-1)
            token = basic_auth_header(transport.username.encode(), (transport.password or "").encode())
            headers.append(("Proxy-Authorization", token))
        h11 = _h11()
        http = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        sock.settimeout(deadlines.left(deadline))
        sock.sendall(
            http.send(h11.Request(method="CONNECT", target=target, headers=headers)) + http.send(h11.EndOfMessage())
        )
        status, reason, headers = _read_head(sock, http)
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


def _socks_error() -> type[Exception]:
    from socksio.exceptions import SOCKSError

    return SOCKSError


def _not_socks(transport: Transport, exc: Exception) -> ProxyError:
    """socksio could not make sense of the answer."""
    return proxy_error(
        "proxy_internal_error", detail=f"tunnel {transport.url} is not answering as a SOCKS5 server: {exc}"
    )


def _socks_handshake(transport: Transport, sock: socket.socket, during: str, timeout: float | None) -> tuple[Any, str]:
    """RFC 1928 method negotiation (and RFC 1929 login) on ``sock``: for a
    connection, and alone for :func:`probe_tunnel`.

    :returns: the ``socksio`` connection, authenticated, and how (``no
        authentication``, ``username/password accepted for 'alice'``).
    :raises ProxyError: the proxy refused the credentials, wants some, or is
        not a SOCKS5 server.
    """
    socks5 = require_socks()
    method = socks5.SOCKS5AuthMethod
    creds = transport.username is not None and transport.password is not None
    connection = socks5.SOCKS5Connection()
    offered = [method.NO_AUTH_REQUIRED, method.USERNAME_PASSWORD] if creds else [method.NO_AUTH_REQUIRED]
    try:
        connection.send(socks5.SOCKS5AuthMethodsRequest(offered))
        sock.sendall(connection.data_to_send())
        chosen = connection.receive_data(_recv_exactly(sock, 2)).method
        if chosen == method.NO_AUTH_REQUIRED:
            return connection, "no authentication"
        if chosen == method.USERNAME_PASSWORD and creds:
            connection.send(socks5.SOCKS5UsernamePasswordRequest(
                (transport.username or "").encode("utf-8"), (transport.password or "").encode("utf-8"),
            ))
            sock.sendall(connection.data_to_send())
            if not connection.receive_data(_recv_exactly(sock, 2)).success:
                raise proxy_error(
                    "proxy_configuration_error",
                    detail=f"tunnel {transport.url}: its username/password were rejected",
                )
            return connection, f"username/password accepted for {transport.username!r}"
    except ProxyError:  # an OSError too
        raise
    except (OSError, EOFError) as exc:
        raise _broken(transport, during, exc, timeout) from exc
    except _socks_error() as exc:
        raise _not_socks(transport, exc) from exc
    raise proxy_error(
        "proxy_configuration_error",
        detail=f"tunnel {transport.url} accepts none of the offered authentication methods"
        + ("" if creds else "; it needs a username and password: give them in the URL, "
           f"{transport.scheme}://user:password@host:port"),
    )


def _socks_reply(sock: socket.socket) -> bytes:
    """The proxy's reply to the CONNECT command, read to its end and no
    further (the target's first bytes follow it): its length depends on the
    address type in its fourth byte (RFC 1928 section 6); socksio parses it."""
    head = _recv_exactly(sock, 4)
    if head[3] == 0x03:  # a domain name: one length byte, the name
        size = _recv_exactly(sock, 1)
        return head + size + _recv_exactly(sock, size[0] + 2)
    rest = {0x01: 4 + 2, 0x04: 16 + 2}.get(head[3], 0)  # else socksio reports it malformed
    return head + _recv_exactly(sock, rest)


def _socks_refused(transport: Transport, host: str, port: int, reply: int) -> ProxyError:
    """A SOCKS5 reply other than success, as a Cloudflare error code."""
    target = host_port(host, port)
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


def _h11() -> ModuleType:
    # Imported when a CONNECT tunnel is used, not with vpc_requests.
    import h11

    return h11


def _read_head(sock: socket.socket, http: h11.Connection) -> tuple[int, str, list[tuple[str, str]]]:
    """The proxy's answer to CONNECT, parsed by ``h11``. Read byte by byte
    and handed to h11 a line at a time, so that nothing after it (the
    target's first bytes) is consumed."""
    h11 = _h11()
    line = bytearray()
    while True:
        byte = sock.recv(1)
        if not byte:
            raise EOFError("the proxy closed the connection before answering CONNECT")
        line += byte
        if byte != b"\n":
            if len(line) > _MAX_HEAD:
                raise ValueError("the proxy's answer to CONNECT is too long")
            continue
        try:
            http.receive_data(bytes(line))
            event = http.next_event()
        except h11.RemoteProtocolError as exc:
            raise ValueError(f"not an HTTP answer to CONNECT: {exc}") from exc
        line.clear()
        if isinstance(event, h11.Response):
            headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers]
            return event.status_code, event.reason.decode("latin-1"), headers
        # h11.NEED_DATA, or a 1xx answer: the final one follows


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

