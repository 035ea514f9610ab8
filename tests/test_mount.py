"""mount(): legacy sessions routed by exact URL host; everything else untouched;
redirects received through a binding stay in it."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from vpc_requests import Binding, ConfigError, RoutingError, VPCService, mount
from vpc_requests._bindings.mount import HostRouter
from vpc_requests.testing import PrivateService, Reply


class RecordingAdapter(BaseAdapter):
    """Stands in for the network: records what plain requests would send."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        self.urls.append(request.url)
        response = requests.Response()
        response.status_code = 299
        response.url = request.url
        response.request = request
        response._content = b"fallback"
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def binding(http_service: PrivateService, make_binding):
    return make_binding(http_service)


def test_mapped_host_goes_through_binding_port_ignored(http_service, binding) -> None:
    with requests.Session() as session:
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        response = session.get("http://internal-api.company.local:9999/users")
    assert response.status_code == 200
    (seen,) = http_service.seen
    assert (seen.host, seen.target, seen.port) == ("internal-api.company.local:9999", "/users", http_service.port)


def test_host_match_is_case_insensitive_and_ignores_trailing_dot(http_service, binding) -> None:
    with requests.Session() as session:
        mount(session, binding, hosts={"Internal-API.company.local": "PRIVATE_API"})
        session.get("http://INTERNAL-api.company.LOCAL/a")
        session.get("http://internal-api.company.local./b")
    assert [s.target for s in http_service.seen] == ["/a", "/b"]


def test_unmapped_and_prefix_lookalike_hosts_go_to_the_previous_adapter(http_service, binding) -> None:
    fallback = RecordingAdapter()
    with requests.Session() as session:
        session.mount("http://", fallback)
        session.mount("https://", fallback)
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        for url in (
            "http://internal-api.company.local.evil.test/x",
            "http://evil-internal-api.company.local/x",
            "https://internal-api.company.local@evil.test/x",
            "http://other.company.local/x",
        ):
            assert session.get(url).status_code == 299
    assert len(fallback.urls) == 4
    assert http_service.seen == []


def test_unbound_hosts_go_out_exactly_as_plain_requests(binding) -> None:
    with PrivateService(name="public") as public:
        with requests.Session() as session:
            mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
            response = session.get(f"http://127.0.0.1:{public.port}/direct")
        with requests.Session() as plain:
            plain.get(f"http://127.0.0.1:{public.port}/direct")
        mounted, direct = public.seen
    assert response.status_code == 200
    assert mounted.headers == direct.headers
    assert mounted.host == f"127.0.0.1:{public.port}"


def test_redirect_through_a_binding_stays_in_it(binding, http_service) -> None:
    with PrivateService(name="elsewhere") as elsewhere:
        target = f"http://127.0.0.1:{elsewhere.port}/landing"
        http_service.handler = lambda seen: (
            Reply.redirect(target) if seen.target == "/start" else Reply(body=b"inside")
        )
        with requests.Session() as session:
            mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
            response = session.get("http://internal-api.company.local/start")
            # The failing twin: the same redirect followed by plain requests
            # leaves for the other host.
            with requests.Session() as plain:
                plain.mount("http://internal-api.company.local", binding.adapter)
                escaped = plain.get("http://internal-api.company.local/start")
        assert response.text == "inside"
        assert [s.target for s in http_service.seen][:2] == ["/start", "/landing"]
        assert http_service.seen[1].host == f"127.0.0.1:{elsewhere.port}"
        assert escaped.status_code == 200 and [s.target for s in elsewhere.seen] == ["/landing"]


def test_redirect_to_another_scheme_is_refused_not_sent_elsewhere(binding, http_service) -> None:
    http_service.handler = lambda seen: Reply.redirect("ftp://files.company.local/x")
    fallback = RecordingAdapter()
    with requests.Session() as session:
        session.mount("ftp://", fallback)
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        with pytest.raises(RoutingError, match="ftp"):
            session.get("http://internal-api.company.local/start")
    assert fallback.urls == []
    # The failing twin: without mount(), requests hands the hop to the ftp adapter.
    with requests.Session() as plain:
        plain.mount("ftp://", fallback)
        plain.mount("http://internal-api.company.local", binding.adapter)
        assert plain.get("http://internal-api.company.local/start").status_code == 299
    assert fallback.urls == ["ftp://files.company.local/x"]


def test_allow_redirects_false_returns_the_redirect(binding, http_service) -> None:
    http_service.handler = lambda seen: Reply.redirect("http://elsewhere.test/x")
    with requests.Session() as session:
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        response = session.get("http://internal-api.company.local/start", allow_redirects=False)
    assert response.status_code == 302
    assert len(http_service.seen) == 1


def test_without_hosts_each_binding_claims_its_service_hosts(http_service, binding) -> None:
    named = Binding("NAMED", VPCService(hostname="db-api.company.local", http_port=81))
    dual = Binding("DUAL", VPCService(ipv4="10.0.1.50", ipv6="fd00::50"))
    with requests.Session() as session:
        mount(session, binding)
        mount(session, named)
        mount(session, dual)
        router = session.get_adapter("http://")
        assert isinstance(router, HostRouter)
        assert router.table == {
            "127.0.0.1": binding, "db-api.company.local": named,
            "10.0.1.50": dual, "fd00::50": dual,
        }
        session.get("http://127.0.0.1:1/claimed")
    assert http_service.seen[0].target == "/claimed"


def test_env_and_unknown_binding_name(binding) -> None:
    class FakeEnv:
        bindings = {"PRIVATE_API": binding}

    with requests.Session() as session:
        with pytest.raises(KeyError, match="no binding 'NOPE'.*configured: PRIVATE_API"):
            mount(session, FakeEnv(), hosts={"x.company.local": "NOPE"})
        assert mount(session, FakeEnv(), hosts={"x.company.local": "PRIVATE_API"}) is session


def test_refused_scheme_through_binding(binding) -> None:
    with requests.Session() as session:
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        with pytest.raises(RoutingError, match="PRIVATE_API"):
            session.get("https://internal-api.company.local/")


@pytest.fixture
def escape(binding, http_service):
    """A bound service whose /start redirects to another loopback server that
    plain requests would reach directly; yields (session, elsewhere)."""
    with PrivateService(name="elsewhere") as elsewhere:
        target = f"http://127.0.0.1:{elsewhere.port}/landing"
        http_service.handler = lambda seen: (
            Reply.redirect(target) if seen.target == "/start" else Reply(body=b"inside")
        )
        with requests.Session() as session:
            mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
            yield session, elsewhere


def test_per_request_hooks_cannot_release_a_redirect(escape) -> None:
    session, elsewhere = escape
    response = session.get("http://internal-api.company.local/start", hooks={"response": [lambda r, **k: r]})
    assert response.text == "inside" and elsewhere.seen == []


def test_session_send_and_replaced_session_hooks_keep_redirects_in(escape) -> None:
    session, elsewhere = escape
    session.hooks = {"response": []}
    prepared = session.prepare_request(requests.Request("GET", "http://internal-api.company.local/start"))
    assert session.send(prepared).text == "inside"
    assert elsewhere.seen == []


def test_a_redirect_not_followed_leaves_no_trace(escape, http_service) -> None:
    session, elsewhere = escape
    first = session.get("http://internal-api.company.local/start", allow_redirects=False)
    assert first.status_code == 302
    # A later request of the script to that URL is its own: it goes out as
    # plain requests sends it, to the unbound host.
    assert session.get(first.headers["Location"]).status_code == 200
    assert [s.target for s in elsewhere.seen] == ["/landing"]
    assert [s.target for s in http_service.seen] == ["/start"]


def test_a_binding_redirect_chain_stops_after_twenty_hops(binding, http_service) -> None:
    def loop(seen):
        hop = int(seen.target.strip("/") or 0)
        return Reply.redirect(f"http://elsewhere.company.local/{hop + 1}") if hop < limit else Reply(body=b"end")

    http_service.handler = loop
    with requests.Session() as session:
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        limit = 20
        assert session.get("http://internal-api.company.local/0").text == "end"
        limit = 21
        with pytest.raises(requests.TooManyRedirects):
            session.get("http://internal-api.company.local/0")


@pytest.mark.parametrize(
    "key", ["internal-api.company.local:8080", "http://internal-api.company.local", "a.local/x", "u@a.local", ""]
)
def test_a_hosts_key_that_is_not_a_host_is_refused(binding, key: str) -> None:
    with requests.Session() as session, pytest.raises(ConfigError, match="not a host"):
        mount(session, binding, hosts={key: "PRIVATE_API"})


def test_unicode_and_ipv6_hosts_match_what_requests_sends(binding, http_service) -> None:
    with requests.Session() as session:
        mount(session, binding, hosts={"bücher.company.local": "PRIVATE_API", "[FD00::1]": "PRIVATE_API"})
        session.get("http://bücher.company.local/idn")
        session.get("http://[fd00:0::1]:8080/v6")
    assert [(s.target, s.host) for s in http_service.seen] == [
        ("/idn", "xn--bcher-kva.company.local"), ("/v6", "[fd00:0::1]:8080"),
    ]


def test_two_bindings_claiming_one_address_is_an_error_naming_both(binding) -> None:
    twin = Binding("ALSO_LOCAL", VPCService(ipv4="127.0.0.1", http_port=81))

    class TwoBindings:
        bindings = {"PRIVATE_API": binding, "ALSO_LOCAL": twin}

    with requests.Session() as session:
        with pytest.raises(ConfigError, match=r"'127\.0\.0\.1' is claimed by two bindings, 'PRIVATE_API' and "
                           r"'ALSO_LOCAL'; pass hosts="):
            mount(session, TwoBindings())
        # The same across two calls: the later binding does not silently win.
        mount(session, binding)
        with pytest.raises(ConfigError, match="'PRIVATE_API' and 'ALSO_LOCAL'"):
            mount(session, twin)
        # The failing twin: the same binding again, or hosts= choosing, is fine.
        mount(session, binding)
    with requests.Session() as session:
        mount(session, TwoBindings(), hosts={"127.0.0.1": "ALSO_LOCAL", "internal-api.company.local": "PRIVATE_API"})
        assert session.get_adapter("http://").table == {"127.0.0.1": twin, "internal-api.company.local": binding}


def test_one_host_spelled_twice_for_two_bindings_is_an_error(binding) -> None:
    other = Binding("OTHER", VPCService(hostname="other.company.local"))

    class Env:
        bindings = {"PRIVATE_API": binding, "OTHER": other}

    with requests.Session() as session, pytest.raises(ConfigError, match="claimed by two bindings"):
        mount(session, Env(), hosts={"Api.company.local": "PRIVATE_API", "api.company.local.": "OTHER"})


@pytest.mark.parametrize("hosts", [["internal-api.company.local"], [("internal-api.company.local", "PRIVATE_API")],
                                   "internal-api.company.local"])
def test_hosts_that_is_not_a_mapping_is_a_type_error(binding, hosts: Any) -> None:
    with requests.Session() as session, pytest.raises(TypeError, match="hosts must be a mapping"):
        mount(session, binding, hosts=hosts)
    # The twin: the same pairs as a dict.
    with requests.Session() as session:
        mount(session, binding, hosts=dict([("internal-api.company.local", "PRIVATE_API")]))
