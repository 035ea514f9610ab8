"""Real loopback "private services" that record what they saw, for tests, the
``vpc-requests demo`` command, examples and benchmarks.

A :class:`PrivateService` is a small threaded HTTP/1.1 server (plain or TLS)
on loopback. It answers every request with a :class:`Reply` from its handler
(by default an :func:`echo` of the request as JSON) and keeps a :class:`Seen`
record of each request exactly as it arrived: method, request-target, headers
in original case and order, decoded body, ``Host`` header, TLS SNI name, the
listening port and the client's source port::

    from vpc_requests.testing import PrivateService

    with PrivateService(tls=True) as svc:          # certificate for
        ...                                        # internal-api.company.local
        seen = svc.seen[0]                         # and 10.0.1.50
        assert seen.host == "internal-api.company.local"
        assert seen.sni == "internal-api.company.local"

Also here, for failure tests: :class:`Unresponsive` (accepts and never
answers), :func:`closed_port` (nothing listening) and :class:`BacklogFull`
(connects hang).

Standard library only; TLS certificates come from ``trustme``, imported only
when a TLS service is made without an explicit ``ssl_context``
(``pip install 'vpc_requests[demo]'``).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, cast

from .abort import shutdown_socket

if TYPE_CHECKING:
    import trustme

__all__ = [
    "BacklogFull",
    "PrivateService",
    "Reply",
    "Seen",
    "Unresponsive",
    "closed_port",
    "echo",
]

log = logging.getLogger(__name__)

#: Names the default TLS certificate is issued for.
DEFAULT_NAMES: tuple[str, ...] = ("internal-api.company.local", "10.0.1.50")

_MAX_LINE = 65536
_MAX_HEADERS = 200
_STOP_TIMEOUT = 0.9
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_NO_BODY_STATUSES = frozenset({204, 304})


# --------------------------------------------------------------------- values


@dataclass(frozen=True)
class Seen:
    """One request as a :class:`PrivateService` received it.

    :param method: the request method, e.g. ``"GET"``.
    :param target: the request-target as sent, e.g. ``"/users?x=1"``.
    :param headers: the header fields as received, original case and order.
    :param body: the body, decoded from ``Content-Length`` or chunked framing.
    :param host: the ``Host`` header value, ``None`` when absent.
    :param sni: the TLS SNI name the client sent; ``None`` for plain HTTP or
        when the client sent none (as for an IP-literal URL host).
    :param tls: whether the request came over TLS.
    :param port: the port the service listens on.
    :param client_port: the client's source port (tells connections apart).
    :param connection: which of the service's TCP connections (1, 2, ...)
        carried the request.
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    host: str | None
    sni: str | None
    tls: bool
    port: int
    client_port: int
    connection: int

    def header(self, name: str) -> str | None:
        """Look a header up by name, ignoring case.

        :param name: the header name.
        :returns: its value (repeated fields joined with ``", "``), or ``None``.
        """
        wanted = name.lower()
        values = [v for k, v in self.headers if k.lower() == wanted]
        return ", ".join(values) if values else None


@dataclass(frozen=True)
class Reply:
    """What a handler answers.

    ``headers`` is normalised to a tuple of pairs and a ``str`` body to UTF-8.
    ``Content-Length`` is added unless the reply sets ``Content-Length`` or
    ``Transfer-Encoding`` itself (a declared length that differs from the body
    sends the short body and closes the connection: an incomplete response).

    :param status: the status code.
    :param headers: response headers, a mapping or a sequence of pairs.
    :param body: the response body.
    :param delay: seconds to wait before answering (for read timeouts).
    :param close: close the connection without any response.
    :param raw: send these bytes instead of a response, then close.
    """

    status: int = 200
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    body: bytes | str = b""
    delay: float = 0.0
    close: bool = False
    raw: bytes | None = None

    def __post_init__(self) -> None:
        items = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        object.__setattr__(self, "headers", tuple((str(k), str(v)) for k, v in items))
        if isinstance(self.body, str):
            object.__setattr__(self, "body", self.body.encode("utf-8"))
        else:
            object.__setattr__(self, "body", bytes(self.body))
        if self.raw is not None:
            object.__setattr__(self, "raw", bytes(self.raw))
        if not 100 <= self.status <= 999:
            raise ValueError(f"status must be 100-999, not {self.status!r}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, not {self.delay!r}")

    @classmethod
    def json(
        cls,
        obj: Any,
        status: int = 200,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    ) -> Reply:
        """A JSON reply (``Content-Type: application/json`` unless given).

        :param obj: what to serialise.
        :param status: the status code.
        :param headers: extra response headers.
        :returns: the reply.
        """
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.insert(0, ("Content-Type", "application/json"))
        return cls(status=status, headers=pairs, body=json.dumps(obj).encode("utf-8"))

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        """A redirect.

        :param location: the ``Location`` header value.
        :param status: the status code (301, 302, 303, 307, 308).
        :returns: the reply.
        """
        return cls(status=status, headers=(("Location", location),))


def echo(seen: Seen) -> Reply:
    """The default handler: 200 with a JSON body describing the request.

    The keys: ``method``, ``path`` (the request-target, query included),
    ``host``, ``sni``, ``port``, ``body`` (text, undecodable bytes replaced)
    and ``headers`` (name -> value, repeated fields joined with ``", "``).

    :param seen: the request.
    :returns: the reply.
    """
    headers: dict[str, str] = {}
    for name, value in seen.headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Reply.json({
        "method": seen.method,
        "path": seen.target,
        "host": seen.host,
        "sni": seen.sni,
        "port": seen.port,
        "body": seen.body.decode("utf-8", "replace"),
        "headers": headers,
    })


# ------------------------------------------------------------------ plumbing


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_tls_state = threading.local()


def _record_sni(ssl_socket: Any, server_name: str | None, context: ssl.SSLContext) -> None:
    # Runs on the connection's own thread, inside do_handshake().
    _tls_state.sni = server_name


def _install_sni_recorder(context: ssl.SSLContext) -> None:
    previous = context.sni_callback
    if previous is None:
        context.sni_callback = _record_sni
        return
    if previous is _record_sni or isinstance(previous, _ChainedSNI):
        return  # shared with another service: already recording
    # typeshed types the callback's server_name as str; it is None when the
    # client sends no SNI.
    context.sni_callback = _ChainedSNI(cast("Callable[[Any, str | None, ssl.SSLContext], Any]", previous))


class _ChainedSNI:
    """An SNI callback that records the name, then calls the one the context
    already had."""

    def __init__(self, previous: Callable[[Any, str | None, ssl.SSLContext], Any]) -> None:
        self.previous = previous

    def __call__(self, ssl_socket: Any, server_name: str | None, ctx: ssl.SSLContext) -> Any:
        _record_sni(ssl_socket, server_name, ctx)
        return self.previous(ssl_socket, server_name, ctx)


def _require_trustme() -> Any:
    try:
        import trustme
    except ImportError as exc:
        raise ImportError(
            "a TLS PrivateService needs 'trustme' to make its certificate: "
            "pip install 'vpc_requests[demo]' (or pass ssl_context=)"
        ) from exc
    return trustme


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _AcceptLoop:
    """A listener and the daemon thread accepting on it; woken for closing."""

    def __init__(
        self,
        host: str,
        port: int,
        on_accept: Callable[[socket.socket, Any], None],
        name: str,
        backlog: int = 128,
    ) -> None:
        self.sock = socket.create_server((host, port), family=_family(host), backlog=backlog)
        self.port: int = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._on_accept = on_accept
        self._thread = threading.Thread(target=self._run, name=f"{name}-accept", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        conn, addr = self.sock.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                        continue
                    except OSError:  # out of descriptors: let some close
                        log.debug("accept failed", exc_info=True)
                        time.sleep(0.01)
                        continue
                    conn.setblocking(True)
                    self._on_accept(conn, addr)

    def close(self, timeout: float) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout)
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()


# ------------------------------------------------------------------- service


class PrivateService:
    """A private service on loopback that records every request it receives.

    HTTP/1.1 with persistent connections, request bodies framed by
    ``Content-Length`` or chunked, ``Expect: 100-continue``; each TCP
    connection on its own daemon thread (TLS handshake included, so a client
    that rejects the certificate blocks nothing; a failed handshake records
    nothing and prints nothing). Use it as a context manager, or call
    :meth:`start` and :meth:`stop`; a stopped service can be started again on
    the same port.

    :param tls: serve HTTPS.
    :param host: the address to listen on, e.g. ``"127.0.0.1"`` or ``"::1"``.
    :param port: the port; 0 picks a free one.
    :param ca: the ``trustme.CA`` that issues the certificate (TLS only); a new
        one per service when omitted.
    :param names: DNS names and IP addresses the certificate is issued for.
    :param handler: called with each :class:`Seen` on the connection's
        thread, returns the :class:`Reply`; :func:`echo` by default. An
        exception becomes a 500 reply and is kept in :attr:`errors`.
    :param name: a label for threads and logs.
    :param ssl_context: a ready server context to use instead of a ``trustme``
        certificate (TLS only; its ``sni_callback`` is wrapped to record SNI).
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        ca: trustme.CA | None = None,
        names: Sequence[str] = DEFAULT_NAMES,
        handler: Callable[[Seen], Reply] | None = None,
        name: str = "service",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if isinstance(names, str):
            names = (names,)
        self.tls = tls
        self.host = host
        self.names: tuple[str, ...] = tuple(names)
        self.name = name
        self.handler: Callable[[Seen], Reply] = handler or echo
        self.ca = ca
        self._port = port
        self._context: ssl.SSLContext | None = None
        if not tls:
            if ca is not None or ssl_context is not None:
                raise ValueError("ca= and ssl_context= need tls=True")
        elif ssl_context is not None:
            self._context = ssl_context
        else:
            if not self.names:
                raise ValueError("a TLS service needs at least one name for its certificate")
            if self.ca is None:
                self.ca = _require_trustme().CA()
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ca.issue_cert(*self.names).configure_cert(self._context)
        if self._context is not None:
            _install_sni_recorder(self._context)

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._loop: _AcceptLoop | None = None
        self._seen: list[Seen] = []
        self._errors: list[BaseException] = []
        self._connections = 0
        self._handshakes = 0
        self._active = 0
        self._max_concurrent = 0
        self._open: dict[int, socket.socket] = {}
        self._threads: set[threading.Thread] = set()
        self._ca_file: weakref.finalize[[str], PrivateService] | None = None
        self._ca_path = ""

    # -- lifecycle

    def start(self) -> PrivateService:
        """Start listening (a no-op when already running).

        :returns: the service.
        """
        with self._lock:
            if self._loop is not None:
                return self
            self._stopping.clear()
            self._loop = _AcceptLoop(self.host, self._port, self._accept, self.name)
            self._port = self._loop.port
        log.debug("%s listening on %s port %s", self.name, self.host, self._port)
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, and join the threads.

        Prompt (well under a second, unless a handler itself blocks) and
        idempotent. Removes the :attr:`ca_path` file.
        """
        with self._lock:
            loop, self._loop = self._loop, None
            self._stopping.set()
            for sock in self._open.values():
                shutdown_socket(sock)
            threads = list(self._threads)
        deadline = time.monotonic() + _STOP_TIMEOUT
        if loop is not None:
            loop.close(_STOP_TIMEOUT / 2)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._ca_file is not None:
            self._ca_file()
            self._ca_file = None

    def __enter__(self) -> PrivateService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return f"<PrivateService {self.name!r} {self.url} {state}>"

    # -- what it saw

    @property
    def port(self) -> int:
        """The listening port (the requested one before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        """``http[s]://host:port`` of the listener itself (IPv6 bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self._port}"

    @property
    def ca_path(self) -> str:
        """Path of a PEM file holding the CA certificate, for ``verify=``.

        Made on first use; removed by :meth:`stop` (and at exit).

        :raises ValueError: the service has no ``trustme`` CA.
        """
        if self.ca is None:
            raise ValueError(f"service {self.name!r} has no CA (plain HTTP, or ssl_context= without ca=)")
        with self._lock:
            if self._ca_file is None or not self._ca_file.alive:
                label = "".join(c if c.isalnum() else "-" for c in self.name)
                fd, path = tempfile.mkstemp(prefix=f"vpc-requests-{label}-ca-", suffix=".pem")
                with os.fdopen(fd, "wb") as f:
                    f.write(self.ca.cert_pem.bytes())
                self._ca_file = weakref.finalize(self, _remove, path)
                self._ca_path = path
            return self._ca_path

    @property
    def seen(self) -> list[Seen]:
        """The requests received so far, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        """Forget the requests seen so far (the counters keep counting)."""
        with self._lock:
            self._seen.clear()

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions the handler raised (each answered with a 500)."""
        with self._lock:
            return list(self._errors)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._connections

    @property
    def handshakes(self) -> int:
        """TLS handshakes completed so far."""
        return self._handshakes

    @property
    def max_concurrent(self) -> int:
        """The most requests that were being handled at the same time."""
        return self._max_concurrent

    # -- serving

    def _accept(self, conn: socket.socket, addr: Any) -> None:
        with self._lock:
            if self._stopping.is_set():
                conn.close()
                return
            self._connections += 1
            number = self._connections
            self._open[number] = conn
            thread = threading.Thread(
                target=self._serve, args=(conn, addr[1], number),
                name=f"{self.name}-conn-{number}", daemon=True,
            )
            self._threads.add(thread)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        thread.start()

    def _serve(self, conn: socket.socket, client_port: int, number: int) -> None:
        sock = conn
        reader = None
        try:
            sni = None
            if self._context is not None:
                sock = self._context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                with self._lock:
                    self._open[number] = sock
                    if self._stopping.is_set():
                        return
                _tls_state.sni = None
                sock.do_handshake()
                sni = _tls_state.sni
                with self._lock:
                    self._handshakes += 1
            reader = sock.makefile("rb")
            while not self._stopping.is_set():
                if not self._exchange(sock, reader, client_port, number, sni):
                    break
        except Exception:  # handshake failures, resets, stop(): all silent
            log.debug("%s connection %d ended", self.name, number, exc_info=True)
        finally:
            with self._lock:
                self._open.pop(number, None)
            if reader is not None:
                reader.close()
            sock.close()
            conn.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _exchange(
        self, sock: socket.socket, reader: Any, client_port: int, number: int, sni: str | None,
    ) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            request = self._read_request(sock, reader)
        except _BadRequest as exc:
            body = f"{exc}\n".encode()
            reason = _REASONS.get(exc.status, "")
            sock.sendall(
                f"HTTP/1.1 {exc.status} {reason}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            return False
        if request is None:
            return False
        method, target, headers, body, keep = request
        seen = Seen(
            method=method, target=target, headers=headers, body=body,
            host=next((v for k, v in headers if k.lower() == "host"), None),
            sni=sni, tls=self.tls, port=self._port, client_port=client_port,
            connection=number,
        )
        with self._lock:
            self._seen.append(seen)
            self._active += 1
            self._max_concurrent = max(self._max_concurrent, self._active)
        try:
            try:
                reply = self.handler(seen)
                if not isinstance(reply, Reply):
                    raise TypeError(f"handler returned {type(reply).__name__}, not Reply")
                data, keep = _render(reply, method, keep)
            except Exception as exc:
                log.exception("%s: handler failed for %s %s", self.name, method, target)
                with self._lock:
                    self._errors.append(exc)
                reply = Reply(500, (("Content-Type", "text/plain"),), f"handler raised {exc!r}\n")
                data, keep = _render(reply, method, keep)
            if reply.delay and self._stopping.wait(reply.delay):
                return False
            if reply.close:
                return False
            if reply.raw is not None:
                sock.sendall(reply.raw)
                return False
            sock.sendall(data)
            return keep and not self._stopping.is_set()
        finally:
            with self._lock:
                self._active -= 1

    def _read_request(
        self, sock: socket.socket, reader: Any,
    ) -> tuple[str, str, tuple[tuple[str, str], ...], bytes, bool] | None:
        line = reader.readline(_MAX_LINE + 1)
        for _ in range(8):  # RFC 9112 2.2: ignore empty lines before a request
            if line not in (b"\r\n", b"\n"):
                break
            line = reader.readline(_MAX_LINE + 1)
        if not line:
            return None
        if len(line) > _MAX_LINE:
            raise _BadRequest(414, "request line too long")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, f"bad request line {line[:100]!r}")
        method, target, version = parts
        headers = _read_fields(reader)

        tokens: set[str] = set()
        transfer: list[str] = []
        lengths: list[str] = []
        expect = False
        for key, value in headers:
            lower = key.lower()
            if lower == "connection":
                tokens.update(t.strip().lower() for t in value.split(","))
            elif lower == "transfer-encoding":
                transfer.extend(t.strip().lower() for t in value.split(",") if t.strip())
            elif lower == "content-length":
                lengths.append(value.strip())
            elif lower == "expect" and value.strip().lower() == "100-continue":
                expect = True
        keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens

        if expect and version != "HTTP/1.0":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if transfer:
            if transfer[-1] != "chunked":
                raise _BadRequest(501, f"unsupported transfer coding {transfer[-1]!r}")
            body = _read_chunked(reader)
        elif lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                raise _BadRequest(400, f"bad Content-Length {lengths!r}")
            size = int(lengths[0])
            body = reader.read(size) if size else b""
            if len(body) < size:
                return None  # the client went away mid-body
        else:
            body = b""
        return method, target, headers, body, keep


def _read_fields(reader: Any) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise _BadRequest(431, "header line too long")
        if not line.endswith(b"\n"):
            raise ConnectionError("client went away inside the headers")
        if line in (b"\r\n", b"\n"):
            return tuple(fields)
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and fields:  # obsolete line folding
            key, value = fields[-1]
            fields[-1] = (key, f"{value} {text.strip()}")
            continue
        key, sep, value = text.partition(":")
        if not sep or not key or key != key.strip():
            raise _BadRequest(400, f"bad header line {text[:100]!r}")
        fields.append((key, value.strip(" \t")))
        if len(fields) > _MAX_HEADERS:
            raise _BadRequest(431, "too many header fields")


def _read_chunked(reader: Any) -> bytes:
    chunks = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise ConnectionError("client went away inside a chunked body")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise _BadRequest(400, f"bad chunk size {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        data = reader.read(size)
        if len(data) < size or reader.readline(3) not in (b"\r\n", b"\n"):
            raise ConnectionError("client went away inside a chunk")
        chunks.append(data)
    _read_fields(reader)  # trailer section, discarded
    return b"".join(chunks)


def _render(reply: Reply, method: str, keep: bool) -> tuple[bytes, bool]:
    headers = list(reply.headers)
    names = {k.lower() for k, _ in headers}
    body = reply.body
    assert isinstance(body, bytes)
    for key, value in headers:
        if key.lower() == "connection" and "close" in value.lower():
            keep = False
    bodiless = reply.status < 200 or reply.status in _NO_BODY_STATUSES
    if bodiless:
        body = b""
    elif "content-length" in names:
        declared = [v for k, v in headers if k.lower() == "content-length"]
        if declared != [str(len(body))]:
            keep = False  # a deliberately wrong length: the connection is spent
    elif "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    if not keep and "connection" not in names:
        headers.append(("Connection", "close"))
    if method == "HEAD":
        body = b""
    lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, keep


# ------------------------------------------------------------------- faults


class Unresponsive:
    """A listener that accepts TCP connections and never answers (read
    timeouts). Connections are held open until :meth:`stop`.

    :param host: the loopback address to listen on.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._loop: _AcceptLoop | None = None

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (and still held)."""
        with self._lock:
            return len(self._held)

    def _hold(self, conn: socket.socket, addr: Any) -> None:
        with self._lock:
            if self._loop is None:
                conn.close()
            else:
                self._held.append(conn)

    def start(self) -> Unresponsive:
        """Start listening.

        :returns: the listener.
        """
        with self._lock:
            if self._loop is None:
                self._loop = _AcceptLoop(self.host, self.port, self._hold, "unresponsive")
                self.port = self._loop.port
        return self

    def stop(self) -> None:
        """Close the listener and every held connection (idempotent)."""
        with self._lock:
            loop, self._loop = self._loop, None
            held, self._held = self._held, []
        if loop is not None:
            loop.close(_STOP_TIMEOUT)
        for conn in held:
            conn.close()

    def __enter__(self) -> Unresponsive:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port with nothing listening (bound, then closed), for
    connection-refused tests. Another process could take it meanwhile; on
    loopback in a test run that does not happen in practice.

    :param host: the loopback address.
    :returns: the port.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class BacklogFull:
    """A listening socket with backlog 0 whose accept queue is already full,
    so a further connect hangs until its timeout (connect-timeout tests).

    Linux drops a SYN for a listener whose accept queue is full; other systems
    may refuse instead, so tests relying on it should be Linux-only.

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
        """Listen and fill the queue.

        :returns: the listener.
        """
        if self._listener is not None:
            return self
        family = _family(self.host)
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((self.host, 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        for _ in range(self._fillers_wanted):
            filler = socket.socket(family, socket.SOCK_STREAM)
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

