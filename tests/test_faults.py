"""Faults on the wire (issue 6, item 1; docs/semantics.rst S11), each produced by a real
loopback server, and ``errors="response"`` (item 2).

For every fault the test checks the outcome three ways: the exception class
AND its Cloudflare code; that it is also exactly the ``requests`` exception
plain ``requests`` raises against the same server; and a healthy twin (the
same call against a server that behaves) that succeeds. Body faults are also
checked while streaming with ``iter_content``.

Also here: the adapter's default retry policy. A keep-alive connection the
service closed is retried once for idempotent methods; a ``POST`` is never
sent twice unless the caller's own ``max_retries`` says so.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gzip
import pickle
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import trustme
from helpers import eventually
from requests.adapters import HTTPAdapter
from servers import (
    BacklogFull,
    ScriptedServer,
    closed_port,
    never_reads,
    reset_in_the_body,
    stalled_body,
    stalled_headers,
    tls13_only_context,
)
from urllib3.util import is_connection_dropped
from urllib3.util.retry import Retry

from vpc_requests import (
    Binding,
    ProxyChunkedEncodingError,
    ProxyConnectionError,
    ProxyConnectTimeout,
    ProxyError,
    ProxyReadTimeout,
    ProxySSLError,
    VPCService,
    VPCServiceAdapter,
)
from vpc_requests._transport.retry import StaleConnectionRetry
from vpc_requests.testing import (
    PrivateService,
    Reply,
    Seen,
    echo,
)

NAME = "internal-api.company.local"
BINDING = "PRIVATE_API"

#: The requests exceptions a transport failure can be; ours must be a member
#: of exactly the same ones as plain requests' exception for the same fault.
REQUESTS_KINDS = (
    requests.ConnectionError,
    requests.ConnectTimeout,
    requests.ReadTimeout,
    requests.Timeout,
    requests.exceptions.SSLError,
    requests.exceptions.ChunkedEncodingError,
)

Server = Callable[["Env"], "contextlib.AbstractContextManager[int]"]


@dataclass
class Env:
    """What a server factory gets: the suite's CA and its PEM path."""

    ca: trustme.CA
    ca_path: str


@pytest.fixture
def env(ca: trustme.CA, tmp_path: Any) -> Env:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Env(ca, str(path))


@pytest.fixture
def binding_to(make_binding: Callable[..., Binding]) -> Callable[..., Binding]:
    """Make a binding whose service is 127.0.0.1 on ``port`` for both schemes."""
    return functools.partial(make_binding, both=True, name=BINDING)


# -- servers ------------------------------------------------------------------


@contextlib.contextmanager
def nothing_listening(env: Env) -> Iterator[int]:
    yield closed_port()


@contextlib.contextmanager
def backlog_full(env: Env) -> Iterator[int]:
    with BacklogFull() as listener:
        yield listener.port


@contextlib.contextmanager
def replying(reply: Reply) -> Iterator[int]:
    with PrivateService(handler=lambda seen: reply) as service:
        yield service.port


@contextlib.contextmanager
def healthy(env: Env) -> Iterator[int]:
    with PrivateService() as service:
        yield service.port


@contextlib.contextmanager
def healthy_tls(env: Env) -> Iterator[int]:
    with PrivateService(tls=True, ca=env.ca, names=(NAME,)) as service:
        yield service.port


@contextlib.contextmanager
def stalling(env: Env) -> Iterator[int]:
    with ScriptedServer(stalled_headers) as server:
        yield server.port


@contextlib.contextmanager
def scripted(script: Callable[..., None]) -> Iterator[int]:
    with ScriptedServer(script) as server:
        yield server.port


@contextlib.contextmanager
def tls_for(names: tuple[str, ...], ca: trustme.CA | None = None) -> Iterator[int]:
    with PrivateService(tls=True, ca=ca, names=names) as service:
        yield service.port


#: More than loopback's socket buffers hold (the client's send buffer grows
#: to 4 MiB by default; the service's receive buffer stays small unread).
UPLOAD = 16 * 1024 * 1024

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


@dataclass
class Fault:
    """One fault: the server producing it, the call, and what must come out."""

    code: str
    cls: type[ProxyError]
    server: Server
    twin: Server = healthy
    scheme: str = "http"
    kwargs: dict[str, Any] = field(default_factory=dict)
    verify_ca: bool = False  # pass verify=<the suite's CA> (TLS faults)
    in_body: bool = False  # the headers arrive fine; the body fails
    method: str = "GET"
    retries: Retry | None = None  # max_retries, for the binding and plain requests alike


FAULTS: dict[str, Fault] = {
    "connection refused": Fault("connection_refused", ProxyConnectionError, nothing_listening),
    "connect timeout (backlog full)": Fault(
        "connection_timeout", ProxyConnectTimeout, backlog_full, kwargs={"timeout": (0.3, 5)}
    ),
    "closed before any response": Fault(
        "connection_terminated", ProxyConnectionError, lambda env: replying(Reply(close=True))
    ),
    "body shorter than Content-Length": Fault(
        "http_response_incomplete", ProxyChunkedEncodingError,
        lambda env: replying(Reply(headers={"Content-Length": "100"}, body=b"only 14 bytes.")),
        in_body=True,
    ),
    "chunked: bad chunk size": Fault(
        "http_response_incomplete", ProxyChunkedEncodingError,
        lambda env: replying(Reply(raw=CHUNKED_HEAD + b"5\r\nhello\r\nzz\r\n")), in_body=True,
    ),
    "chunked: ends before the last chunk": Fault(
        "http_response_incomplete", ProxyChunkedEncodingError,
        lambda env: replying(Reply(raw=CHUNKED_HEAD + b"5\r\nhello\r\n")), in_body=True,
    ),
    "read timeout while the body arrives": Fault(
        "connection_read_timeout", ProxyConnectionError, lambda env: scripted(stalled_body),
        kwargs={"timeout": 0.3}, in_body=True,
    ),
    "connection reset while the body arrives": Fault(
        "http_response_incomplete", ProxyChunkedEncodingError, lambda env: scripted(reset_in_the_body),
        in_body=True,
    ),
    "not HTTP (an SSH banner)": Fault(
        "http_protocol_error", ProxyConnectionError,
        lambda env: replying(Reply(raw=b"SSH-2.0-OpenSSH_9.6\r\n")),
    ),
    "not HTTP (bad status line)": Fault(
        "http_protocol_error", ProxyConnectionError,
        lambda env: replying(Reply(raw=b"HTTP/1.1 two hundred OK\r\n\r\n")),
    ),
    "headers never finish": Fault(
        "connection_read_timeout", ProxyReadTimeout, stalling, kwargs={"timeout": 0.3}
    ),
    "headers never finish, the caller's Retry(read=1) runs out": Fault(
        "connection_read_timeout", ProxyConnectionError, stalling, kwargs={"timeout": 0.3},
        retries=Retry(total=1, read=1),
    ),
    "write timeout: a large upload the service never reads": Fault(
        "connection_write_timeout", ProxyConnectionError, lambda env: scripted(never_reads),
        method="PUT", kwargs={"timeout": 0.3, "data": b"x" * UPLOAD},
    ),
    "TLS: plain HTTP answers the ClientHello": Fault(
        "tls_protocol_error", ProxySSLError, healthy, twin=healthy_tls, scheme="https",
        verify_ca=True,
    ),
    "TLS: certificate for another name": Fault(
        "tls_certificate_error", ProxySSLError,
        lambda env: tls_for(("somewhere-else.company.local",), env.ca), twin=healthy_tls,
        scheme="https", verify_ca=True,
    ),
    "TLS: certificate from an unknown CA": Fault(
        "tls_certificate_error", ProxySSLError, lambda env: tls_for((NAME, "127.0.0.1")),
        twin=healthy_tls, scheme="https", verify_ca=True,
    ),
}
BODY_FAULTS = [name for name, fault in FAULTS.items() if fault.in_body]


def call_kwargs(fault: Fault, env: Env) -> dict[str, Any]:
    kwargs = dict(fault.kwargs)
    if fault.verify_ca:
        kwargs["verify"] = env.ca_path
    return kwargs


def plain_failure(fault: Fault, env: Env, port: int) -> requests.RequestException:
    """What plain requests raises for the same fault (same server, kwargs)."""
    with requests.Session() as plain:
        if fault.retries is not None:
            plain.mount(f"{fault.scheme}://", HTTPAdapter(max_retries=fault.retries))
        with pytest.raises(requests.RequestException) as info:
            plain.request(fault.method, f"{fault.scheme}://127.0.0.1:{port}/", **call_kwargs(fault, env))
    return info.value


def faulty_binding(binding_to: Callable[..., Binding], fault: Fault, port: int) -> Binding:
    return binding_to(port) if fault.retries is None else binding_to(port, max_retries=fault.retries)


def assert_fault(exc: BaseException, fault: Fault, plain: BaseException) -> None:
    assert type(exc) is fault.cls, repr(exc)
    assert isinstance(exc, ProxyError)
    assert exc.code == fault.code
    assert exc.binding == BINDING
    assert str(exc).startswith(f"ProxyError: {fault.code} (binding '{BINDING}'")
    for kind in REQUESTS_KINDS:
        assert isinstance(exc, kind) == isinstance(plain, kind), (kind, plain)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is fault.cls and copy.code == fault.code


@pytest.mark.parametrize("name", FAULTS)
def test_fault_from_fetch(name: str, env: Env, binding_to) -> None:
    fault = FAULTS[name]
    with fault.server(env) as port:
        with pytest.raises(ProxyError) as info:
            faulty_binding(binding_to, fault, port).fetch(
                f"{fault.scheme}://{NAME}/", method=fault.method, **call_kwargs(fault, env)
            )
        assert_fault(info.value, fault, plain_failure(fault, env, port))


@pytest.mark.parametrize("name", FAULTS)
def test_fault_from_a_session_on_the_adapter(name: str, env: Env, binding_to) -> None:
    fault = FAULTS[name]
    with fault.server(env) as port, faulty_binding(binding_to, fault, port).session() as session:
        with pytest.raises(ProxyError) as info:
            session.request(fault.method, f"{fault.scheme}://{NAME}/", **call_kwargs(fault, env))
        assert_fault(info.value, fault, plain_failure(fault, env, port))


@pytest.mark.parametrize("name", BODY_FAULTS)
def test_body_fault_while_streaming(name: str, env: Env, binding_to) -> None:
    fault = FAULTS[name]
    with fault.server(env) as port:
        response = binding_to(port).fetch(f"http://{NAME}/", stream=True, **call_kwargs(fault, env))
        assert response.status_code == 200  # the headers were fine
        with pytest.raises(ProxyError) as info:
            for _ in response.iter_content(4):
                pass
        plain = plain_failure(fault, env, port)
        assert_fault(info.value, fault, plain)


@pytest.mark.parametrize("name", BODY_FAULTS)
def test_body_fault_while_streaming_from_a_session(name: str, env: Env, binding_to) -> None:
    fault = FAULTS[name]
    with fault.server(env) as port, binding_to(port).session() as session:
        response = session.get(f"http://{NAME}/", stream=True, **call_kwargs(fault, env))
        with pytest.raises(ProxyError) as info:
            b"".join(response.iter_content(4))
        assert_fault(info.value, fault, plain_failure(fault, env, port))


@pytest.mark.parametrize("name", FAULTS)
def test_twin_the_same_call_to_a_healthy_server_succeeds(name: str, env: Env, binding_to) -> None:
    fault = FAULTS[name]
    with fault.twin(env) as port:
        binding = faulty_binding(binding_to, fault, port)
        url, kwargs = f"{fault.scheme}://{NAME}/", call_kwargs(fault, env)
        if "timeout" in kwargs:
            # The fault's short timeout fires against a server that never
            # answers; a healthy one must not race it (a 16 MiB upload on a
            # loaded machine can take longer than 0.3 s).
            kwargs["timeout"] = 30
        response = binding.fetch(url, method=fault.method, **kwargs)
        assert response.status_code == 200
        assert response.json()["host"] == NAME
        assert response.json()["method"] == fault.method
        streamed = binding.fetch(url, method=fault.method, stream=True, **kwargs)
        assert b"".join(streamed.iter_content(1024)) == response.content


def test_read_timeout_is_not_a_connection_error_and_is_not_retried(env: Env, binding_to) -> None:
    with ScriptedServer(stalled_headers) as server:
        with pytest.raises(ProxyReadTimeout) as info:
            binding_to(server.port).fetch(f"http://{NAME}/", timeout=0.3)
        assert not isinstance(info.value, requests.ConnectionError)
        # A GET, yet not sent twice. The accept loop may lag: a sentinel
        # connection, accepted after any connection the fetch made, is the 2nd.
        with socket.create_connection(("127.0.0.1", server.port), timeout=60):
            assert eventually(lambda: server.connections >= 2)
        assert server.connections == 2


# -- TLS: protocol versus certificate -------------------------------------------


class TLS12Adapter(VPCServiceAdapter):
    """A binding adapter whose client context stops at TLS 1.2 (through the
    documented pool-key hook: one context, made once)."""

    def __init__(self, service: VPCService, ca_path: str, **kwargs: Any) -> None:
        self.capped = ssl.create_default_context(cafile=ca_path)
        self.capped.maximum_version = ssl.TLSVersion.TLSv1_2
        super().__init__(service, **kwargs)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if pool:
            pool["ssl_context"] = self.capped
        return host, pool


class PlainTLS12Adapter(HTTPAdapter):
    def __init__(self, ca_path: str) -> None:
        self.capped = ssl.create_default_context(cafile=ca_path)
        self.capped.maximum_version = ssl.TLSVersion.TLSv1_2
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, ssl_context=self.capped, **kwargs)


@contextlib.contextmanager
def tls13_only(env: Env) -> Iterator[PrivateService]:
    context = tls13_only_context(env.ca, (NAME, "127.0.0.1"))
    with PrivateService(tls=True, ssl_context=context) as service:
        yield service


def test_tls_version_mismatch_is_a_protocol_error(env: Env) -> None:
    with tls13_only(env) as service:
        vpc = VPCService(ipv4="127.0.0.1", https_port=service.port)
        with requests.Session() as session:
            session.mount("https://", TLS12Adapter(vpc, env.ca_path, binding=BINDING))
            with pytest.raises(ProxySSLError) as info:
                session.get(f"https://{NAME}/", verify=env.ca_path)
        with requests.Session() as plain:
            plain.mount("https://", PlainTLS12Adapter(env.ca_path))
            with pytest.raises(requests.exceptions.SSLError) as plain_info:
                plain.get(f"https://127.0.0.1:{service.port}/", verify=env.ca_path)
        fault = Fault("tls_protocol_error", ProxySSLError, healthy)
        assert_fault(info.value, fault, plain_info.value)
        assert service.seen == []


def test_twin_tls13_only_server_with_an_uncapped_client_succeeds(env: Env, binding_to) -> None:
    with tls13_only(env) as service:
        response = binding_to(service.port).fetch(f"https://{NAME}/", verify=env.ca_path)
        assert response.status_code == 200
        assert service.seen[0].sni == NAME


# -- keep-alive connections the service closed, and the retry policy ------------


class DropsReusedConnections:
    """A handler answering the first request of each connection and closing
    the connection, without a response, on any later request: what a client
    sees when it reuses a keep-alive connection the service closed while
    idle (the close racing the request)."""

    def __init__(self) -> None:
        self.per_connection: collections.Counter[int] = collections.Counter()

    def __call__(self, seen: Seen) -> Reply:
        self.per_connection[seen.connection] += 1
        if self.per_connection[seen.connection] > 1:
            return Reply(close=True)
        return echo(seen)


@pytest.fixture
def dropping() -> Iterator[PrivateService]:
    with PrivateService(handler=DropsReusedConnections()) as service:
        yield service


def requests_seen(service: PrivateService) -> list[tuple[str, int]]:
    return [(seen.method, seen.connection) for seen in service.seen]


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_request_on_a_closed_keep_alive_connection_is_retried(
    dropping: PrivateService, method: str
, binding_to) -> None:
    binding = binding_to(dropping.port)
    assert binding.fetch(f"http://{NAME}/").status_code == 200
    response = binding.fetch(f"http://{NAME}/again", method=method)
    assert response.status_code == 200
    assert requests_seen(dropping) == [("GET", 1), (method, 1), (method, 2)]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_twin_post_on_a_closed_keep_alive_connection_is_never_sent_twice(
    dropping: PrivateService, method: str
, binding_to) -> None:
    binding = binding_to(dropping.port)
    assert binding.fetch(f"http://{NAME}/").status_code == 200
    with pytest.raises(ProxyConnectionError) as info:
        binding.fetch(f"http://{NAME}/orders", method=method, body=b"order=1")
    assert info.value.code == "connection_terminated"
    assert requests_seen(dropping) == [("GET", 1), (method, 1)]


def test_post_from_a_session_is_never_sent_twice(dropping: PrivateService, binding_to) -> None:
    with binding_to(dropping.port).session() as session:
        session.get(f"http://{NAME}/")
        with pytest.raises(requests.ConnectionError):
            session.post(f"http://{NAME}/orders", data=b"order=1")
    assert [m for m, _ in requests_seen(dropping)].count("POST") == 1


def test_post_is_retried_when_the_callers_max_retries_allows_it(dropping: PrivateService, binding_to) -> None:
    everything = Retry(total=1, connect=0, read=1, status=0, other=0, allowed_methods=None)
    binding = binding_to(dropping.port, max_retries=everything)
    binding.fetch(f"http://{NAME}/")
    response = binding.fetch(f"http://{NAME}/orders", method="POST", body=b"order=1")
    assert response.status_code == 200
    assert requests_seen(dropping) == [("GET", 1), ("POST", 1), ("POST", 2)]
    assert [seen.body for seen in dropping.seen[1:]] == [b"order=1", b"order=1"]


def test_twin_callers_max_retries_0_means_no_retry_even_for_get(dropping: PrivateService, binding_to) -> None:
    binding = binding_to(dropping.port, max_retries=0)
    binding.fetch(f"http://{NAME}/")
    with pytest.raises(ProxyConnectionError) as info:
        binding.fetch(f"http://{NAME}/again")
    assert info.value.code == "connection_terminated"
    assert requests_seen(dropping) == [("GET", 1), ("GET", 1)]


def test_a_fresh_connection_closed_without_response_is_retried_once_for_get_only(binding_to) -> None:
    with PrivateService(handler=lambda seen: Reply(close=True)) as service:
        binding = binding_to(service.port)
        with pytest.raises(ProxyConnectionError):
            binding.fetch(f"http://{NAME}/")
        assert [seen.method for seen in service.seen] == ["GET", "GET"]  # one retry, no more
        service.clear()
        with pytest.raises(ProxyConnectionError):
            binding.fetch(f"http://{NAME}/", method="POST", body=b"x")
        assert [seen.method for seen in service.seen] == ["POST"]


def pooled(binding: Binding) -> list[Any]:
    """The idle connections in the binding's pools (at least one)."""
    manager = binding.adapter.poolmanager
    found = [conn for key in manager.pools.keys() for conn in manager.pools[key].pool.queue if conn is not None]
    assert found
    return found


def test_connection_the_service_closed_while_idle_is_replaced_before_sending(binding_to) -> None:
    # The service answers keep-alive, then closes: the pool notices before
    # reuse, so even a POST goes out once, on a new connection, and succeeds.
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with PrivateService(handler=lambda seen: Reply(raw=raw)) as service:
        binding = binding_to(service.port)
        assert binding.fetch(f"http://{NAME}/").text == "ok"
        # wait (no fixed sleep) till the service's close reaches the pooled socket
        assert eventually(lambda: all(map(is_connection_dropped, pooled(binding))), seconds=10)
        assert binding.fetch(f"http://{NAME}/", method="POST", body=b"x").text == "ok"
        assert requests_seen(service) == [("GET", 1), ("POST", 2)]


def test_retry_after_is_not_honoured_the_response_is_returned(binding_to) -> None:
    # Honoured, an hour's Retry-After would hang the test till pytest-timeout
    # fails it: no clock needed.
    reply = Reply(503, headers={"Retry-After": "3600"}, body=b"busy")
    with PrivateService(handler=lambda seen: reply) as service:
        response = binding_to(service.port).fetch(f"http://{NAME}/")
        assert (response.status_code, response.text) == (503, "busy")
        assert len(service.seen) == 1


def test_default_retry_policy_and_explicit_ones() -> None:
    vpc = VPCService(ipv4="127.0.0.1")
    default = VPCServiceAdapter(vpc).max_retries
    assert isinstance(default, StaleConnectionRetry)
    assert (default.total, default.connect, default.read, default.other) == (1, 0, 1, 0)
    assert "POST" not in default.allowed_methods and "GET" in default.allowed_methods
    assert not default.respect_retry_after_header
    given = Retry(3)
    assert VPCServiceAdapter(vpc, max_retries=given).max_retries is given
    zero = VPCServiceAdapter(vpc, max_retries=0).max_retries
    assert type(zero) is Retry and zero.total == 0 and zero.read is False
    copy = pickle.loads(pickle.dumps(VPCServiceAdapter(vpc)))
    assert isinstance(copy.max_retries, StaleConnectionRetry)


# -- errors="response" -------------------------------------------------------------


def assert_error_response(response: requests.Response, code: str, url: str) -> None:
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == f"ProxyError: {code}"
    assert response.content == f"ProxyError: {code}".encode()
    assert response.url == url
    assert response.request is not None and response.request.url == url
    assert not response.ok


@pytest.mark.parametrize(
    "name", ["connection refused", "closed before any response", "body shorter than Content-Length"]
)
def test_binding_errors_response_returns_the_workers_500(name: str, env: Env, binding_to) -> None:
    fault = FAULTS[name]
    with fault.server(env) as port:
        response = binding_to(port, errors="response").fetch(f"http://{NAME}/x")
        assert_error_response(response, fault.code, f"http://{NAME}/x")


def test_twin_binding_errors_raise_by_default_and_response_mode_passes_success(env: Env, binding_to) -> None:
    port = closed_port()
    with pytest.raises(ProxyConnectionError):
        binding_to(port).fetch(f"http://{NAME}/x")
    with PrivateService() as service:
        response = binding_to(service.port, errors="response").fetch(f"http://{NAME}/x")
        assert response.status_code == 200 and response.json()["path"] == "/x"


def test_adapter_errors_response_returns_the_workers_500() -> None:
    adapter = VPCServiceAdapter(VPCService(ipv4="127.0.0.1", http_port=closed_port()),
                                binding=BINDING, errors="response")
    with requests.Session() as session:
        session.mount("http://", adapter)
        response = session.get(f"http://{NAME}/x")
    assert_error_response(response, "connection_refused", f"http://{NAME}/x")
    assert response.connection is adapter


def test_twin_adapter_raises_by_default() -> None:
    adapter = VPCServiceAdapter(VPCService(ipv4="127.0.0.1", http_port=closed_port()), binding=BINDING)
    with requests.Session() as session:
        session.mount("http://", adapter)
        with pytest.raises(ProxyConnectionError):
            session.get(f"http://{NAME}/x")


def test_adapter_errors_mode_pickles_and_is_checked() -> None:
    vpc = VPCService(ipv4="127.0.0.1")
    copy = pickle.loads(pickle.dumps(VPCServiceAdapter(vpc, errors="response")))
    assert copy.errors == "response"
    assert VPCServiceAdapter(vpc).errors == "raise"
    with pytest.raises(ValueError, match="errors must be one of raise, response"):
        VPCServiceAdapter(vpc, errors="ignore")


def test_adapter_errors_response_cannot_cover_a_body_read_by_the_session(env: Env) -> None:
    # Documented limit: the session reads the body after the adapter returned
    # the response, so a broken body still raises there.
    fault = FAULTS["body shorter than Content-Length"]
    with fault.server(env) as port, requests.Session() as session:
        vpc = VPCService(ipv4="127.0.0.1", http_port=port)
        session.mount("http://", VPCServiceAdapter(vpc, binding=BINDING, errors="response"))
        with pytest.raises(ProxyChunkedEncodingError):
            session.get(f"http://{NAME}/")


@pytest.mark.parametrize("stream", [False, True])
def test_errors_response_streams_closes_and_works_in_a_with_block(stream: bool, binding_to) -> None:
    binding = binding_to(closed_port(), errors="response")
    url, body = f"http://{NAME}/x", b"ProxyError: connection_refused"
    with binding.fetch(url, stream=stream) as response:
        assert response.status_code == 500
        assert b"".join(response.iter_content(4)) == body
        assert list(response.iter_lines()) == [body]
        assert response.connection is binding.adapter
    response.close()  # a second close is harmless, as on any response
    assert binding.fetch(url, stream=stream).raw.read() == body
    binding.fetch(url, stream=stream).close()


def test_binding_errors_response_covers_its_session(binding_to) -> None:
    binding = binding_to(closed_port(), errors="response")
    with binding.session() as session:
        response = session.get(f"http://{NAME}/x")
    assert_error_response(response, "connection_refused", f"http://{NAME}/x")
    assert response.connection is binding.adapter


def test_twin_binding_session_raises_by_default(binding_to) -> None:
    with binding_to(closed_port()).session() as session, pytest.raises(ProxyConnectionError):
        session.get(f"http://{NAME}/x")


# -- a body that does not decode is not a transport failure ------------------------

BAD_GZIP = Reply(200, {"Content-Encoding": "gzip"}, b"this is not gzip")


@pytest.mark.parametrize("errors", ["raise", "response"])
def test_a_body_that_does_not_decode_raises_what_plain_requests_raises(errors: str, binding_to) -> None:
    with PrivateService(handler=lambda seen: BAD_GZIP) as service:
        with pytest.raises(requests.exceptions.ContentDecodingError) as plain:
            requests.get(service.url)
        binding = binding_to(service.port, errors=errors)
        url = f"http://{NAME}/"
        with pytest.raises(requests.exceptions.ContentDecodingError) as info:
            binding.fetch(url)
        assert type(info.value) is type(plain.value)
        with binding.session() as session, pytest.raises(requests.exceptions.ContentDecodingError) as info:
            session.get(url)
        assert type(info.value) is type(plain.value)
        with binding.fetch(url, stream=True) as streamed:
            assert streamed.status_code == 200  # the origin's answer, never a 500
            with pytest.raises(requests.exceptions.ContentDecodingError) as info:
                b"".join(streamed.iter_content(4))
        assert type(info.value) is type(plain.value)


def test_twin_a_gzip_body_that_decodes(binding_to) -> None:
    good = Reply(200, {"Content-Encoding": "gzip"}, gzip.compress(b"hello"))
    with PrivateService(handler=lambda seen: good) as service:
        binding = binding_to(service.port, errors="response")
        assert binding.fetch(f"http://{NAME}/").content == b"hello"
