"""Tunnels (issue 4): SOCKS5 (socks5://, socks5h://) and HTTP CONNECT
(http://, https://) transports, against real tunnel ends on loopback
(tests/servers/tunnels.py) that record the target they were asked for.

What every test checks: the tunnel was asked for the service's origin and
the scheme's port (never the URL's host or port); the origin saw Host and SNI
from the URL; failures are ProxyErrors that name the tunnel.
"""

from __future__ import annotations

import pickle
import sys

import pytest
import requests
from servers import Asked, ConnectProxy, Socks5Server, closed_port, tls_server_context

from vpc_requests import Binding, ConfigError, ProxyError, VPCService, VPCServiceAdapter
from vpc_requests._transport.tunnels import Transport, describe_transport, parse_tunnel, probe_tunnel

NAME = "internal-api.company.local"
LOOP = "127.0.0.1"

#: The service as Cloudflare knows it: a name and ports that exist only at
#: the far end of the tunnel.
SERVICE = VPCService(hostname=NAME, http_port=8080, https_port=8443, name="api")


@pytest.fixture
def routes(http_service, https_service):
    """What the tunnel ends map the service's origin to (loopback)."""
    return {(NAME, 8080): (LOOP, http_service.port), (NAME, 8443): (LOOP, https_service.port)}


@pytest.fixture
def socks(routes):
    with Socks5Server(routes) as server:
        yield server


@pytest.fixture
def proxy(routes):
    with ConnectProxy(routes) as server:
        yield server


def binding(tunnel: str, service: VPCService = SERVICE) -> Binding:
    return Binding("API", service, tunnel=tunnel)


def caught(call, *args, **kwargs) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        call(*args, **kwargs)
    return info.value


# -- transport URLs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, Transport("direct")),
        ("direct", Transport("direct")),
        ("socks5h://127.0.0.1", Transport("socks5h", "127.0.0.1", 1080)),
        ("SOCKS5://[::1]:9050", Transport("socks5", "::1", 9050)),
        ("socks5://al%40ice:p%3Ass@bastion:1080", Transport("socks5", "bastion", 1080, "al@ice", "p:ss")),
        ("http://proxy.internal", Transport("http", "proxy.internal", 80)),
        ("https://u:p@proxy.internal/", Transport("https", "proxy.internal", 443, "u", "p")),
    ],
)
def test_transport_urls_parse(url, expected):
    assert parse_tunnel(url) == expected
    assert "p:ss" not in repr(parse_tunnel(url))


@pytest.mark.parametrize(
    "url",
    ["ftp://proxy:21", "socks4://proxy:1080", "socks5://", "socks5://proxy:0", "socks5://proxy:99999",
     "http://proxy:3128/path", "http://proxy:3128?x=1", "socks5h://pro xy:1080", "proxy:1080", ""],
)
def test_a_bad_transport_url_is_refused_when_the_binding_is_made(url):
    with pytest.raises(ConfigError, match="tunnel"):
        Binding("API", SERVICE, tunnel=url)
    with pytest.raises(ConfigError):
        VPCServiceAdapter(SERVICE, tunnel=url)


def test_describe_transport_never_shows_the_password():
    assert describe_transport(None) == "direct"
    assert describe_transport("socks5h://bob:hunter2@127.0.0.1:1080") == (
        "SOCKS5 proxy 127.0.0.1:1080 (names resolved by the proxy), user 'bob'"
    )
    assert describe_transport("socks5://[::1]:1080") == "SOCKS5 proxy [::1]:1080 (names resolved here)"
    assert describe_transport("http://proxy:3128") == "HTTP CONNECT proxy proxy:3128"
    assert describe_transport("https://proxy") == "HTTPS CONNECT proxy proxy:443 (TLS to the proxy)"
    with pytest.raises(ConfigError) as info:
        describe_transport("ftp://bob:hunter2@proxy")
    assert "hunter2" not in str(info.value)


def test_without_socksio_a_socks_tunnel_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "socksio", None)
    with pytest.raises(ImportError, match=r"vpc_requests\[socks\]"):
        Binding("API", SERVICE, tunnel="socks5h://127.0.0.1:1080")
    Binding("API", SERVICE, tunnel="http://127.0.0.1:3128")  # CONNECT needs no extra


# -- SOCKS5 ----------------------------------------------------------------------


def test_socks5h_sends_the_service_name_and_port_for_https(socks, https_service):
    api = binding(f"socks5h://{LOOP}:{socks.port}")
    response = api.fetch(f"https://{NAME}:9999/users", verify=https_service.ca_path)
    assert response.status_code == 200
    assert socks.asked == [Asked(NAME, 8443, "domain")]  # not the URL's :9999
    seen = https_service.seen[0]
    assert (seen.host, seen.sni, seen.target) == (f"{NAME}:9999", NAME, "/users")


def test_socks5h_http_url_host_only_fills_host(socks, http_service):
    api = binding(f"socks5h://{LOOP}:{socks.port}")
    assert api.fetch("http://other.company.local/x").status_code == 200
    assert socks.asked == [Asked(NAME, 8080, "domain")]
    assert http_service.seen[0].host == "other.company.local"


def test_https_over_socks_checks_the_certificate_against_the_url_host(socks, https_service):
    api = binding(f"socks5h://{LOOP}:{socks.port}")
    error = caught(api.fetch, "https://wrong.company.local/", verify=https_service.ca_path)
    assert isinstance(error, requests.exceptions.SSLError)
    assert error.code == "tls_certificate_error"
    assert socks.asked == [Asked(NAME, 8443, "domain")]
    assert https_service.seen == []


def test_pools_stay_separate_per_sni_through_a_tunnel(socks, https_service):
    api = binding(f"socks5h://{LOOP}:{socks.port}")
    for name in (NAME, "other.company.local", NAME):
        api.fetch(f"https://{name}/", verify=https_service.ca_path)
    seen = https_service.seen
    assert [s.sni for s in seen] == [NAME, "other.company.local", NAME]
    assert seen[0].connection == seen[2].connection != seen[1].connection
    assert len(socks.asked) == 2  # one tunnel per pooled connection


def test_socks5_resolves_here_so_a_far_end_only_name_fails_with_dns_error(socks):
    api = binding(f"socks5://{LOOP}:{socks.port}")
    error = caught(api.fetch, f"http://{NAME}/")
    assert isinstance(error, requests.ConnectionError)
    assert error.code == "dns_error"
    assert error.binding == "API"
    assert "socks5h://" in str(error)
    assert socks.asked == []


def test_socks5_sends_the_address_resolved_here(socks, http_service):
    service = VPCService(hostname="localhost", http_port=8080)
    socks.routes[(LOOP, 8080)] = (LOOP, http_service.port)
    api = binding(f"socks5://{LOOP}:{socks.port}", service)
    assert api.fetch(f"http://{NAME}/").status_code == 200
    assert socks.asked == [Asked(LOOP, 8080, "ipv4")]
    assert http_service.seen[0].host == NAME


def test_ip_service_dual_stack_through_socks_falls_back_to_ipv4(socks, https_service):
    service = VPCService(ipv4="10.0.1.50", ipv6="fd00::50", https_port=443)
    socks.routes[("10.0.1.50", 443)] = (LOOP, https_service.port)  # no IPv6 route: reply 0x04
    api = binding(f"socks5h://{LOOP}:{socks.port}", service)
    assert api.fetch(f"https://{NAME}/", verify=https_service.ca_path).status_code == 200
    assert socks.asked == [Asked("fd00::50", 443, "ipv6"), Asked("10.0.1.50", 443, "ipv4")]
    assert https_service.seen[0].sni == NAME


def test_socks_username_and_password(routes, http_service):
    with Socks5Server(routes, credentials=("alice", "s3c:r@t")) as server:
        good = binding(f"socks5h://alice:s3c%3Ar%40t@{LOOP}:{server.port}")
        assert good.fetch(f"http://{NAME}/").status_code == 200
        assert server.asked == [Asked(NAME, 8080, "domain", ("alice", "s3c:r@t"))]

        bad = binding(f"socks5h://alice:wrong@{LOOP}:{server.port}")
        error = caught(bad.fetch, f"http://{NAME}/")
        assert error.code == "proxy_configuration_error"
        assert "wrong" not in str(error) and "username/password" in str(error)

        anonymous = binding(f"socks5h://{LOOP}:{server.port}")
        assert caught(anonymous.fetch, f"http://{NAME}/").code == "proxy_configuration_error"
    assert len(http_service.seen) == 1


@pytest.mark.parametrize(
    ("reply", "code"),
    [(0x02, "http_request_denied"), (0x03, "destination_ip_unroutable"),
     (0x04, "destination_unavailable"), (0x05, "connection_refused")],
)
def test_socks_server_refusing_the_target(routes, reply, code):
    with Socks5Server(routes, replies={(NAME, 8080): reply}) as server:
        error = caught(binding(f"socks5h://{LOOP}:{server.port}").fetch, f"http://{NAME}/")
    assert error.code == code
    assert isinstance(error, requests.ConnectionError)
    assert f"tunnel socks5h://{LOOP}:{server.port}" in str(error)
    assert f"{NAME}:8080" in str(error) and f"reply {reply:#04x}" in str(error)


# -- tunnel down (both kinds) ------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "http", "https"])
def test_a_tunnel_that_is_down_raises_connection_refused_naming_it(scheme):
    port = closed_port()
    service = VPCService(ipv4="10.0.1.50")
    error = caught(binding(f"{scheme}://user:pw@{LOOP}:{port}", service).fetch, f"http://{NAME}/", timeout=2)
    assert error.code == "connection_refused"
    assert isinstance(error, requests.ConnectionError)
    assert str(error).startswith("ProxyError: connection_refused (binding 'API'")
    assert f"tunnel {scheme}://user:***@{LOOP}:{port} refused the connection" in str(error)
    assert "pw" not in str(error).replace("pw@", "")  # the password is masked


# -- HTTP CONNECT ----------------------------------------------------------------


def test_connect_tunnels_https_and_http_and_never_forwards(proxy, http_service, https_service):
    api = binding(f"http://{LOOP}:{proxy.port}")
    assert api.fetch(f"https://{NAME}:9443/a", verify=https_service.ca_path).status_code == 200
    assert api.fetch("http://other.company.local:81/b").status_code == 200
    assert proxy.asked == [Asked(NAME, 8443, "connect"), Asked(NAME, 8080, "connect")]
    assert [line for line, _ in proxy.requests] == [
        f"CONNECT {NAME}:8443 HTTP/1.1", f"CONNECT {NAME}:8080 HTTP/1.1",
    ]
    assert proxy.forwarded == []
    assert (https_service.seen[0].host, https_service.seen[0].sni) == (f"{NAME}:9443", NAME)
    seen = http_service.seen[0]
    assert (seen.host, seen.target) == ("other.company.local:81", "/b")  # origin-form, not absolute


def test_the_test_proxy_does_catch_a_forwarding_request(proxy):
    # The failing twin of the test above: plain requests with proxies= sends
    # an absolute-form request to an http:// proxy, which this proxy records.
    response = requests.get(f"http://{NAME}/x", proxies={"http": f"http://{LOOP}:{proxy.port}"})
    assert response.status_code == 405
    assert proxy.forwarded == [f"GET http://{NAME}/x HTTP/1.1"]
    assert proxy.asked == []


def test_connect_proxy_authorization_goes_to_the_proxy_only(routes, http_service):
    with ConnectProxy(routes, credentials=("bob", "pa:ss")) as server:
        good = binding(f"http://bob:pa%3Ass@{LOOP}:{server.port}")
        assert good.fetch(f"http://{NAME}/").status_code == 200
        assert server.asked == [Asked(NAME, 8080, "connect", ("bob", "pa:ss"))]
        assert http_service.seen[0].header("Proxy-Authorization") is None

        error = caught(binding(f"http://bob:nope@{LOOP}:{server.port}").fetch, f"http://{NAME}/")
        assert error.code == "proxy_configuration_error"
        assert "407" in str(error) and "nope" not in str(error)


@pytest.mark.parametrize(
    ("answer", "code"),
    [("403 Forbidden", "http_request_denied"),
     ("502 Bad Gateway", "destination_unavailable"),
     ("504 Gateway Timeout", "connection_timeout"),
     ('502 Bad Gateway\r\nProxy-Status: corp-proxy; error=dns_error; details="NXDOMAIN"', "dns_error")],
)
def test_connect_proxy_refusing_the_target(routes, answer, code):
    with ConnectProxy(routes, answers={(NAME, 8080): answer}) as server:
        error = caught(binding(f"http://{LOOP}:{server.port}").fetch, f"http://{NAME}/")
    assert error.code == code
    assert f"tunnel http://{LOOP}:{server.port} refused CONNECT {NAME}:8080: {answer[:3]}" in str(error)


def test_connect_unknown_target_is_403(proxy):
    other = VPCService(hostname="elsewhere.company.local")
    error = caught(binding(f"http://{LOOP}:{proxy.port}", other).fetch, f"http://{NAME}/")
    assert error.code == "http_request_denied"
    assert proxy.asked == [Asked("elsewhere.company.local", 80, "connect")]


def test_connect_ipv6_target_is_bracketed(proxy, https_service):
    service = VPCService(ipv6="fd00::50")
    proxy.routes[("fd00::50", 443)] = (LOOP, https_service.port)
    api = binding(f"http://{LOOP}:{proxy.port}", service)
    assert api.fetch("https://10.0.1.50/", verify=https_service.ca_path).status_code == 200
    assert proxy.requests[0][0] == "CONNECT [fd00::50]:443 HTTP/1.1"
    assert https_service.seen[0].sni is None  # IP-literal URL: no SNI (S5)


# -- https:// proxy (TLS to the proxy, TLS-in-TLS to the origin) -------------------


@pytest.fixture
def tls_proxy(routes, ca):
    with ConnectProxy(routes, ssl_context=tls_server_context(ca, "127.0.0.1")) as server:
        yield server


@pytest.fixture
def trust_ca(ca, tmp_path, monkeypatch):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))


def test_https_proxy_carries_https_and_http(tls_proxy, trust_ca, http_service, https_service):
    api = binding(f"https://{LOOP}:{tls_proxy.port}")
    for _ in range(2):  # the second request reuses the TLS-in-TLS connection
        response = api.fetch(f"https://{NAME}/tls", verify=https_service.ca_path)
        assert response.json()["sni"] == NAME
    assert api.fetch("http://other.company.local/plain").status_code == 200
    assert tls_proxy.asked == [Asked(NAME, 8443, "connect"), Asked(NAME, 8080, "connect")]
    assert [s.sni for s in https_service.seen] == [NAME, NAME]
    assert https_service.seen[0].connection == https_service.seen[1].connection
    assert http_service.seen[0].host == "other.company.local"


def test_https_proxy_origin_certificate_still_checked(tls_proxy, trust_ca, https_service):
    api = binding(f"https://{LOOP}:{tls_proxy.port}")
    error = caught(api.fetch, "https://wrong.company.local/", verify=https_service.ca_path)
    assert isinstance(error, requests.exceptions.SSLError)
    assert error.code == "tls_certificate_error"
    assert tls_proxy.asked == [Asked(NAME, 8443, "connect")]


def test_https_proxy_with_an_untrusted_certificate_is_refused(tls_proxy, monkeypatch, tmp_path):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    error = caught(binding(f"https://{LOOP}:{tls_proxy.port}").fetch, f"http://{NAME}/")
    assert error.code == "tls_certificate_error"
    assert f"tunnel https://{LOOP}:{tls_proxy.port}: the proxy's certificate" in str(error)
    assert tls_proxy.asked == []


# -- S9: proxy variables never divert binding traffic ------------------------------


def test_proxy_environment_is_ignored_with_and_without_a_tunnel(socks, routes, monkeypatch, http_service):
    with ConnectProxy(routes) as decoy:
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(variable, f"http://{LOOP}:{decoy.port}")
        through = binding(f"socks5h://{LOOP}:{socks.port}")
        assert through.fetch(f"http://{NAME}/").status_code == 200
        session = through.session()
        assert session.get(f"http://{NAME}/s").status_code == 200
        direct = Binding("API", VPCService(ipv4=LOOP, http_port=http_service.port))
        assert direct.fetch(f"http://{NAME}/d").status_code == 200
        assert decoy.connections == 0
    assert len(socks.asked) == 1  # the session reused the binding's pool


# -- pickling and probing ---------------------------------------------------------


def test_a_pickled_binding_keeps_its_tunnel(socks):
    api = pickle.loads(pickle.dumps(binding(f"socks5h://{LOOP}:{socks.port}")))
    assert api.fetch(f"http://{NAME}/").status_code == 200
    assert socks.asked == [Asked(NAME, 8080, "domain")]


def test_probe_socks_tunnel_greets_without_asking_for_a_target(routes):
    with Socks5Server(routes, credentials=("alice", "pw")) as server:
        ok, detail = probe_tunnel(f"socks5h://alice:pw@{LOOP}:{server.port}", timeout=2)
        assert ok, detail
        assert detail.startswith(f"SOCKS5 proxy {LOOP}:{server.port} answered in ")
        assert "username/password accepted for 'alice'" in detail
        assert probe_tunnel(f"socks5h://alice:bad@{LOOP}:{server.port}", timeout=2) == (
            False, f"tunnel socks5h://alice:***@{LOOP}:{server.port}: its username/password were rejected",
        )
        ok, detail = probe_tunnel(f"socks5h://{LOOP}:{server.port}", timeout=2)
        assert not ok and "needs a username and password" in detail
        assert server.greetings == 3 and server.asked == []


def test_probe_connect_proxies_and_a_tunnel_that_is_down(proxy, tls_proxy, trust_ca):
    ok, detail = probe_tunnel(f"http://{LOOP}:{proxy.port}", timeout=2)
    assert ok and "TCP connection accepted" in detail
    ok, detail = probe_tunnel(f"https://{LOOP}:{tls_proxy.port}", timeout=2)
    assert ok and f"TLS certificate valid for {LOOP}" in detail
    assert proxy.requests == [] and tls_proxy.requests == []
    port = closed_port()
    ok, detail = probe_tunnel(f"socks5://{LOOP}:{port}", timeout=2)
    assert not ok and f"tunnel socks5://{LOOP}:{port} refused the connection" in detail
    assert probe_tunnel(None) == (True, "direct connection: no tunnel to probe")
