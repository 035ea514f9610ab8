"""VPC Network bindings (issue 12, part 3): a ``vpc_networks`` binding sends
each request to its URL's own host and port, inside the network, through
the network's transport (direct, or the ``[tunnels]`` entry of its
tunnel_id / network_id). Against real loopback services, directly and
behind a real SOCKS5 tunnel that knows names only "the far end" knows."""

from __future__ import annotations

import logging
import pickle
import socket
from pathlib import Path

import pytest
import requests
from helpers import contacted, popen, reap
from servers import Asked, EchoServer, Socks5Server, closed_port, roundtrip

from vpc_requests import ConfigError, NetworkBinding, ProxyError, RoutingError, load_env, mount
from vpc_requests._bindings.network import NetworkAdapter
from vpc_requests._cli.cli import main
from vpc_requests.testing import PrivateService, Reply

LOOP = "127.0.0.1"
API = "api.internal.example"
DB = "db.internal.example"


@pytest.fixture
def first():
    with PrivateService(name="first") as service:
        yield service


@pytest.fixture
def second():
    with PrivateService(name="second") as service:
        yield service


@pytest.fixture
def socks(first, second):
    routes = {(API, 80): (LOOP, first.port), (DB, 8080): (LOOP, second.port)}
    with Socks5Server(routes) as server:
        yield server


def tunnelled(socks: Socks5Server, **kwargs) -> NetworkBinding:
    return NetworkBinding("NET", tunnel=f"socks5h://{LOOP}:{socks.port}", tunnel_id="t-1", **kwargs)


# -- the URL decides -----------------------------------------------------------------


def test_a_direct_network_reaches_two_services_by_url(first, second) -> None:
    net = NetworkBinding("NET", network_id="cf1:network")
    assert net.fetch(f"http://{LOOP}:{first.port}/one").status_code == 200
    assert net.fetch(f"http://{LOOP}:{second.port}/two", method="POST", body=b"x").status_code == 200
    assert [(s.method, s.target, s.host) for s in first.seen] == [("GET", "/one", f"{LOOP}:{first.port}")]
    assert [(s.method, s.target, s.body) for s in second.seen] == [("POST", "/two", b"x")]


def test_a_direct_network_to_a_closed_port_is_connection_refused(first) -> None:
    net = NetworkBinding("NET", network_id="cf1:network")
    with pytest.raises(ProxyError) as info:
        net.fetch(f"http://{LOOP}:{closed_port()}/")
    assert info.value.code == "connection_refused"
    assert isinstance(info.value, requests.ConnectionError)
    assert "binding 'NET'" in str(info.value)
    assert first.seen == []


def test_a_tunnelled_network_asks_the_tunnel_for_each_urls_host_and_port(socks, first, second) -> None:
    net = tunnelled(socks)
    assert net.fetch(f"http://{API}/users").status_code == 200
    assert net.session().get(f"http://{DB}:8080/rows").status_code == 200
    assert socks.asked == [Asked(API, 80, "domain"), Asked(DB, 8080, "domain")]
    assert [(s.host, s.target) for s in first.seen] == [(API, "/users")]
    assert [(s.host, s.target) for s in second.seen] == [(f"{DB}:8080", "/rows")]


def test_a_host_the_network_does_not_have_fails_naming_binding_and_tunnel(socks, first, second) -> None:
    net = tunnelled(socks)
    with pytest.raises(ProxyError) as info:
        net.fetch(f"http://{API}:8080/")  # the right host, a port nothing listens on
    assert info.value.code == "destination_unavailable"
    assert "binding 'NET'" in str(info.value) and f"tunnel socks5h://{LOOP}:{socks.port}" in str(info.value)
    assert first.seen == second.seen == []


def test_errors_response_gives_the_workers_500(socks) -> None:
    response = tunnelled(socks, errors="response").fetch("http://nowhere.internal.example/")
    assert (response.status_code, response.text) == (500, "ProxyError: destination_unavailable")


def test_redirects_are_followed_inside_the_network(socks, first, second) -> None:
    first.handler = lambda seen: Reply.redirect(f"http://{DB}:8080/moved")
    response = tunnelled(socks).fetch(f"http://{API}/old")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert socks.asked == [Asked(API, 80, "domain"), Asked(DB, 8080, "domain")]
    assert [s.target for s in second.seen] == ["/moved"]


def test_proxy_variables_never_divert_the_network(first, bare_listener, monkeypatch) -> None:
    proxy = f"http://{LOOP}:{bare_listener.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    net = NetworkBinding("NET", network_id="cf1:network")
    assert net.fetch(f"http://{LOOP}:{first.port}/a").status_code == 200
    assert net.session().get(f"http://{LOOP}:{first.port}/b").status_code == 200
    assert not contacted(bare_listener)
    assert len(first.seen) == 2


def test_only_http_and_https_urls(first) -> None:
    with pytest.raises(RoutingError, match="ftp"):
        NetworkBinding("NET").fetch(f"ftp://{LOOP}:{first.port}/")
    with pytest.raises(RoutingError, match="not a host a network binding can reach"):
        NetworkBinding("NET").fetch("http://bad_host!.example/")
    assert first.seen == []


def test_pools_are_per_destination(first, second) -> None:
    net = NetworkBinding("NET")
    for service in (first, second, first):
        net.fetch(f"http://{LOOP}:{service.port}/")
    adapter = net.adapter
    assert isinstance(adapter, NetworkAdapter)
    assert len(adapter.poolmanager.pools) == 2
    assert first.connections == 1  # the second request to it reused the connection


def test_https_in_a_network_checks_the_urls_name(ca, https_service, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    routes = {("internal-api.company.local", 443): (LOOP, https_service.port),
              ("wrong.company.local", 443): (LOOP, https_service.port)}
    with Socks5Server(routes) as server:
        net = tunnelled(server)
        good = net.fetch("https://internal-api.company.local/", verify=str(bundle))
        assert good.status_code == 200
        with pytest.raises(requests.exceptions.SSLError) as info:
            net.fetch("https://wrong.company.local/", verify=str(bundle))
    assert isinstance(info.value, ProxyError) and info.value.code == "tls_certificate_error"
    assert [s.sni for s in https_service.seen] == ["internal-api.company.local"]


def test_logs_carry_no_secret(first, second, caplog) -> None:
    routes = {(API, 80): (LOOP, first.port)}
    with Socks5Server(routes, credentials=("user", "s3cret-pw")) as server, \
            caplog.at_level(logging.DEBUG, logger="vpc_requests"):
        net = NetworkBinding("NET", tunnel=f"socks5h://user:s3cret-pw@{LOOP}:{server.port}")
        net.fetch(f"http://{API}/", headers={"Authorization": "Bearer t0ken"})
        with pytest.raises(ProxyError) as info:
            net.fetch(f"http://{DB}:8080/")
    assert "binding=NET GET api.internal.example" in caplog.text
    for secret in ("s3cret-pw", "t0ken"):
        assert secret not in caplog.text and secret not in str(info.value) and secret not in repr(net)


# -- connect() and forward() in a network ---------------------------------------------


def test_connect_goes_where_the_address_says() -> None:
    with EchoServer() as one, EchoServer() as two:
        net = NetworkBinding("NET")
        for echo in (one, two):
            with net.connect(f"{LOOP}:{echo.port}", timeout=10) as sock:
                assert roundtrip(sock, str(echo.port).encode()) == str(echo.port).encode()
        assert (one.connections, two.connections) == (1, 1)


def test_connect_through_the_network_tunnel() -> None:
    with EchoServer() as echo, Socks5Server({(DB, 5432): (LOOP, echo.port)}) as server:
        with tunnelled(server).connect({"hostname": DB, "port": 5432}, timeout=10) as sock:
            assert roundtrip(sock, b"pg", half_close=False) == b"pg"
    assert server.asked == [Asked(DB, 5432, "domain")]


@pytest.mark.parametrize("address", [None, DB, (DB,), f"{DB}:0", f"{DB}:x"])
def test_connect_in_a_network_needs_a_port(address) -> None:
    with pytest.raises(ValueError, match="host:port"):
        NetworkBinding("NET").connect(address)


def test_forward_to_an_address_in_the_network() -> None:
    with EchoServer() as echo:
        with NetworkBinding("NET").forward(address=f"{LOOP}:{echo.port}") as local, \
                socket.create_connection(local, timeout=10) as sock:
            assert roundtrip(sock, b"fwd") == b"fwd"
        with pytest.raises(ValueError):
            NetworkBinding("NET").forward()
    assert echo.connections == 1


# -- configuration, CLI, mount ----------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, socks: Socks5Server) -> Path:
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\n\n[[vpc_networks]]\nbinding = "NET"\ntunnel_id = "t-1"\n\n'
        '[[vpc_networks]]\nbinding = "MESH"\nnetwork_id = "cf1:network"\n')
    (tmp_path / "vpc-services.toml").write_text(
        f'[tunnels]\n"t-1" = "socks5h://user:pw@{LOOP}:{socks.port}"\n')
    return tmp_path


def test_load_env_reads_vpc_networks_with_their_transport(project, socks, first) -> None:
    env = load_env(project / "wrangler.toml")
    assert list(env) == ["NET", "MESH"]
    assert isinstance(env.NET, NetworkBinding) and isinstance(env.MESH, NetworkBinding)
    assert (env.NET.tunnel_id, env.NET.tunnel) == ("t-1", f"socks5h://user:pw@{LOOP}:{socks.port}")
    assert (env.MESH.network_id, env.MESH.tunnel) == ("cf1:network", None)  # no [tunnels] entry: direct
    assert env.NET.fetch(f"http://{API}/").status_code == 200
    again = pickle.loads(pickle.dumps(env))
    assert again.NET == env.NET and again.MESH.fetch(f"http://{LOOP}:{first.port}/").status_code == 200


def test_a_network_entry_with_both_ids_is_refused(project) -> None:
    (project / "wrangler.toml").write_text(
        '[[vpc_networks]]\nbinding = "NET"\ntunnel_id = "t-1"\nnetwork_id = "cf1:network"\n')
    with pytest.raises(ConfigError, match="not both"):
        load_env(project / "wrangler.toml")


def test_cli_bindings_and_check_show_the_transport(project, socks, capsys) -> None:
    config = ["--config", str(project / "wrangler.toml")]
    assert main([*config, "bindings"]) == 0
    out = capsys.readouterr().out
    assert "NET" in out and f"socks5h://user:***@{LOOP}:{socks.port}" in out and "pw@" not in out
    assert "MESH" in out and "direct" in out
    assert main([*config, "check"]) == 0
    out = capsys.readouterr().out
    assert "network" in out and "SOCKS5 proxy" in out and "2 of 2 OK" in out


def test_cli_check_fails_when_the_network_tunnel_is_down(project, capsys) -> None:
    services = project / "vpc-services.toml"
    services.write_text(f'[tunnels]\n"t-1" = "socks5h://{LOOP}:{closed_port()}"\n')
    assert main(["--config", str(project / "wrangler.toml"), "check", "NET"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_mount_sends_named_hosts_through_the_network(socks, first, second) -> None:
    session = mount(requests.Session(), tunnelled(socks), hosts={API: tunnelled(socks)})
    assert session.get(f"http://{API}/via-tunnel").status_code == 200
    assert session.get(f"http://{LOOP}:{second.port}/plain").status_code == 200  # not claimed: plain requests
    assert socks.asked == [Asked(API, 80, "domain")]
    assert [s.target for s in second.seen] == ["/plain"]


def test_mount_needs_hosts_for_a_network_binding(socks) -> None:
    with pytest.raises(ValueError, match="claims no host"):
        mount(requests.Session(), tunnelled(socks))


def test_network_bindings_and_adapters_pickle_and_compare(first) -> None:
    net = NetworkBinding("NET", tunnel="socks5h://u:pw@127.0.0.1:1080", tunnel_id="t-1")
    again = pickle.loads(pickle.dumps(net))
    assert again == net and hash(again) == hash(net)
    assert again != NetworkBinding("NET", tunnel_id="t-1")  # another transport
    from vpc_requests import Binding, VPCService

    assert net != Binding("NET", VPCService(ipv4=LOOP)) and Binding("NET", VPCService(ipv4=LOOP)) != net
    adapter = pickle.loads(pickle.dumps(NetworkBinding("NET").adapter))
    session = requests.Session()
    session.mount("http://", adapter)
    assert session.get(f"http://{LOOP}:{first.port}/pickled").status_code == 200


def test_cli_forward_to_an_address_in_the_network(project) -> None:
    import signal
    import subprocess
    import sys

    with EchoServer() as echo:
        process = popen(
            [sys.executable, "-m", "vpc_requests", "forward", "MESH", "--to", f"{LOOP}:{echo.port}",
             "--listen", "127.0.0.1:0"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert f"-> MESH ({LOOP}:{echo.port} in network_id cf1:network via direct)" in line, line
            local = (LOOP, int(line.split()[1].rpartition(":")[2]))
            with socket.create_connection(local, timeout=60) as sock:
                assert roundtrip(sock, b"mesh") == b"mesh"
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
        finally:
            reap(process)
    assert (process.returncode, err) == (0, "")


def test_cli_forward_on_a_network_needs_to(project, capsys) -> None:
    assert main(["--config", str(project / "wrangler.toml"), "forward", "MESH"]) == 2
    assert "network binding: give the destination, --to HOST:PORT" in capsys.readouterr().err
