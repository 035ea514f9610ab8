"""Tunnel ends for the tests, on loopback: a SOCKS5 server, an HTTP CONNECT
proxy and a DNS server.

Each records what it was asked for, so tests assert on the target the
tunnel saw. The proxies map the targets they are asked for to loopback
addresses (``routes``), so names and addresses that exist only "at the far
end" (``internal-api.company.local:8443``, ``10.0.1.50:443``) work, and the
client itself never connects anywhere but the proxy. Unknown targets are
refused.
"""

from __future__ import annotations

import base64
import ipaddress
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import h11

from vpc_requests._loopback import STOP_TIMEOUT, LoopbackServer, family

Address = tuple[str, int]


@dataclass(frozen=True)
class Asked:
    """One target a tunnel was asked to connect to.

    :param host: the host as sent: a name, or an IP in text form.
    :param port: the port.
    :param kind: SOCKS: ``domain``, ``ipv4`` or ``ipv6``; CONNECT: ``connect``.
    :param auth: the credentials given (``(user, password)``), or ``None``.
    """

    host: str
    port: int
    kind: str
    auth: tuple[str, str] | None = None


def _relay(a: socket.socket, b: socket.socket, stopping: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while not stopping.is_set():
            for key, _ in selector.select(0.2):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    return
                if not data:
                    return
                try:
                    key.data.sendall(data)
                except OSError:
                    return


class _TunnelServer(LoopbackServer):
    """A proxy: :meth:`negotiate` answers the client and returns the upstream
    connection, then bytes are relayed both ways until either side closes."""

    def __init__(self, host: str, name: str) -> None:
        super().__init__(host=host, name=name)

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        conn.settimeout(5)
        upstream: socket.socket | None = None
        try:
            upstream, early = self.negotiate(conn)
            if upstream is not None:
                conn.settimeout(None)
                if early:
                    upstream.sendall(early)
                _relay(conn, upstream, self._stopping)
        except (ValueError, EOFError):
            pass
        finally:
            if upstream is not None:
                self._untrack(upstream)
                upstream.close()

    def _dial(self, target: Address) -> socket.socket | None:
        try:
            return self._track(socket.create_connection(target, timeout=2))
        except OSError:
            return None

    def negotiate(self, conn: socket.socket) -> tuple[socket.socket | None, bytes]:
        """Answer the client; return the upstream connection (``None``:
        refused) and bytes the client sent after its request, for upstream."""
        raise NotImplementedError


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class Socks5Server(_TunnelServer):
    """A minimal RFC 1928 SOCKS5 server (CONNECT only), no-auth or RFC 1929
    username/password.

    :param routes: ``(host, port)`` asked for -> loopback ``(host, port)`` to
        connect to. Hosts are compared as sent (a name, or IP text).
    :param credentials: ``(user, password)`` to require, or ``None``.
    :param replies: ``(host, port)`` -> a SOCKS reply code to answer instead
        (e.g. ``0x02`` not allowed). Unknown targets get ``0x04``.
    """

    def __init__(
        self,
        routes: Mapping[Address, Address],
        *,
        credentials: tuple[str, str] | None = None,
        replies: Mapping[Address, int] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host, "socks5")
        self.routes = dict(routes)
        self.credentials = credentials
        self.replies = dict(replies or {})
        self.asked: list[Asked] = []
        self.greetings = 0

    def negotiate(self, conn: socket.socket) -> tuple[socket.socket | None, bytes]:
        version, count = _read(conn, 2)
        if version != 5:
            return None, b""
        methods = _read(conn, count)
        self.greetings += 1
        auth = None
        if self.credentials is None:
            if 0 not in methods:
                conn.sendall(b"\x05\xff")
                return None, b""
            conn.sendall(b"\x05\x00")
        else:
            if 2 not in methods:
                conn.sendall(b"\x05\xff")
                return None, b""
            conn.sendall(b"\x05\x02")
            _, ulen = _read(conn, 2)
            user = _read(conn, ulen).decode()
            (plen,) = _read(conn, 1)
            password = _read(conn, plen).decode()
            auth = (user, password)
            if auth != self.credentials:
                conn.sendall(b"\x01\x01")
                return None, b""
            conn.sendall(b"\x01\x00")
        _, command, _, atyp = _read(conn, 4)
        if atyp == 1:
            host, kind = str(ipaddress.IPv4Address(_read(conn, 4))), "ipv4"
        elif atyp == 4:
            host, kind = str(ipaddress.IPv6Address(_read(conn, 16))), "ipv6"
        elif atyp == 3:
            (length,) = _read(conn, 1)
            host, kind = _read(conn, length).decode("idna"), "domain"
        else:
            self._reply(conn, 0x08)
            return None, b""
        (port,) = struct.unpack(">H", _read(conn, 2))
        self.asked.append(Asked(host, port, kind, auth))
        if command != 1:
            self._reply(conn, 0x07)
            return None, b""
        if (host, port) in self.replies:
            self._reply(conn, self.replies[(host, port)])
            return None, b""
        route = self.routes.get((host, port))
        if route is None:
            self._reply(conn, 0x04)
            return None, b""
        upstream = self._dial(route)
        if upstream is None:
            self._reply(conn, 0x05)
            return None, b""
        self._reply(conn, 0x00)
        return upstream, b""

    @staticmethod
    def _reply(conn: socket.socket, code: int) -> None:
        conn.sendall(bytes([5, code, 0, 1]) + b"\x00\x00\x00\x00\x00\x00")


class ConnectProxy(_TunnelServer):
    """A minimal HTTP proxy that only tunnels: ``CONNECT host:port`` to a
    routed loopback address; any other request (a forwarding attempt) is
    recorded in :attr:`forwarded` and answered ``405``. Requests are read by
    ``h11``.

    :param routes: ``(host, port)`` from the CONNECT target -> loopback
        address. Unknown targets get ``403``.
    :param credentials: ``(user, password)`` to require (``407`` otherwise).
    :param answers: ``(host, port)`` -> raw status line and headers to answer
        instead (e.g. ``"502 Bad Gateway\\r\\nProxy-Status: p; error=dns_error"``).
    :param ssl_context: serve TLS (an ``https://`` proxy).
    """

    def __init__(
        self,
        routes: Mapping[Address, Address],
        *,
        credentials: tuple[str, str] | None = None,
        answers: Mapping[Address, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host, "connect-proxy")
        self.routes = dict(routes)
        self.credentials = credentials
        self.answers = dict(answers or {})
        self.ssl_context = ssl_context
        self.asked: list[Asked] = []
        self.requests: list[tuple[str, tuple[tuple[str, str], ...]]] = []  #: request line, headers
        self.forwarded: list[str] = []

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        if self.ssl_context is None:
            super().handle(conn, client_port, number)
            return
        conn.settimeout(5)
        wrapped = self._track(self.ssl_context.wrap_socket(conn, server_side=True))
        try:
            super().handle(wrapped, client_port, number)
        finally:
            self._untrack(wrapped)
            wrapped.close()

    def negotiate(self, conn: socket.socket) -> tuple[socket.socket | None, bytes]:
        http = h11.Connection(h11.SERVER)
        request = _next_event(http, conn)
        if not isinstance(request, h11.Request):
            return None, b""
        method, target = request.method.decode(), request.target.decode()
        version = request.http_version.decode()
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw_items())
        self.requests.append((f"{method} {target} HTTP/{version}", headers))
        if method != "CONNECT":
            self.forwarded.append(f"{method} {target} HTTP/{version}")
            conn.sendall(_respond(http, 405, b"Method Not Allowed", [("Allow", "CONNECT")]))
            return None, b""
        host, _, port_text = target.rpartition(":")
        host = host.strip("[]")
        auth = None
        for key, value in headers:
            if key.lower() == "proxy-authorization" and value.startswith("Basic "):
                user, _, password = base64.b64decode(value[6:]).decode().partition(":")
                auth = (user, password)
        self.asked.append(Asked(host, int(port_text), "connect", auth))
        key = (host, int(port_text))
        if self.credentials is not None and auth != self.credentials:
            conn.sendall(_respond(http, 407, b"Proxy Authentication Required",
                                  [("Proxy-Authenticate", 'Basic realm="tests"')]))
            return None, b""
        if key in self.answers:  # raw on purpose: whatever the test wrote
            conn.sendall(f"HTTP/1.1 {self.answers[key]}\r\nContent-Length: 0\r\n\r\n".encode())
            return None, b""
        route = self.routes.get(key)
        if route is None:
            conn.sendall(_respond(http, 403, b"Forbidden"))
            return None, b""
        upstream = self._dial(route)
        if upstream is None:
            conn.sendall(_respond(http, 502, b"Bad Gateway"))
            return None, b""
        _next_event(http, conn)  # EndOfMessage: a CONNECT has no body
        conn.sendall(http.send(h11.Response(status_code=200, headers=[], reason=b"Connection established")))
        early, _ = http.trailing_data
        return upstream, bytes(early)


def _next_event(http: h11.Connection, conn: socket.socket) -> Any:
    while True:
        event = http.next_event()
        if event is not h11.NEED_DATA:
            return event
        http.receive_data(conn.recv(65536))


def _respond(http: h11.Connection, status: int, reason: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    head = h11.Response(status_code=status, headers=[*(headers or []), ("Content-Length", "0")], reason=reason)
    return http.send(head) + http.send(h11.EndOfMessage())


class DNSServer:
    """A UDP DNS server on loopback that answers from a table, with a TTL.

    :param records: name -> list of addresses (A for IPv4, AAAA for IPv6).
        Other names get NXDOMAIN; a known name without records of the asked
        type gets an empty NOERROR answer.
    :param ttl: the answers' TTL.
    :param delay: seconds to wait before each answer.
    :param silent: never answer (queries are still counted).
    """

    def __init__(
        self,
        records: Mapping[str, list[str]],
        *,
        ttl: int = 300,
        delay: float = 0.0,
        silent: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.records = {name.lower().rstrip("."): list(ips) for name, ips in records.items()}
        self.ttl = ttl
        self.delay = delay
        self.silent = silent
        self.host = host
        self.port = 0
        self.queries: Counter[tuple[str, str]] = Counter()  #: (name, type) -> count
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """The ``resolver_ips`` entry for this server."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> DNSServer:
        self._sock = socket.socket(family(self.host), socket.SOCK_DGRAM)
        self._sock.bind((self.host, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> DNSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries[(name, rdtype)] += 1
            if self.silent:
                continue
            response = dns.message.make_response(query)
            if name not in self.records:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                wanted = 6 if rdtype == "AAAA" else 4
                ips = [ip for ip in self.records[name] if ipaddress.ip_address(ip).version == wanted]
                if ips:
                    response.answer.append(
                        dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, ips)
                    )
            if self.delay:
                time.sleep(self.delay)
            try:
                self._sock.sendto(response.to_wire(), peer)
            except OSError:
                pass

    def count(self, name: str, rdtype: str = "A") -> int:
        """Queries received for ``name`` and ``rdtype``."""
        return self.queries[(name.lower().rstrip("."), rdtype)]


def tls_server_context(ca: Any, *names: str) -> ssl.SSLContext:
    """A server context with a certificate from ``ca`` (``trustme.CA``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    return context

