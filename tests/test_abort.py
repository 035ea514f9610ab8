"""Tests for :mod:`vpc_requests._transport.abort`: ``AbortController`` / ``AbortSignal``
ending a fetch in every phase (connect, TLS handshake, waiting for headers,
reading the body), from another thread, promptly, and leaving the binding's
pool usable."""

from __future__ import annotations

import contextlib
import pickle
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import trustme
from servers import BacklogFull, Unresponsive

from vpc_requests import AbortController, AbortError, AbortSignal, Binding, ProxyError, VPCService
from vpc_requests.testing import PrivateService, Reply, echo

NAME = "internal-api.company.local"
PROMPT = 1.0  # an abort ends the fetch within this many seconds


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
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@contextlib.contextmanager
def abort_after(controller: AbortController, delay: float, reason: object = None) -> Iterator[None]:
    """Abort ``controller`` from another thread after ``delay`` seconds."""
    thread = threading.Timer(delay, controller.abort, args=(reason,))
    thread.start()
    try:
        yield
    finally:
        thread.cancel()
        thread.join()


@pytest.fixture
def bindings() -> Iterator[Callable[..., Binding]]:
    made: list[Binding] = []

    def make(port: int, *, tls: bool = False, **kwargs: object) -> Binding:
        ports = {"https_port" if tls else "http_port": port}
        binding = Binding("PRIVATE_API", VPCService(ipv4="127.0.0.1", **ports), **kwargs)
        made.append(binding)
        return binding

    yield make
    for binding in made:
        binding.close()


@pytest.fixture
def slow() -> Iterator[SlowServer]:
    with SlowServer() as server:
        yield server


def aborted_fetch(binding: Binding, url: str, delay: float = 0.2, **kwargs: object) -> tuple[AbortError, float]:
    controller = AbortController()
    started = time.monotonic()
    with abort_after(controller, delay, "user cancelled"):
        with pytest.raises(AbortError) as info:
            binding.fetch(url, signal=controller.signal, **kwargs)
    return info.value, time.monotonic() - started


# ------------------------------------------------------------- each phase


def test_abort_while_connecting(bindings: Callable[..., Binding]) -> None:
    with BacklogFull() as backlog:
        api = bindings(backlog.port)
        error, elapsed = aborted_fetch(api, f"http://{NAME}/", timeout=(5, 5))
    assert elapsed < PROMPT
    assert error.reason == "user cancelled"
    assert not isinstance(error, ProxyError)


def test_abort_during_the_tls_handshake(bindings: Callable[..., Binding]) -> None:
    with Unresponsive() as silent:  # accepts TCP, never speaks TLS
        api = bindings(silent.port, tls=True)
        error, elapsed = aborted_fetch(api, f"https://{NAME}/", timeout=5)
        assert silent.connections == 1
    # ended by the abort (0.2 s in), not by a failure before it nor by the timeout
    assert 0.15 <= elapsed < PROMPT
    assert type(error) is AbortError
    assert error.reason == "user cancelled"


def test_abort_while_waiting_for_headers(bindings: Callable[..., Binding]) -> None:
    with Unresponsive() as silent:
        api = bindings(silent.port)
        error, elapsed = aborted_fetch(api, f"http://{NAME}/", timeout=5)
    assert elapsed < PROMPT
    assert "aborted" in str(error)


def test_abort_while_waiting_for_a_delayed_reply_then_the_pool_works(
    bindings: Callable[..., Binding],
) -> None:
    def handler(seen):
        return Reply(200, body="late", delay=5) if seen.target == "/delay" else echo(seen)

    with PrivateService(handler=handler) as server:
        api = bindings(server.port)
        assert api.fetch(f"http://{NAME}/warm").status_code == 200
        _, elapsed = aborted_fetch(api, f"http://{NAME}/delay")
        assert elapsed < PROMPT
        for _ in range(3):
            assert api.fetch(f"http://{NAME}/after").json()["path"] == "/after"
        # the aborted connection was dropped; one new one serves the rest
        assert server.connections == 2
        assert [s.target for s in server.seen] == ["/warm", "/delay"] + ["/after"] * 3


def test_abort_while_reading_the_body(bindings: Callable[..., Binding], slow: SlowServer) -> None:
    api = bindings(slow.port)
    _, elapsed = aborted_fetch(api, f"http://{NAME}/slow", delay=0.25)
    assert 0.2 <= elapsed < PROMPT
    # the same binding still works
    assert api.fetch(f"http://{NAME}/fast").content == b"ok"


def test_abort_while_reading_a_tls_body(bindings: Callable[..., Binding], ca: trustme.CA) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(NAME).configure_cert(context)
    with SlowServer(context=context) as server, ca.cert_pem.tempfile() as ca_path:
        api = bindings(server.port, tls=True)
        _, elapsed = aborted_fetch(api, f"https://{NAME}/slow", delay=0.25, verify=ca_path)
        assert 0.2 <= elapsed < PROMPT
        assert api.fetch(f"https://{NAME}/fast", verify=ca_path).content == b"ok"


def test_abort_while_streaming_the_body(bindings: Callable[..., Binding], slow: SlowServer) -> None:
    api = bindings(slow.port)
    controller = AbortController()
    response = api.fetch(f"http://{NAME}/slow", signal=controller.signal, stream=True)
    got = b""
    started = time.monotonic()
    with abort_after(controller, 0.2):
        with pytest.raises(AbortError):
            for chunk in response.iter_content(1):
                got += chunk
    response.close()
    assert time.monotonic() - started < PROMPT
    assert 0 < len(got) < slow.size
    assert slow.body.startswith(got)
    assert api.fetch(f"http://{NAME}/fast").content == b"ok"


def test_abort_in_a_redirect_chain(bindings: Callable[..., Binding]) -> None:
    def handler(seen):
        if seen.target == "/first":
            return Reply.redirect("http://elsewhere.company.local/second")
        return Reply(200, delay=5)

    with PrivateService(handler=handler) as server:
        api = bindings(server.port)
        _, elapsed = aborted_fetch(api, f"http://{NAME}/first")
        assert elapsed < PROMPT
        assert [s.host for s in server.seen] == [NAME, "elsewhere.company.local"]


# ------------------------------------------------------- before and after


def test_already_aborted_signal_sends_nothing(http_service: PrivateService, bindings: Callable[..., Binding]) -> None:
    api = bindings(http_service.port)
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


def test_abort_after_the_fetch_is_harmless(http_service: PrivateService, bindings: Callable[..., Binding]) -> None:
    api = bindings(http_service.port)
    controller = AbortController()
    response = api.fetch(f"http://{NAME}/one", signal=controller.signal)
    controller.abort()
    assert response.json()["path"] == "/one"
    assert api.fetch(f"http://{NAME}/two").json()["path"] == "/two"
    assert http_service.connections == 1  # the pooled connection was not shut down


def test_timeout_signal_cuts_a_slow_body(bindings: Callable[..., Binding], slow: SlowServer) -> None:
    api = bindings(slow.port)
    started = time.monotonic()
    with pytest.raises(AbortError) as info:
        api.fetch(f"http://{NAME}/slow", signal=AbortSignal.timeout(0.3), timeout=5)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < PROMPT
    assert isinstance(info.value.reason, TimeoutError)
    assert api.fetch(f"http://{NAME}/fast").content == b"ok"


def test_twin_plain_requests_timeout_does_not_cut_a_slow_body(slow: SlowServer) -> None:
    # each byte arrives well within the read timeout: the whole body takes ~1 s
    started = time.monotonic()
    with requests.Session() as plain:
        response = plain.get(f"http://127.0.0.1:{slow.port}/slow", timeout=0.3)
    assert response.content == slow.body
    assert time.monotonic() - started > 0.3 * 2


def test_timeout_signal_that_does_not_fire_in_time_changes_nothing(
    http_service: PrivateService, bindings: Callable[..., Binding]
) -> None:
    api = bindings(http_service.port)
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
    http_service: PrivateService, bindings: Callable[..., Binding]
) -> None:
    http_service.handler = lambda seen: Reply(body=b"x" * 50_000)
    binding = bindings(http_service.port)
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
