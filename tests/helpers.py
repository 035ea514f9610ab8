"""Small helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import platform
import signal
import socket
import subprocess
import threading
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


# --- what a thread is doing ------------------------------------------------------

#: Linux system call numbers of a thread blocked connecting or waiting for a
#: socket (CPython waits in poll() on a socket with a timeout).
_WAITING_SYSCALLS = {
    "x86_64": {42, 7, 271, 23, 270},  # connect, poll, ppoll, select, pselect6
    "aarch64": {203, 73, 72},  # connect, ppoll, pselect6
}


def blocked_on_a_socket(thread: threading.Thread) -> bool:
    """Whether ``thread`` sits in the kernel connecting or waiting for a socket
    (Linux: /proc/self/task/TID/syscall). Where that cannot be read, True:
    the caller's own condition is then all there is."""
    numbers = _WAITING_SYSCALLS.get(platform.machine())
    try:
        with open(f"/proc/self/task/{thread.native_id}/syscall") as file:
            first = file.read().split(" ", 1)[0]
    except OSError:
        return True
    if numbers is None:
        return True
    return first.isdigit() and int(first) in numbers


@contextlib.contextmanager
def when(condition: Callable[[], bool], action: Callable[[], object]) -> Iterator[None]:
    """Run ``action`` once, on another thread, as soon as ``condition`` holds
    (polled) during the ``with`` block: an event, not a delay, ends the
    operation the block runs."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if condition():
                action()
                return
            done.wait(0.005)

    thread = threading.Thread(target=watch, daemon=True, name="when")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def timed_out(error: BaseException) -> bool:
    """Whether a timeout is anywhere in ``error``'s chain (causes, contexts,
    urllib3's MaxRetryError.reason): the operation was ended by its timeout."""
    import requests
    import urllib3

    todo: list[object] = [error]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        # urllib3 2 derives NewConnectionError (any failed connect) from ConnectTimeoutError
        if isinstance(current, (TimeoutError, urllib3.exceptions.TimeoutError, requests.Timeout)) and \
                not isinstance(current, urllib3.exceptions.NewConnectionError):
            return True
        todo += [current.__cause__, current.__context__, *current.args]
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            todo.append(current.reason)
    return False
