"""A TCP echo server on loopback for the connect() and forwarder tests (and
the forwarder benchmark): each connection on its own thread; what it reads
it writes back; EOF from the client (a half-close) is answered by a
half-close once everything has been echoed. Optionally TLS (recording the
SNI each client sent)."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any


class EchoServer:
    """Echoes every connection's bytes back.

    :param host: the loopback address to listen on.
    :param ssl_context: serve TLS with this server context.
    """

    def __init__(self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = 0
        self.context = ssl_context
        self.peers: list[tuple[str, int]] = []
        self.sni: list[str | None] = []
        self.half_closes = 0
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni

    def _record_sni(self, _sock: Any, name: str | None, _context: ssl.SSLContext) -> None:
        with self._lock:
            self.sni.append(name)

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return len(self.peers)

    def start(self) -> EchoServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.create_server((self.host, 0), family=family, backlog=128)
        self.port = self._listener.getsockname()[1]
        thread = threading.Thread(target=self._accept, name="echo-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        if self._listener is not None:
            self._listener.close()
        for sock in socks:
            sock.close()

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.peers.append(peer[:2])
                self._socks.add(conn)
            thread = threading.Thread(target=self._echo, args=(conn,), name="echo", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        sock: socket.socket = conn
        try:
            if self.context is not None:
                sock = self.context.wrap_socket(conn, server_side=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
            with self._lock:
                self.half_closes += 1
            if not isinstance(sock, ssl.SSLSocket):
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            sock.close()
            with self._lock:
                self._socks.discard(conn)


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
