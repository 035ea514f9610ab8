"""Tests for :mod:`vpc_requests._cli.probe`: a binding's service probed the way
its requests reach it (directly, through a SOCKS5 or HTTP CONNECT tunnel,
by its ``resolver_ips``), against loopback services and tunnel ends that
record what they saw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import eventually
from servers import BacklogFull, ConnectProxy, DNSServer, Socks5Server, closed_port, tls_server_context

from vpc_requests import Binding, ConfigError, VPCService
from vpc_requests._cli.probe import Probe, TunnelProbe, probe_binding, probe_tunnel_of
from vpc_requests.testing import PrivateService

if TYPE_CHECKING:
    from typing import Self

NAME = "internal-api.company.local"


class SNIService(PrivateService):
    """A TLS :class:`PrivateService` that also records the SNI of handshakes
    that send no request (a probe sends none)."""

    def __init__(self, ca: Any, *names: str) -> None:
        self.snis: list[str | None] = []
        context = tls_server_context(ca, *names)
        context.sni_callback = lambda sock, name, ctx: self.snis.append(name)  # type: ignore[assignment]
        super().__init__(tls=True, ca=ca, ssl_context=context, name="sni-service")

    def __enter__(self) -> Self:
        self.start()
        return self


@pytest.fixture
def plain() -> Iterator[PrivateService]:
    with PrivateService(name="plain") as service:
        yield service


@pytest.fixture
def tls(ca: Any) -> Iterator[SNIService]:
    with SNIService(ca, NAME, "10.0.1.50", "127.0.0.1") as service:
        yield service


def only(probes: list[Probe], scheme: str) -> Probe:
    [probe] = [p for p in probes if p.scheme == scheme]
    return probe


# -- direct ------------------------------------------------------------------------


def test_direct_http_and_https_ok(plain: PrivateService, tls: SNIService) -> None:
    service = VPCService(ipv4="127.0.0.1", http_port=plain.port, https_port=tls.port)
    probes = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path)
    assert [(p.scheme, p.result, p.code) for p in probes] == [("http", "OK", None), ("https", "OK", None)]
    http, https = probes
    assert (http.origin, http.transport, http.address, http.sni) == (
        f"127.0.0.1:{plain.port}", "direct", f"127.0.0.1:{plain.port}", None)
    assert https.sni is None  # an IP service sends no SNI ...
    assert (https.certificate, http.certificate) == ("chain_no_name", None)  # ... and has no name to check
    assert eventually(lambda: tls.handshakes == 1) and tls.snis == [None]
    assert http.connect_ms is not None and http.tls_ms is None
    assert https.connect_ms is not None and https.tls_ms is not None
    assert http.tunnel == TunnelProbe(None, None, "direct connection: no tunnel")
    # a TCP probe: no request (its connection counted once the accept loop gets a core)
    assert eventually(lambda: plain.connections == 1) and plain.seen == []


def test_direct_hostname_sends_its_sni(tls: SNIService, monkeypatch: pytest.MonkeyPatch) -> None:
    """SNI is the service's hostname (the name resolves to loopback through
    the binding's resolver_ips; see below for the DNS server)."""
    with DNSServer({NAME: ["127.0.0.1"]}) as dns:
        service = VPCService(hostname=NAME, https_port=tls.port, resolver_ips=[dns.address])
        [probe] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path)
        assert dns.count(NAME) >= 1
    assert (probe.result, probe.sni, probe.origin) == ("OK", NAME, f"{NAME}:{tls.port}")
    assert probe.address == f"127.0.0.1:{tls.port}"
    assert eventually(lambda: tls.snis == [NAME])


def test_resolver_ips_nxdomain_fails(plain: PrivateService) -> None:
    with DNSServer({}) as dns:
        service = VPCService(hostname=NAME, http_port=plain.port, resolver_ips=[dns.address])
        [probe] = probe_binding(Binding("API", service), timeout=2)
    assert (probe.result, probe.code) == ("FAIL", "dns_error")
    assert plain.connections == 0


def test_name_mismatch_fails(ca: Any) -> None:
    with SNIService(ca, "other.company.local") as tls, DNSServer({NAME: ["127.0.0.1"]}) as dns:
        service = VPCService(hostname=NAME, https_port=tls.port, resolver_ips=[dns.address])
        [probe] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path)
    assert (probe.result, probe.code) == ("FAIL", "tls_certificate_error")
    assert "Hostname mismatch" in probe.detail and probe.tls_ms is None and probe.connect_ms is not None


def test_verify_ca_does_not_check_the_name(ca: Any) -> None:
    with SNIService(ca, "other.company.local") as tls, DNSServer({NAME: ["127.0.0.1"]}) as dns:
        service = VPCService(hostname=NAME, https_port=tls.port, resolver_ips=[dns.address],
                             cert_verification_mode="verify_ca")
        [probe] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path)
        assert probe.result == "OK", probe.detail
        assert eventually(lambda: tls.snis == [NAME])  # the SNI is still the hostname


def test_verify_ca_still_checks_the_chain(tls: SNIService) -> None:
    service = VPCService(ipv4="127.0.0.1", https_port=tls.port, cert_verification_mode="verify_ca")
    [probe] = probe_binding(Binding("API", service), timeout=2)  # the default CA bundle
    assert (probe.result, probe.code) == ("FAIL", "tls_certificate_error")
    assert "unable to get local issuer certificate" in probe.detail


@pytest.mark.parametrize(("mode", "verify"), [("disabled", True), ("verify_full", False)])
def test_unverified_handshake(tls: SNIService, mode: str, verify: bool) -> None:
    service = VPCService(ipv4="127.0.0.1", https_port=tls.port, cert_verification_mode=mode)
    [probe] = probe_binding(Binding("API", service), timeout=2, verify=verify)
    assert probe.result == "OK", probe.detail


def test_an_ip_given_as_server_name_is_checked_without_sni(ca: Any) -> None:
    with SNIService(ca, "10.0.1.50") as tls:
        service = VPCService(ipv4="127.0.0.1", https_port=tls.port)
        [probe] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path, server_name="127.0.0.1")
        [good] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path, server_name="10.0.1.50")
        assert eventually(lambda: tls.snis == [None, None])
    assert (probe.result, probe.code) == ("FAIL", "tls_certificate_error")
    assert "IP address mismatch" in probe.detail
    assert (probe.sni, probe.checked_name) == (None, "127.0.0.1")
    assert (good.result, good.certificate, good.checked_name) == ("OK", "full", "10.0.1.50")


# -- which name: server_name ------------------------------------------------------------


def test_ip_service_without_server_name_checks_the_chain_only(ca: Any) -> None:
    """Its requests send the URL's host, which a probe does not know: a
    certificate for that name is not a failure, and the probe says the name
    went unchecked."""
    with SNIService(ca, NAME) as tls:
        service = VPCService(ipv4="127.0.0.1", https_port=tls.port)
        [probe] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path)
        assert eventually(lambda: tls.snis == [None])
    assert (probe.result, probe.code, probe.sni) == ("OK", None, None)
    assert (probe.certificate, probe.checked_name) == ("chain_no_name", None)
    assert probe.to_json()["certificate"] == "chain_no_name"


def test_ip_service_without_server_name_still_checks_the_chain(tls: SNIService) -> None:
    service = VPCService(ipv4="127.0.0.1", https_port=tls.port)
    [probe] = probe_binding(Binding("API", service), timeout=2)  # the default CA bundle
    assert (probe.result, probe.code) == ("FAIL", "tls_certificate_error")
    assert "unable to get local issuer certificate" in probe.detail


def test_server_name_is_sent_and_checked(ca: Any) -> None:
    with SNIService(ca, NAME) as tls:
        binding = Binding("API", VPCService(ipv4="127.0.0.1", https_port=tls.port))
        [good] = probe_binding(binding, timeout=2, verify=tls.ca_path, server_name=NAME.upper() + ".")
        [bad] = probe_binding(binding, timeout=2, verify=tls.ca_path, server_name="other.company.local")
        assert eventually(lambda: tls.snis == [NAME, "other.company.local"])
    assert (good.result, good.sni, good.certificate, good.checked_name) == ("OK", NAME, "full", NAME)
    assert (bad.result, bad.code, bad.sni) == ("FAIL", "tls_certificate_error", "other.company.local")
    assert "Hostname mismatch" in bad.detail


def test_server_name_replaces_the_hostname(ca: Any) -> None:
    with SNIService(ca, "alias.company.local") as tls, DNSServer({NAME: ["127.0.0.1"]}) as dns:
        service = VPCService(hostname=NAME, https_port=tls.port, resolver_ips=[dns.address])
        [plain] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path)
        [aliased] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path,
                                  server_name="alias.company.local")
        assert eventually(lambda: tls.snis == [NAME, "alias.company.local"])
    assert (plain.result, plain.code, plain.certificate) == ("FAIL", "tls_certificate_error", "full")
    assert (aliased.result, aliased.sni, aliased.origin) == ("OK", "alias.company.local", f"{NAME}:{tls.port}")


@pytest.mark.parametrize(("mode", "verify", "certificate"), [
    ("verify_ca", True, "chain"), ("disabled", True, "none"), ("verify_full", False, "none")])
def test_certificate_says_what_was_checked(tls: SNIService, mode: str, verify: bool, certificate: str) -> None:
    service = VPCService(ipv4="127.0.0.1", https_port=tls.port, cert_verification_mode=mode)
    [probe] = probe_binding(Binding("API", service), timeout=2, verify=tls.ca_path if verify else False,
                            server_name=NAME)
    assert (probe.result, probe.certificate, probe.checked_name, probe.sni) == ("OK", certificate, None, NAME)


@pytest.mark.parametrize("bad", ["internal api", "https://x.company.local", "x.company.local:443", ""])
def test_bad_server_name_is_an_error_before_probing(plain: PrivateService, bad: str) -> None:
    service = VPCService(ipv4="127.0.0.1", http_port=plain.port, https_port=plain.port)
    with pytest.raises(ConfigError) as caught:
        probe_binding(Binding("API", service), timeout=2, server_name=bad)
    assert caught.value.field == "server_name" and str(caught.value).startswith("server_name: ")
    assert plain.connections == 0


def test_refused() -> None:
    port = closed_port()
    [probe] = probe_binding(Binding("API", VPCService(ipv4="127.0.0.1", http_port=port)), timeout=2)
    assert (probe.result, probe.code, probe.connect_ms) == ("FAIL", "connection_refused", None)
    assert probe.origin == f"127.0.0.1:{port}"


def test_connect_timeout() -> None:
    with BacklogFull() as backlog:
        service = VPCService(ipv4="127.0.0.1", http_port=backlog.port)
        # the connect hangs (SYN dropped): only the timeout ends it, and a
        # probe that ignored it would hang until pytest-timeout
        [probe] = probe_binding(Binding("API", service), timeout=0.2)
    assert (probe.result, probe.code) == ("FAIL", "connection_timeout")


def test_missing_ca_bundle_is_an_error_before_probing(plain: PrivateService, tmp_path: Path) -> None:
    service = VPCService(ipv4="127.0.0.1", http_port=plain.port, https_port=plain.port)
    with pytest.raises(OSError, match="invalid path"):
        probe_binding(Binding("API", service), timeout=2, verify=str(tmp_path / "nope.pem"))
    assert plain.connections == 0


def test_probe_as_json(plain: PrivateService) -> None:
    [probe] = probe_binding(Binding("API", VPCService(ipv4="127.0.0.1", http_port=plain.port)), timeout=2)
    data = json.loads(json.dumps(probe.to_json()))
    assert data["result"] == "OK" and data["binding"] == "API" and data["tunnel"]["ok"] is None


# -- through a tunnel ------------------------------------------------------------------


def test_through_socks5h(tls: SNIService) -> None:
    """The tunnel is asked for the service's name and port; the origin sees
    the SNI; this machine never resolves the name."""
    routes = {(NAME, 8443): ("127.0.0.1", tls.port)}
    with Socks5Server(routes, credentials=("user", "secret")) as socks:
        tunnel = f"socks5h://user:secret@127.0.0.1:{socks.port}"
        service = VPCService(hostname=NAME, https_port=8443)
        [probe] = probe_binding(Binding("API", service, tunnel=tunnel), timeout=2, verify=tls.ca_path)
        assert probe.result == "OK", probe.detail
        assert [(a.host, a.port, a.kind) for a in socks.asked] == [(NAME, 8443, "domain")]
        assert socks.greetings == 2  # the tunnel's own probe, then the connection
    assert probe.transport == f"SOCKS5 proxy 127.0.0.1:{socks.port} (names resolved by the proxy), user 'user'"
    assert probe.tunnel.ok is True and probe.tunnel.ms is not None
    assert "username/password accepted" in probe.tunnel.detail
    assert probe.address is None and probe.sni == NAME
    assert eventually(lambda: tls.snis == [NAME])
    assert "secret" not in json.dumps(probe.to_json())


def test_through_socks5h_name_mismatch_fails(ca: Any) -> None:
    with SNIService(ca, "other.company.local") as tls, \
            Socks5Server({(NAME, 443): ("127.0.0.1", tls.port)}) as socks:
        binding = Binding("API", VPCService(hostname=NAME), tunnel=f"socks5h://127.0.0.1:{socks.port}")
        probes = probe_binding(binding, timeout=2, verify=tls.ca_path)
    assert only(probes, "https").code == "tls_certificate_error"
    assert only(probes, "http").code == "destination_unavailable"  # no route for port 80 at the far end
    assert all(p.tunnel.ok for p in probes)


def test_tunnel_down_fails_naming_the_tunnel() -> None:
    port = closed_port()
    tunnel = f"socks5h://user:secret@127.0.0.1:{port}"
    [probe] = probe_binding(Binding("API", VPCService(hostname=NAME, http_port=80), tunnel=tunnel), timeout=2)
    assert (probe.result, probe.code) == ("FAIL", "connection_refused")
    assert f"tunnel socks5h://user:***@127.0.0.1:{port} refused the connection" in probe.detail
    assert probe.tunnel.ok is False and f"127.0.0.1:{port}" in probe.tunnel.detail
    assert "secret" not in json.dumps(probe.to_json())


def test_tunnel_refuses_the_target() -> None:
    with Socks5Server({}, replies={("10.0.1.50", 80): 0x02}) as socks:
        binding = Binding("DB", VPCService(ipv4="10.0.1.50", http_port=80), tunnel=f"socks5://127.0.0.1:{socks.port}")
        [probe] = probe_binding(binding, timeout=2)
    assert (probe.result, probe.code, probe.tunnel.ok) == ("FAIL", "destination_ip_prohibited", True)
    assert "SOCKS5 reply 0x02" in probe.detail


def test_through_http_connect(plain: PrivateService, tls: SNIService) -> None:
    routes = {("10.0.1.50", 80): ("127.0.0.1", plain.port), ("10.0.1.50", 443): ("127.0.0.1", tls.port)}
    with ConnectProxy(routes) as proxy:
        binding = Binding("DB", VPCService(ipv4="10.0.1.50"), tunnel=f"http://127.0.0.1:{proxy.port}")
        probes = probe_binding(binding, timeout=2, verify=tls.ca_path)
        assert [(a.host, a.port) for a in proxy.asked] == [("10.0.1.50", 80), ("10.0.1.50", 443)]
        assert proxy.forwarded == []
    assert [p.result for p in probes] == ["OK", "OK"], [p.detail for p in probes]
    assert probes[0].transport == f"HTTP CONNECT proxy 127.0.0.1:{proxy.port}"
    assert eventually(lambda: tls.snis == [None])  # an IP service: no SNI, no name to check
    assert probes[1].certificate == "chain_no_name"
    assert eventually(lambda: plain.connections == 1) and plain.seen == []


def test_through_https_connect_tls_in_tls(ca: Any, tls: SNIService, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Through an https:// proxy the origin's handshake runs inside the TLS
    to the proxy."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the proxy is checked against the system store
    routes = {(NAME, 443): ("127.0.0.1", tls.port)}
    with ConnectProxy(routes, ssl_context=tls_server_context(ca, "127.0.0.1")) as proxy:
        binding = Binding("API", VPCService(hostname=NAME, https_port=443), tunnel=f"https://127.0.0.1:{proxy.port}")
        [probe] = probe_binding(binding, timeout=2, verify=tls.ca_path)
    assert probe.result == "OK", probe.detail
    assert probe.tunnel.ok is True and "TLS certificate valid" in probe.tunnel.detail
    assert eventually(lambda: tls.snis == [NAME])


def test_probe_tunnel_of_a_direct_binding_asks_nothing() -> None:
    assert probe_tunnel_of(Binding("A", VPCService(ipv4="10.0.1.50")), timeout=1).ok is None


def test_handshake_timeout(ca: Any) -> None:
    """A TCP listener that never answers the ClientHello."""
    from servers import Unresponsive

    with Unresponsive() as silent:
        service = VPCService(ipv4="127.0.0.1", https_port=silent.port)
        [probe] = probe_binding(Binding("API", service), timeout=0.3)
    assert probe.result == "FAIL" and probe.connect_ms is not None and probe.tls_ms is None
    assert probe.code == "connection_read_timeout"


def test_ssl_errors_are_not_raised(ca: Any) -> None:
    """A plain-HTTP server on the https port: a protocol error, not an exception."""
    with PrivateService() as plain:
        [probe] = probe_binding(Binding("API", VPCService(ipv4="127.0.0.1", https_port=plain.port)), timeout=2)
    assert (probe.result, probe.code) == ("FAIL", "tls_protocol_error")
