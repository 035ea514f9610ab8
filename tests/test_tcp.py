"""Binding.connect() on tcp services (issue 12, part 1): a raw socket to the
service's host and tcp_port through the binding's transport, whatever
address is given; TLS per the service's tls_settings; Cloudflare error codes.

Against real loopback servers: an echo server (tests/servers/echo.py), a
SOCKS5 server and an HTTP CONNECT proxy (tests/servers/tunnels.py) that map
the names only the far end knows to loopback.
"""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
import requests
from helpers import eventually
from servers import (
    Asked,
    ConnectProxy,
    DNSServer,
    EchoServer,
    Socks5Server,
    Unresponsive,
    closed_port,
    roundtrip,
    tls_server_context,
)

from vpc_requests import (
    AbortController,
    AbortError,
    Binding,
    ConfigError,
    ProxyConnectTimeout,
    ProxyError,
    ProxySSLError,
    RoutingError,
    VPCService,
)
from vpc_requests._transport.tcp import address_host

NAME = "db.company.local"
LOOP = "127.0.0.1"
PAYLOAD = b"SELECT 1;\x00" * 1000


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


def tcp_service(port: int, **fields) -> VPCService:
    fields.setdefault("ipv4", LOOP)
    return VPCService(type="tcp", tcp_port=port, name="db", app_protocol="postgresql", **fields)


def caught(call, *args, **kwargs) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        call(*args, **kwargs)
    return info.value


# -- direct -----------------------------------------------------------------------


@pytest.mark.parametrize("address", [None, "10.0.1.50:9999", (NAME, 1), {"hostname": "evil.test", "port": 2}])
def test_connect_reaches_the_service_whatever_the_address(echo, address) -> None:
    binding = Binding("DB", tcp_service(echo.port))
    with binding.connect(address, timeout=10) as sock:
        assert roundtrip(sock, PAYLOAD) == PAYLOAD
        assert sock.gettimeout() == 10  # as socket.create_connection leaves it
    assert echo.connections == 1


def test_connect_to_nothing_listening_is_connection_refused(echo) -> None:
    binding = Binding("DB", tcp_service(closed_port()))
    error = caught(binding.connect, f"{LOOP}:{echo.port}", timeout=10)
    assert error.code == "connection_refused"
    assert isinstance(error, requests.ConnectionError)
    assert str(error).startswith("ProxyError: connection_refused (binding 'DB'")
    assert echo.connections == 0  # the address never routes


def test_connect_on_ipv6_loopback() -> None:
    with EchoServer("::1") as echo:
        binding = Binding("DB", tcp_service(echo.port, ipv4=None, ipv6="::1"))
        with binding.connect(timeout=10) as sock:
            assert sock.family == socket.AF_INET6
            assert roundtrip(sock, b"v6") == b"v6"


def test_dual_stack_falls_back_to_ipv4_when_ipv6_refuses(echo) -> None:
    binding = Binding("DB", tcp_service(echo.port, ipv6="::1"))  # nothing on [::1]:port
    with binding.connect(timeout=10) as sock:
        assert sock.family == socket.AF_INET
        assert roundtrip(sock, b"v4") == b"v4"


def test_resolver_ips_resolve_the_service_name(echo) -> None:
    with DNSServer({NAME: [LOOP]}) as dns:
        binding = Binding("DB", tcp_service(echo.port, ipv4=None, hostname=NAME, resolver_ips=[dns.address]))
        with binding.connect(timeout=10) as sock:
            assert roundtrip(sock, b"dns") == b"dns"


def test_a_name_the_resolver_does_not_know_is_dns_error(echo) -> None:
    with DNSServer({}) as dns:
        binding = Binding("DB", tcp_service(echo.port, ipv4=None, hostname=NAME, resolver_ips=[dns.address]))
        error = caught(binding.connect, timeout=10)
    assert error.code == "dns_error"
    assert "'DB'" in str(error)
    assert echo.connections == 0


# -- tunnels ----------------------------------------------------------------------


def far_service() -> VPCService:
    """The service as Cloudflare knows it: a name and port known only at the far end."""
    return VPCService(type="tcp", hostname=NAME, tcp_port=5432, name="db")


def test_connect_through_a_socks5h_tunnel_asks_for_the_service(echo) -> None:
    with Socks5Server({(NAME, 5432): (LOOP, echo.port)}) as socks:
        binding = Binding("DB", far_service(), tunnel=f"socks5h://{LOOP}:{socks.port}")
        # The address a Worker would pass (an IP, here RFC 5737's): never dialled, never
        # asked of the tunnel; the connection goes to the loopback SOCKS server.
        with binding.connect("192.0.2.50:1", timeout=10) as sock:
            assert roundtrip(sock, PAYLOAD, half_close=False) == PAYLOAD
    assert socks.asked == [Asked(NAME, 5432, "domain")]


def test_a_tunnel_that_cannot_reach_the_service_fails_naming_the_tunnel(echo) -> None:
    with Socks5Server({}) as socks:  # unknown target: SOCKS reply 0x04
        binding = Binding("DB", far_service(), tunnel=f"socks5h://{LOOP}:{socks.port}")
        error = caught(binding.connect, timeout=10)
    assert error.code == "destination_unavailable"
    assert f"tunnel socks5h://{LOOP}:{socks.port}" in str(error)
    assert "binding 'DB'" in str(error)
    assert echo.connections == 0


def test_a_tunnel_that_is_down_is_connection_refused() -> None:
    binding = Binding("DB", far_service(), tunnel=f"socks5h://{LOOP}:{closed_port()}")
    error = caught(binding.connect, timeout=10)
    assert error.code == "connection_refused"
    assert "is the tunnel" in str(error)


def test_connect_through_an_http_connect_tunnel(echo) -> None:
    with ConnectProxy({(NAME, 5432): (LOOP, echo.port)}) as proxy:
        binding = Binding("DB", far_service(), tunnel=f"http://{LOOP}:{proxy.port}")
        with binding.connect(timeout=10) as sock:
            assert roundtrip(sock, PAYLOAD, half_close=False) == PAYLOAD


def test_a_connect_tunnel_refusing_the_target_is_http_request_denied(echo) -> None:
    with ConnectProxy({}) as proxy:  # unknown target: 403
        binding = Binding("DB", far_service(), tunnel=f"http://{LOOP}:{proxy.port}")
        error = caught(binding.connect, timeout=10)
    assert error.code == "http_request_denied"
    assert echo.connections == 0


# -- TLS --------------------------------------------------------------------------


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "db-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_echo(ca):
    with EchoServer(ssl_context=tls_server_context(ca, NAME)) as server:
        yield server


def tls_binding(port: int, ca_file: str | None, tunnel: str | None = None, **fields) -> Binding:
    service = tcp_service(port, certificate_authority="db-ca", **fields)
    certificates = {"db-ca": {"ca": ca_file}} if ca_file else {}
    return Binding("DB", service, tunnel=tunnel, certificates=certificates)


def test_tls_checks_the_certificate_against_the_address_host(tls_echo, ca_file) -> None:
    binding = tls_binding(tls_echo.port, ca_file)
    with binding.connect(f"{NAME}:5432", tls=True, timeout=10) as sock:
        assert isinstance(sock, ssl.SSLSocket)
        assert roundtrip(sock, PAYLOAD) == PAYLOAD
    assert tls_echo.sni == [NAME]


def test_tls_with_the_wrong_name_is_an_ssl_error(tls_echo, ca_file) -> None:
    binding = tls_binding(tls_echo.port, ca_file)
    error = caught(binding.connect, f"{NAME}:5432", tls=True, server_hostname="other.company.local", timeout=10)
    assert isinstance(error, ProxySSLError)
    assert isinstance(error, requests.exceptions.SSLError)
    assert error.code == "tls_certificate_error"
    assert "other.company.local" in str(error)


def test_verify_ca_accepts_any_name_of_a_trusted_chain(tls_echo, ca_file) -> None:
    binding = tls_binding(tls_echo.port, ca_file, cert_verification_mode="verify_ca")
    with binding.connect(tls=True, server_hostname="other.company.local", timeout=10) as sock:
        assert roundtrip(sock, b"ca") == b"ca"


def test_tls_without_the_service_ca_is_a_certificate_error(tls_echo) -> None:
    binding = Binding("DB", tcp_service(tls_echo.port))  # the default store does not trust trustme
    error = caught(binding.connect, NAME, tls=True, timeout=10)
    assert error.code == "tls_certificate_error"


def test_an_unmapped_certificate_id_fails_before_dialling(tls_echo) -> None:
    binding = tls_binding(tls_echo.port, None)
    with pytest.raises(ConfigError, match="db-ca"):
        binding.connect(NAME, tls=True, timeout=10)
    assert tls_echo.connections == 0


def test_tls_through_a_socks5h_tunnel(ca, ca_file) -> None:
    with EchoServer(ssl_context=tls_server_context(ca, NAME)) as tls_echo, \
            Socks5Server({(NAME, 5432): (LOOP, tls_echo.port)}) as socks:
        service = VPCService(type="tcp", hostname=NAME, tcp_port=5432, certificate_authority="db-ca")
        binding = Binding("DB", service, tunnel=f"socks5h://{LOOP}:{socks.port}",
                          certificates={"db-ca": {"ca": ca_file}})
        with binding.connect(tls=True, timeout=10) as sock:  # SNI: the service's name
            assert roundtrip(sock, b"tunnelled tls") == b"tunnelled tls"
        error = caught(binding.connect, tls=True, server_hostname="wrong.company.local", timeout=10)
    assert error.code == "tls_certificate_error"
    assert tls_echo.sni == [NAME, "wrong.company.local"]


# -- timeouts and aborts ------------------------------------------------------------


def test_a_handshake_that_never_completes_is_connection_timeout(ca_file) -> None:
    with Unresponsive() as silent:
        binding = tls_binding(silent.port, ca_file)
        error = caught(binding.connect, NAME, tls=True, timeout=0.5)
    assert isinstance(error, ProxyConnectTimeout)
    assert error.code == "connection_timeout"


def test_a_handshake_that_completes_within_the_timeout(tls_echo, ca_file) -> None:
    binding = tls_binding(tls_echo.port, ca_file)
    with binding.connect(NAME, tls=True, timeout=30) as sock:
        assert roundtrip(sock, b"in time") == b"in time"


def test_an_abort_stops_a_hanging_handshake(ca_file) -> None:
    controller = AbortController()
    with Unresponsive() as silent:
        binding = tls_binding(silent.port, ca_file)
        firing = threading.Thread(
            target=lambda: eventually(lambda: silent.connections == 1, 30) and controller.abort("stop")
        )
        firing.start()
        with pytest.raises(AbortError) as info:
            binding.connect(NAME, tls=True, signal=controller.signal, timeout=60)
        firing.join()
    assert info.value.reason == "stop"


def test_an_unfired_signal_lets_connect_finish(echo) -> None:
    controller = AbortController()
    with Binding("DB", tcp_service(echo.port)).connect(signal=controller.signal) as sock:
        controller.abort()  # after connect: the socket is the caller's
        assert roundtrip(sock, b"still open") == b"still open"


def test_an_aborted_signal_opens_nothing(echo) -> None:
    controller = AbortController()
    controller.abort("early")
    with pytest.raises(AbortError):
        Binding("DB", tcp_service(echo.port)).connect(signal=controller.signal)
    assert echo.connections == 0


# -- service types ----------------------------------------------------------------------


def test_connect_on_an_http_service_names_the_type(echo) -> None:
    binding = Binding("API", VPCService(ipv4=LOOP, http_port=echo.port))
    with pytest.raises(RoutingError, match="of type 'http'; connect\\(\\) needs a service of type 'tcp'"):
        binding.connect()
    assert echo.connections == 0


def test_fetch_on_a_tcp_service_names_the_type(echo) -> None:
    binding = Binding("DB", tcp_service(echo.port))
    with pytest.raises(RoutingError, match="tcp service"):
        binding.fetch(f"http://{NAME}/")
    assert echo.connections == 0


def test_a_tcp_service_without_tcp_port_is_refused(echo) -> None:
    binding = Binding("DB", VPCService(type="tcp", ipv4=LOOP))
    with pytest.raises(RoutingError, match="no tcp_port"):
        binding.connect()


@pytest.mark.parametrize(("address", "host"), [
    ("db.company.local:5432", NAME), ("[::1]:5432", "::1"), ("::1", "::1"), ("db", "db"),
    ((NAME, 5432), NAME), ({"hostname": NAME, "port": 5432}, NAME), (None, None),
])
def test_address_host(address, host) -> None:
    assert address_host(address) == host


@pytest.mark.parametrize("address", [5432, b"db:1", {"port": 1}])
def test_an_address_of_another_type_is_a_type_error(address) -> None:
    with pytest.raises(TypeError, match="connect\\(\\) takes an address"):
        address_host(address)


# -- from the configuration files ----------------------------------------------------------


def test_load_env_gives_connect_the_certificates_table(tls_echo, ca_file, tmp_path) -> None:
    import pickle

    from vpc_requests import load_env

    (tmp_path / "wrangler.toml").write_text('[[vpc_services]]\nbinding = "DB"\nservice_id = "db-1"\n')
    (tmp_path / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "db-1"\ntype = "tcp"\ntcp_port = {tls_echo.port}\n'
        'host = { ipv4 = "127.0.0.1", network = { tunnel_id = "t-1" } }\n'
        'tls_settings = { cert_verification_mode = "verify_full", certificate_authority = "db-ca" }\n\n'
        f'[certificates]\n"db-ca" = {{ ca = "{ca_file}" }}\n')
    env = pickle.loads(pickle.dumps(load_env(tmp_path / "wrangler.toml")))
    with env.DB.connect(tls=True, server_hostname=NAME, timeout=10) as sock:
        assert roundtrip(sock, b"configured") == b"configured"
    error = caught(env.DB.connect, tls=True, server_hostname="other.company.local", timeout=10)
    assert error.code == "tls_certificate_error"
