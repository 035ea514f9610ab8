"""Tests for tests/servers/ (the suite's fault and tunnel servers) and the
accept loop they share with PrivateService (vpc_requests._loopback)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
from servers import BacklogFull, ConnectProxy, ScriptedServer, Unresponsive, closed_port

from vpc_requests._loopback import LoopbackServer


def wait_for(predicate, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; generous, as only a failing test waits it out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


# ------------------------------------------------------------ accept loop


class Greeter(LoopbackServer):
    def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
        conn.sendall(f"hello {number}\n".encode())
        self._stopping.wait()


def test_each_connection_is_handled_on_its_own_thread():
    with Greeter(name="greeter") as server:
        first = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with first, second:
            assert first.recv(100) == b"hello 1\n"
            assert second.recv(100) == b"hello 2\n"  # while the first is still held
        assert server.connections == 2


def test_stop_closes_held_connections_joins_threads_and_refuses():
    server = Greeter().start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert sock.recv(100) == b"hello 1\n"
        server.stop()
        assert sock.recv(100) == b""
    wait_for(lambda: not server._threads)  # each thread leaves once it gets a core
    server.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_restarts_on_the_same_port():
    server = Greeter().start()
    port = server.port
    server.stop()
    with server, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.recv(100) == b"hello 1\n"


def test_a_failing_handler_ends_only_its_connection(caplog):
    class Failing(LoopbackServer):
        def handle(self, conn: socket.socket, client_port: int, number: int) -> None:
            if number == 1:
                raise RuntimeError("boom")
            conn.sendall(b"ok")

    with Failing() as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            assert sock.recv(10) == b""
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            assert sock.recv(10) == b"ok"


def test_base_handle_must_be_overridden():
    with LoopbackServer() as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            assert sock.recv(10) == b""  # NotImplementedError: closed, quietly


def test_ipv6_loopback():
    with Greeter(host="::1") as server:
        with socket.create_connection(("::1", server.port), timeout=5) as sock:
            assert sock.recv(100) == b"hello 1\n"


# ------------------------------------------------------------------ faults


def test_unresponsive_accepts_and_never_answers():
    with Unresponsive() as listener:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=0.1) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with pytest.raises(socket.timeout):
                sock.recv(1)
        wait_for(lambda: listener.connections == 1)
        with pytest.raises(requests.ReadTimeout):
            requests.get(f"http://127.0.0.1:{listener.port}/", timeout=(1, 0.05))


def test_closed_port_refuses():
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=1).close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{closed_port()}/", timeout=1)


# Linux drops SYNs to a full accept queue; the suite runs on Linux (CI).
def test_backlog_full_makes_connect_hang():
    with BacklogFull() as listener:
        with pytest.raises(socket.timeout):
            socket.create_connection(("127.0.0.1", listener.port), timeout=0.1).close()
        with pytest.raises(requests.ConnectTimeout):
            requests.get(f"http://127.0.0.1:{listener.port}/", timeout=(0.1, 1))


def test_scripted_server_runs_the_script_and_sets_stop_on_exit():
    stopped = threading.Event()

    def script(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(b"scripted")
        stop.wait(10)
        stopped.set()

    with ScriptedServer(script) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            assert sock.recv(100) == b"scripted"
            assert not stopped.is_set()
    assert stopped.is_set()


# ----------------------------------------------------------- CONNECT proxy


def test_connect_proxy_reads_requests_with_h11_and_relays_early_bytes():
    with Greeter() as origin, ConnectProxy({("far.example", 443): ("127.0.0.1", origin.port)}) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"CONNECT far.example:443 HTTP/1.1\r\nHost: far.example:443\r\n\r\n")
            # The proxy's answer and the origin's greeting may come in one
            # segment or in several: read until both are there.
            expected = b"HTTP/1.1 200 Connection established\r\n\r\nhello 1\n"
            received = b""
            while len(received) < len(expected) and (chunk := sock.recv(100)):
                received += chunk
            assert received == expected
    assert proxy.requests == [("CONNECT far.example:443 HTTP/1.1", (("Host", "far.example:443"),))]


def test_connect_proxy_refuses_unknown_targets_and_malformed_requests():
    with ConnectProxy({}) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"CONNECT near.example:443 HTTP/1.1\r\nHost: near.example:443\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 403 Forbidden\r\n")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"NONSENSE\r\n\r\n")
            assert sock.recv(100) == b""
    assert [asked.host for asked in proxy.asked] == ["near.example"]
