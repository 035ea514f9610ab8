"""Deadlines for work that must finish within one timeout however many steps
it takes (a name lookup, a tunnel handshake, several addresses tried):
``None`` everywhere means no deadline."""

from __future__ import annotations

import time

__all__ = ["after", "expired", "left", "share"]


def after(timeout: float | None) -> float | None:
    """The deadline ``timeout`` seconds from now (``time.monotonic``)."""
    return None if timeout is None else time.monotonic() + timeout


def left(deadline: float | None) -> float | None:
    """Seconds until ``deadline``; at least a millisecond, so that a socket
    timeout derived from it is never 0 (non-blocking)."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


def share(deadline: float | None, attempts: int) -> float | None:
    """The time one of ``attempts`` remaining attempts may take."""
    remaining = left(deadline)
    return None if remaining is None else max(remaining / max(attempts, 1), 0.001)


def expired(deadline: float | None) -> bool:
    """Whether ``deadline`` has passed."""
    return deadline is not None and time.monotonic() >= deadline
