"""Logging (issue 6, item 4): one DEBUG line per exchange on the
``vpc_requests`` logger hierarchy (binding, method, URL host -> origin:port,
then status or failure code, elapsed), and never a secret: header values,
URL userinfo, path, query, fragment, request and response bodies, auth.

The scan covers every record of the ``vpc_requests`` hierarchy except
``vpc_requests.testing``, which is the loopback *server* of these tests (it
legitimately sees the request). Its twin shows the scan finds a secret where
one is logged: urllib3's own DEBUG line carries the request target, query
included, exactly as with plain requests.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
from collections.abc import Callable, Iterator

import pytest
import requests
from servers import ScriptedServer, closed_port, stalled_headers

from vpc_requests import Binding, ProxyError, VPCService, VPCServiceAdapter
from vpc_requests.testing import PrivateService, Reply, Seen, echo

NAME = "internal-api.company.local"
SECRETS = {
    "authorization": "SECRET-AUTH-HEADER-1",
    "cookie": "SECRET-COOKIE-2",
    "custom": "SECRET-CUSTOM-HEADER-3",
    "password": "SECRET-USERINFO-4",
    "query": "SECRET-QUERY-5",
    "path": "SECRET-PATH-6",
    "body": "SECRET-BODY-7",
    "json": "SECRET-JSON-8",
    "auth": "SECRET-AUTH-KWARG-9",
    "fragment": "SECRET-FRAGMENT-10",
    "response": "SECRET-RESPONSE-11",
    "redirect": "SECRET-REDIRECT-12",
    # what requests sends for alice:SECRET-USERINFO-4@ (Basic auth)
    "basic": base64.b64encode(b"alice:SECRET-USERINFO-4").decode(),
}
URL = (f"http://alice:{SECRETS['password']}@{NAME}/{SECRETS['path']}/x"
       f"?token={SECRETS['query']}#{SECRETS['fragment']}")
HEADERS = {
    "Authorization": f"Bearer {SECRETS['authorization']}",
    "Cookie": f"session={SECRETS['cookie']}",
    "X-Api-Key": SECRETS["custom"],
}
LINE = re.compile(
    r"binding=LOG (?P<method>[A-Z]+) internal-api\.company\.local -> 127\.0\.0\.1:\d+ "
    r"(status=(?P<status>\d{3})|failed code=(?P<code>[a-z_]+)) elapsed=\d+\.\dms"
)


def handler(seen: Seen) -> Reply:
    path = seen.target.split("?")[0]
    if path.endswith("/hop"):
        return Reply.redirect(f"/{SECRETS['path']}/next?token={SECRETS['redirect']}")
    if path.endswith("/missing"):
        return Reply(404, body=SECRETS["response"])
    if path.endswith("/short"):
        return Reply(headers={"Content-Length": "100"}, body=SECRETS["response"])
    reply = echo(seen)  # the response echoes every secret back
    return Reply(reply.status, reply.headers, reply.body + SECRETS["response"].encode())


@pytest.fixture
def service() -> Iterator[PrivateService]:
    with PrivateService(handler=handler) as running:
        yield running


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def binding_to(make_binding: Callable[..., Binding]) -> Callable[..., Binding]:
    return functools.partial(make_binding, name="LOG")


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name.split(".")[0] == "vpc_requests" and r.name != "vpc_requests.testing"]


def leaks(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    """(logger, secret) for every secret in a record's formatted message,
    its arguments, or its formatted exception."""
    formatter = logging.Formatter("%(name)s %(message)s")
    found = []
    for record in records:
        text = " ".join([formatter.format(record), repr(record.args), repr(record.msg)])
        found.extend((record.name, secret) for secret in SECRETS.values() if secret in text)
    return found


def lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    matched = []
    for record in ours(caplog):
        if record.name == "vpc_requests.adapter" and record.levelno == logging.DEBUG:
            match = LINE.fullmatch(record.getMessage())
            assert match, record.getMessage()
            matched.append(match)
    return matched


def test_successful_exchanges_log_one_line_each_and_no_secret(
    service: PrivateService, debug: pytest.LogCaptureFixture
, binding_to) -> None:
    binding = binding_to(service.port)
    response = binding.fetch(URL, headers=HEADERS, body=SECRETS["body"], method="POST")
    assert SECRETS["response"] in response.text and SECRETS["body"] in response.text
    binding.fetch(URL.replace(f"alice:{SECRETS['password']}@", ""), headers=HEADERS)  # Bearer sent as is
    binding.fetch(URL, headers=HEADERS, json={"password": SECRETS["json"]}, method="PUT")
    with binding.session() as session:
        session.get(URL, headers=HEADERS, auth=("bob", SECRETS["auth"]))
        assert session.get(URL.replace("/x?", "/missing?")).status_code == 404
    # a redirect: one line per hop
    binding.fetch(URL.replace(f"/{SECRETS['path']}/x", "/hop"), headers=HEADERS)

    found = lines(debug)
    assert [(m["method"], m["status"]) for m in found] == [
        ("POST", "200"), ("GET", "200"), ("PUT", "200"), ("GET", "200"), ("GET", "404"),
        ("GET", "302"), ("GET", "200"),
    ]
    assert leaks(ours(debug)) == []


def test_failures_log_their_code_and_no_secret(
    service: PrivateService, debug: pytest.LogCaptureFixture, binding_to
) -> None:
    failures: list[BaseException] = []
    with pytest.raises(ProxyError) as refused:
        binding_to(closed_port()).fetch(URL, headers=HEADERS, body=SECRETS["body"], method="POST")
    failures.append(refused.value)
    with ScriptedServer(stalled_headers) as stalled, pytest.raises(ProxyError) as timed_out:
        binding_to(stalled.port).fetch(URL, headers=HEADERS, timeout=0.2)
    failures.append(timed_out.value)
    streamed = binding_to(service.port).fetch(URL.replace("/x?", "/short?"), headers=HEADERS, stream=True)
    with pytest.raises(ProxyError) as incomplete:
        streamed.content  # noqa: B018
    failures.append(incomplete.value)
    as_response = binding_to(closed_port(), errors="response").fetch(URL, headers=HEADERS)
    assert as_response.text == "ProxyError: connection_refused"

    found = lines(debug)
    assert [(m["method"], m["status"], m["code"]) for m in found] == [
        ("POST", None, "connection_refused"),
        ("GET", None, "connection_read_timeout"),
        ("GET", "200", None),  # the headers arrived...
        ("GET", None, "http_response_incomplete"),  # ...the body did not
        ("GET", None, "connection_refused"),
    ]
    assert leaks(ours(debug)) == []
    # nor do the exceptions' messages carry a secret
    for failure in failures:
        assert [s for s in SECRETS.values() if s in str(failure)] == []


def test_adapter_on_a_plain_session_logs_the_same_way(service: PrivateService, debug: pytest.LogCaptureFixture) -> None:
    adapter = VPCServiceAdapter(VPCService(ipv4="127.0.0.1", http_port=service.port), binding="LOG")
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.get(URL, headers=HEADERS, cookies={"sid": SECRETS["cookie"]})
    assert [m["status"] for m in lines(debug)] == ["200"]
    assert leaks(ours(debug)) == []


def test_nothing_is_logged_above_debug(service: PrivateService, caplog: pytest.LogCaptureFixture, binding_to) -> None:
    caplog.set_level(logging.INFO)
    binding_to(service.port).fetch(URL, headers=HEADERS)
    with pytest.raises(ProxyError):
        binding_to(closed_port()).fetch(URL)
    assert ours(caplog) == []


def test_twin_the_scan_finds_a_secret_where_one_is_logged(
    service: PrivateService, debug: pytest.LogCaptureFixture
, binding_to) -> None:
    binding_to(service.port).fetch(URL, headers=HEADERS)
    urllib3_records = [r for r in debug.records if r.name.startswith("urllib3")]
    assert ("urllib3.connectionpool", SECRETS["query"]) in leaks(urllib3_records)
    logging.getLogger("vpc_requests.adapter").debug("oops %s", HEADERS["Authorization"])
    assert ("vpc_requests.adapter", SECRETS["authorization"]) in leaks(ours(debug))
