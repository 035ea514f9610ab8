"""A TCP service through a local forwarder, as a database driver uses it.

Workers::

    const socket = env.ORDERS_DB.connect("orders-db.company.local:5432");

Python code with a driver that dials ``host:port`` itself (psycopg, asyncpg,
``psql``) gets a local port instead::

    with env.ORDERS_DB.forward() as (host, port):
        psycopg.connect(host=host, port=port, dbname="orders")

Here a tiny line-protocol "database" on loopback stands in for Postgres, and
a plain socket plays the driver. Run: ``python examples/tcp_forward.py``.
"""

import socket
import threading

from vpc_requests import Binding, VPCService

ORDERS = {"1": "order 1: 3 items, 42.00", "2": "order 2: 1 item, 9.50"}


def database(listener: socket.socket) -> None:
    """Answers each ``GET <id>`` line with the order, until the client closes."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                key = line.decode().split()[-1]
                stream.write((ORDERS.get(key, "no such order") + "\n").encode())
                stream.flush()


with socket.create_server(("127.0.0.1", 0)) as listener:
    threading.Thread(target=database, args=(listener,), daemon=True).start()
    service = VPCService(type="tcp", ipv4="127.0.0.1", tcp_port=listener.getsockname()[1],
                         app_protocol="postgresql", name="orders-db")
    with Binding("ORDERS_DB", service) as binding, binding.forward() as (host, port):
        print(f"forwarding {host}:{port} -> {service.describe()}")
        with socket.create_connection((host, port), timeout=10) as driver, driver.makefile("rwb") as stream:
            for key in ("1", "2"):
                stream.write(f"GET {key}\n".encode())
                stream.flush()
                print("driver got:", stream.readline().decode().strip())
        with binding.connect("orders-db.company.local:5432", timeout=10) as sock, sock.makefile("rwb") as stream:
            stream.write(b"GET 1\n")  # what a Worker does with env.ORDERS_DB.connect()
            stream.flush()
            print("connect() got:", stream.readline().decode().strip())
