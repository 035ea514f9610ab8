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

HTTP/1.1 is spoken by ``h11`` (the bytes in, events out); TLS certificates
come from ``trustme``, imported only when a TLS service is made without an
explicit ``ssl_context`` (both: ``pip install 'vpc_requests[demo]'``). For
pytest, the ``vpc_requests`` plugin (``vpc_requests.pytest_plugin``) has
fixtures that start these services.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, cast

import h11

from ._loopback import LoopbackServer
from ._model.hosts import host_port

if TYPE_CHECKING:
    import trustme

__all__ = [
    "PrivateService",
    "Reply",
    "Seen",
    "echo",
]

log = logging.getLogger(__name__)

#: Names the default TLS certificate is issued for.
DEFAULT_NAMES: tuple[str, ...] = ("internal-api.company.local", "10.0.1.50")

_MAX_HEAD = 1 << 20  # request line and header section, bytes
_RECV = 65536
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


def _require_trustme() -> ModuleType:
    try:
        import trustme
    except ImportError as exc:
        raise ImportError(
            "a TLS PrivateService needs 'trustme' to make its certificate: "
            "pip install 'vpc_requests[demo]' (or pass ssl_context=)"
        ) from exc
    return trustme


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------- service


class PrivateService(LoopbackServer):
    """A private service on loopback that records every request it receives.

    HTTP/1.1 (by ``h11``) with persistent connections, request bodies framed
    by ``Content-Length`` or chunked, ``Expect: 100-continue``; each TCP
    connection on its own daemon thread (TLS handshake included, so a client
    that rejects the certificate blocks nothing; a failed handshake records
    nothing and prints nothing). A malformed request is answered with the
    4xx/5xx ``h11`` suggests and not recorded. Use it as a context manager,
    or call :meth:`start` and :meth:`stop`; a stopped service can be started
    again on the same port.

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
        super().__init__(host=host, port=port, name=name)
        if isinstance(names, str):
            names = (names,)
        self.tls = tls
        self.names: tuple[str, ...] = tuple(names)
        self.handler: Callable[[Seen], Reply] = handler or echo
        self.ca = ca
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

        self._seen: list[Seen] = []
        self._errors: list[BaseException] = []
        self._handshakes = 0
        self._active = 0
        self._max_concurrent = 0
        self._ca_file: weakref.finalize[[str], PrivateService] | None = None
        self._ca_path = ""

    # -- lifecycle

    def start(self) -> PrivateService:
        """Start listening (a no-op when already running).

        :returns: the service.
        """
        super().start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, and join the threads.

        Prompt (well under a second, unless a handler itself blocks) and
        idempotent. Removes the :attr:`ca_path` file.
        """
        super().stop()
        if self._ca_file is not None:
            self._ca_file()
            self._ca_file = None

    def __enter__(self) -> PrivateService:
        return self.start()

    def __repr__(self) -> str:
        state = "running" if self._listener is not None else "stopped"
        return f"<PrivateService {self.name!r} {self.url} {state}>"

    # -- what it saw

    @property
    def url(self) -> str:
        """``http[s]://host:port`` of the listener itself (IPv6 bracketed)."""
        return f"{'https' if self.tls else 'http'}://{host_port(self.host, self._port)}"

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
    def handshakes(self) -> int:
        """TLS handshakes completed so far."""
        return self._handshakes

    @property
    def max_concurrent(self) -> int:
        """The most requests that were being handled at the same time."""
        return self._max_concurrent

    # -- serving

    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        """Serve one connection: the TLS handshake, then requests until either
        side closes. Should not be called from user code."""
        sni = None
        if self._context is not None:
            sock = self._context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            self._track(sock)
            try:
                _tls_state.sni = None
                sock.do_handshake()
                sni = _tls_state.sni
                with self._lock:
                    self._handshakes += 1
                _Exchange(self, sock, client_port, number, sni).run()
            finally:
                self._untrack(sock)
                sock.close()
        else:
            _Exchange(self, conn, client_port, number, sni).run()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)
            self._active += 1
            self._max_concurrent = max(self._max_concurrent, self._active)

    def _done(self, error: BaseException | None = None) -> None:
        with self._lock:
            self._active -= 1
            if error is not None:
                self._errors.append(error)


class _Exchange:
    """The requests of one connection, read and answered through ``h11``."""

    def __init__(self, service: PrivateService, sock: socket.socket, client_port: int, number: int,
                 sni: str | None) -> None:
        self.service = service
        self.sock = sock
        self.client_port = client_port
        self.number = number
        self.sni = sni
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self.closed = False  # the client closed its side

    def run(self) -> None:
        stopping = self.service._stopping
        while not stopping.is_set():
            try:
                seen = self._read_request()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc)
                return
            if seen is None:
                return
            if not self._answer(seen) or stopping.is_set():
                return
            self.h11.start_next_cycle()

    def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.h11.they_are_waiting_for_100_continue:
                self.sock.sendall(self.h11.send(h11.InformationalResponse(
                    status_code=100, headers=[], reason=b"Continue")))
            data = self.sock.recv(_RECV)
            self.closed = not data
            self.h11.receive_data(data)

    def _read_request(self) -> Seen | None:
        """The next request, or ``None`` when the client closed (between or
        inside requests)."""
        try:
            request = self._next_event()
            if not isinstance(request, h11.Request):
                return None
            body = bytearray()
            while True:
                event = self._next_event()
                if isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return None
        except h11.RemoteProtocolError:
            if self.closed:
                return None  # the client went away mid-request
            raise
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw_items())
        return Seen(
            method=request.method.decode("latin-1"),
            target=request.target.decode("latin-1"),
            headers=headers,
            body=bytes(body),
            host=next((v for k, v in headers if k.lower() == "host"), None),
            sni=self.sni, tls=self.service.tls, port=self.service.port,
            client_port=self.client_port, connection=self.number,
        )

    def _refuse(self, exc: h11.RemoteProtocolError) -> None:
        """Answer a malformed request with the status ``h11`` suggests."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{exc}\n".encode()
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("Connection", "close")]
        status = exc.error_status_hint
        self.sock.sendall(
            self.h11.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
            + self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage())
        )

    def _answer(self, seen: Seen) -> bool:
        """Run the handler and send its reply; return whether the connection
        stays open."""
        service = self.service
        service._record(seen)
        error: BaseException | None = None
        try:
            try:
                reply = service.handler(seen)
                if not isinstance(reply, Reply):
                    raise TypeError(f"handler returned {type(reply).__name__}, not Reply")
                head, body, framed = _head(reply)
            except Exception as exc:
                log.exception("%s: handler failed for %s %s", service.name, seen.method, seen.target)
                error = exc
                reply = Reply(500, (("Content-Type", "text/plain"),), f"handler raised {exc!r}\n")
                head, body, framed = _head(reply)
            if reply.delay and service._stopping.wait(reply.delay):
                return False
            if reply.close:
                return False
            if reply.raw is not None:
                self.sock.sendall(reply.raw)
                return False
            return self._send(head, body, framed, seen.method == "HEAD")
        finally:
            service._done(error)

    def _send(self, head: h11.Response | h11.InformationalResponse, body: bytes, framed: bool,
              head_request: bool) -> bool:
        data = self.h11.send(head)
        if isinstance(head, h11.InformationalResponse):
            self.sock.sendall(data)
            return False
        if head_request:
            body = b""
        if not framed:  # a declared framing the body does not follow: sent as is, then close
            self.sock.sendall(data + body)
            return False
        if body:
            data += self.h11.send(h11.Data(data=body))
        data += self.h11.send(h11.EndOfMessage())
        self.sock.sendall(data)
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE


def _reason(status: int) -> bytes:
    return _REASONS.get(status, "Unknown").encode("latin-1")


def _head(reply: Reply) -> tuple[h11.Response | h11.InformationalResponse, bytes, bool]:
    """The response head ``h11`` is to send, the body, and whether ``h11``
    can frame the body (``False``: a ``Transfer-Encoding`` set by the reply,
    or a ``Content-Length`` that differs from the body, sent as they are).

    :raises h11.LocalProtocolError: for headers ``h11`` will not send.
    """
    headers = list(cast("tuple[tuple[str, str], ...]", reply.headers))  # pairs since __post_init__
    names = {k.lower() for k, _ in headers}
    body = reply.body
    assert isinstance(body, bytes)
    framed = True
    if reply.status < 200:
        return h11.InformationalResponse(status_code=reply.status, headers=headers,
                                         reason=_reason(reply.status)), b"", True
    if reply.status in _NO_BODY_STATUSES:
        body = b""
    elif "transfer-encoding" in names:
        framed = False
    elif "content-length" in names:
        framed = [v for k, v in headers if k.lower() == "content-length"] == [str(len(body))]
    else:
        headers.append(("Content-Length", str(len(body))))
    if not framed and "connection" not in names:
        headers.append(("Connection", "close"))
    return h11.Response(status_code=reply.status, headers=headers, reason=_reason(reply.status)), body, framed
