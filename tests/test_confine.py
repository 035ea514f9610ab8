"""Confined redirect chains (S8, S14): a chain received through a binding stays
in it, and a hop to a host that is not the binding's own carries nothing of
that host: no .netrc credentials, no cookies from the jar, no Authorization.
The same for copies and pickles. Each rule is shown against what requests'
own redirect machinery does with the same binding adapter (the twin)."""

from __future__ import annotations

import copy
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import contacted
from requests.adapters import BaseAdapter
from requests.auth import _basic_auth_str

from vpc_requests import Binding, VPCService, mount
from vpc_requests._bindings.confine import ConfinedSession
from vpc_requests.testing import PrivateService, Reply, Seen

BOUND = "internal-api.company.local"
FOREIGN = "api.github.example"
GITHUB_AUTH = _basic_auth_str("octocat", "github-token")
SERVICE_AUTH = _basic_auth_str("svc", "service-token")
BILLING_AUTH = _basic_auth_str("bill", "billing-token")


@pytest.fixture(autouse=True)
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real .netrc with credentials for a public host and for bound hosts."""
    path = tmp_path / "netrc"
    path.write_text(
        f"machine {FOREIGN} login octocat password github-token\n"
        f"machine {BOUND} login svc password service-token\n"
        "machine billing.company.local login bill password billing-token\n"
        "machine other.company.local login other password other-token\n"
    )
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path


@pytest.fixture
def binding(http_service: PrivateService, make_binding: Callable[..., Binding]) -> Binding:
    return make_binding(http_service)


@pytest.fixture
def public() -> Iterator[PrivateService]:
    """An unrelated site that plain requests reaches directly."""
    with PrivateService(name="public") as service:
        answer(service, {})
        yield service


def answer(service: PrivateService, replies: dict[str, Reply]) -> None:
    """``service`` answers each path in ``replies`` so, anything else 200."""
    service.handler = lambda seen: replies.get(seen.target.split("?")[0], Reply(body=seen.target))


def mounted(binding: Binding, **hosts: str) -> requests.Session:
    session = requests.Session()
    return mount(session, binding, hosts={BOUND: "PRIVATE_API", **hosts})


def plain(binding: Binding) -> requests.Session:
    """The twin: requests' own redirect machinery, every URL through the
    binding's adapter (what binding.session() and mount() did before)."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, binding.adapter)
    return session


SESSIONS: dict[str, Callable[[Binding], requests.Session]] = {
    "binding.session": lambda b: b.session(),
    "mount": mounted,
}


@pytest.fixture(params=sorted(SESSIONS))
def confined(request: pytest.FixtureRequest, binding: Binding) -> Iterator[requests.Session]:
    with SESSIONS[request.param](binding) as session:
        yield session


def hops(service: PrivateService) -> list[tuple[str | None, str, str | None, str | None]]:
    return [(s.host, s.target, s.header("Authorization"), s.header("Cookie")) for s in service.seen]


# ------------------------------------------------------------ .netrc


def test_a_hop_to_another_host_gets_no_netrc_credentials(confined, http_service) -> None:
    answer(http_service, {"/start": Reply.redirect(f"http://{FOREIGN}/user")})
    response = confined.get(f"http://{BOUND}/start")
    assert response.text == "/user"
    assert hops(http_service) == [(BOUND, "/start", SERVICE_AUTH, None), (FOREIGN, "/user", None, None)]


def test_twin_requests_machinery_sends_the_other_hosts_netrc_credentials(binding, http_service) -> None:
    answer(http_service, {"/start": Reply.redirect(f"http://{FOREIGN}/user")})
    with plain(binding) as session:
        session.get(f"http://{BOUND}/start")
    assert http_service.seen[1].header("Authorization") == GITHUB_AUTH


@pytest.mark.parametrize("kind", sorted(SESSIONS))
def test_over_https_too(kind: str, https_service) -> None:
    answer(https_service, {"/start": Reply.redirect("https://other.company.local/x")})
    service = VPCService(ipv4="127.0.0.1", https_port=https_service.port)
    with Binding("PRIVATE_API", service) as tls_binding, SESSIONS[kind](tls_binding) as session:
        session.verify = https_service.ca_path
        assert session.get(f"https://{BOUND}/start").text == "/x"
    assert [(s.sni, s.header("Authorization")) for s in https_service.seen] == [
        (BOUND, SERVICE_AUTH), ("other.company.local", None),
    ]


def test_a_hop_on_the_bound_host_keeps_its_netrc_credentials(confined, http_service) -> None:
    answer(http_service, {"/start": Reply.redirect("/next"), "/next": Reply.redirect(f"http://{BOUND}:8080/last")})
    confined.get(f"http://{BOUND}/start")
    # /last: another port is another origin, so requests strips and re-reads
    # .netrc for the same host: the bound host's own credentials again.
    assert [a for _, _, a, _ in hops(http_service)] == [SERVICE_AUTH] * 3


def test_mount_a_hop_to_another_host_of_the_same_binding_is_home(binding, http_service) -> None:
    answer(http_service, {"/start": Reply.redirect("http://billing.company.local/x")})
    with mounted(binding, **{"billing.company.local": "PRIVATE_API"}) as session:
        session.get(f"http://{BOUND}/start")
    assert http_service.seen[1].header("Authorization") == BILLING_AUTH
    # The failing twin: the same host, not routed to this binding, is foreign.
    http_service.clear()
    with mounted(binding) as session:
        session.get(f"http://{BOUND}/start")
    assert [s.header("Authorization") for s in http_service.seen] == [SERVICE_AUTH, None]


def test_explicit_authorization_is_dropped_on_a_foreign_hop_only(confined, http_service, netrc) -> None:
    netrc.write_text("")  # .netrc credentials would replace the header
    answer(http_service, {"/start": Reply.redirect("/same"), "/same": Reply.redirect(f"http://{FOREIGN}/x")})
    confined.get(f"http://{BOUND}/start", headers={"Authorization": "Bearer mine"})
    assert [a for _, _, a, _ in hops(http_service)] == ["Bearer mine", "Bearer mine", None]


def test_no_proxy_credentials_from_the_environment_on_any_hop(
    confined, http_service, monkeypatch, bare_listener
) -> None:
    # requests' rebuild_proxies adds them to every hop; a binding uses no
    # proxy, so they must never reach the service.
    proxy = f"http://user:proxy-secret@127.0.0.1:{bare_listener.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    answer(http_service, {"/start": Reply.redirect("/same"), "/same": Reply.redirect(f"http://{FOREIGN}/x")})
    confined.get(f"http://{BOUND}/start")
    assert [s.header("Proxy-Authorization") for s in http_service.seen] == [None, None, None]
    assert not contacted(bare_listener)


# ------------------------------------------------------------ cookies


def crumbs(header: str | None) -> set[str] | None:
    """A Cookie header's cookies, in any order (the standard library's jar
    orders them differently from one Python version to another)."""
    return None if header is None else set(header.split("; "))


def test_a_foreign_hop_gets_no_cookie_from_the_jar(binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    answer(public, {"/login": Reply(headers={"Set-Cookie": "tracker=public-secret; Path=/"})})
    answer(http_service, {
        "/login": Reply(headers={"Set-Cookie": "svc=mine; Path=/"}),
        "/start": Reply.redirect("/same"),
        "/same": Reply.redirect(f"http://{other}/x"),
        "/x": Reply.redirect(f"http://{FOREIGN}/y"),
    })
    with mounted(binding) as session:
        session.get(f"http://{other}/login")  # an unrelated site sets a cookie
        session.get(f"http://{BOUND}/login")  # the bound host sets one
        session.cookies.set("gh", "github-secret", domain=FOREIGN)
        session.cookies.set("anywhere", "domainless")
        session.get(f"http://{BOUND}/start")
        jar = session.cookies
    assert [crumbs(s.header("Cookie")) for s in http_service.seen[1:]] == [
        {"svc=mine", "anywhere=domainless"}, {"svc=mine", "anywhere=domainless"}, None, None,
    ]
    # The twin: requests' machinery through the same adapter, the same jar.
    http_service.clear()
    with plain(binding) as twin:
        twin.cookies = jar
        twin.get(f"http://{BOUND}/start")
    assert crumbs(http_service.seen[2].header("Cookie")) == {"tracker=public-secret", "anywhere=domainless"}
    assert crumbs(http_service.seen[3].header("Cookie")) == {"gh=github-secret", "anywhere=domainless"}


def test_bound_host_cookies_work_as_in_plain_requests(confined, binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    answer(http_service, {
        "/login": Reply(headers={"Set-Cookie": "svc=mine; Path=/"}),
        "/start": Reply(status=302, headers={"Location": "/same", "Set-Cookie": "step=1; Path=/"}),
        "/same": Reply.redirect(f"http://{other}/x"),
        "/x": Reply.redirect(f"http://{FOREIGN}/y"),
    })

    def cookies_seen(session: requests.Session) -> list[str | None]:
        http_service.clear()
        session.get(f"http://{BOUND}/login")
        session.cookies.set("anywhere", "domainless")
        session.get(f"http://{BOUND}/start")
        return [crumbs(s.header("Cookie")) for s in http_service.seen]

    ours = cookies_seen(confined)
    with plain(binding) as twin:
        theirs = cookies_seen(twin)
    # /login, /start, /same: on the bound host, exactly what plain requests sends.
    assert ours[:3] == theirs[:3] == [
        None, {"svc=mine", "anywhere=domainless"}, {"svc=mine", "step=1", "anywhere=domainless"},
    ]
    # The foreign hops: only what this chain's responses set, and only where
    # it applies (step=1 is for the bound host), against the jar plain requests sends.
    assert ours[3:] == [None, None]
    assert theirs[3:] == [{"anywhere=domainless"}] * 2
    assert confined.cookies.get("step", domain=BOUND) == "1"


def test_a_foreign_hop_cannot_plant_cookies_for_that_host(confined, binding, http_service) -> None:
    answer(http_service, {
        "/start": Reply.redirect(f"http://{FOREIGN}/x"),
        "/x": Reply(status=302, headers={"Location": f"http://{FOREIGN}/y", "Set-Cookie": "session=attacker"}),
    })
    confined.get(f"http://{BOUND}/start")
    # The service gets back what it set within the chain, nothing else ...
    assert http_service.seen[2].header("Cookie") == "session=attacker"
    # ... and the jar does not keep it for the real api.github.example.
    assert confined.cookies.get("session", domain=FOREIGN) is None
    assert list(confined.cookies) == []
    with plain(binding) as session:  # the twin keeps it
        session.get(f"http://{BOUND}/start")
        assert session.cookies.get("session") == "attacker"


# ------------------------------------------------------------ routing


def test_a_request_a_hook_sends_meanwhile_is_routed_as_any_other(binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    answer(http_service, {
        "/start": Reply.redirect(f"http://{FOREIGN}/middle"),
        "/middle": Reply.redirect(f"http://{FOREIGN}/landing"),
    })
    with mounted(binding) as session:
        seen_by_hook: list[str] = []

        def hook(response: requests.Response, **kwargs: Any) -> requests.Response:
            if response.url.endswith("/middle"):  # a hop: the chain is being followed
                seen_by_hook.append(session.get(f"http://{other}/hook").text)
            return response

        session.hooks["response"].append(hook)
        assert session.get(f"http://{BOUND}/start").text == "/landing"
    assert seen_by_hook == ["/hook"]
    assert [(s.target, s.header("Authorization")) for s in public.seen] == [("/hook", None)]
    assert [s.target for s in http_service.seen] == ["/start", "/middle", "/landing"]


def test_re_entrant_chains_each_stay_in_and_leave_nothing_behind(binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    answer(http_service, {
        "/outer": Reply.redirect("/outer-2"),
        "/outer-2": Reply.redirect(f"http://{other}/outer-hop"),
        "/inner": Reply.redirect(f"http://{other}/inner-hop"),
    })
    with mounted(binding) as session:
        nested: list[str] = []

        def hook(response: requests.Response, **kwargs: Any) -> requests.Response:
            if response.url.endswith("/outer-2"):  # a hop of the outer chain
                nested.append(session.get(f"http://{BOUND}/inner").text)
                nested.append(session.get(f"http://{other}/between").text)
            return response

        session.hooks["response"].append(hook)
        assert session.get(f"http://{BOUND}/outer").text == "/outer-hop"
        assert session.get(f"http://{other}/after").text == "/after"
    assert nested == ["/inner-hop", "/between"]
    assert [s.target for s in http_service.seen] == ["/outer", "/outer-2", "/inner", "/inner-hop", "/outer-hop"]
    assert [s.target for s in public.seen] == ["/between", "/after"]


def test_another_thread_is_not_routed_while_a_chain_is_followed(binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    in_chain, release = threading.Event(), threading.Event()

    def handler(seen: Seen) -> Reply:
        if seen.target == "/start":
            return Reply.redirect(f"http://{other}/landing")
        in_chain.set()
        assert release.wait(30)
        return Reply(body=b"inside")

    http_service.handler = handler
    with mounted(binding) as session:
        results: list[str] = []
        chain = threading.Thread(target=lambda: results.append(session.get(f"http://{BOUND}/start").text))
        chain.start()
        try:
            assert in_chain.wait(30)
            assert session.get(f"http://{other}/meanwhile").text == "/meanwhile"
        finally:
            release.set()
            chain.join(30)
    assert results == ["inside"]
    assert [s.target for s in public.seen] == ["/meanwhile"]


def test_a_chain_entering_a_binding_midway_is_confined_from_there(binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    answer(public, {"/in": Reply.redirect(f"http://{BOUND}/start")})
    answer(http_service, {"/start": Reply.redirect(f"http://{FOREIGN}/out")})
    with mounted(binding) as session:
        response = session.get(f"http://{other}/in")
    assert response.text == "/out"
    assert [r.status_code for r in response.history] == [302, 302]
    assert hops(http_service) == [(BOUND, "/start", SERVICE_AUTH, None), (FOREIGN, "/out", None, None)]


class Trap(BaseAdapter):
    """An adapter that must never be used."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        self.urls.append(request.url)
        raise AssertionError(f"sent to the trap: {request.url}")

    def close(self) -> None:
        pass


def test_an_adapter_mounted_later_cannot_catch_a_hop(confined, http_service) -> None:
    trap = Trap()
    confined.mount(f"http://{FOREIGN}", trap)
    answer(http_service, {"/start": Reply.redirect(f"http://{FOREIGN}/x")})
    assert confined.get(f"http://{BOUND}/start").text == "/x"
    assert trap.urls == []
    # The twin: a request of the script's own to that host is the trap's.
    with pytest.raises(AssertionError, match="trap"):
        confined.get(f"http://{FOREIGN}/own")


def test_history_cookies_and_hooks_of_a_confined_chain(confined, http_service) -> None:
    answer(http_service, {"/a": Reply.redirect(f"http://{FOREIGN}/b", 301), "/b": Reply.redirect("/c", 307)})
    called: list[int] = []
    response = confined.post(
        f"http://{BOUND}/a", data=b"body", hooks={"response": lambda r, **k: called.append(r.status_code)}
    )
    assert (response.status_code, response.url) == (200, f"http://{FOREIGN}/c")
    assert [(r.status_code, len(r.history)) for r in response.history] == [(301, 0), (307, 1)]
    assert called == [301, 307, 200]
    assert [(s.method, s.body) for s in http_service.seen] == [("POST", b"body"), ("GET", b""), ("GET", b"")]


# ------------------------------------------------------------ copies


class OwnSession(requests.Session):
    """A script's own Session subclass."""


COPIES: dict[str, Callable[[requests.Session], requests.Session]] = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda s: pickle.loads(pickle.dumps(s)),
}


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("kind", ["binding.session", "mount", "mount(OwnSession)"])
def test_a_copy_is_exactly_as_confined(how: str, kind: str, binding, http_service, public) -> None:
    other = f"127.0.0.1:{public.port}"
    answer(http_service, {"/start": Reply.redirect(f"http://{other}/landing"), "/gh": Reply.redirect(f"http://{FOREIGN}/u")})
    if kind == "binding.session":
        original = binding.session()
    else:
        base = OwnSession() if kind == "mount(OwnSession)" else requests.Session()
        original = mount(base, binding, hosts={BOUND: "PRIVATE_API"})
    original.cookies.set("gh", "github-secret", domain=FOREIGN)
    duplicate = COPIES[how](original)
    try:
        assert isinstance(duplicate, ConfinedSession)
        assert isinstance(duplicate, OwnSession) == (kind == "mount(OwnSession)")
        assert duplicate.get(f"http://{BOUND}/start").text == "/landing"
        assert duplicate.get(f"http://{BOUND}/gh").text == "/u"
        assert public.seen == []
        assert hops(http_service)[3] == (FOREIGN, "/u", None, None)
        # A copy of the copy too.
        again = COPIES[how](duplicate)
        assert again.get(f"http://{BOUND}/start").text == "/landing"
        assert public.seen == []
    finally:
        duplicate.close()
        original.close()


@pytest.mark.parametrize("how", sorted(COPIES))
def test_twin_a_plain_session_copy_follows_the_redirect_out(how: str, binding, http_service, public) -> None:
    answer(http_service, {"/start": Reply.redirect(f"http://127.0.0.1:{public.port}/landing")})
    with requests.Session() as session:
        session.mount(f"http://{BOUND}", binding.adapter)
        duplicate = COPIES[how](session)
        duplicate.get(f"http://{BOUND}/start")
    assert [s.target for s in public.seen] == ["/landing"]


def test_response_next_of_a_binding_redirect_is_built_by_the_same_rules(binding, http_service) -> None:
    answer(http_service, {"/start": Reply.redirect(f"http://{FOREIGN}/user")})
    with binding.session() as session:
        session.cookies.set("gh", "github-secret", domain=FOREIGN)
        following = session.get(f"http://{BOUND}/start", allow_redirects=False).next
        assert following is not None and following.url == f"http://{FOREIGN}/user"
        assert "Authorization" not in following.headers and "Cookie" not in following.headers
        session.send(following)
    assert hops(http_service)[1] == (FOREIGN, "/user", None, None)
    # The twin: requests builds it with that host's credentials and cookies.
    with plain(binding) as twin:
        twin.cookies.set("gh", "github-secret", domain=FOREIGN)
        leaky = twin.get(f"http://{BOUND}/start", allow_redirects=False).next
    assert leaky is not None
    assert (leaky.headers["Authorization"], leaky.headers["Cookie"]) == (GITHUB_AUTH, "gh=github-secret")
