"""The local forwarder (issue 12, part 2): ``binding.forward()`` and
``vpc-requests forward``, against a loopback echo server; concurrent
clients, half-close, a clean stop (in process, and as a real subprocess
stopped with SIGINT and SIGTERM), and the loopback-only listen rule."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import eventually, popen, reap
from servers import EchoServer, Unresponsive, closed_port, read_all, roundtrip

from vpc_requests import Binding, RoutingError, VPCService
from vpc_requests._bindings.forward import Forwarder, check_listen, parse_listen
from vpc_requests._cli.cli import main

LOOP = "127.0.0.1"
CLIENTS = 8


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


def db(port: int) -> Binding:
    return Binding("DB", VPCService(type="tcp", ipv4=LOOP, tcp_port=port, name="db"))


def run_clients(address: tuple[str, int], count: int = CLIENTS) -> list[bytes]:
    """``count`` clients, all connected before any sends, each echoing its own payload."""
    connected = threading.Barrier(count, timeout=60)
    results: list[bytes | BaseException] = [b""] * count

    def client(index: int) -> None:
        try:
            with socket.create_connection(address, timeout=60) as sock:
                connected.wait()
                results[index] = roundtrip(sock, f"client {index} ".encode() * 5000)
        except BaseException as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, bytes)]


# -- in process -------------------------------------------------------------------


def test_eight_concurrent_clients_each_get_their_own_pipe(echo) -> None:
    with db(echo.port).forward() as address:
        assert address[0] == LOOP
        results = run_clients(address)
    assert results == [f"client {i} ".encode() * 5000 for i in range(CLIENTS)]
    assert echo.connections == CLIENTS
    assert echo.half_closes == CLIENTS  # each client's half-close reached the service


def test_an_unreachable_service_closes_the_local_connection(echo, caplog) -> None:
    with caplog.at_level(logging.WARNING, "vpc_requests.forward"), db(closed_port()).forward() as address:
        for _ in range(2):  # and keeps serving
            with socket.create_connection(address, timeout=60) as sock:
                assert read_all(sock) == b""
    assert "connection_refused" in caplog.text
    assert echo.connections == 0


def test_stop_closes_every_pipe(echo) -> None:
    binding = db(echo.port)
    with Forwarder(lambda signal: binding.connect(signal=signal)) as forwarder:
        client = socket.create_connection(forwarder.address, timeout=60)
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"
        assert forwarder.active == 1
    assert forwarder.active == 0
    assert read_all(client) == b""  # the pipe was closed, not left hanging
    client.close()
    assert eventually(lambda: echo.half_closes == 1, 30)  # the service side too
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(forwarder.address, timeout=60)


def test_stop_ends_a_dial_in_progress() -> None:
    with Unresponsive() as tunnel:  # a tunnel that accepts and never answers the SOCKS greeting
        binding = Binding("DB", VPCService(type="tcp", hostname="db.company.local", tcp_port=5432),
                          tunnel=f"socks5h://{LOOP}:{tunnel.port}")
        forwarder = Forwarder(lambda signal: binding.connect(timeout=600, signal=signal)).start()
        client = socket.create_connection(forwarder.address, timeout=60)
        assert eventually(lambda: tunnel.connections == 1, 30)
        forwarder.stop()
        assert forwarder.active == 0  # the dial was aborted, its thread is gone
        assert read_all(client) == b""
        client.close()


def test_forward_on_an_http_service_names_the_type(echo) -> None:
    binding = Binding("API", VPCService(ipv4=LOOP, http_port=echo.port))
    with pytest.raises(RoutingError, match="type 'http'"):
        binding.forward()


def test_a_non_loopback_listen_address_needs_allow_remote(echo) -> None:
    with pytest.raises(ValueError, match="not a loopback address.*allow-remote"):
        db(echo.port).forward(("0.0.0.0", 0))


@pytest.mark.parametrize(("host", "warned"), [
    ("127.0.0.1", False), ("::1", False), ("localhost", False), ("127.0.0.2", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.10", True), ("db.example", True),
])
def test_check_listen(host, warned) -> None:
    if warned:
        with pytest.raises(ValueError):
            check_listen((host, 1), False)
        assert "not loopback" in str(check_listen((host, 1), True))
    else:
        assert check_listen((host, 1), False) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5432", (LOOP, 5432)), ("[::1]:5", ("::1", 5)), ("6543", (LOOP, 6543)),
    ("localhost", ("localhost", 7)), ("::1", ("::1", 7)),
])
def test_parse_listen(text, expected) -> None:
    assert parse_listen(text, 7) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:x", "127.0.0.1:70000"])
def test_parse_listen_refuses_bad_ports(text) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_listen(text)


def test_forward_on_ipv6_loopback() -> None:
    with EchoServer("::1") as echo6:
        binding = Binding("DB", VPCService(type="tcp", ipv6="::1", tcp_port=echo6.port))
        with binding.forward(("::1", 0)) as address:
            assert run_clients(address, 2)[1] == b"client 1 " * 5000


# -- the command line -----------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, echo: EchoServer) -> Path:
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\n\n[[vpc_services]]\nbinding = "DB"\nservice_id = "db-1"\n\n'
        '[[vpc_services]]\nbinding = "API"\nservice_id = "api-1"\n')
    (tmp_path / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "db-1"\nname = "db"\ntype = "tcp"\ntcp_port = {echo.port}\n'
        'app_protocol = "postgresql"\nhost = { ipv4 = "127.0.0.1", network = { tunnel_id = "t-1" } }\n\n'
        '[[services]]\nservice_id = "api-1"\nname = "api"\ntype = "http"\n'
        'host = { ipv4 = "127.0.0.1", network = { tunnel_id = "t-1" } }\n')
    return tmp_path


def start(project: Path, *args: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    """``vpc-requests forward DB ARGS`` in a child that stops on SIGINT whatever
    this process inherited (see helpers.popen); the caller reaps it."""
    process = popen(
        [sys.executable, "-m", "vpc_requests", "forward", "DB", *args], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("forwarding 127.0.0.1:"), (line, process.stderr.read() if process.stderr else "")
        port = int(line.split()[1].rpartition(":")[2])
        assert "-> DB (127.0.0.1:" in line and "via direct" in line
    except BaseException:
        reap(process)
        raise
    return process, (LOOP, port)


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    """Send ``signum``; the exit status and stderr once the child has ended
    (killed and reaped if it has not ended within a minute)."""
    try:
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        reap(process)
    return process.returncode, err


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_cli_forward_serves_eight_clients_and_stops_cleanly(project, echo, signum, status) -> None:
    process, address = start(project, "--listen", "127.0.0.1:0")
    held = None
    try:
        assert run_clients(address) == [f"client {i} ".encode() * 5000 for i in range(CLIENTS)]
        held = socket.create_connection(address, timeout=60)  # a pipe still open at the stop
        held.sendall(b"x")
        assert held.recv(1) == b"x"
        code, err = stop(process, signum)
        assert (code, err) == (status, "")  # no traceback, nothing on stderr
        assert read_all(held) == b""
    finally:
        reap(process)
        if held is not None:
            held.close()
    assert eventually(lambda: echo.connections == CLIENTS + 1)


def test_cli_forward_listens_on_the_service_port_when_it_is_free(project) -> None:
    free = closed_port()
    services = project / "vpc-services.toml"
    services.write_text(services.read_text().replace("tcp_port = ", f"tcp_port = {free}  # was "))
    process, address = start(project)
    code, _ = stop(process, signal.SIGTERM)
    assert (address[1], code) == (free, 0)


def test_cli_forward_takes_another_port_when_the_service_port_is_taken(project, echo) -> None:
    # the echo server itself holds 127.0.0.1:<tcp_port>
    process, address = start(project)
    try:
        assert address[1] != echo.port
        assert run_clients(address, 1) == [b"client 0 " * 5000]
        code, _ = stop(process, signal.SIGTERM)
    finally:
        reap(process)
    assert code == 0


def test_cli_forward_refuses_a_non_loopback_address_without_the_flag(project, echo, capsys) -> None:
    assert main(["--config", str(project / "wrangler.toml"), "forward", "DB", "--listen", "0.0.0.0:0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vpc-requests: error: refusing to listen on 0.0.0.0:0") and err.count("\n") == 1


def test_cli_forward_on_an_http_binding_names_the_type(project, capsys) -> None:
    assert main(["--config", str(project / "wrangler.toml"), "forward", "API"]) == 2
    assert "type 'http'" in capsys.readouterr().err


def test_cli_check_probes_a_tcp_service_on_its_tcp_port(project, echo, capsys) -> None:
    assert main(["--config", str(project / "wrangler.toml"), "check", "DB"]) == 0
    out = capsys.readouterr().out
    assert f"tcp     127.0.0.1:{echo.port}" in out and "1 of 1 OK" in out
    assert eventually(lambda: echo.connections == 1, 30)  # the echo server counts on its own thread


def test_cli_check_fails_a_tcp_service_nothing_listens_for(project, echo, capsys) -> None:
    services = project / "vpc-services.toml"
    services.write_text(services.read_text().replace(f"tcp_port = {echo.port}", f"tcp_port = {closed_port()}"))
    assert main(["--config", str(project / "wrangler.toml"), "check", "DB"]) == 1
    assert "FAIL connection_refused" in capsys.readouterr().out
