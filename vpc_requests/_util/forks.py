"""Fork detection: pooled sockets must never be shared between a parent
process and a forked child (multiprocessing, pre-fork servers, Celery).

Adapters remember :func:`generation` when they build their pools and build
fresh ones when it has changed, which happens only in a forked child. Cheaper
than comparing ``os.getpid()`` on every request.
"""

from __future__ import annotations

import os

__all__ = ["generation"]

_generation = 0


def generation() -> int:
    """How many forks lie between the first import and this process."""
    return _generation


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
