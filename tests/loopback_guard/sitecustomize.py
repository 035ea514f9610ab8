"""Loaded by every Python subprocess the tests start (examples, the demo,
the CLI, process pools, Dask workers; tests/conftest.py puts this folder on
PYTHONPATH): like pytest-socket in the test process, it refuses any TCP or
UDP connection that is not to loopback, so a routing bug in a subprocess
fails loudly instead of sending traffic off the machine."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _allowed(sock: socket.socket, address: Any) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: resolve first, as every client here does


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(self, address):
        raise OSError(f"loopback guard: connection to {address!r} refused (tests connect to loopback only)")
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(self, address):
        raise OSError(f"loopback guard: connection to {address!r} refused (tests connect to loopback only)")
    return _connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
