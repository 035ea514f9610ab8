"""Small loopback servers that misbehave on purpose, for tests/test_faults.py.

:class:`~vpc_requests.testing.PrivateService` covers the faults a handler can
express with a :class:`~vpc_requests.testing.Reply` (close without answering,
a short body, raw bytes); :class:`ScriptedServer` covers the rest: each
accepted connection runs a script with the raw socket (stall in the middle of
the headers, ...).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "ScriptedServer",
    "never_reads",
    "read_head",
    "reset_in_the_body",
    "stalled_body",
    "stalled_headers",
    "tls13_only_context",
]

Script = Callable[[socket.socket, threading.Event], None]


def read_head(sock: socket.socket, limit: int = 65536) -> bytes:
    """Read a request up to the end of its header section (b"" on EOF)."""
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


class ScriptedServer:
    """A loopback TCP server running ``script(sock, stop)`` on its own thread
    for each accepted connection; the socket is closed when the script
    returns. ``stop`` is set when the server stops (scripts that stall should
    wait on it).

    :param script: the per-connection behaviour.
    :param host: the loopback address.
    """

    def __init__(self, script: Script, *, host: str = "127.0.0.1") -> None:
        self.script = script
        self.host = host
        self.connections = 0
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._accepting.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._accepting.join(2)
        for thread in self._threads:
            thread.join(2)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            self.script(conn, self._stop)
        except OSError:
            pass
        finally:
            conn.close()


def tls13_only_context(ca: Any, names: tuple[str, ...]) -> ssl.SSLContext:
    """A server context that speaks nothing older than TLS 1.3."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    ca.issue_cert(*names).configure_cert(context)
    return context
