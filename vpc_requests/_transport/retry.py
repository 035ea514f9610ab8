"""The adapter's retry policy: :class:`StaleConnectionRetry` retries a
request only when its pooled keep-alive connection turned out closed, and
:func:`default_retry` is what a :class:`~vpc_requests.VPCServiceAdapter`
made without ``max_retries`` uses."""

from __future__ import annotations

import http.client
from types import TracebackType
from typing import Any

from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from .abort import current_scope

__all__ = ["StaleConnectionRetry", "default_retry"]

# What a pooled keep-alive connection the service closed while it was idle
# looks like when it is used: closed (or reset) before any byte of the response.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class StaleConnectionRetry(Retry):
    """urllib3 :class:`~urllib3.util.Retry` that retries a request only when
    its connection was closed before any byte of the response came back (a
    pooled keep-alive connection the service closed while idle), and only for
    the methods in ``allowed_methods``. Every other read error (a read
    timeout, a non-HTTP reply) is raised at once, as with requests' default
    ``Retry(0, read=False)``, so a read timeout stays a ``ReadTimeout``;
    nothing is retried once the fetch's abort signal fired.

    Use :func:`default_retry` for the adapter's default instance.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> StaleConnectionRetry:
        # A read error as urllib3's Retry counts it.
        read_error = isinstance(error, (ReadTimeoutError, ProtocolError))
        if error is not None and (_aborted() or (read_error and not _is_stale(error))):
            # requests' own default, which raises (the error itself or
            # MaxRetryError): what plain requests would see
            Retry(0, read=False).increment(method, url, response, error, _pool, _stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _aborted() -> bool:
    # An abort shuts the socket down, which looks like a stale connection.
    active = current_scope()
    return active is not None and active.signal.aborted


def _is_stale(error: Exception) -> bool:
    return isinstance(error, ProtocolError) and any(isinstance(arg, _STALE) for arg in error.args)


def default_retry() -> StaleConnectionRetry:
    """The retry policy of a :class:`~vpc_requests.VPCServiceAdapter` made without
    ``max_retries``: one retry of an idempotent request (``GET``, ``HEAD``,
    ``PUT``, ``DELETE``, ``OPTIONS``, ``TRACE``) whose connection was closed
    before any byte of the response; never a ``POST`` or ``PATCH``, never
    after a connect failure (``connect=0``: a refused or timed-out connect is
    not retried, as in requests), never on a status or ``Retry-After``.

    :returns: a new :class:`StaleConnectionRetry`.
    """
    return StaleConnectionRetry(
        total=1, connect=0, read=1, status=0, other=0,
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        status_forcelist=None, respect_retry_after_header=False,
    )
