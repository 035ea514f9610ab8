"""Tests for :mod:`vpc_requests._transport.abort`: ``AbortController`` / ``AbortSignal``
ending a fetch in every phase (connect, TLS handshake, waiting for headers,
reading the body), from another thread, promptly, and leaving the binding's
pool usable."""

from __future__ import annotations

import pickle
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import trustme
from helpers import blocked_on_a_socket, timed_out, when
from servers import BacklogFull, Unresponsive

from vpc_requests import AbortController, AbortError, AbortSignal, Binding, ProxyError
from vpc_requests.testing import PrivateService, Reply, echo

NAME = "internal-api.company.local"


class SlowServer:
    """A loopback HTTP server for the body phase, which PrivateService cannot
    trickle: ``/slow`` sends its headers at once, then the body one byte per
    ``interval``; anything else gets a short 200. Every response closes its
    connection (so http.client hands the socket over to the response)."""

    def __init__(self, size: int = 20, interval: float = 0.05, context: ssl.SSLContext | None = None) -> None:
        self.context = context
        self.size = size
        self.interval = interval
        self.requests: list[str] = []
        self.sent = 0  # body bytes of /slow sent so far
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SlowServer:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepting.join(2)
        for thread in self._threads:
            thread.join(2)
        self._listener.close()

    @property
    def body(self) -> bytes:
        return bytes(ord("a") + i % 26 for i in range(self.size))

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        try:
            raw.settimeout(5)
            if self.context is not None:
                conn = self.context.wrap_socket(raw, server_side=True)
            self._answer(conn)
        except OSError:
            pass
        finally:
            conn.close()
            raw.close()

    def _answer(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        target = head.split(b" ", 2)[1].decode()
        self.requests.append(target)
        if target == "/slow":
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nContent-Length: {self.size}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            for byte in self.body:
                if self._stop.wait(self.interval):
                    return
                conn.sendall(bytes([byte]))
                self.sent += 1
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


#: The operations' own timeouts and the servers' delays: far longer than
#: pytest-timeout (120 s). An abort that did not end the operation then fails
#: the test, however loaded the machine; the tests check WHAT ended it (the
#: abort, see aborted_by), never how long it took.
HANG = 600.0


def aborted_by(error: AbortError, reason: object) -> bool:
    """Whether ``error`` is the abort ending an operation in flight: its
    reason, raised from the transport error the abort caused (shutting the
    socket down), and no timeout in the chain. An AbortError without a cause
    was raised before the transport ran: the abort came too early to test
    the phase."""
    return (type(error) is AbortError and error.reason == reason
            and error.__cause__ is not None and not timed_out(error))


@pytest.fixture
def slow() -> Iterator[SlowServer]:
    with SlowServer() as server:
        yield server


@pytest.fixture
def endless() -> Iterator[SlowServer]:
    """A SlowServer whose ``/slow`` body takes longer than the test may run:
    an abort is the only way its fetch ends."""
    with SlowServer(size=int(HANG / 0.05)) as server:
        yield server


def aborted_fetch(binding: Binding, url: str, condition: Callable[[], bool], **kwargs: object) -> AbortError:
    """Fetch ``url``, aborted ("user cancelled") from another thread as soon as
    ``condition`` holds; the AbortError, checked to be the abort's doing."""
    controller = AbortController()
    kwargs.setdefault("timeout", HANG)
    with when(condition, lambda: controller.abort("user cancelled")):
        with pytest.raises(AbortError) as info:
            binding.fetch(url, signal=controller.signal, **kwargs)
    assert aborted_by(info.value, "user cancelled"), repr(info.value.__cause__)
    return info.value


def main_thread_connecting(monkeypatch: pytest.MonkeyPatch) -> Callable[[], bool]:
    """A condition: the main thread called ``socket.connect`` and is blocked in
    the kernel (a socket shut down before its connect would not end it)."""
    calling = threading.Event()
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        calling.set()
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    main = threading.main_thread()
    return lambda: calling.is_set() and blocked_on_a_socket(main)


# ------------------------------------------------------------- each phase


def test_abort_while_connecting(make_binding: Callable[..., Binding], monkeypatch: pytest.MonkeyPatch) -> None:
    with BacklogFull() as backlog:
        api = make_binding(backlog.port)
        error = aborted_fetch(api, f"http://{NAME}/", main_thread_connecting(monkeypatch))
    assert not isinstance(error, ProxyError)


def test_abort_during_the_tls_handshake(make_binding: Callable[..., Binding]) -> None:
    with Unresponsive() as silent:  # accepts TCP, never speaks TLS
        api = make_binding(silent.port, tls=True)
        # ended by the abort once connected, not by a failure before it nor by the timeout
        aborted_fetch(api, f"https://{NAME}/", lambda: silent.connections == 1)
        assert silent.connections == 1


def test_abort_while_waiting_for_headers(make_binding: Callable[..., Binding]) -> None:
    with Unresponsive() as silent:
        api = make_binding(silent.port)
        error = aborted_fetch(api, f"http://{NAME}/", lambda: silent.connections == 1)
    assert "aborted" in str(error)


def test_abort_while_waiting_for_a_delayed_reply_then_the_pool_works(
    make_binding: Callable[..., Binding],
) -> None:
    def handler(seen):
        return Reply(200, body="late", delay=HANG) if seen.target == "/delay" else echo(seen)

    with PrivateService(handler=handler) as server:
        api = make_binding(server.port)
        assert api.fetch(f"http://{NAME}/warm").status_code == 200
        aborted_fetch(api, f"http://{NAME}/delay", lambda: len(server.seen) == 2)
        for _ in range(3):
            assert api.fetch(f"http://{NAME}/after").json()["path"] == "/after"
        # the aborted connection was dropped; one new one serves the rest
        assert server.connections == 2
        assert [s.target for s in server.seen] == ["/warm", "/delay"] + ["/after"] * 3


def test_abort_while_reading_the_body(make_binding: Callable[..., Binding], endless: SlowServer) -> None:
    api = make_binding(endless.port)
    aborted_fetch(api, f"http://{NAME}/slow", lambda: endless.sent >= 2)
    # the same binding still works
    assert api.fetch(f"http://{NAME}/fast").content == b"ok"


def test_abort_while_reading_a_tls_body(make_binding: Callable[..., Binding], ca: trustme.CA) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(NAME).configure_cert(context)
    with SlowServer(size=int(HANG / 0.05), context=context) as server, ca.cert_pem.tempfile() as ca_path:
        api = make_binding(server.port, tls=True)
        aborted_fetch(api, f"https://{NAME}/slow", lambda: server.sent >= 2, verify=ca_path)
        assert api.fetch(f"https://{NAME}/fast", verify=ca_path).content == b"ok"


def test_abort_while_streaming_the_body(make_binding: Callable[..., Binding], endless: SlowServer) -> None:
    api = make_binding(endless.port)
    controller = AbortController()
    response = api.fetch(f"http://{NAME}/slow", signal=controller.signal, stream=True, timeout=HANG)
    got = b""
    with when(lambda: len(got) >= 2, controller.abort):
        with pytest.raises(AbortError) as info:
            for chunk in response.iter_content(1):
                got += chunk
    response.close()
    assert aborted_by(info.value, "aborted"), repr(info.value.__cause__)
    assert 2 <= len(got) < endless.size
    assert endless.body.startswith(got)
    assert api.fetch(f"http://{NAME}/fast").content == b"ok"


def test_abort_in_a_redirect_chain(make_binding: Callable[..., Binding]) -> None:
    def handler(seen):
        if seen.target == "/first":
            return Reply.redirect("http://elsewhere.company.local/second")
        return Reply(200, delay=HANG)

    with PrivateService(handler=handler) as server:
        api = make_binding(server.port)
        aborted_fetch(api, f"http://{NAME}/first", lambda: len(server.seen) == 2)
        assert [s.host for s in server.seen] == [NAME, "elsewhere.company.local"]


# ------------------------------------------------------- before and after


def test_already_aborted_signal_sends_nothing(
    http_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    api = make_binding(http_service.port)
    controller = AbortController()
    controller.abort("too late")
    with pytest.raises(AbortError) as info:
        api.fetch(f"http://{NAME}/", signal=controller.signal)
    assert info.value.reason == "too late"
    with pytest.raises(AbortError):
        api.fetch(f"http://{NAME}/", signal=AbortSignal.aborted_with("x"))
    assert http_service.connections == 0
    assert http_service.seen == []
    # the twin: a live signal goes through
    assert api.fetch(f"http://{NAME}/", signal=AbortController().signal).status_code == 200


def test_abort_after_the_fetch_is_harmless(http_service: PrivateService, make_binding: Callable[..., Binding]) -> None:
    api = make_binding(http_service.port)
    controller = AbortController()
    response = api.fetch(f"http://{NAME}/one", signal=controller.signal)
    controller.abort()
    assert response.json()["path"] == "/one"
    assert api.fetch(f"http://{NAME}/two").json()["path"] == "/two"
    assert http_service.connections == 1  # the pooled connection was not shut down


def test_timeout_signal_cuts_a_slow_body(make_binding: Callable[..., Binding], endless: SlowServer) -> None:
    api = make_binding(endless.port)
    started = time.monotonic()
    with pytest.raises(AbortError) as info:
        api.fetch(f"http://{NAME}/slow", signal=AbortSignal.timeout(0.3), timeout=HANG)
    assert time.monotonic() - started >= 0.3  # not before its deadline (a lower bound: load only adds)
    assert isinstance(info.value.reason, TimeoutError)  # the signal's timeout, not the fetch's
    assert info.value.__cause__ is not None and endless.sent >= 1  # cut mid-body
    assert api.fetch(f"http://{NAME}/fast").content == b"ok"


def test_twin_plain_requests_timeout_does_not_cut_a_slow_body() -> None:
    # Each byte arrives well within the read timeout, the whole body takes
    # longer than it: a read timeout is per read, not for the body. (Margins
    # for a loaded machine: 20 bytes 0.1 s apart, a 1.5 s read timeout.)
    with SlowServer(size=20, interval=0.1) as slow, requests.Session() as plain:
        started = time.monotonic()
        response = plain.get(f"http://127.0.0.1:{slow.port}/slow", timeout=(HANG, 1.5))
        assert response.content == slow.body
        assert time.monotonic() - started > 1.5  # a lower bound: the server paced it


def test_timeout_signal_that_does_not_fire_in_time_changes_nothing(
    http_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    api = make_binding(http_service.port)
    assert api.fetch(f"http://{NAME}/", signal=AbortSignal.timeout(5)).status_code == 200


# ----------------------------------------------------------- the signal API


def test_controller_and_signal() -> None:
    controller = AbortController()
    signal = controller.signal
    seen: list[object] = []
    remove = signal.add_callback(seen.append)
    other = signal.add_callback(lambda reason: seen.append(("other", reason)))
    other()
    assert not signal.aborted and signal.reason is None
    assert "active" in repr(signal)
    signal.throw_if_aborted()
    controller.abort("first")
    controller.abort("second")
    assert signal.aborted and signal.reason == "first"
    assert seen == ["first"]
    remove()
    with pytest.raises(AbortError, match="first"):
        signal.throw_if_aborted()
    late: list[object] = []
    signal.add_callback(late.append)
    assert late == ["first"]


def test_default_reason() -> None:
    controller = AbortController()
    controller.abort()
    assert controller.signal.reason == "aborted"


def test_timeout_signal_fires() -> None:
    signal = AbortSignal.timeout(0.05)
    fired = threading.Event()
    signal.add_callback(lambda reason: fired.set())
    assert fired.wait(1)
    assert isinstance(signal.reason, TimeoutError)
    with pytest.raises(ValueError):
        AbortSignal.timeout(-1)


def test_abort_error_is_a_request_exception_and_pickles() -> None:
    error = AbortError("why")
    assert isinstance(error, requests.RequestException)
    assert not isinstance(error, ProxyError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AbortError
    assert (copy.reason, str(copy)) == ("why", str(error))
    unpicklable = pickle.loads(pickle.dumps(AbortError(threading.Lock())))
    assert "lock" in str(unpicklable.reason)


def test_a_long_lived_signal_forgets_streamed_fetches_once_their_body_is_done(
    http_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    http_service.handler = lambda seen: Reply(body=b"x" * 50_000)
    binding = make_binding(http_service.port)
    controller = AbortController()
    streamed = binding.fetch("http://internal-api.company.local/", stream=True, signal=controller.signal)
    closed = binding.fetch("http://internal-api.company.local/", stream=True, signal=controller.signal)
    # While the bodies are unread, the signal still covers them ...
    assert len(controller.signal._callbacks) == 2
    assert sum(len(chunk) for chunk in streamed.iter_content(8192)) == 50_000
    closed.close()
    # ... and no longer once they are read or closed: nothing accumulates.
    assert len(controller.signal._callbacks) == 0
    controller.abort()
    assert binding.fetch("http://internal-api.company.local/").status_code == 200
