"""Tests for :mod:`vpc_requests.testing`: the loopback private services."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
import requests

from vpc_requests.testing import PrivateService, Reply, Seen, echo

NAME = "internal-api.company.local"


def raw_exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send a request asking to close, read until the server closes."""
    sock.sendall(request)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def tls_client(service: PrivateService, server_hostname: str | None, *, check: bool = True):
    context = ssl.create_default_context(cafile=service.ca_path)
    if not check:
        context.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def wait_for(predicate, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; generous, as only a failing test waits it out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


# ------------------------------------------------------------- plain HTTP


def test_get_is_recorded_with_default_echo(http_service):
    response = requests.get(http_service.url + "/users?x=1", headers={"Host": NAME}, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    echoed = response.json()
    assert echoed["method"] == "GET"
    assert echoed["path"] == "/users?x=1"
    assert echoed["host"] == NAME
    assert echoed["sni"] is None
    assert echoed["port"] == http_service.port
    assert echoed["headers"]["Host"] == NAME
    [seen] = http_service.seen
    assert isinstance(seen, Seen)
    assert (seen.method, seen.target, seen.host, seen.body) == ("GET", "/users?x=1", NAME, b"")
    assert (seen.tls, seen.sni, seen.port, seen.connection) == (False, None, http_service.port, 1)
    assert seen.client_port > 0
    assert seen.header("HOST") == NAME
    assert seen.header("x-missing") is None


def test_headers_keep_case_order_and_repeats(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        raw_exchange(sock, b"GET /h HTTP/1.1\r\nHost: a.example\r\nX-Thing: 1\r\n"
                           b"x-THING: 2\r\nConnection: close\r\n\r\n")
    [seen] = http_service.seen
    assert seen.headers == (("Host", "a.example"), ("X-Thing", "1"),
                            ("x-THING", "2"), ("Connection", "close"))
    assert seen.header("x-thing") == "1, 2"


def test_post_body_with_content_length(http_service):
    response = requests.post(http_service.url + "/submit", data=b"name=value", timeout=5)

    assert response.json()["body"] == "name=value"
    [seen] = http_service.seen
    assert (seen.method, seen.target, seen.body) == ("POST", "/submit", b"name=value")
    assert seen.header("Content-Length") == "10"


def test_chunked_body_is_decoded(http_service):
    response = requests.put(http_service.url + "/c", data=iter([b"hello ", b"", b"world"]), timeout=5)

    assert response.json()["body"] == "hello world"
    [seen] = http_service.seen
    assert seen.header("Transfer-Encoding") == "chunked"
    assert seen.body == b"hello world"


def test_chunked_with_extensions_and_trailers(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        reply = raw_exchange(
            sock,
            b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"4;ext=1\r\nWiki\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n",
        )
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert http_service.seen[0].body == b"Wiki0123456789"


def test_keep_alive_reuses_one_connection(http_service):
    with requests.Session() as session:
        for path in ("/one", "/two", "/three"):
            assert session.get(http_service.url + path, timeout=5).ok

    assert http_service.connections == 1
    assert [s.connection for s in http_service.seen] == [1, 1, 1]
    assert len({s.client_port for s in http_service.seen}) == 1


def test_connection_close_is_honoured(http_service):
    with requests.Session() as session:
        for _ in range(2):
            response = session.get(http_service.url, headers={"Connection": "close"}, timeout=5)
            assert response.headers["Connection"] == "close"

    assert http_service.connections == 2
    assert [s.connection for s in http_service.seen] == [1, 2]


def test_http10_closes_and_head_has_no_body(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        reply = raw_exchange(sock, b"HEAD /x HTTP/1.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert b"Content-Length: " in head and not head.endswith(b"Content-Length: 0")
    assert body == b""
    assert http_service.seen[0].host is None


def test_expect_100_continue(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        reply = raw_exchange(sock, b"abc")
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert http_service.seen[0].body == b"abc"


def test_malformed_request_gets_400_and_is_not_recorded(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        reply = raw_exchange(sock, b"NONSENSE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert http_service.seen == []


def test_clear_forgets_requests_but_counters_continue(http_service):
    requests.get(http_service.url, timeout=5)
    http_service.clear()
    assert http_service.seen == []
    requests.get(http_service.url, timeout=5)
    assert [s.connection for s in http_service.seen] == [2]
    assert http_service.connections == 2


# -------------------------------------------------------------------- TLS


def test_sni_is_recorded(https_service):
    with tls_client(https_service, NAME) as sock:
        reply = raw_exchange(sock, b"GET /s HTTP/1.1\r\nHost: " + NAME.encode() + b"\r\nConnection: close\r\n\r\n")

    assert json.loads(reply.partition(b"\r\n\r\n")[2])["sni"] == NAME
    [seen] = https_service.seen
    assert (seen.tls, seen.sni, seen.host) == (True, NAME, NAME)
    assert https_service.handshakes == 1


def test_ip_literal_sends_no_sni_and_matches_ip_san(https_service):
    # RFC 6066: no SNI for an IP address; Python checks it against IP SANs.
    with tls_client(https_service, "10.0.1.50") as sock:
        raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: 10.0.1.50\r\nConnection: close\r\n\r\n")
    [seen] = https_service.seen
    assert seen.sni is None
    assert seen.host == "10.0.1.50"


def test_no_sni_at_all(https_service):
    with tls_client(https_service, None, check=False) as sock:
        raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert https_service.seen[0].sni is None


def test_wrong_name_fails_quietly_and_service_keeps_serving(https_service, capfd):
    with pytest.raises(ssl.SSLCertVerificationError, match="wrong.company.local"):
        tls_client(https_service, "wrong.company.local")

    wait_for(lambda: not https_service._threads)
    assert https_service.seen == []
    assert https_service.handshakes == 0
    assert https_service.connections == 1
    # the twin: a good name right after works
    with tls_client(https_service, "other.company.local") as sock:
        assert raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert https_service.seen[0].sni == "other.company.local"
    assert capfd.readouterr().err == ""


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_requests_verifies_against_ca_path_and_url_host(https_service):
    # 127.0.0.1 is not in the certificate: requests must refuse (verify_full).
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https_service.url, verify=https_service.ca_path, timeout=5)
    assert https_service.seen == []
    # verify=False gets through, with the URL's host as SNI (none for an IP).
    response = requests.get(https_service.url, verify=False, timeout=5)
    assert response.json()["sni"] is None


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_keep_alive_counts_one_handshake(https_service):
    with requests.Session() as session:
        for _ in range(3):
            session.get(https_service.url, verify=False, timeout=5)
    assert (https_service.connections, https_service.handshakes) == (1, 1)


def test_handshake_does_not_block_other_clients(https_service):
    # A client that connects and never speaks TLS must not stall the service.
    with socket.create_connection(("127.0.0.1", https_service.port), timeout=5):
        with tls_client(https_service, NAME) as sock:
            assert raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def test_ca_path_is_a_pem_removed_on_stop(ca):
    service = PrivateService(tls=True, ca=ca).start()
    path = service.ca_path
    assert service.ca_path == path
    with open(path, "rb") as f:
        assert f.read() == ca.cert_pem.bytes()
    service.stop()
    assert not os.path.exists(path)


def test_ca_path_needs_a_ca(http_service):
    with pytest.raises(ValueError, match="no CA"):
        http_service.ca_path  # noqa: B018


def test_explicit_ssl_context(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("explicit.company.local").configure_cert(context)
    with PrivateService(tls=True, ssl_context=context, ca=ca) as service:
        with tls_client(service, "explicit.company.local") as sock:
            raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert service.seen[0].sni == "explicit.company.local"


def test_tls_options_need_tls(ca):
    with pytest.raises(ValueError, match="tls=True"):
        PrivateService(ca=ca)


def test_trustme_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "trustme", None)
    with pytest.raises(ImportError, match=r"pip install 'vpc_requests\[demo\]'"):
        PrivateService(tls=True)
    PrivateService()  # plain HTTP needs no trustme


def test_module_does_not_import_trustme():
    code = "import sys, vpc_requests.testing; assert 'trustme' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


# ----------------------------------------------------------------- replies


def test_reply_values_normalise():
    reply = Reply(201, {"X-A": "1"}, "é")
    assert reply.headers == (("X-A", "1"),)
    assert reply.body == "é".encode()
    assert Reply.json({"a": 1}, status=404).headers == (("Content-Type", "application/json"),)
    assert Reply.json([], headers={"content-type": "application/x"}).headers == (("content-type", "application/x"),)
    assert Reply.redirect("/next", 303).headers == (("Location", "/next"),)
    assert hash(reply) == hash(Reply(201, [("X-A", "1")], b"\xc3\xa9"))
    with pytest.raises(ValueError):
        Reply(42)


def test_custom_handler_status_headers_and_redirect():
    def handler(seen: Seen) -> Reply:
        if seen.target == "/old":
            return Reply.redirect("/new", 301)
        return Reply(404, [("X-Seen", seen.method)], "nope")

    with PrivateService(handler=handler) as service:
        response = requests.get(service.url + "/old", timeout=5)
        assert response.status_code == 404
        assert response.headers["X-Seen"] == "GET"
        assert response.text == "nope"
        assert [r.status_code for r in response.history] == [301]
        assert [s.target for s in service.seen] == ["/old", "/new"]


def test_handler_error_is_a_500_and_kept(caplog):
    def handler(seen: Seen) -> Reply:
        raise RuntimeError("boom")

    with PrivateService(handler=handler) as service:
        response = requests.get(service.url, timeout=5)
    assert response.status_code == 500
    assert "boom" in response.text
    assert [type(e) for e in service.errors] == [RuntimeError]
    assert len(service.seen) == 1


@pytest.mark.parametrize("result", [None, Reply(headers={"X-Bad": "\u2603"})], ids=["not-a-reply", "unsendable"])
def test_bad_handler_result_is_a_500(result, caplog):
    with PrivateService(handler=lambda seen: result) as service:
        assert requests.get(service.url, timeout=5).status_code == 500
    assert len(service.errors) == 1


def test_reply_close_sends_nothing():
    with PrivateService(handler=lambda seen: Reply(close=True)) as service:
        with pytest.raises(requests.ConnectionError):
            requests.get(service.url, timeout=5)
        assert len(service.seen) == 1  # it arrived; the answer never came


def test_reply_raw_bytes_then_close():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"
    with PrivateService(handler=lambda seen: Reply(raw=raw)) as service:
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
            assert raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == raw
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(service.url, timeout=5)


def test_declared_length_mismatch_is_incomplete_and_closes():
    reply = Reply(headers={"Content-Length": "100"}, body=b"only this")
    with PrivateService(handler=lambda seen: reply) as service:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(service.url, timeout=5)


def test_reply_delay_gives_read_timeout_and_its_twin():
    with PrivateService(handler=lambda seen: Reply(body=b"late", delay=0.3)) as service:
        with pytest.raises(requests.ReadTimeout):
            requests.get(service.url, timeout=(1, 0.05))
        assert requests.get(service.url, timeout=(60, 60)).text == "late"


def test_requests_are_handled_concurrently():
    barrier = threading.Barrier(3, timeout=2)

    def handler(seen: Seen) -> Reply:
        barrier.wait()  # only passes if three requests are in at once
        return echo(seen)

    with PrivateService(handler=handler) as service:
        threads = [threading.Thread(target=requests.get, args=(service.url,), kwargs={"timeout": 5})
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert service.max_concurrent == 3
    assert service.connections == 3
    assert service.errors == []


# --------------------------------------------------------------- lifecycle


def test_stop_is_prompt_and_idempotent(https_service):
    # A reply delayed beyond pytest-timeout: a stop that waited for it would fail the test.
    service = PrivateService(handler=lambda seen: Reply(delay=600)).start()
    idle = socket.create_connection(("127.0.0.1", https_service.port))  # mid-handshake
    busy = socket.create_connection(("127.0.0.1", service.port))
    busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: service.seen)
    try:
        https_service.stop()
        service.stop()
        # every handler ended (the delayed one cut short): their threads leave
        # as soon as they get a core
        wait_for(lambda: not service._threads and not https_service._threads)
        assert busy.recv(10) == b""
        service.stop()
        https_service.stop()
    finally:
        idle.close()
        busy.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", service.port), timeout=1).close()


def test_restart_on_same_port():
    service = PrivateService().start()
    port = service.port
    service.stop()
    with service:
        assert service.port == port
        assert requests.get(service.url, timeout=5).ok


# The suite needs IPv6 loopback (::1) as it needs 127.0.0.1: no skip.
def test_ipv6():
    with PrivateService(host="::1") as service:
        assert service.url == f"http://[::1]:{service.port}"
        response = requests.get(service.url + "/v6", headers={"Host": NAME}, timeout=5)
        assert response.json()["host"] == NAME
        assert service.seen[0].target == "/v6"


def test_ipv6_tls(ca):
    with PrivateService(host="::1", tls=True, ca=ca) as service:
        context = ssl.create_default_context(cafile=service.ca_path)
        with socket.create_connection(("::1", service.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=NAME) as sock:
                raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert service.seen[0].sni == NAME


# ------------------------------------------------------- HTTP/1.1 by h11


def test_pipelined_requests_are_answered_in_order(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        reply = raw_exchange(sock, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                   b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert reply.index(b'"path": "/1"') < reply.index(b'"path": "/2"')
    assert [(s.target, s.connection) for s in http_service.seen] == [("/1", 1), ("/2", 1)]


def test_a_head_section_over_the_limit_gets_431_and_is_not_recorded(http_service):
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        # one byte over 1 MiB and no more, so the server has read it all when it answers
        reply = raw_exchange(sock, start + b"a" * ((1 << 20) + 1 - len(start)))
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert http_service.seen == []


def test_an_unknown_transfer_coding_gets_501(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        reply = raw_exchange(sock, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 501 ")
    assert http_service.seen == []


def test_a_client_gone_mid_body_is_not_recorded(http_service):
    with socket.create_connection(("127.0.0.1", http_service.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    wait_for(lambda: not http_service._threads)
    assert http_service.seen == []
    assert requests.get(http_service.url, timeout=5).ok  # the twin: the next client is served


def test_a_transfer_encoding_from_the_handler_is_sent_as_written_then_closed():
    chunked = Reply(headers={"Transfer-Encoding": "chunked"}, body=b"5\r\nhello\r\n0\r\n\r\n")
    with PrivateService(handler=lambda seen: chunked) as service, requests.Session() as session:
        assert [session.get(service.url, timeout=5).text for _ in range(2)] == ["hello", "hello"]
        assert service.connections == 2  # not kept alive: h11 did not frame it


def test_a_1xx_reply_is_sent_then_the_connection_closes():
    with PrivateService(handler=lambda seen: Reply(103, {"Link": "</a>; rel=preload"})) as service:
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
            reply = raw_exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply == b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
