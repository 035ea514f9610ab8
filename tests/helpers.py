"""Small helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any


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


# --- SIGINT and subprocesses ---------------------------------------------------
#
# A process started in the background by a non-interactive shell (how CI may
# start pytest) inherits SIGINT as *ignored*, and Python then leaves it
# ignored: no KeyboardInterrupt, in this process nor in the children it
# starts (an ignored disposition survives exec). Tests that rely on Ctrl-C
# therefore set the disposition themselves.


@contextlib.contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread for the duration
    (as in an interactive run), whatever this process inherited; restored after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def sigint_default() -> None:
    """``preexec_fn`` for a child that must stop on SIGINT: SIG_DFL before the
    exec, so that Python in the child installs its KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """:class:`subprocess.Popen` for a child that stops on SIGINT as in an
    interactive shell (see :func:`sigint_default`); reap it with :func:`reap`."""
    return subprocess.Popen(args, preexec_fn=sigint_default, **kwargs)


def reap(process: subprocess.Popen[Any]) -> None:
    """Kill ``process`` if it still runs, wait for it and close its pipes, so
    that a failing test leaks no process, pipe or ResourceWarning into a
    later one. Idempotent."""
    try:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
    finally:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
