"""Tests for :mod:`vpc_requests._bindings.binding`: ``Binding.fetch()`` and
``Binding.session()`` against real loopback services (docs/semantics.rst: S1, S7,
S8, S9, S12, S13), threads, pickling, ``responses``, and what ``fetch()`` accepts."""

from __future__ import annotations

import json
import pickle
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import responses
from helpers import contacted
from servers import closed_port
from urllib3.exceptions import InsecureRequestWarning

from vpc_requests import (
    Binding,
    ProxyError,
    RedirectError,
    RoutingError,
    VPCService,
)
from vpc_requests._bindings.binding import MAX_REDIRECTS
from vpc_requests.testing import PrivateService, Reply, Seen, echo

NAME = "internal-api.company.local"
OTHER = "other.company.local"
BINDING = "PRIVATE_API"


@pytest.fixture
def api(http_service: PrivateService, make_binding: Callable[..., Binding]) -> Binding:
    """A binding to the plain-HTTP service."""
    return make_binding(http_service)


def routes(table: dict[str, Reply]) -> Callable[[Seen], Reply]:
    """A handler answering by request-target, else echo."""

    def handler(seen: Seen) -> Reply:
        reply = table.get(seen.target)
        return reply if reply is not None else echo(seen)

    return handler


@pytest.fixture
def sessions() -> Iterator[list[requests.Session]]:
    made: list[requests.Session] = []
    yield made
    for session in made:
        session.close()


@pytest.fixture(params=["fetch", "session"])
def via(request: pytest.FixtureRequest, sessions: list[requests.Session]):
    """Send through ``binding.fetch()`` or through ``binding.session()``."""

    def send(binding: Binding, method: str, url: str, **kwargs: object) -> requests.Response:
        if request.param == "fetch":
            if "data" in kwargs:
                kwargs["body"] = kwargs.pop("data")
            return binding.fetch(url, method=method, **kwargs)
        session = binding.session()
        sessions.append(session)
        return session.request(method, url, **kwargs)

    send.kind = request.param  # type: ignore[attr-defined]
    return send


# ----------------------------------------------------------- S1: the route


@pytest.mark.parametrize("host", ["10.0.1.50", NAME, "10.0.1.50:8443"])
def test_fetch_goes_to_the_service_whatever_the_url_host(
    http_service: PrivateService, api: Binding, host: str
) -> None:
    response = api.fetch(f"http://{host}/users")
    assert response.status_code == 200
    assert response.json()["host"] == host
    (seen,) = http_service.seen
    assert (seen.host, seen.target, seen.port) == (host, "/users", http_service.port)


def test_fetch_over_https_sends_the_url_host_as_sni(
    https_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    api = make_binding(https_service)
    assert api.fetch(f"https://{NAME}/users", verify=https_service.ca_path).status_code == 200
    assert api.fetch("https://10.0.1.50/api/data", verify=https_service.ca_path).status_code == 200
    assert [(s.sni, s.host) for s in https_service.seen] == [(NAME, NAME), (None, "10.0.1.50")]
    with pytest.raises(requests.exceptions.SSLError):  # the twin
        api.fetch("https://wrong.company.local/", verify=https_service.ca_path)
    assert len(https_service.seen) == 2


def test_binding_attributes(api: Binding, http_service: PrivateService) -> None:
    assert api.name == BINDING
    assert api.service == VPCService(ipv4="127.0.0.1", http_port=http_service.port)
    assert api.adapter.binding == BINDING
    assert BINDING in repr(api)
    assert api == Binding(BINDING, api.service)
    assert hash(api) == hash(Binding(BINDING, api.service))


def test_binding_refuses_a_bad_name_or_errors_mode(http_service: PrivateService) -> None:
    service = VPCService(ipv4="127.0.0.1", http_port=http_service.port)
    with pytest.raises(TypeError):
        Binding("", service)
    with pytest.raises(ValueError, match="errors"):
        Binding("A", service, errors="ignore")


# ------------------------------------------------------- S3, S7: refusals


@pytest.mark.parametrize(
    "resource",
    [
        "/users",
        "users",
        "internal-api.company.local/users",
        "ftp://internal-api.company.local/file",
        "mailto:ops@company.local",
        "http:///users",
        "http://",
        requests.Request("GET", "/users"),
        requests.Request("GET", "ftp://internal-api.company.local/"),
    ],
)
def test_fetch_refuses_what_is_not_absolute_http(
    http_service: PrivateService, api: Binding, resource: object
) -> None:
    with pytest.raises(RoutingError) as info:
        api.fetch(resource)  # type: ignore[arg-type]
    assert f"'{BINDING}'" in str(info.value)
    assert http_service.connections == 0


def test_fetch_refuses_a_scheme_the_service_has_no_port_for(
    http_service: PrivateService, api: Binding
) -> None:
    with pytest.raises(RoutingError, match=f"'{BINDING}'.*no https_port"):
        api.fetch(f"https://{NAME}/")
    assert http_service.connections == 0
    assert api.fetch(f"http://{NAME}/").status_code == 200  # the twin


@pytest.mark.parametrize("url", ["ftp://files.company.local/x", "mailto:ops@company.local"])
def test_session_refuses_other_schemes_naming_the_binding(
    http_service: PrivateService, api: Binding, sessions: list[requests.Session], url: str
) -> None:
    session = api.session()
    sessions.append(session)
    with pytest.raises(RoutingError, match=f"'{BINDING}'"):
        session.get(url)
    assert http_service.connections == 0


def test_session_refuses_a_relative_url_as_requests_does(api: Binding, sessions: list[requests.Session]) -> None:
    session = api.session()
    sessions.append(session)
    with pytest.raises(requests.exceptions.MissingSchema):
        session.get("/users")


# ------------------------------------------------------------ S8: redirects


def test_redirect_to_another_host_stays_on_the_binding(
    make_binding: Callable[..., Binding], via
) -> None:
    handler = routes({"/start": Reply.redirect("http://evil.test:9999/x")})
    with PrivateService(handler=handler) as server:
        response = via(make_binding(server), "GET", f"http://{NAME}/start")
        assert response.status_code == 200
        assert response.url == "http://evil.test:9999/x"
        assert [r.status_code for r in response.history] == [302]
        first, second = server.seen
    assert (first.host, first.target) == (NAME, "/start")
    assert (second.host, second.target, second.port) == ("evil.test:9999", "/x", server.port)


def test_redirect_across_schemes_uses_the_scheme_port_and_sni(
    http_service: PrivateService, https_service: PrivateService, make_binding: Callable[..., Binding], via
) -> None:
    http_service.handler = routes({"/up": Reply.redirect(f"https://{OTHER}:1234/secure")})
    api = make_binding(http_service, https_service)
    response = via(api, "GET", f"http://{NAME}/up", verify=https_service.ca_path)
    assert response.status_code == 200
    (seen,) = https_service.seen
    assert (seen.sni, seen.host, seen.target) == (OTHER, f"{OTHER}:1234", "/secure")


@pytest.mark.parametrize(
    ("location", "target"),
    [("/next?a=1", "/next?a=1"), ("next", "/dir/next"), ("//evil.test/n", "/n"), ("?q=2", "/dir/start?q=2")],
)
def test_relative_redirects(make_binding: Callable[..., Binding], via, location: str, target: str) -> None:
    with PrivateService(handler=routes({"/dir/start": Reply.redirect(location)})) as server:
        response = via(make_binding(server), "GET", f"http://{NAME}:8080/dir/start")
        assert response.status_code == 200
        assert server.seen[1].target == target
        assert server.seen[1].port == server.port
        if location.startswith("//"):
            assert server.seen[1].host == "evil.test"
        else:
            assert server.seen[1].host == f"{NAME}:8080"


@pytest.mark.parametrize(
    ("status", "method", "after"),
    [
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (303, "POST", "GET"),
        (303, "PUT", "GET"),
        (303, "HEAD", "HEAD"),
        (301, "PUT", "PUT"),
        (307, "POST", "POST"),
        (308, "POST", "POST"),
        (307, "PUT", "PUT"),
        (308, "DELETE", "DELETE"),
    ],
)
def test_redirect_method_rewriting(
    make_binding: Callable[..., Binding], via, status: int, method: str, after: str
) -> None:
    with PrivateService(handler=routes({"/form": Reply.redirect("/done", status)})) as server:
        response = via(make_binding(server), method, f"http://{NAME}/form", data=b"payload")
        assert response.status_code == 200
        first, second = server.seen
    assert (first.method, first.body) == (method, b"payload")
    assert second.method == after
    if status in (307, 308):
        assert second.body == b"payload"
        assert second.header("Content-Length") == "7"
    else:
        # requests drops the body of every other redirect, also of a 301 PUT
        # that stays a PUT (Session.resolve_redirects); fetch() does the same.
        assert second.body == b""
        assert second.header("Content-Type") is None
        assert second.header("Content-Length") in (None, "0")


def test_redirect_of_a_json_post_drops_body_and_type(make_binding: Callable[..., Binding], via) -> None:
    with PrivateService(handler=routes({"/p": Reply.redirect("/q", 302)})) as server:
        via(make_binding(server), "POST", f"http://{NAME}/p", json={"a": 1})
        first, second = server.seen
    assert first.header("Content-Type") == "application/json"
    assert (second.method, second.body, second.header("Content-Type")) == ("GET", b"", None)


@pytest.mark.parametrize(
    ("location", "kept"),
    [
        ("/same", True),
        (f"http://{NAME}/same-absolute", True),
        ("http://evil.test/x", False),
        (f"http://{OTHER}/x", False),
    ],
)
def test_authorization_dropped_only_when_the_host_changes(
    make_binding: Callable[..., Binding], via, location: str, kept: bool
) -> None:
    with PrivateService(handler=routes({"/login": Reply.redirect(location)})) as server:
        via(make_binding(server), "GET", f"http://{NAME}/login", headers={"Authorization": "Bearer token"})
        first, second = server.seen
    assert first.header("Authorization") == "Bearer token"
    assert second.header("Authorization") == ("Bearer token" if kept else None)


def test_auth_keyword_dropped_on_a_cross_host_redirect(make_binding: Callable[..., Binding], via) -> None:
    with PrivateService(handler=routes({"/a": Reply.redirect("http://evil.test/b")})) as server:
        via(make_binding(server), "GET", f"http://{NAME}/a", auth=("user", "secret"))
        first, second = server.seen
    assert first.header("Authorization") is not None
    assert second.header("Authorization") is None


def hops_handler(seen: Seen) -> Reply:
    parts = seen.target.strip("/").split("/")
    if parts[0] == "hop" and int(parts[1]) > 0:
        return Reply.redirect(f"http://hop{parts[1]}.company.local/hop/{int(parts[1]) - 1}")
    return echo(seen)


def test_twenty_redirects_are_followed(make_binding: Callable[..., Binding], via) -> None:
    with PrivateService(handler=hops_handler) as server:
        response = via(make_binding(server), "GET", f"http://{NAME}/hop/{MAX_REDIRECTS}")
        assert response.status_code == 200
        assert len(response.history) == MAX_REDIRECTS == 20
        assert len(server.seen) == 21
        assert server.seen[-1].host == "hop1.company.local"


def test_twin_twenty_one_redirects_are_too_many(make_binding: Callable[..., Binding], via) -> None:
    with PrivateService(handler=hops_handler) as server:
        with pytest.raises(requests.TooManyRedirects):
            via(make_binding(server), "GET", f"http://{NAME}/hop/21")
        assert len(server.seen) == 21


def test_manual_redirect_returns_the_3xx(make_binding: Callable[..., Binding], via) -> None:
    with PrivateService(handler=routes({"/m": Reply.redirect("http://evil.test/x", 301)})) as server:
        api = make_binding(server)
        if via.kind == "fetch":
            response = api.fetch(f"http://{NAME}/m", redirect="manual")
        else:
            response = via(api, "GET", f"http://{NAME}/m", allow_redirects=False)
        assert response.status_code == 301
        assert response.headers["Location"] == "http://evil.test/x"
        assert len(server.seen) == 1
        # allow_redirects=False means manual for fetch too
        if via.kind == "fetch":
            assert api.fetch(f"http://{NAME}/m", allow_redirects=False).status_code == 301


def test_redirect_error_raises(make_binding: Callable[..., Binding]) -> None:
    with PrivateService(handler=routes({"/e": Reply.redirect("/f", 307)})) as server:
        api = make_binding(server)
        with pytest.raises(RedirectError, match=f"'{BINDING}'.*307") as info:
            api.fetch(f"http://{NAME}/e", redirect="error")
        assert info.value.response.status_code == 307
        assert len(server.seen) == 1
        assert api.fetch(f"http://{NAME}/e").status_code == 200  # the twin: follow
        with pytest.raises(ValueError, match="redirect"):
            api.fetch(f"http://{NAME}/e", redirect="bounce")


@pytest.mark.parametrize("location", ["ftp://files.company.local/x", "mailto:ops@company.local"])
def test_redirect_to_another_scheme_is_refused(make_binding: Callable[..., Binding], via, location: str) -> None:
    with PrivateService(handler=routes({"/f": Reply.redirect(location)})) as server:
        with pytest.raises(RoutingError, match=f"'{BINDING}'"):
            via(make_binding(server), "GET", f"http://{NAME}/f")
        assert len(server.seen) == 1


def test_redirect_to_a_scheme_the_service_lacks_is_refused(make_binding: Callable[..., Binding], via) -> None:
    with PrivateService(handler=routes({"/s": Reply.redirect(f"https://{NAME}/s")})) as server:
        with pytest.raises(RoutingError, match="no https_port"):
            via(make_binding(server), "GET", f"http://{NAME}/s")
        assert len(server.seen) == 1


@pytest.mark.parametrize("location", ["ftp://files.company.local/x", f"https://{NAME}/s"])
def test_a_refused_redirect_gives_its_connection_back_to_the_pool(
    make_binding: Callable[..., Binding], via, location: str
) -> None:
    refused = Reply(302, {"Location": location}, b"a redirect's body")
    with PrivateService(handler=routes({"/r": refused})) as server:
        api = make_binding(server, pool_maxsize=1, pool_block=True)
        for _ in range(2):
            with pytest.raises(RoutingError):
                via(api, "GET", f"http://{NAME}/r")
        # A lost connection would leave the one slot taken: this would block.
        done: list[int] = []
        worker = threading.Thread(
            target=lambda: done.append(api.fetch(f"http://{NAME}/ok", timeout=30).status_code), daemon=True
        )
        worker.start()
        worker.join(60)
        assert done == [200]
        assert server.connections == 1


@pytest.mark.parametrize(
    "broken",
    [
        Reply(302, {"Location": "/done", "Content-Length": "100"}, b"short"),
        Reply(302, {"Location": "/done", "Content-Encoding": "gzip"}, b"not gzip"),
    ],
    ids=["body shorter than Content-Length", "body that does not decode"],
)
def test_a_redirect_whose_own_body_is_broken_is_followed_like_requests(
    make_binding: Callable[..., Binding], via, broken: Reply
) -> None:
    with PrivateService(handler=routes({"/r": broken})) as server:
        plain = requests.get(f"{server.url}/r", timeout=3)
        response = via(make_binding(server), "GET", f"http://{NAME}/r", timeout=3)
        assert (response.status_code, [r.status_code for r in response.history]) == (
            plain.status_code, [r.status_code for r in plain.history]) == (200, [302])
        assert response.json()["path"] == "/done"


# -------------------------------------------------------------- S9: proxies


@pytest.mark.parametrize("variables", [("HTTP_PROXY",), ("HTTPS_PROXY",), ("ALL_PROXY",), ("HTTP_PROXY", "NO_PROXY")])
def test_proxy_variables_never_divert_fetch_or_session(
    http_service: PrivateService,
    https_service: PrivateService,
    make_binding: Callable[..., Binding],
    bare_listener: socket.socket,
    sessions: list[requests.Session],
    monkeypatch: pytest.MonkeyPatch,
    variables: tuple[str, ...],
) -> None:
    for variable in variables:
        value = "elsewhere.local" if variable == "NO_PROXY" else f"http://127.0.0.1:{bare_listener.getsockname()[1]}"
        monkeypatch.setenv(variable, value)
    api = make_binding(http_service, https_service)
    session = api.session()
    sessions.append(session)
    ca = https_service.ca_path
    assert api.fetch(f"http://{NAME}/f", timeout=2).status_code == 200
    assert api.fetch(f"https://{NAME}/fs", timeout=2, verify=ca).status_code == 200
    assert session.get(f"http://{NAME}/s", timeout=2).status_code == 200
    assert session.get(f"https://{NAME}/ss", timeout=2, verify=ca).status_code == 200
    assert not contacted(bare_listener)
    assert [s.target for s in http_service.seen] == ["/f", "/s"]
    assert [s.target for s in https_service.seen] == ["/fs", "/ss"]


def test_proxies_keyword_is_ignored_by_fetch(
    http_service: PrivateService, api: Binding, bare_listener: socket.socket
) -> None:
    proxy = f"http://127.0.0.1:{bare_listener.getsockname()[1]}"
    assert api.fetch(f"http://{NAME}/p", proxies={"http": proxy, "all": proxy}).status_code == 200
    assert not contacted(bare_listener)
    assert http_service.seen[0].target == "/p"


def test_session_redirect_with_proxy_variables_stays_on_the_binding(
    make_binding: Callable[..., Binding],
    bare_listener: socket.socket,
    sessions: list[requests.Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pw@127.0.0.1:{bare_listener.getsockname()[1]}")
    handler = routes({"/r": Reply.redirect("http://evil.test/x"), "/same": Reply.redirect("/y")})
    with PrivateService(handler=handler) as server:
        session = make_binding(server).session()
        sessions.append(session)
        assert session.get(f"http://{NAME}/r", timeout=2).status_code == 200
        assert session.get(f"http://{NAME}/same", timeout=2).status_code == 200
        assert [s.host for s in server.seen] == [NAME, "evil.test", NAME, NAME]
        # requests adds the proxy's credentials to every redirect hop; the
        # proxy is not used, so they must never reach the service
        assert [s.header("Proxy-Authorization") for s in server.seen] == [None] * 4
        # the twin: a Proxy-Authorization the caller sets is sent as given
        session.get(f"http://{NAME}/h", headers={"Proxy-Authorization": "Basic b3duOm9uZQ=="})
        assert server.seen[-1].header("Proxy-Authorization") == "Basic b3duOm9uZQ=="
    assert not contacted(bare_listener)


# ------------------------------------------------------ S10: headers


def test_fetch_sends_what_plain_requests_sends(http_service: PrivateService, api: Binding) -> None:
    kwargs = {"json": {"a": [1, 2]}, "headers": {"X-Request-Id": "r1"}, "params": {"q": "x y"}}
    api.fetch(f"http://{NAME}/h", method="POST", **kwargs)
    with requests.Session() as plain:
        plain.post(f"{http_service.url}/h", **kwargs)
    ours, theirs = http_service.seen
    assert [k for k, _ in ours.headers] == [k for k, _ in theirs.headers]
    assert [kv for kv in ours.headers if kv[0] != "Host"] == [kv for kv in theirs.headers if kv[0] != "Host"]
    assert (ours.target, ours.body) == (theirs.target, theirs.body)
    assert not [k for k, _ in ours.headers if k.lower().startswith(("cf-", "x-forwarded", "forwarded"))]


# ------------------------------------------------- TLS: CA bundle from the environment


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_fetch_honours_the_ca_bundle_variables_as_requests_does(
    https_service: PrivateService, make_binding: Callable[..., Binding], monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    api = make_binding(https_service)
    monkeypatch.setenv(variable, https_service.ca_path)
    assert api.fetch(f"https://{NAME}/a").status_code == 200
    assert api.fetch(f"https://{NAME}/b", verify=None).status_code == 200
    assert [r.status_code for r in api.fetch_many([f"https://{NAME}/c"])] == [200]  # type: ignore[union-attr]
    with api.session() as session:
        assert session.get(f"https://{NAME}/d").status_code == 200
    assert [s.target for s in https_service.seen] == ["/a", "/b", "/c", "/d"]
    # as in requests, an explicit verify= wins over the variable
    monkeypatch.setenv(variable, "/nonexistent/ca.pem")
    assert api.fetch(f"https://{NAME}/e", verify=https_service.ca_path).status_code == 200
    with pytest.warns(InsecureRequestWarning):
        assert api.fetch(f"https://{NAME}/f", verify=False).status_code == 200


def test_twin_without_a_ca_bundle_variable_fetch_uses_certifi_and_fails(
    https_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    with pytest.raises(requests.exceptions.SSLError) as info:
        make_binding(https_service).fetch(f"https://{NAME}/a")
    assert isinstance(info.value, ProxyError) and info.value.code == "tls_certificate_error"
    assert https_service.seen == []


# ---------------------------------------------------------- S12: statuses


@pytest.mark.parametrize("status", [400, 403, 404, 500, 503])
def test_fetch_returns_error_statuses(make_binding: Callable[..., Binding], status: int) -> None:
    with PrivateService(handler=lambda seen: Reply(status, body="nope")) as server:
        response = make_binding(server).fetch(f"http://{NAME}/x")
    assert (response.status_code, response.text, response.ok) == (status, "nope", False)


def test_errors_response_mode_returns_what_workers_sees(make_binding: Callable[..., Binding]) -> None:
    port = closed_port()
    api = Binding("DOWN", VPCService(ipv4="127.0.0.1", http_port=port), errors="response")
    try:
        response = api.fetch(f"http://{NAME}/x")
        assert response.status_code == 500
        assert response.text == "ProxyError: connection_refused"
    finally:
        api.close()
    raising = Binding("DOWN", VPCService(ipv4="127.0.0.1", http_port=port))
    try:
        with pytest.raises(ProxyError):  # the twin: the default raises
            raising.fetch(f"http://{NAME}/x")
    finally:
        raising.close()


# ------------------------------------------------------- S13: no mutation


def prepared_state(prepared: requests.PreparedRequest) -> tuple:
    hooks = {event: list(funcs) for event, funcs in prepared.hooks.items()}
    return (prepared.method, prepared.url, dict(prepared.headers), prepared.body, hooks)


def request_state(request: requests.Request) -> tuple:
    return (
        request.method, request.url, dict(request.headers), request.data, request.json,
        dict(request.params), {e: list(f) for e, f in request.hooks.items()},
    )


def test_fetch_never_mutates_a_prepared_request(http_service: PrivateService, api: Binding) -> None:
    prepared = requests.Request(
        "POST", f"http://{NAME}/p", data=b"original", headers={"X-A": "1", "Authorization": "Bearer t"}
    ).prepare()
    before = prepared_state(prepared)
    response = api.fetch(
        prepared, method="PUT", headers={"X-B": "2", "X-A": None}, body=b"override",
        params={"q": "1"}, auth=("u", "p"), cookies={"c": "v"},
        hooks={"response": [lambda r, *a, **k: r]},
    )
    assert prepared_state(prepared) == before
    assert "Host" not in prepared.headers
    seen = http_service.seen[0]
    assert (seen.method, seen.target, seen.body) == ("PUT", "/p?q=1", b"override")
    assert seen.header("X-B") == "2"
    assert seen.header("X-A") is None
    assert seen.header("Cookie") == "c=v"
    assert response.request is not prepared


def test_fetch_never_mutates_a_request(http_service: PrivateService, api: Binding) -> None:
    request = requests.Request(
        "POST", f"http://{NAME}/r", data={"k": "v"}, headers={"X-A": "1"}, params={"p": "1"}
    )
    before = request_state(request)
    api.fetch(request, headers={"X-B": "2"}, params={"p": "2"})
    api.fetch(request, json={"j": 1}, hooks={"response": lambda r, *a, **k: r})
    assert request_state(request) == before
    first, second = http_service.seen
    assert (first.method, first.target, first.body) == ("POST", "/r?p=2", b"k=v")
    assert (first.header("X-A"), first.header("X-B")) == ("1", "2")
    assert second.target == "/r?p=1"


def test_prepared_request_unchanged_across_redirects(make_binding: Callable[..., Binding]) -> None:
    handler = routes({
        "/a": Reply.redirect("http://evil.test:9999/b", 307),
        "/b": Reply.redirect("/c", 303),
    })
    with PrivateService(handler=handler) as server:
        api = make_binding(server)
        prepared = requests.Request(
            "POST", f"http://{NAME}/a", data=b"body", headers={"Authorization": "Bearer t"}
        ).prepare()
        before = prepared_state(prepared)
        response = api.fetch(prepared)
        assert prepared_state(prepared) == before
        assert [(s.method, s.host, s.body, s.header("Authorization")) for s in server.seen] == [
            ("POST", NAME, b"body", "Bearer t"),
            ("POST", "evil.test:9999", b"body", None),
            ("GET", "evil.test:9999", b"", None),
        ]
        assert response.url == "http://evil.test:9999/c"
        # the same object again: the first hop still goes to its own host
        api.fetch(prepared, redirect="manual")
        assert server.seen[-1].host == NAME


# ------------------------------------------------------ what fetch() takes


def test_fetch_resource_forms(http_service: PrivateService, api: Binding) -> None:
    url = f"http://{NAME}/forms"
    assert api.fetch(url).json()["method"] == "GET"
    assert api.fetch(requests.Request("DELETE", url)).json()["method"] == "DELETE"
    assert api.fetch(requests.Request("POST", url, data=b"x").prepare()).json()["body"] == "x"
    assert api.fetch(requests.Request("POST", url), method="PATCH").json()["method"] == "PATCH"
    with pytest.raises(TypeError, match="URL string"):
        api.fetch(42)  # type: ignore[arg-type]


def test_fetch_keyword_arguments(http_service: PrivateService, api: Binding) -> None:
    url = f"http://{NAME}/kw"
    body = api.fetch(url, method="POST", json={"a": 1}).json()
    assert json.loads(body["body"]) == {"a": 1}
    assert body["headers"]["Content-Type"] == "application/json"
    assert api.fetch(url, params={"x": "1", "y": ["2", "3"]}).json()["path"] == "/kw?x=1&y=2&y=3"
    auth = api.fetch(url, auth=("user", "pw")).json()["headers"]["Authorization"]
    assert auth == requests.auth._basic_auth_str("user", "pw")
    assert api.fetch(url, method="POST", body="text").json()["body"] == "text"
    assert api.fetch(url, method="POST", data={"f": "v"}).json()["body"] == "f=v"
    assert api.fetch(url, method="POST", body=iter([b"a", b"b"])).json()["body"] == "ab"
    assert api.fetch(url, timeout=5).status_code == 200
    assert api.fetch(url, timeout=(30, 60)).status_code == 200
    files = api.fetch(url, method="POST", files={"f": ("a.txt", b"hi")}).json()
    assert "multipart/form-data" in files["headers"]["Content-Type"]


def test_fetch_headers_none_removes_a_default(http_service: PrivateService, api: Binding) -> None:
    api.fetch(f"http://{NAME}/", headers={"Accept": None, "X-Extra": "1"})
    api.fetch(f"http://{NAME}/", headers=[("Accept", "text/plain")])
    first, second = http_service.seen
    assert first.header("Accept") is None
    assert first.header("X-Extra") == "1"
    assert first.header("User-Agent") is not None
    assert second.header("Accept") == "text/plain"
    api.fetch(f"http://{NAME}/")  # defaults are not changed for later fetches
    assert http_service.seen[2].header("Accept") == "*/*"


def test_fetch_argument_errors(api: Binding) -> None:
    with pytest.raises(TypeError, match="body= or data="):
        api.fetch(f"http://{NAME}/", body=b"a", data=b"b")
    with pytest.raises(TypeError, match="bogus"):
        api.fetch(f"http://{NAME}/", bogus=1)


def test_fetch_stream(make_binding: Callable[..., Binding]) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    with PrivateService(handler=lambda seen: Reply(200, body=payload)) as server:
        api = make_binding(server)
        response = api.fetch(f"http://{NAME}/big", stream=True)
        assert response.raw is not None and not response.raw.isclosed()
        chunks = list(response.iter_content(65536))
        response.close()
        assert b"".join(chunks) == payload
        assert len(chunks) > 1
        with api.fetch(f"http://{NAME}/big", stream=True) as second:
            assert second.raw.read(10) == payload[:10]
        # the pool is still usable afterwards
        assert api.fetch(f"http://{NAME}/big").content == payload


def test_fetch_response_hooks(http_service: PrivateService, api: Binding) -> None:
    called: list[int] = []
    api.fetch(f"http://{NAME}/", hooks={"response": lambda r, *a, **k: called.append(r.status_code)})
    assert called == [200]


def test_fetch_reuses_one_connection(http_service: PrivateService, api: Binding) -> None:
    for i in range(5):
        api.fetch(f"http://name{i}.company.local/")
    assert http_service.connections == 1


def test_session_attributes(http_service: PrivateService, api: Binding, sessions: list[requests.Session]) -> None:
    session = api.session(headers={"X-Session": "1"}, auth=("a", "b"))
    sessions.append(session)
    session.get(f"http://{NAME}/")
    seen = http_service.seen[0]
    assert seen.header("X-Session") == "1"
    assert seen.header("Authorization") == requests.auth._basic_auth_str("a", "b")
    assert session.max_redirects == MAX_REDIRECTS
    with pytest.raises(TypeError, match="get"):
        api.session(get=1)


# ---------------------------------------------------------------- threads


def test_sixteen_threads_share_one_binding_without_cross_talk(
    http_service: PrivateService, https_service: PrivateService, make_binding: Callable[..., Binding]
) -> None:
    api = make_binding(http_service, https_service)
    ca = https_service.ca_path
    names = ("internal-api.company.local", "other.company.local", "10.0.1.50")
    start = threading.Barrier(16)

    def worker(i: int) -> list[str]:
        start.wait()
        problems = []
        for j in range(20):
            scheme = "https" if i % 2 else "http"
            host = names[i % 3] if scheme == "https" else f"t{i}.company.local:{8000 + i}"
            url = f"{scheme}://{host}/thread/{i}/{j}?i={i}"
            response = api.fetch(url, method="POST", body=f"{i}-{j}", headers={"X-Thread": str(i)}, verify=ca)
            got = response.json()
            expected = (f"/thread/{i}/{j}?i={i}", host, f"{i}-{j}", str(i))
            actual = (got["path"], got["host"], got["body"], got["headers"].get("X-Thread"))
            if actual != expected or (scheme == "https" and got["sni"] != (None if host == "10.0.1.50" else host)):
                problems.append(f"{expected} != {actual}")
        return problems

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(worker, range(16)))
    assert [p for r in results for p in r] == []
    assert len(http_service.seen) + len(https_service.seen) == 320


# ---------------------------------------------------------------- pickling


def test_binding_pickles_and_the_copy_works(http_service: PrivateService, api: Binding) -> None:
    api.fetch(f"http://{NAME}/before")
    copy = pickle.loads(pickle.dumps(api))
    try:
        assert copy == api
        assert copy.name == BINDING
        assert copy.fetch("http://10.0.1.50/after").status_code == 200
    finally:
        copy.close()
    assert [(s.host, s.target) for s in http_service.seen] == [(NAME, "/before"), ("10.0.1.50", "/after")]


def test_binding_session_pickles_and_the_copy_works(
    http_service: PrivateService, api: Binding, sessions: list[requests.Session]
) -> None:
    session = api.session()
    sessions.append(session)
    copy = pickle.loads(pickle.dumps(session))
    sessions.append(copy)
    assert copy.get(f"http://{NAME}/copied").status_code == 200
    assert http_service.seen[0].host == NAME
    assert copy.max_redirects == MAX_REDIRECTS


# --------------------------------------------------------------- responses


def test_responses_intercepts_fetch_and_session(
    http_service: PrivateService, api: Binding, sessions: list[requests.Session]
) -> None:
    session = api.session()
    sessions.append(session)
    with responses.RequestsMock() as mock:
        mock.get("http://internal-api.company.local/users", json=[{"id": 1}])
        mock.post("http://internal-api.company.local/users", status=201)
        assert api.fetch("http://internal-api.company.local/users").json() == [{"id": 1}]
        assert session.get("http://internal-api.company.local/users").json() == [{"id": 1}]
        created = api.fetch("http://internal-api.company.local/users", method="POST", json={"n": 1})
        assert created.status_code == 201
        assert [c.request.url for c in mock.calls] == ["http://internal-api.company.local/users"] * 3
        assert mock.calls[2].request.body == b'{"n": 1}'
    assert http_service.connections == 0


@pytest.mark.parametrize("kind", ["fetch", "session"])
def test_twin_responses_refuses_an_unregistered_url(
    http_service: PrivateService, api: Binding, sessions: list[requests.Session], kind: str
) -> None:
    session = api.session()
    sessions.append(session)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get("http://internal-api.company.local/users", json=[])
        with pytest.raises(requests.ConnectionError, match="Connection refused by Responses") as info:
            if kind == "fetch":
                api.fetch("http://internal-api.company.local/other")
            else:
                session.get("http://internal-api.company.local/other")
    # responses' own error, not a binding failure
    assert type(info.value) is requests.ConnectionError
    assert not isinstance(info.value, ProxyError)
    assert http_service.connections == 0


def test_a_response_hook_that_raises_does_not_leak_the_response(http_service: PrivateService) -> None:
    got: list[requests.Response] = []

    def hook(response: requests.Response, **kwargs: object) -> None:
        got.append(response)
        raise RuntimeError("hook failed")

    with Binding("PRIVATE_API", VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        with pytest.raises(RuntimeError, match="hook failed"):
            api.fetch("http://internal-api.company.local/", hooks={"response": hook}, stream=True)
        # the twin: a hook that returns normally leaves the response open for the caller
        kept = api.fetch("http://internal-api.company.local/", hooks={"response": lambda r, **k: r}, stream=True)
        assert not kept.raw.closed
        kept.close()
    assert got[0].raw.closed


# --------------------------------- fetch's lean preparation is requests' own

LEAN_URLS = [
    f"http://{NAME}/items/1",
    f"http://{NAME}",
    f"http://{NAME}/a b/ünï?q=1 2&x=%41#frag",
    f"http://{NAME}/a/./b/../c",
    f"http://user:p%40ss@{NAME}/secret",
    f"HTTP://{NAME.upper()}:80/x",
]


@pytest.mark.parametrize("url", LEAN_URLS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_fetch_prepares_a_url_as_requests_prepare_does(api: Binding, url: str, method: str) -> None:
    for _ in range(2):  # the second time from the per-URL cache
        sent = api.fetch(url, method=method).request
        expected = requests.Request(method, url, headers=requests.utils.default_headers()).prepare()
        assert (sent.method, sent.url, sent.body) == (expected.method, expected.url, expected.body)
        assert dict(sent.headers) == dict(expected.headers)  # Authorization, Content-Length: 0 included


def test_twin_a_url_requests_refuses_is_refused_every_time(api: Binding, http_service: PrivateService) -> None:
    for _ in range(2):  # errors are never cached
        with pytest.raises(requests.exceptions.InvalidURL):
            api.fetch("http://*.company.local/")
    assert http_service.seen == []


def test_fetch_default_headers_are_a_fresh_copy_each_time(api: Binding) -> None:
    first = api.fetch(f"http://{NAME}/one").request
    first.headers["X-Changed"] = "1"
    second = api.fetch(f"http://{NAME}/two").request
    assert "X-Changed" not in second.headers
    assert first.headers is not second.headers


def test_twin_headers_given_to_fetch_still_go_through_prepare_headers(api: Binding) -> None:
    with pytest.raises(requests.exceptions.InvalidHeader):
        api.fetch(f"http://{NAME}/", headers={"X-Bad": "a\r\nInjected: 1"})
