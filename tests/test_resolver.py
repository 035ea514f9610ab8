"""resolver_ips (issue 4): a hostname service is resolved by its own DNS
servers, here a DNS server on a loopback UDP port (tests/servers/tunnels.py)
that knows names the system resolver does not, and counts the queries."""

from __future__ import annotations

import sys
import threading

import pytest
import requests
from servers import Asked, DNSServer, Socks5Server

from vpc_requests import Binding, ProxyConnectTimeout, ProxyError, VPCService
from vpc_requests._transport.resolver import Resolver, parse_server, resolver_for

NAME = "internal-api.company.local"
#: Timeouts where an answer is expected: a DNS server thread on a loaded
#: machine may answer late, and only a failing test waits this out.
GENEROUS = 60.0

LOOP = "127.0.0.1"


@pytest.fixture
def dns():
    with DNSServer({NAME: [LOOP]}, ttl=300) as server:
        yield server


def direct(server: DNSServer, port: int, name: str = NAME) -> Binding:
    service = VPCService(hostname=name, http_port=port, resolver_ips=[server.address])
    return Binding("API", service)


def caught(call, *args, **kwargs) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("entry", "expected"),
    [("10.0.0.53", ("10.0.0.53", 53)), ("10.0.0.53:5353", ("10.0.0.53", 5353)),
     ("fd00::53", ("fd00::53", 53)), ("[fd00::53]:5353", ("fd00::53", 5353))],
)
def test_resolver_ips_entries(entry, expected):
    assert parse_server(entry) == expected


def test_a_name_only_the_resolver_knows_is_reached(dns, http_service):
    api = direct(dns, http_service.port)
    response = api.fetch(f"http://{NAME}/users", timeout=GENEROUS)
    assert response.status_code == 200
    assert http_service.seen[0].host == NAME
    assert (dns.count(NAME, "A"), dns.count(NAME, "AAAA")) == (1, 1)


def test_the_answer_is_kept_for_its_ttl(dns, http_service):
    api = direct(dns, http_service.port)
    for _ in range(3):
        api.fetch(f"http://{NAME}/", timeout=GENEROUS)
        api.close()  # a new connection, so a new dial each time
    assert len(http_service.seen) == 3
    assert dns.count(NAME, "A") == 1


def test_a_zero_ttl_answer_is_not_kept(http_service):
    with DNSServer({NAME: [LOOP]}, ttl=0) as server:
        api = direct(server, http_service.port)
        for _ in range(3):
            api.fetch(f"http://{NAME}/", timeout=GENEROUS)
            api.close()
        assert server.count(NAME, "A") == 3


def test_an_answer_expires_after_its_ttl():
    now = [1000.0]
    with DNSServer({NAME: [LOOP, "::1"]}, ttl=60) as server:
        resolver = Resolver([server.address], clock=lambda: now[0])
        assert resolver.resolve(NAME, GENEROUS) == ("::1", LOOP)  # IPv6 first
        now[0] += 59
        resolver.resolve(NAME, GENEROUS)
        assert server.count(NAME, "A") == 1
        now[0] += 2
        resolver.resolve(NAME, GENEROUS)
        assert server.count(NAME, "A") == 2
        resolver.clear()
        resolver.resolve(NAME, GENEROUS)
        assert server.count(NAME, "A") == 3


def test_concurrent_lookups_share_one_query():
    with DNSServer({NAME: [LOOP]}, delay=0.2) as server:
        resolver = Resolver([server.address])
        start = threading.Barrier(10)
        results: list[object] = []

        def lookup() -> None:
            start.wait()
            results.append(resolver.resolve(NAME, GENEROUS))

        threads = [threading.Thread(target=lookup) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [(LOOP,)] * 10
        assert (server.count(NAME, "A"), server.count(NAME, "AAAA")) == (1, 1)


def test_concurrent_lookups_of_a_missing_name_all_fail_from_one_query():
    with DNSServer({}, delay=0.2) as server:
        resolver = Resolver([server.address])
        errors: list[ProxyError] = []

        def lookup() -> None:
            try:
                resolver.resolve("nope.company.local", GENEROUS)
            except ProxyError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=lookup) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [e.code for e in errors] == ["dns_error"] * 5
        assert server.count("nope.company.local", "AAAA") == 1


def test_nxdomain_is_dns_error(dns, http_service):
    error = caught(direct(dns, http_service.port, "nope.company.local").fetch, "http://nope.company.local/",
                   timeout=GENEROUS)
    assert isinstance(error, requests.ConnectionError)
    assert error.code == "dns_error"
    assert str(error).startswith("ProxyError: dns_error (binding 'API'")
    assert f"nope.company.local does not exist (NXDOMAIN from resolver_ips {dns.address})" in str(error)
    assert http_service.seen == []


def test_a_name_without_addresses_is_dns_error(http_service):
    with DNSServer({NAME: []}) as server:
        error = caught(direct(server, http_service.port).fetch, f"http://{NAME}/", timeout=GENEROUS)
    assert error.code == "dns_error"
    assert "no A or AAAA record" in str(error)


def test_a_silent_resolver_is_dns_timeout_within_the_connect_timeout(http_service, monkeypatch):
    # What bounded the lookup (the timeout it was given), not how long it took.
    given: list[float | None] = []
    original = Resolver.resolve

    def resolve(self: Resolver, name: str, timeout: float | None = None) -> tuple[str, ...]:
        given.append(timeout)
        return original(self, name, timeout)

    monkeypatch.setattr(Resolver, "resolve", resolve)
    with DNSServer({NAME: [LOOP]}, silent=True) as server:
        error = caught(direct(server, http_service.port).fetch, f"http://{NAME}/", timeout=(0.5, 60))
    assert isinstance(error, ProxyConnectTimeout) and isinstance(error, requests.ConnectTimeout)
    assert error.code == "dns_timeout"
    assert f"no answer for {NAME} from resolver_ips {server.address}" in str(error)
    assert len(given) == 1 and given[0] is not None and 0 < given[0] <= 0.5  # the connect timeout's
    assert http_service.seen == []


def test_ipv6_answer_first_then_ipv4_fallback(http_service):
    # ::1 has nothing listening on the service's port: the IPv4 answer is used.
    with DNSServer({NAME: ["::1", LOOP]}) as server:
        assert direct(server, http_service.port).fetch(f"http://{NAME}/", timeout=GENEROUS).status_code == 200
        assert server.count(NAME, "AAAA") == 1


def test_socks5_resolves_with_resolver_ips_and_sends_the_address(https_service):
    # The resolver's answer is a private address we never connect to (the
    # suite only allows loopback): only the tunnel end does.
    with DNSServer({NAME: ["10.0.1.50"]}) as server, Socks5Server(
        {("10.0.1.50", 443): (LOOP, https_service.port)}
    ) as socks:
        service = VPCService(hostname=NAME, resolver_ips=[server.address])
        api = Binding("API", service, tunnel=f"socks5://{LOOP}:{socks.port}")
        assert api.fetch(f"https://{NAME}/", verify=https_service.ca_path, timeout=GENEROUS).status_code == 200
        assert socks.asked == [Asked("10.0.1.50", 443, "ipv4")]
        assert https_service.seen[0].sni == NAME
        assert server.count(NAME, "A") == 1


def test_socks5h_leaves_resolution_to_the_tunnel_end(http_service):
    with DNSServer({NAME: ["10.0.1.50"]}) as server, Socks5Server(
        {(NAME, 80): (LOOP, http_service.port)}
    ) as socks:
        service = VPCService(hostname=NAME, resolver_ips=[server.address])
        api = Binding("API", service, tunnel=f"socks5h://{LOOP}:{socks.port}")
        assert api.fetch(f"http://{NAME}/", timeout=GENEROUS).status_code == 200
        assert socks.asked == [Asked(NAME, 80, "domain")]
        assert sum(server.queries.values()) == 0


def test_without_resolver_ips_the_system_resolver_is_used(http_service):
    api = Binding("API", VPCService(hostname="localhost", http_port=http_service.port))
    assert api.fetch(f"http://{NAME}/", timeout=GENEROUS).status_code == 200


def test_resolvers_are_shared_per_server_list():
    assert resolver_for(["127.0.0.1:5353"]) is resolver_for(("127.0.0.1:5353",))
    assert resolver_for(["127.0.0.1:5353"]) is not resolver_for(["127.0.0.1:5354"])


def test_without_dnspython_resolver_ips_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dns.resolver", None)
    service = VPCService(hostname=NAME, resolver_ips=["10.0.0.53"])
    with pytest.raises(ImportError, match=r"vpc_requests\[dns\]"):
        Binding("API", service)
    Binding("API", service, tunnel="socks5h://127.0.0.1:1080")  # the far end resolves


def test_a_forked_child_resolves_with_fresh_locks(dns):
    import os
    import warnings

    resolver = Resolver([dns.address])
    resolver._lock.acquire()  # as if a parent thread were mid-lookup at fork time
    with warnings.catch_warnings():  # 3.12+: "multi-threaded process, fork()"
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            code = 0 if resolver.resolve(NAME, GENEROUS) == (LOOP,) else 1
        except BaseException:
            code = 2
        os._exit(code)
    resolver._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
