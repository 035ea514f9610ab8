"""The one accept loop of the loopback test servers: listen on loopback,
accept on a daemon thread, hand each connection to :meth:`LoopbackServer.handle`
on a daemon thread of its own, and stop promptly and cleanly.

:class:`vpc_requests.testing.PrivateService` and the fault and tunnel servers
of the test suite (``tests/servers/``) are subclasses. Not public API: it may
change without notice.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from typing import TypeVar

__all__ = ["LoopbackServer", "family", "shutdown"]

log = logging.getLogger(__name__)

#: How long :meth:`LoopbackServer.stop` waits for the threads, in seconds.
STOP_TIMEOUT = 0.9


def family(host: str) -> socket.AddressFamily:
    """The address family of a literal address (IPv6 when it has a colon).

    :param host: ``"127.0.0.1"``, ``"::1"``, ...
    :returns: ``AF_INET6`` or ``AF_INET``.
    """
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def shutdown(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways from any thread, so that a call blocked on
    it returns at once; errors ignored.

    ``socket.socket.shutdown``, not ``SSLSocket.shutdown``: the latter tears
    down the SSL object under a thread that may be blocked reading it.

    :param sock: a socket, plain or TLS.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


_Server = TypeVar("_Server", bound="LoopbackServer")


class LoopbackServer:
    """A TCP listener on loopback; each accepted connection runs
    :meth:`handle` on its own daemon thread and is closed when it returns.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`; a
    stopped server can be started again on the same port.

    :param host: the loopback address, e.g. ``"127.0.0.1"`` or ``"::1"``.
    :param port: the port; 0 picks a free one.
    :param name: a label for threads and logs.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, name: str = "server") -> None:
        self.host = host
        self.name = name
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accepting: threading.Thread | None = None
        self._connections = 0
        self._socks: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()

    # -- to override

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        """Serve one connection; runs on the connection's own thread. Should
        not be called from user code.

        :param conn: the accepted socket (closed after this returns).
        :param client_port: the client's source port.
        :param number: which connection of the server this is (1, 2, ...).
        """
        raise NotImplementedError

    # -- lifecycle

    def start(self: _Server) -> _Server:
        """Start listening (a no-op when already running).

        :returns: the server.
        """
        with self._lock:
            if self._listener is not None:
                return self
            self._stopping.clear()
            listener = socket.create_server((self.host, self._port), family=family(self.host), backlog=128)
            listener.setblocking(False)
            self._listener = listener
            self._port = listener.getsockname()[1]
            self._wake = socket.socketpair()
            self._accepting = threading.Thread(
                target=self._accept_loop, args=(listener, self._wake[0]),
                name=f"{self.name}-accept", daemon=True,
            )
            self._accepting.start()
        log.debug("%s listening on %s port %s", self.name, self.host, self._port)
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, and join the threads.

        Prompt (well under a second, unless a :meth:`handle` blocks on
        something other than its sockets or the stop event) and idempotent.
        """
        with self._lock:
            listener, self._listener = self._listener, None
            wake, self._wake = self._wake, None
            accepting, self._accepting = self._accepting, None
            self._stopping.set()
            for sock in self._socks:
                shutdown(sock)
            threads = list(self._threads)
        deadline = time.monotonic() + STOP_TIMEOUT
        if wake is not None:
            try:
                wake[1].send(b"x")
            except OSError:
                pass
        if accepting is not None:
            accepting.join(STOP_TIMEOUT / 2)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in (listener, *(wake or ())):
            if sock is not None:
                sock.close()

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port (the requested one before the first start)."""
        return self._port

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._connections

    # -- for subclasses

    def _track(self, sock: socket.socket) -> socket.socket:
        """Have :meth:`stop` shut ``sock`` down (e.g. a TLS wrapper or an
        upstream connection); returns it."""
        with self._lock:
            self._socks.add(sock)
        if self._stopping.is_set():
            shutdown(sock)
        return sock

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)

    # -- the loop

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is wake:
                        return
                    try:
                        conn, addr = listener.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                        continue
                    except OSError:  # out of descriptors: let some close
                        log.debug("%s: accept failed", self.name, exc_info=True)
                        time.sleep(0.01)
                        continue
                    self._start_connection(conn, addr[1])

    def _start_connection(self, conn: socket.socket, client_port: int) -> None:
        conn.setblocking(True)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self._lock:
            if self._stopping.is_set():
                conn.close()
                return
            self._connections += 1
            number = self._connections
            self._socks.add(conn)
            thread = threading.Thread(
                target=self._serve, args=(conn, client_port, number),
                name=f"{self.name}-conn-{number}", daemon=True,
            )
            self._threads.add(thread)
        thread.start()

    def _serve(self, conn: socket.socket, client_port: int, number: int) -> None:
        try:
            self.handle(conn, client_port, number)
        except Exception:  # resets, failed handshakes, stop(): all quiet
            log.debug("%s connection %d ended", self.name, number, exc_info=True)
        finally:
            conn.close()
            with self._lock:
                self._socks.discard(conn)
                self._threads.discard(threading.current_thread())
