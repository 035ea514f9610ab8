"""Small helpers shared by several test modules."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``condition`` becomes true (servers count on their own threads).

    The deadline is generous: on a loaded machine a server thread may wait
    long for a core, and only a failing test ever waits it out.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def contacted(listener: socket.socket) -> bool:
    """Whether a client connected to the non-blocking ``listener`` (the
    ``bare_listener`` fixture)."""
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True
