"""Loopback servers that misbehave on purpose.

:class:`~vpc_requests.testing.PrivateService` covers the faults a handler can
express with a :class:`~vpc_requests.testing.Reply` (close without answering,
a short body, raw bytes). Here: :class:`Unresponsive` (accepts and never
answers), :func:`closed_port` (nothing listening), :class:`BacklogFull`
(connects hang) and :class:`ScriptedServer`, whose connections each run a
script with the raw socket (stall in the middle of the headers, ...).
"""

from __future__ import annotations

import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import Any

from vpc_requests._loopback import LoopbackServer, family

Script = Callable[[socket.socket, threading.Event], None]


class Unresponsive(LoopbackServer):
    """A listener that accepts TCP connections and never answers (read
    timeouts). Connections are held open until :meth:`stop`.

    :param host: the loopback address to listen on.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host, name="unresponsive")

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        self._stopping.wait()


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port with nothing listening (bound, then closed), for
    connection-refused tests. Another process could take it meanwhile; on
    loopback in a test run that does not happen in practice.

    :param host: the loopback address.
    :returns: the port.
    """
    with socket.socket(family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class BacklogFull:
    """A listening socket with backlog 0 whose accept queue is already full,
    so a further connect hangs until its timeout (connect-timeout tests).
    It never accepts, so it has no accept loop.

    Linux drops a SYN for a listener whose accept queue is full; other systems
    may refuse instead, so tests relying on it are Linux-only.

    :param host: the loopback address.
    :param fillers: how many connections to queue before handing it over.
    """

    def __init__(self, *, host: str = "127.0.0.1", fillers: int = 3) -> None:
        self.host = host
        self.port = 0
        self._fillers_wanted = max(1, fillers)
        self._listener: socket.socket | None = None
        self._fillers: list[socket.socket] = []

    def start(self) -> BacklogFull:
        """Listen and fill the queue."""
        if self._listener is not None:
            return self
        self._listener = socket.socket(family(self.host), socket.SOCK_STREAM)
        self._listener.bind((self.host, 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        for _ in range(self._fillers_wanted):
            filler = socket.socket(family(self.host), socket.SOCK_STREAM)
            filler.setblocking(False)
            self._fillers.append(filler)
            filler.connect_ex((self.host, self.port))
            if len(self._fillers) == 1:  # the queue's one slot: wait till taken
                with selectors.DefaultSelector() as selector:
                    selector.register(filler, selectors.EVENT_WRITE)
                    selector.select(1.0)
        return self

    def stop(self) -> None:
        """Close the fillers and the listener (idempotent)."""
        fillers, self._fillers = self._fillers, []
        for filler in fillers:
            filler.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> BacklogFull:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ScriptedServer(LoopbackServer):
    """Runs ``script(sock, stop)`` for each accepted connection; the socket
    is closed when the script returns. ``stop`` is set when the server stops
    (scripts that stall should wait on it).

    :param script: the per-connection behaviour.
    :param host: the loopback address.
    """

    def __init__(self, script: Script, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host, name="scripted")
        self.script = script

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        conn.settimeout(5)
        self.script(conn, self._stopping)


def read_head(sock: socket.socket, limit: int = 65536) -> bytes:
    """Read a request up to the end of its header section (b"" on EOF); the
    scripts only need to know the request is in, not what it says."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def stalled_headers(sock: socket.socket, stop: threading.Event) -> None:
    """Reads the request, sends a status line and one header, then stalls."""
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
    stop.wait(10)


def stalled_body(sock: socket.socket, stop: threading.Event) -> None:
    """Reads the request, sends the headers and 9 of the 100 bytes of the
    body, then stalls."""
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly part")
    stop.wait(10)


def reset_in_the_body(sock: socket.socket, stop: threading.Event) -> None:
    """Reads the request, sends the headers and 10 of the 100,000 bytes of
    the body, then resets the connection (RST, not FIN)."""
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10)
    stop.wait(0.1)  # the client has the headers
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def never_reads(sock: socket.socket, stop: threading.Event) -> None:
    """Accepts and never reads: a large request body fills the buffers and
    the client's send times out."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stop.wait(10)


def tls13_only_context(ca: Any, names: tuple[str, ...]) -> ssl.SSLContext:
    """A server context that speaks nothing older than TLS 1.3."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    ca.issue_cert(*names).configure_cert(context)
    return context
