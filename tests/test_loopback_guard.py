"""The guard every test subprocess loads refuses non-loopback connections."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import socket
for target in {targets!r}:
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        try:
            sock.connect(target)
        except OSError as exc:
            print("guard" if "loopback guard" in str(exc) else "os", end=" ")
        else:
            print("connected", end=" ")
"""


def run(targets: list[tuple[str, int]]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(targets=targets)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_private_and_public_addresses_are_refused_in_subprocesses() -> None:
    assert run([("10.0.1.50", 80), ("192.168.1.1", 443), ("fd00::1", 80)]) == "guard guard guard "


def test_loopback_is_allowed_in_subprocesses(http_service) -> None:  # type: ignore[no-untyped-def]
    # The twin: a loopback service is reached (and a closed loopback port is
    # refused by the kernel, not by the guard).
    assert run([("127.0.0.1", http_service.port)]) == "connected "
