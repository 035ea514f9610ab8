"""A minimal keep-alive HTTP/1.1 server for the benchmarks, run in its own
process so that the client is what is measured.

Every request gets the same small ``200`` response (``Content-Length``
framed); request bodies framed by ``Content-Length`` are read and dropped.
One thread per connection; TLS optional (a ``trustme`` certificate for
``internal-api.company.local``, ``localhost`` and ``127.0.0.1``).

``GET /__stats`` answers JSON counters: ``connections`` (TCP connections
accepted), ``handshakes`` (TLS handshakes completed), ``requests``,
``active`` and ``max_concurrent`` (requests in progress at once; the
response to a request is sent ``--delay`` seconds after it arrived).
``GET /__reset`` zeroes them.

Run by :mod:`benchmarks.run` as
``python benchmarks/server.py [--tls CA_DIR] [--delay SECONDS]``; it prints
``PORT <n>`` on stdout when it listens and stops when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

NAMES = ("internal-api.company.local", "localhost", "127.0.0.1")
BODY = b'{"ok": true, "service": "bench"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.handshakes = 0
        self.requests = 0
        self.active = 0
        self.max_concurrent = 0

    def as_json(self) -> bytes:
        with self.lock:
            data = {k: getattr(self, k) for k in
                    ("connections", "handshakes", "requests", "active", "max_concurrent")}
        body = json.dumps(data).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)


def serve_connection(conn: socket.socket, context: ssl.SSLContext | None, stats: Stats, delay: float) -> None:
    sock = conn
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(conn, server_side=True)
            with stats.lock:
                stats.handshakes += 1
        buffer = b""
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                data = sock.recv(65536)
                if not data:
                    return
                buffer += data
                end = buffer.find(b"\r\n\r\n")
            head, buffer = buffer[:end], buffer[end + 4:]
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17: stop if stop >= 0 else None])
            while len(buffer) < length:
                data = sock.recv(65536)
                if not data:
                    return
                buffer += data
            buffer = buffer[length:]
            target = head.split(b" ", 2)[1]
            if target == b"/__stats":
                sock.sendall(stats.as_json())
                continue
            if target == b"/__reset":
                with stats.lock:
                    stats.reset()
                sock.sendall(stats.as_json())
                continue
            with stats.lock:
                stats.requests += 1
                stats.active += 1
                stats.max_concurrent = max(stats.max_concurrent, stats.active)
            if delay:
                time.sleep(delay)
            with stats.lock:
                stats.active -= 1
            sock.sendall(RESPONSE)
    except (OSError, ValueError, ssl.SSLError):
        return
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tls", metavar="CA_DIR", help="serve TLS; write ca.pem into CA_DIR")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    context = None
    if args.tls:
        import trustme

        ca = trustme.CA()
        ca.cert_pem.write_to_path(os.path.join(args.tls, "ca.pem"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*NAMES).configure_cert(context)
    stats = Stats()
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    print(f"PORT {listener.getsockname()[1]}", flush=True)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with stats.lock:
                stats.connections += 1
            threading.Thread(target=serve_connection, args=(conn, context, stats, args.delay),
                             daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # the parent closes stdin (or exits) to stop us
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
