"""A TCP echo server on loopback for the connect(), forwarder and network
tests: each connection on its own thread; what it reads it writes back;
EOF from the client (a half-close) is answered by a half-close once
everything has been echoed. Optionally TLS (recording the
SNI each client sent)."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from vpc_requests._loopback import LoopbackServer


class EchoServer(LoopbackServer):
    """Echoes every connection's bytes back, on the suite's one accept loop
    (:class:`vpc_requests._loopback.LoopbackServer`); counts the clients'
    half-closes and records the SNI of TLS clients.

    :param host: the loopback address to listen on.
    :param ssl_context: serve TLS with this server context.
    """

    def __init__(self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(host=host, name="echo")
        self.context = ssl_context
        self.sni: list[str | None] = []
        self.half_closes = 0
        self._counts = threading.Lock()
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni

    def _record_sni(self, _sock: Any, name: str | None, _context: ssl.SSLContext) -> None:
        with self._counts:
            self.sni.append(name)

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        sock: socket.socket = conn
        try:
            if self.context is not None:
                sock = self.context.wrap_socket(conn, server_side=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
            with self._counts:
                self.half_closes += 1
            if not isinstance(sock, ssl.SSLSocket):
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            if sock is not conn:
                sock.close()


def roundtrip(sock: socket.socket, payload: bytes, *, half_close: bool = True) -> bytes:
    """Send ``payload`` and read the echo: with ``half_close``, half-close
    and read to EOF; else (TLS, or through the test tunnels, which do not
    pass a half-close on) read as many bytes as were sent."""
    sock.sendall(payload)
    if half_close and not isinstance(sock, ssl.SSLSocket):
        sock.shutdown(socket.SHUT_WR)
        return read_all(sock)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def read_all(sock: socket.socket) -> bytes:
    """Everything until EOF."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
