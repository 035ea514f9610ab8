"""Dual stack (issue 4): a service with both ``ipv6`` and ``ipv4`` tries IPv6
first and falls back to IPv4 when the IPv6 connect fails, all within the
connect timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from vpc_requests import Binding, ProxyError, VPCService
from vpc_requests.testing import PrivateService

NAME = "internal-api.company.local"


def dual(port: int) -> Binding:
    return Binding("API", VPCService(ipv4="127.0.0.1", ipv6="::1", http_port=port))


@contextmanager
def both_families() -> Iterator[tuple[PrivateService, PrivateService]]:
    """Services on 127.0.0.1 and ::1 with the same port number."""
    for _ in range(20):
        v4 = PrivateService(name="v4").start()
        try:
            v6 = PrivateService(host="::1", port=v4.port, name="v6").start()
        except OSError:  # that port is taken on ::1: try another
            v4.stop()
            continue
        try:
            yield v4, v6
        finally:
            v6.stop()
            v4.stop()
        return
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


@contextmanager
def hanging_ipv6(port: int) -> Iterator[None]:
    """A listener on ::1 ``port`` whose accept queue is full, so a connect
    hangs (the kernel drops the SYN), as on a broken IPv6 route."""
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("::1", port))
        listener.listen(0)
        for _ in range(3):
            filler = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(("::1", port))
            time.sleep(0.02)
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_ipv6_refused_falls_back_to_ipv4(http_service):
    response = dual(http_service.port).fetch(f"http://{NAME}/")
    assert response.status_code == 200
    assert http_service.seen[0].host == NAME


def test_ipv6_is_used_when_it_answers():
    with both_families() as (v4, v6):
        api = dual(v4.port)
        assert api.fetch(f"http://{NAME}/").status_code == 200
        assert len(v6.seen) == 1 and v4.seen == []


def test_a_hanging_ipv6_leaves_time_for_ipv4_within_the_connect_timeout(http_service, monkeypatch):
    # What each connect was given, not how long it took: IPv6 first with at
    # most half the connect timeout (it hangs for all of it), then IPv4 with
    # what is left, which must be enough for the fetch to succeed.
    attempts: list[tuple[int, float | None]] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        attempts.append((self.family, self.gettimeout()))
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    with hanging_ipv6(http_service.port):
        response = dual(http_service.port).fetch(f"http://{NAME}/", timeout=(4, 60))
    assert response.status_code == 200
    assert [family for family, _ in attempts] == [socket.AF_INET6, socket.AF_INET]
    (_, v6), (_, v4) = attempts
    assert v6 is not None and v4 is not None
    assert v6 <= 4 / 2 and v4 <= 4 - v6 + 0.001  # shares of one connect timeout, IPv6 first


def test_both_failing_is_one_error_within_the_connect_timeout():
    v4 = PrivateService(name="v4").start()
    port = v4.port
    v4.stop()  # nothing on either family now
    with pytest.raises(ProxyError) as info:
        dual(port).fetch(f"http://{NAME}/", timeout=2)
    assert info.value.code == "connection_refused"
    assert info.value.origin == f"127.0.0.1:{port}"


def test_only_ipv6_configured_never_tries_ipv4(http_service):
    api = Binding("API", VPCService(ipv6="::1", http_port=http_service.port))
    with pytest.raises(ProxyError) as info:
        api.fetch(f"http://{NAME}/", timeout=2)
    assert info.value.code == "connection_refused"
    assert http_service.seen == []
