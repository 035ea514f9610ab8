"""The local forwarder (``binding.forward()`` / ``vpc-requests forward``)
against a direct connection, both to the same loopback echo server:

* throughput of one connection: MiB/s of a payload written by one thread and
  read back (echoed) by another, so the bytes cross the forwarder twice;
* connections per second: connect, one byte there and back, close.

Run: ``python benchmarks/bench_forward.py [ROUNDS] [MIB] [CONNECTIONS]``
(default 7 rounds, 64 MiB, 500 connections). Rounds interleave direct and
forwarded runs; the ratios printed (forwarded / direct, the median of the
per-round ratios, with quartiles) are what to read on a shared machine.
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable

from vpc_requests import Binding, VPCService

Address = tuple[str, int]
CHUNK = 256 * 1024


class Echo:
    """A threaded loopback echo server."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.address: Address = self.listener.getsockname()[:2]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        with conn:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while size := conn.recv_into(buffer):
                    conn.sendall(view[:size])
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


def throughput(address: Address, total: int) -> float:
    """MiB/s of ``total`` bytes echoed through one connection."""
    payload = b"\x5a" * CHUNK
    with socket.create_connection(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send() -> None:
            sent = 0
            while sent < total:
                sock.sendall(payload)
                sent += len(payload)
            sock.shutdown(socket.SHUT_WR)

        started = time.perf_counter()
        sender = threading.Thread(target=send)
        sender.start()
        received = 0
        buffer = bytearray(CHUNK)
        while size := sock.recv_into(buffer):
            received += size
        sender.join()
        elapsed = time.perf_counter() - started
    assert received == total, (received, total)
    return total / elapsed / 2**20


def connection_rate(address: Address, count: int) -> float:
    """Connections per second: connect, one byte each way, close."""
    started = time.perf_counter()
    for _ in range(count):
        with socket.create_connection(address) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
    return count / (time.perf_counter() - started)


def rounds(measure: Callable[[Address], float], direct: Address, forwarded: Address, count: int) -> str:
    ratios, plain, through = [], [], []
    measure(direct)  # warm up both paths
    measure(forwarded)
    for _ in range(count):
        a = measure(direct)
        b = measure(forwarded)
        plain.append(a)
        through.append(b)
        ratios.append(b / a)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return (f"direct {statistics.median(plain):9.1f}  forwarded {statistics.median(through):9.1f}  "
            f"forwarded/direct {statistics.median(ratios):.3f} [{q[0]:.3f}..{q[2]:.3f}]")


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 7
    mib = int(argv[1]) if len(argv) > 1 else 64
    connections = int(argv[2]) if len(argv) > 2 else 500
    echo = Echo()
    binding = Binding("DB", VPCService(type="tcp", ipv4="127.0.0.1", tcp_port=echo.address[1]))
    try:
        with binding.forward() as forwarded:
            print(f"forwarder benchmark: {count} interleaved rounds, python {sys.version.split()[0]}")
            print(f"  throughput, one connection, {mib} MiB echoed (MiB/s):")
            print("    " + rounds(lambda a: throughput(a, mib * 2**20), echo.address, forwarded, count))
            print(f"  connections per second ({connections} per run, 1 byte each way):")
            print("    " + rounds(lambda a: connection_rate(a, connections), echo.address, forwarded, count))
    finally:
        binding.close()
        echo.close()


if __name__ == "__main__":
    main(sys.argv[1:])
