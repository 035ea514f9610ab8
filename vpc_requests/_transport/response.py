"""The response type of a :class:`~vpc_requests.VPCServiceAdapter`: a
:class:`requests.Response` whose body errors are translated like the errors
before the headers (:class:`TranslatingResponse`), a hook for when its body is
done (:func:`on_body_done`), and the DEBUG line of a failed exchange
(:func:`log_failure`), which the adapter writes too."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

import requests
from requests.cookies import RequestsCookieJar, cookiejar_from_dict
from requests.models import Response
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.response import HTTPResponse

from .._compat import body_was_read, init_response, mark_body_read
from .._errors import AbortError, ProxyError, from_transport

if TYPE_CHECKING:
    from .abort import Scope
    from .adapter import VPCServiceAdapter
    from .routing import Route

__all__ = ["TranslatingResponse", "log_failure", "on_body_done", "read_content"]

# The logger of the exchange, the adapter's (its documented name).
log = logging.getLogger("vpc_requests.adapter")

# What Response.iter_content raises when the network fails while the body
# arrives (ConnectionError for a read timeout); not ContentDecodingError,
# StreamConsumedError, ...
_BODY_TRANSPORT_ERRORS = (
    requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
)


class TranslatingResponse(Response):
    """A :class:`requests.Response` whose body errors are translated into
    :class:`~vpc_requests.ProxyError` (``http_response_incomplete``, ...) or
    :class:`~vpc_requests.AbortError`, like errors before the headers."""

    #: The adapter, the route and the fetch's abort scope, set by
    #: :meth:`~vpc_requests.VPCServiceAdapter.build_response`.
    _vpc: tuple[VPCServiceAdapter, Route, Scope | None]

    def __init__(self) -> None:
        # Response.__init__ without the headers dict build_response replaces
        # at once and the cookie jar most responses never use (made on first
        # use, below).
        if not init_response(self):
            super().__init__()

    @property
    def cookies(self) -> RequestsCookieJar:
        """The cookies the response set (as :attr:`requests.Response.cookies`)."""
        jar = self.__dict__.get("_vpc_cookies")
        if jar is None:
            jar = self.__dict__["_vpc_cookies"] = cookiejar_from_dict({})
        return jar

    @cookies.setter
    def cookies(self, jar: RequestsCookieJar) -> None:
        self.__dict__["_vpc_cookies"] = jar

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        # requests types decode_unicode as Literal[True] or Literal[False], not bool.
        if decode_unicode:
            chunks: Iterator[Any] = super().iter_content(chunk_size, decode_unicode=True)
        else:
            chunks = super().iter_content(chunk_size)
        return self._translating(chunks)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._body_done()

    def read_content(self) -> Any:
        """:attr:`content`, for a body not read yet and framed by
        ``Content-Length``: one read of the whole body instead of
        ``iter_content``'s chunks (``content`` -> ``iter_content`` ->
        ``generate`` -> ``HTTPResponse.stream`` -> ``read``), with the same
        exceptions as ``iter_content`` raises, translated the same way.
        Anything else (a chunked body, a body read already, a raw that is
        not urllib3's) is :attr:`content` itself.
        """
        raw = self.raw
        if body_was_read(self) or self.status_code == 0 or type(raw) is not HTTPResponse or raw.chunked:
            return self.content
        body = b"".join(self._translating(self._whole_body(raw))) or b""
        mark_body_read(self, body)
        return body

    def _whole_body(self, raw: HTTPResponse) -> Iterator[bytes]:
        # requests' iter_content().generate(), for one read
        try:
            yield raw.read(decode_content=True)
        except ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        except DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from exc
        except ReadTimeoutError as exc:
            raise requests.ConnectionError(exc) from exc
        except SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc

    def _body_done(self) -> None:
        callbacks = self.__dict__.pop("_vpc_on_body_done", ())
        for callback in callbacks:
            callback()

    def _translating(self, chunks: Iterator[Any]) -> Iterator[Any]:
        adapter, where, active = getattr(self, "_vpc", (None, None, None))
        started = time.perf_counter()
        try:
            yield from chunks
            self._body_done()
        except (requests.RequestException, OSError) as exc:
            self._body_done()
            if isinstance(exc, (ProxyError, AbortError)) or (
                # ContentDecodingError, StreamConsumedError, ... pass as raised
                # (every requests exception is also an OSError: test it first)
                isinstance(exc, requests.RequestException) and not isinstance(exc, _BODY_TRANSPORT_ERRORS)
            ):
                raise
            if active is not None and active.signal.aborted:
                raise AbortError(active.signal.reason, request=self.request) from exc
            if adapter is None or where is None or not from_transport(exc):
                raise
            failure = adapter._failure(exc, where.origin, self.request)
            log_failure(adapter.binding, self.request, where.url_host, where.origin, failure, started)
            raise failure from exc


def read_content(response: Response) -> Any:
    """``response.content`` (the body read to the end), in one read when
    ``response`` is a :class:`TranslatingResponse` whose body is framed by
    ``Content-Length`` (:meth:`TranslatingResponse.read_content`).

    :param response: any :class:`requests.Response`.
    :returns: the body (``None`` when it has none, as ``content``).
    """
    if isinstance(response, TranslatingResponse):
        return response.read_content()
    return response.content


def on_body_done(response: Response, callback: Callable[[], None]) -> None:
    """Call ``callback()`` once ``response``'s body has been read to the end,
    has failed, or the response is closed (at once if the body was already
    read).

    :param response: a response from a :class:`~vpc_requests.VPCServiceAdapter`.
    :param callback: takes no arguments.
    """
    if isinstance(response, TranslatingResponse) and not body_was_read(response):
        response.__dict__.setdefault("_vpc_on_body_done", []).append(callback)
    else:
        callback()


def log_failure(
    binding: str | None, request: Any, url_host: str, origin: str, failure: Exception, started: float
) -> None:
    """The DEBUG line for a failed exchange: as the success line, with the
    error code instead of the status (never a URL path, query, header or body)."""
    if log.isEnabledFor(logging.DEBUG):
        code = failure.code if isinstance(failure, ProxyError) else type(failure).__name__
        log.debug(
            "binding=%s %s %s -> %s failed code=%s elapsed=%.1fms",
            binding, getattr(request, "method", None), url_host, origin, code,
            (time.perf_counter() - started) * 1000,
        )
