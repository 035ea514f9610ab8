"""A local TCP forwarder: every connection accepted on a local address is
piped, both ways, through a binding's ``connect()``, so that any client (a
database driver, ``psql``) can use a ``tcp`` VPC Service::

    with env.DB.forward() as (host, port):
        psycopg.connect(host=host, port=port, dbname="app")

Each accepted connection gets its own upstream connection and two pump
threads, one per direction. A half-close is passed on (EOF from one side
becomes ``shutdown(SHUT_WR)`` towards the other), so request/response
protocols that signal the end of a request by closing their sending side
work. :meth:`Forwarder.stop` closes the listener and every pipe.

Listening on anything but a loopback address opens the private service to
whoever reaches this machine: it needs ``allow_remote=True`` (``--allow-remote``)
and logs a warning.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Callable, TextIO

from .._model.hosts import host_port, ip_literal
from .._transport.abort import AbortController, AbortSignal

__all__ = ["Connect", "Forwarder", "ListenAddress", "check_listen", "forwarding", "is_loopback", "open_forwarder",
           "parse_listen", "serve"]

log = logging.getLogger("vpc_requests.forward")  # the name it had before the layers; users filter on it

ListenAddress = tuple[str, int]
#: Opens one upstream connection; the signal fires when the forwarder
#: stops, so a dial in progress ends at once.
Connect = Callable[[AbortSignal], socket.socket]

_CHUNK = 256 * 1024
_JOIN = 5.0


def parse_listen(text: str, default_port: int = 0) -> ListenAddress:
    """``HOST:PORT``, ``[V6]:PORT``, ``HOST`` or ``PORT`` as ``(host, port)``.

    :param default_port: the port when only a host is given.
    :raises ValueError: for a bad port.
    """
    text = text.strip()
    if text.isdigit():
        host, port = "127.0.0.1", text
    elif text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else str(default_port)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, str(default_port)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {text!r}: the port must be 0-65535")
    return (host or "127.0.0.1", int(port))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address."""
    if host.lower().rstrip(".") == "localhost":
        return True
    address = ip_literal(host)
    return address is not None and address.is_loopback


def check_listen(listen: ListenAddress, allow_remote: bool) -> str | None:
    """Refuse a non-loopback listen address unless ``allow_remote``.

    :returns: the warning to show when a non-loopback address is allowed,
        else ``None``.
    :raises ValueError: for a non-loopback address without ``allow_remote``.
    """
    host, port = listen
    if is_loopback(host):
        return None
    shown = host_port(host, port)
    if not allow_remote:
        raise ValueError(
            f"refusing to listen on {shown}: it is not a loopback address, so anyone who reaches "
            "this machine could use the binding; listen on 127.0.0.1, or pass --allow-remote "
            "(allow_remote=True) if that is what you want"
        )
    return (f"listening on {shown}, not loopback: anyone who reaches this machine on that "
            "address can use the binding's private service")


class Forwarder:
    """Accepts connections on ``listen`` and pipes each through ``connect()``.

    :param connect: opens one upstream connection (a binding's
        ``connect``, given the forwarder's stop signal); it may raise, and
        the local connection is then closed.
    :param listen: ``(host, port)`` to listen on; port 0 picks a free one.
    :param allow_remote: allow a non-loopback listen address.
    :param name: for log lines (the binding's name).
    :param warn: shows the non-loopback warning (default: a log warning).
    :raises ValueError: for a non-loopback address without ``allow_remote``.
    :raises OSError: when the address cannot be bound.
    """

    def __init__(
        self,
        connect: Connect,
        listen: ListenAddress = ("127.0.0.1", 0),
        *,
        allow_remote: bool = False,
        name: str | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        warning = check_listen(listen, allow_remote)
        if warning is not None:
            if warn is None:
                log.warning("forwarder %s: %s", name, warning)
            else:
                warn(warning)
        self._connect = connect
        self._stopper = AbortController()
        self.name = name
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self._listener = socket.create_server(listen, family=family, backlog=128)
        sockname = self._listener.getsockname()
        self._address: ListenAddress = (str(sockname[0]), int(sockname[1]))
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._accepter: threading.Thread | None = None
        #: connections accepted so far
        self.accepted = 0

    @property
    def address(self) -> ListenAddress:
        """``(host, port)`` the forwarder listens (or listened) on."""
        return self._address

    @property
    def active(self) -> int:
        """Connections being piped now."""
        with self._lock:
            return sum(1 for t in self._threads if t.name.startswith("vpc-forward-conn"))

    def start(self) -> Forwarder:
        """Start accepting (in a background thread).

        :returns: ``self``.
        """
        self._accepter = threading.Thread(target=self._accept_loop, name="vpc-forward-accept", daemon=True)
        self._accepter.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every pipe and wait for the threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._stopper.abort("the forwarder stopped")  # dials in progress end now
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._accepter is not None:
            self._accepter.join(_JOIN)
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            _shutdown(sock, socket.SHUT_RDWR)
        deadline = time.monotonic() + _JOIN
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        log.debug("forwarder %s stopped after %d connections", self.name, self.accepted)

    def __enter__(self) -> Forwarder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- threads --------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r or self._stopping.is_set():
                        return
                    try:
                        client, peer = self._listener.accept()
                    except OSError as exc:  # e.g. EMFILE: keep serving the others
                        log.warning("forwarder %s: accept failed: %s", self.name, exc)
                        continue
                    self.accepted += 1
                    log.debug("forwarder %s: connection from %s", self.name, peer[0])
                    self._spawn(self._serve, client, name=f"vpc-forward-conn-{self.accepted}")

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> None:
        thread = threading.Thread(target=self._run, args=(target, *args), name=name, daemon=True)
        with self._lock:
            if self._stopping.is_set():
                for arg in args:
                    if isinstance(arg, socket.socket):
                        arg.close()
                return
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._sockets.add(sock)
            return True

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._sockets.discard(sock)
        for sock in socks:
            sock.close()

    def _serve(self, client: socket.socket) -> None:
        if not self._track(client):
            client.close()
            return
        try:
            upstream = self._connect(self._stopper.signal)
        except Exception as exc:  # a ProxyError, AbortError, ...: drop this client only
            log.warning("forwarder %s: could not connect upstream: %s", self.name, exc)
            self._forget(client)
            return
        if not self._track(upstream):
            self._forget(client, upstream)
            return
        client.settimeout(None)
        upstream.settimeout(None)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pump, args=(upstream, client), name="vpc-forward-pump", daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        self._forget(client, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until EOF (then half-close ``sink``) or an
    error (then shut both down, so the other direction ends too)."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    try:
        while True:
            size = source.recv_into(buffer)
            if not size:
                break
            sink.sendall(view[:size])
    except OSError:
        _shutdown(source, socket.SHUT_RDWR)
        _shutdown(sink, socket.SHUT_RDWR)
        return
    if isinstance(sink, ssl.SSLSocket):
        # SSLSocket.shutdown() drops its TLS state; a TLS tunnel cannot
        # half-close: end both directions instead.
        _shutdown(source, socket.SHUT_RDWR)
        _shutdown(sink, socket.SHUT_RDWR)
    else:
        _shutdown(sink, socket.SHUT_WR)


def _shutdown(sock: socket.socket, how: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, how)


def forwarding(
    connect: Connect,
    listen: ListenAddress = ("127.0.0.1", 0),
    *,
    allow_remote: bool = False,
    name: str | None = None,
) -> contextlib.AbstractContextManager[ListenAddress]:
    """A :class:`Forwarder` for the duration of a ``with`` block; the listen
    address is checked at once, the socket opened on entering.

    :returns: a context manager giving the ``(host, port)`` it listens on.
    :raises ValueError: for a non-loopback address without ``allow_remote``.
    """
    check_listen(listen, allow_remote)
    return _forwarding(connect, listen, allow_remote, name)


@contextlib.contextmanager
def _forwarding(
    connect: Connect, listen: ListenAddress, allow_remote: bool, name: str | None
) -> Iterator[ListenAddress]:
    with Forwarder(connect, listen, allow_remote=allow_remote, name=name) as forwarder:
        yield forwarder.address


def open_forwarder(
    connect: Connect,
    host: str,
    port: int,
    *,
    next_free: bool = False,
    allow_remote: bool = False,
    name: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Forwarder:
    """A :class:`Forwarder` on ``host:port``; with ``next_free``, on the
    first free port of ``port`` and the 19 after it, else any free port
    (a port in use, or one this user may not bind, is skipped).

    :raises ValueError: for a non-loopback ``host`` without ``allow_remote``.
    :raises OSError: when the address cannot be bound.
    """
    candidates = [port + i for i in range(20) if port + i <= 65535] + [0] if next_free and port else [port]
    for candidate in candidates:
        try:
            return Forwarder(connect, (host, candidate), allow_remote=allow_remote, name=name, warn=warn)
        except OSError as exc:
            # taken, or privileged (a service on port 443 for a non-root user)
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES) or candidate == candidates[-1]:
                raise
            warn = _quiet  # said once already
    raise AssertionError("unreachable")  # pragma: no cover


def _quiet(_: str) -> None:
    pass


def serve(forwarder: Forwarder, announce: str, out: TextIO) -> int:
    """Run ``forwarder`` until SIGTERM (returns 0) or Ctrl-C (the
    :class:`KeyboardInterrupt` propagates, for exit status 130), then close
    every pipe. The command line's ``forward``.

    :param announce: the line printed (and flushed) once listening.
    :returns: 0.
    """
    stopping = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        with forwarder:
            print(announce, file=out, flush=True)
            while not stopping.wait(0.5):
                pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
