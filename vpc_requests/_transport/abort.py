"""Workers-style cancellation: :class:`AbortController` and :class:`AbortSignal`.

A fetch given a ``signal`` runs inside an abort *scope* that knows every socket
the fetch is using (while connecting, during the TLS handshake, waiting for
headers, reading the body). When the signal fires, from any thread, the scope
shuts those sockets down, so the blocked call returns at once and the fetch
raises :class:`~vpc_requests.AbortError`. Shut-down connections are discarded
by urllib3, so the pool stays usable.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any, Callable

from .._errors import AbortError

__all__ = ["AbortController", "AbortSignal", "Scope", "current_scope", "shutdown_socket", "watch"]


class AbortSignal:
    """Tells a fetch to stop. Made by :class:`AbortController` or
    :meth:`AbortSignal.timeout`; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._reason: object = None
        self._callbacks: dict[int, Callable[[object], None]] = {}
        self._ids = itertools.count()

    @classmethod
    def timeout(cls, seconds: float) -> AbortSignal:
        """A signal that aborts itself after ``seconds``: a deadline for the
        whole fetch, body included.

        :param seconds: the deadline, from now.
        :returns: the signal; its ``reason`` is a :class:`TimeoutError`.
        """
        if seconds < 0:
            raise ValueError(f"AbortSignal.timeout() needs seconds >= 0, got {seconds!r}")
        signal = cls()
        _TIMERS.schedule(
            seconds, signal._abort, TimeoutError(f"signal timed out after {seconds:g} s")
        )
        return signal

    @classmethod
    def aborted_with(cls, reason: object = None) -> AbortSignal:
        """A signal that is already aborted (JavaScript's ``AbortSignal.abort()``).

        :param reason: the abort reason.
        """
        signal = cls()
        signal._abort(reason)
        return signal

    @property
    def aborted(self) -> bool:
        """Whether the signal has fired."""
        return self._aborted

    @property
    def reason(self) -> object:
        """What the signal was aborted with (``None`` until it fires)."""
        return self._reason

    def throw_if_aborted(self) -> None:
        """Raise :class:`~vpc_requests.AbortError` if the signal has fired."""
        if self._aborted:
            raise AbortError(self._reason)

    def add_callback(self, callback: Callable[[object], None]) -> Callable[[], None]:
        """Call ``callback(reason)`` when the signal fires (at once if it has).

        :returns: a function that removes the callback again.
        """
        with self._lock:
            if not self._aborted:
                key = next(self._ids)
                self._callbacks[key] = callback
                return lambda: self._remove(key)
        callback(self._reason)
        return lambda: None

    def _remove(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)

    def _abort(self, reason: object) -> None:
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            self._reason = reason
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback(reason)

    def __repr__(self) -> str:
        state = f"aborted, reason={self._reason!r}" if self._aborted else "active"
        return f"<AbortSignal {state}>"


class AbortController:
    """Owns an :class:`AbortSignal` and fires it with :meth:`abort`."""

    def __init__(self) -> None:
        self.signal = AbortSignal()

    def abort(self, reason: object = None) -> None:
        """Fire the signal; fetches using it stop with
        :class:`~vpc_requests.AbortError`. Later calls do nothing.

        :param reason: kept as ``signal.reason`` and ``AbortError.reason``.
        """
        self.signal._abort("aborted" if reason is None else reason)


class Scope:
    """The sockets and connections one fetch is using, to shut down on abort."""

    def __init__(self, signal: AbortSignal) -> None:
        self.signal = signal
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._conns: list[Any] = []
        self._remove: Callable[[], None] = lambda: None

    def watch_socket(self, sock: socket.socket) -> None:
        """Shut ``sock`` down if the signal fires while this fetch runs.

        :raises AbortError: when the signal has fired already: an aborted
            fetch opens no new connection (a retry urllib3 would make).
        """
        with self._lock:
            self._sockets.append(sock)
        if self.signal.aborted:
            shutdown_socket(sock)
            raise AbortError(self.signal.reason)

    def watch_connection(self, conn: Any) -> None:
        """Shut down ``conn.sock`` on abort, for as long as ``conn`` still
        carries this fetch (``conn.vpc_scope is self``)."""
        conn.vpc_scope = self
        with self._lock:
            self._conns.append(conn)
        if self.signal.aborted:
            self._on_abort(self.signal.reason)

    def _on_abort(self, reason: object) -> None:
        with self._lock:
            sockets = list(self._sockets)
            conns = [c for c in self._conns if getattr(c, "vpc_scope", None) is self]
        for sock in sockets:
            shutdown_socket(sock)
        for conn in conns:
            # vpc_response_sock: the socket a response body is read from,
            # which http.client no longer keeps as conn.sock when the
            # response closes the connection (see _DialerMixin.getresponse).
            for attr in ("sock", "vpc_response_sock"):
                held = getattr(conn, attr, None)
                if held is not None:
                    shutdown_socket(held)

    def __enter__(self) -> Scope:
        self.signal.throw_if_aborted()
        self._remove = self.signal.add_callback(self._on_abort)
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)
        with self._lock:
            self._sockets.clear()

    def release(self) -> None:
        """Forget everything: the fetch is over, body included."""
        self._remove()
        with self._lock:
            self._sockets.clear()
            for conn in self._conns:
                if getattr(conn, "vpc_scope", None) is self:
                    conn.vpc_scope = None
            self._conns.clear()


_CURRENT: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "vpc_requests_abort_scope", default=None
)


def current_scope() -> Scope | None:
    """The abort scope of the fetch running in this thread, if any.

    Should not be called from user code; the transport uses it to register
    sockets.
    """
    return _CURRENT.get()


def watch(sock: socket.socket) -> None:
    """Register ``sock`` with the running fetch's abort scope, if any.

    Should not be called from user code; the transport calls it for every
    socket it opens, before connecting or handshaking.
    """
    active = _CURRENT.get()
    if active is not None:
        active.watch_socket(sock)


def scope(signal: AbortSignal) -> Scope:
    """A new abort scope for one fetch; use as a context manager."""
    return Scope(signal)


def shutdown_socket(sock: socket.socket) -> None:
    """Shut ``sock`` down for reading and writing, from any thread, so that
    a call blocked on it returns at once; errors ignored."""
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter tears down the
    # SSL object under a thread that may be blocked reading it. TLS inside a
    # TLS tunnel is urllib3's SSLTransport: shut down the socket it wraps.
    sock = getattr(sock, "socket", sock)
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


class _Timers:
    """One daemon thread firing every :meth:`AbortSignal.timeout` deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[object], None], object]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, fire: Callable[[object], None], reason: object) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._ids), fire, reason))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="vpc_requests-abort-timers", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                _, _, fire, reason = heapq.heappop(self._heap)
            fire(reason)

    def _after_fork(self) -> None:
        # The thread does not exist in a forked child; start afresh there.
        type(self).__init__(self)


_TIMERS = _Timers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_TIMERS._after_fork)
