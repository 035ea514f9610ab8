"""Tests for :mod:`vpc_requests._errors`: every failure to reach or hear from
the service is both the ``requests`` exception plain requests raises and a
``ProxyError`` with Cloudflare's code, a message naming binding and origin,
and it pickles (S11)."""

from __future__ import annotations

import pickle
import re
import ssl
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3
from servers import BacklogFull, Unresponsive, closed_port

from vpc_requests import (
    AbortError,
    Binding,
    ConfigError,
    ProxyChunkedEncodingError,
    ProxyConnectionError,
    ProxyConnectTimeout,
    ProxyError,
    ProxyReadTimeout,
    ProxySSLError,
    RedirectError,
    RoutingError,
    VPCError,
)
from vpc_requests._cli.probe import probe_binding
from vpc_requests._errors import CODE_CLASSES, classify, error_response, proxy_error, translate
from vpc_requests.testing import PrivateService, Reply

NAME = "internal-api.company.local"
BINDING = "PRIVATE_API"


def check_message(error: ProxyError, code: str, port: int) -> None:
    message = str(error)
    assert message.startswith(f"ProxyError: {code}")
    assert f"'{BINDING}'" in message
    assert f"127.0.0.1:{port}" in message
    assert error.code == code
    assert error.binding == BINDING
    assert error.origin == f"127.0.0.1:{port}"


def check_pickles(error: ProxyError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.code, copy.binding, copy.origin, str(copy)) == (
        error.code, error.binding, error.origin, str(error),
    )


# ------------------------------------------------------------ on the wire


def test_connection_refused(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    with pytest.raises(requests.ConnectionError) as info:
        make_binding(port).fetch(f"http://{NAME}/")
    error = info.value
    assert isinstance(error, ProxyConnectionError)
    assert not isinstance(error, requests.Timeout)
    check_message(error, "connection_refused", port)
    check_pickles(error)


def test_connection_refused_through_a_session(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    with make_binding(port).session() as session:
        with pytest.raises(ProxyConnectionError) as info:
            session.get(f"http://{NAME}/")
    check_message(info.value, "connection_refused", port)


def test_read_timeout_is_a_read_timeout_not_a_connection_error(make_binding: Callable[..., Binding]) -> None:
    with Unresponsive() as silent:
        with pytest.raises(requests.ReadTimeout) as info:
            make_binding(silent.port).fetch(f"http://{NAME}/", timeout=0.3)
    error = info.value
    assert isinstance(error, ProxyReadTimeout)
    assert isinstance(error, requests.Timeout)
    assert not isinstance(error, requests.ConnectionError)
    check_message(error, "connection_read_timeout", silent.port)
    check_pickles(error)


def test_read_timeout_of_a_delayed_reply(make_binding: Callable[..., Binding]) -> None:
    with PrivateService(handler=lambda seen: Reply(200, delay=2)) as server:
        api = make_binding(server.port)
        with pytest.raises(ProxyReadTimeout):
            api.fetch(f"http://{NAME}/", timeout=0.3)
        assert len(server.seen) == 1  # sent once: a read timeout is never retried


def test_connection_terminated(make_binding: Callable[..., Binding]) -> None:
    with PrivateService(handler=lambda seen: Reply(close=True)) as server:
        with pytest.raises(requests.ConnectionError) as info:
            make_binding(server.port).fetch(f"http://{NAME}/", method="POST", body=b"x")
    check_message(info.value, "connection_terminated", server.port)
    assert isinstance(info.value, ProxyConnectionError)
    check_pickles(info.value)


def test_connection_timeout(make_binding: Callable[..., Binding]) -> None:
    with BacklogFull() as backlog:
        with pytest.raises(requests.ConnectTimeout) as info:
            make_binding(backlog.port).fetch(f"http://{NAME}/", timeout=(0.3, 5))
    error = info.value
    assert isinstance(error, ProxyConnectTimeout)
    assert isinstance(error, requests.ConnectionError)  # as requests' ConnectTimeout
    check_message(error, "connection_timeout", backlog.port)
    check_pickles(error)


def test_http_protocol_error(make_binding: Callable[..., Binding]) -> None:
    with PrivateService(handler=lambda seen: Reply(raw=b"garbage\r\n\r\n")) as server:
        with pytest.raises(requests.ConnectionError) as info:
            make_binding(server.port).fetch(f"http://{NAME}/")
    check_message(info.value, "http_protocol_error", server.port)
    check_pickles(info.value)


def test_response_incomplete_is_a_chunked_encoding_error(make_binding: Callable[..., Binding]) -> None:
    short = Reply(200, {"Content-Length": "100"}, b"only a little")
    with PrivateService(handler=lambda seen: short) as server:
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as info:
            make_binding(server.port).fetch(f"http://{NAME}/")
    assert isinstance(info.value, ProxyChunkedEncodingError)
    check_message(info.value, "http_response_incomplete", server.port)
    check_pickles(info.value)


def test_tls_certificate_error(https_service: PrivateService, make_binding: Callable[..., Binding]) -> None:
    api = make_binding(https_service.port, tls=True)
    with pytest.raises(requests.exceptions.SSLError) as info:
        api.fetch("https://wrong.company.local/", verify=https_service.ca_path)
    assert isinstance(info.value, ProxySSLError)
    check_message(info.value, "tls_certificate_error", https_service.port)
    check_pickles(info.value)
    # the twin: the right name passes
    assert api.fetch(f"https://{NAME}/", verify=https_service.ca_path).status_code == 200


def test_tls_protocol_error(http_service: PrivateService, make_binding: Callable[..., Binding]) -> None:
    # https to a plain-HTTP listener: the handshake gets an HTTP answer
    with pytest.raises(requests.exceptions.SSLError) as info:
        make_binding(http_service.port, tls=True).fetch(f"https://{NAME}/", timeout=2)
    assert isinstance(info.value, ProxySSLError)
    check_message(info.value, "tls_protocol_error", http_service.port)


def test_errors_keep_the_request(make_binding: Callable[..., Binding]) -> None:
    with pytest.raises(ProxyError) as info:
        make_binding(closed_port()).fetch(f"http://{NAME}/users")
    assert info.value.request is not None
    assert info.value.request.url == f"http://{NAME}/users"


def test_errors_chain_to_the_cause(make_binding: Callable[..., Binding]) -> None:
    with pytest.raises(ProxyError) as info:
        make_binding(closed_port()).fetch(f"http://{NAME}/")
    assert isinstance(info.value.__cause__, requests.ConnectionError)


# ----------------------------------------------------------- the tree


def test_tree() -> None:
    assert issubclass(ConfigError, VPCError) and issubclass(ConfigError, ValueError)
    assert issubclass(RoutingError, VPCError) and issubclass(RoutingError, requests.exceptions.InvalidURL)
    assert issubclass(RedirectError, VPCError) and issubclass(RedirectError, requests.RequestException)
    assert issubclass(AbortError, VPCError) and issubclass(AbortError, requests.RequestException)
    assert issubclass(ProxyError, VPCError) and issubclass(ProxyError, requests.RequestException)
    assert issubclass(ProxyConnectTimeout, requests.ConnectTimeout)
    assert issubclass(ProxySSLError, requests.exceptions.SSLError)
    assert issubclass(ProxyReadTimeout, requests.ReadTimeout)
    assert not issubclass(ProxyReadTimeout, requests.ConnectionError)
    assert not issubclass(AbortError, ProxyError)


@pytest.mark.parametrize("code", sorted(CODE_CLASSES))
def test_every_code_builds_and_pickles(code: str) -> None:
    error = proxy_error(code, binding=BINDING, origin="10.0.0.1:443", detail="why")
    assert type(error) is CODE_CLASSES[code]
    assert str(error) == f"ProxyError: {code} (binding '{BINDING}', origin 10.0.0.1:443): why"
    check_pickles(error)


def test_unknown_code_is_a_connection_error() -> None:
    assert type(proxy_error("something_new")) is ProxyConnectionError
    assert str(proxy_error("something_new")) == "ProxyError: something_new"


def test_other_errors_pickle() -> None:
    for error in (
        RoutingError("binding 'A' refused '/x'"),
        RedirectError("binding 'A' got a 302"),
        AbortError("why"),
        ConfigError("bad port", path="vpc-services.toml", line=3, field="http_port"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
    config = pickle.loads(pickle.dumps(ConfigError("bad", path="f.toml", line=2, field="x")))
    assert (config.path, config.line, config.field) == ("f.toml", 2, "x")


# ---------------------------------------------------- the translation


def test_classify_without_a_network() -> None:
    refused = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(
            None, "refused"))  # type: ignore[arg-type]
    )
    refused.__cause__ = ConnectionRefusedError(111, "refused")
    assert classify(refused) == "connection_refused"
    assert classify(requests.ReadTimeout("slow")) == "connection_read_timeout"
    assert classify(requests.ConnectTimeout("slow")) == "connection_timeout"
    assert classify(RuntimeError("?")) == "proxy_internal_error"


def test_translate_forces_a_code() -> None:
    error = translate(RuntimeError("boom"), binding=BINDING, origin="h:1", code="dns_error")
    assert isinstance(error, ProxyConnectionError)
    assert str(error) == f"ProxyError: dns_error (binding '{BINDING}', origin h:1): boom"


def chained(outer: BaseException, *inner: BaseException) -> BaseException:
    """``outer`` raised from ``inner[0]`` raised from ``inner[1]``..."""
    for cause, effect in zip(inner, (outer, *inner)):
        effect.__cause__ = cause
    return outer


def u3_read_timeout() -> urllib3.exceptions.ReadTimeoutError:
    return urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out.")  # type: ignore[arg-type]


# What requests raised -> the class plain requests users catch, and the code.
REQUESTS_RAISED = {
    "read timeout before the headers": (
        lambda: chained(requests.ReadTimeout("slow"), u3_read_timeout(), TimeoutError("timed out")),
        ProxyReadTimeout, "connection_read_timeout",
    ),
    "read timeout while the body arrives (iter_content)": (
        lambda: chained(requests.ConnectionError("slow"), u3_read_timeout(), TimeoutError("timed out")),
        ProxyConnectionError, "connection_read_timeout",
    ),
    "read timeouts after the caller's retries ran out": (
        lambda: requests.ConnectionError(urllib3.exceptions.MaxRetryError(
            None, "/", u3_read_timeout())),  # type: ignore[arg-type]
        ProxyConnectionError, "connection_read_timeout",
    ),
    "reset while the body arrives": (
        lambda: requests.exceptions.ChunkedEncodingError(urllib3.exceptions.ProtocolError(
            "Connection broken", ConnectionResetError(104, "reset"))),
        ProxyChunkedEncodingError, "http_response_incomplete",
    ),
    "timeout while sending the request": (
        lambda: requests.ConnectionError(urllib3.exceptions.ProtocolError(
            "Connection aborted.", TimeoutError("timed out"))),
        ProxyConnectionError, "connection_write_timeout",
    ),
    "reset before any response": (
        lambda: requests.ConnectionError(urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionResetError(104, "reset"))),
        ProxyConnectionError, "connection_terminated",
    ),
    "connect timeout": (
        lambda: requests.ConnectTimeout("slow"), ProxyConnectTimeout, "connection_timeout",
    ),
    "TLS": (lambda: requests.exceptions.SSLError("bad"), ProxySSLError, "tls_protocol_error"),
}


@pytest.mark.parametrize("name", REQUESTS_RAISED)
def test_translate_keeps_the_class_requests_raised(name: str) -> None:
    make, cls, code = REQUESTS_RAISED[name]
    raised = make()
    error = translate(raised, binding=BINDING, origin="h:1")
    assert type(error) is cls
    assert error.code == code
    for kind in (requests.ConnectionError, requests.Timeout, requests.ReadTimeout, requests.ConnectTimeout,
                 requests.exceptions.SSLError, requests.exceptions.ChunkedEncodingError):
        assert isinstance(error, kind) == isinstance(raised, kind), kind


# A raw error of a body -> what requests' Response.iter_content makes of it.
RAW_BODY_ERRORS = {
    "ProtocolError": (
        lambda: urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
        ProxyChunkedEncodingError, "http_response_incomplete",
    ),
    "ReadTimeoutError": (u3_read_timeout, ProxyConnectionError, "connection_read_timeout"),
    "SSLError": (
        lambda: urllib3.exceptions.SSLError(ssl.SSLError(1, "bad record mac")),
        ProxySSLError, "tls_protocol_error",
    ),
    "socket timeout": (lambda: TimeoutError("timed out"), ProxyConnectionError, "connection_read_timeout"),
}


@pytest.mark.parametrize("name", RAW_BODY_ERRORS)
def test_translate_takes_a_raw_error_as_iter_content_wraps_it(name: str) -> None:
    make, cls, code = RAW_BODY_ERRORS[name]
    error = translate(make(), binding=BINDING, origin="h:1")
    assert (type(error), error.code) == (cls, code)


def test_twin_translate_of_something_that_is_no_transport_error() -> None:
    error = translate(RuntimeError("?"), binding=BINDING, origin="h:1")
    assert (type(error), error.code) == (ProxyConnectionError, "proxy_internal_error")


# ------------------------------------------------- errors="response"


def test_error_response_reads_streams_and_closes_like_any_response() -> None:
    failure = proxy_error("connection_refused", binding=BINDING)
    body = b"ProxyError: connection_refused"
    response = error_response(failure, connection="the adapter")
    assert (response.status_code, response.content, response.connection) == (500, body, "the adapter")
    assert b"".join(response.iter_content(7)) == body
    assert list(response.iter_content(None, decode_unicode=True)) == [body.decode()]
    assert list(response.iter_lines()) == [body]
    assert response.raw.read() == body
    response.close()
    with error_response(failure) as again:
        assert again.text == body.decode()
    assert again.headers["Content-Length"] == str(len(body))


# ------------------------------- shaped like requests' own exceptions (S15)
#
# Each failure is provoked twice against the same loopback server: once with
# plain requests (URL host 127.0.0.1, so urllib3 names the same pool), once
# through a binding. Code written for requests inspects args[0], its .reason
# and the text; all must be what plain requests gives.

_OBJECT = re.compile(r" at 0x[0-9a-f]+")


def _plain(url: str, **kwargs: Any) -> requests.RequestException:
    with requests.Session() as session, pytest.raises(requests.RequestException) as info:
        session.get(url, **kwargs)
    return info.value


def _routed(binding: Binding, url: str, **kwargs: Any) -> ProxyError:
    with binding.session() as session, pytest.raises(ProxyError) as info:
        session.get(url, **kwargs)
    return info.value


def _same_shape(ours: ProxyError, plain: requests.RequestException) -> None:
    """``ours`` is what ``plain`` is, with the code and binding in front."""
    assert isinstance(ours, type(plain))
    assert len(ours.args) == len(plain.args) == 1
    assert type(ours.args[0]) is type(plain.args[0])
    if isinstance(plain.args[0], urllib3.exceptions.MaxRetryError):
        assert type(ours.args[0].reason) is type(plain.args[0].reason)
    assert ours.request is not None and plain.request is not None
    assert ours.request.url == plain.request.url
    assert ours.response is plain.response is None
    text = _OBJECT.sub("", str(plain))
    path = plain.request.path_url
    if path != "/":  # never in our text: it may hold a token (see test_logging)
        assert path not in str(ours)
        text = text.replace(f"url: {path} (", "url: <path hidden> (")
    assert text in _OBJECT.sub("", str(ours))
    assert str(ours).startswith(f"ProxyError: {ours.code} (binding '{BINDING}', origin 127.0.0.1:")


def test_read_timeout_args_are_requests_own_stream_timeout(make_binding: Callable[..., Binding]) -> None:
    # requests' TestTimeout::test_stream_timeout, through a binding
    with Unresponsive() as silent:
        url = f"http://127.0.0.1:{silent.port}/delay/10"
        plain = _plain(url, timeout=0.3)
        ours = _routed(make_binding(silent.port), url, timeout=0.3)
    assert isinstance(ours, requests.exceptions.Timeout)
    assert "Read timed out" in ours.args[0].args[0]
    assert isinstance(ours.args[0], urllib3.exceptions.ReadTimeoutError)
    assert str(ours.args[0]) == str(plain.args[0])  # the same pool, the same words
    _same_shape(ours, plain)
    assert str(ours) == (
        f"ProxyError: connection_read_timeout (binding '{BINDING}', origin 127.0.0.1:{silent.port}): "
        f"HTTPConnectionPool(host='127.0.0.1', port={silent.port}): Read timed out. (read timeout=0.3)"
    )


def test_refused_args_are_a_max_retry_error_with_its_reason(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/users?token=t0k3n"
    plain = _plain(url)
    ours = _routed(make_binding(port), url)
    assert isinstance(ours.args[0], urllib3.exceptions.MaxRetryError)
    assert ours.args[0].url == plain.args[0].url == "/users?token=t0k3n"
    assert "t0k3n" not in str(ours) and "/users" not in str(ours)
    assert isinstance(ours.args[0].reason, urllib3.exceptions.NewConnectionError)
    _same_shape(ours, plain)
    # the twin of the shape: the code, not requests' class, says "refused"
    assert ours.code == "connection_refused"


def test_connect_timeout_args(make_binding: Callable[..., Binding]) -> None:
    with BacklogFull() as backlog:
        url = f"http://127.0.0.1:{backlog.port}/"
        plain = _plain(url, timeout=(0.3, 5))
        ours = _routed(make_binding(backlog.port), url, timeout=(0.3, 5))
    assert isinstance(ours, requests.ConnectTimeout)
    assert isinstance(ours.args[0].reason, urllib3.exceptions.ConnectTimeoutError)
    _same_shape(ours, plain)


def test_tls_args(https_service: PrivateService, make_binding: Callable[..., Binding]) -> None:
    url = f"https://127.0.0.1:{https_service.port}/"
    plain = _plain(url)  # no CA given: untrusted, as through the binding
    ours = _routed(make_binding(https_service.port, tls=True), url)
    assert isinstance(ours.args[0].reason, urllib3.exceptions.SSLError)
    _same_shape(ours, plain)


def test_incomplete_body_args(make_binding: Callable[..., Binding]) -> None:
    short = Reply(200, {"Content-Length": "100"}, b"only a little")
    with PrivateService(handler=lambda seen: short) as server:
        url = f"http://127.0.0.1:{server.port}/"
        plain = _plain(url)
        ours = _routed(make_binding(server.port), url)
    assert isinstance(ours, requests.exceptions.ChunkedEncodingError)
    assert type(ours.args[0]) is type(plain.args[0]) is urllib3.exceptions.ProtocolError
    assert str(ours).endswith(str(plain))


def test_shaped_errors_pickle_with_their_args(make_binding: Callable[..., Binding]) -> None:
    with Unresponsive() as silent:
        ours = _routed(make_binding(silent.port), f"http://{NAME}/", timeout=0.3)
    copy = pickle.loads(pickle.dumps(ours))
    assert type(copy) is type(ours)
    assert type(copy.args[0]) is urllib3.exceptions.ReadTimeoutError
    assert (copy.code, copy.binding, copy.origin, copy.hint, str(copy)) == (
        ours.code, ours.binding, ours.origin, ours.hint, str(ours),
    )
    assert copy.request is not None and copy.request.url == ours.request.url


def test_an_unpicklable_request_is_left_behind_not_fatal(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    with make_binding(port).session() as session, pytest.raises(ProxyError) as info:
        session.get(f"http://{NAME}/", hooks={"response": [lambda r, **kw: r]})
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)
    assert copy.request is None
    assert isinstance(copy.args[0], urllib3.exceptions.MaxRetryError)


# ------------------------------------------------------- what to do (hints)


def test_untrusted_certificate_says_how_to_trust_it(
    https_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    api = make_binding(https_service.port, tls=True)
    with pytest.raises(ProxySSLError) as info:
        api.fetch(f"https://{NAME}/")  # the system store does not know the test CA
    message = str(info.value)
    assert message.startswith("ProxyError: tls_certificate_error (")
    for advice in ("verify=", "--cacert", "cert_verification_mode"):
        assert advice in message
    # the twin: given the CA, the same fetch succeeds
    assert api.fetch(f"https://{NAME}/", verify=https_service.ca_path).status_code == 200


def test_wrong_name_certificate_says_what_is_checked(
    https_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    with pytest.raises(ProxySSLError) as info:
        make_binding(https_service.port, tls=True).fetch("https://wrong.company.local/", verify=https_service.ca_path)
    message = str(info.value)
    assert "URL's host" in message and "verify_ca" in message
    assert "--cacert" not in message  # the CA is trusted; the name is the problem


def test_refused_direct_connection_asks_whether_the_service_runs(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    with pytest.raises(ProxyConnectionError) as info:
        make_binding(port).fetch(f"http://{NAME}/")
    message = str(info.value)
    assert message.startswith("ProxyError: connection_refused (")
    assert f"127.0.0.1:{port}: is the service running at that address" in message


def test_twin_a_refused_tunnel_does_not_blame_the_service(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    with pytest.raises(ProxyConnectionError) as info:
        make_binding(8080, tunnel=f"http://127.0.0.1:{port}").fetch(f"http://{NAME}/")
    message = str(info.value)
    assert message.startswith("ProxyError: connection_refused (")
    assert f"tunnel http://127.0.0.1:{port} refused the connection" in message
    assert "is the service running" not in message


def test_check_gives_the_same_advice(https_service: PrivateService, make_binding: Callable[..., Binding]) -> None:
    # vpc-requests check probes with its own handshake: same advice as a fetch
    (refused,) = probe_binding(make_binding(closed_port()), timeout=2)
    assert refused.code == "connection_refused"
    assert "is the service running at that address" in refused.detail
    (untrusted,) = probe_binding(make_binding(https_service.port, tls=True), timeout=2)
    assert untrusted.code == "tls_certificate_error"
    assert "--cacert" in untrusted.detail and "verify=" in untrusted.detail
    # the twin: given the CA, the same probe passes
    (trusted,) = probe_binding(make_binding(https_service.port, tls=True), timeout=2, verify=https_service.ca_path)
    assert trusted.result == "OK", trusted.detail


def test_translate_keeps_requests_own_args_objects() -> None:
    reason = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    retries = urllib3.exceptions.MaxRetryError(None, "/x?token=t", reason)  # type: ignore[arg-type]
    request = requests.Request("GET", "http://h.example/x?token=t").prepare()
    raised = requests.ConnectionError(retries, request=request)
    ours = translate(raised, binding=BINDING, origin="h:1")
    assert ours.args == raised.args and ours.args[0] is retries and ours.args[0].reason is reason
    assert ours.request is request and ours.response is None
    assert "token=t" not in str(ours) and "<path hidden>" in str(ours)
    # the twin: a failure of our own has its message as args[0]
    own = proxy_error("dns_error", binding=BINDING, detail="no such name")
    assert own.args == (str(own),)
