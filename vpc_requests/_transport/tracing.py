"""OpenTelemetry: :meth:`Binding.fetch() <vpc_requests.Binding.fetch>` traced
as a session request is, when ``opentelemetry-instrumentation-requests`` is
on, and the binding and the origin it dialled on the client span of both.

The instrumentation wraps ``requests.Session.send`` (and marks the wrapper
with ``opentelemetry_instrumentation_requests_applied``). A session request
through a binding goes through that wrapper anyway; ``fetch()`` does not use
a session, so when the wrapper is in place it calls it with a stand-in for
the session (``_FetchSession``) whose only adapter runs the fetch
itself: the instrumentation then makes its own client span (name, method,
URL, status, its hooks and metrics: nothing of its logic is repeated here)
and injects the ``traceparent`` header into the request before the fetch
sends it, once for a whole redirect chain, as for a session.

Without the instrumentation none of this runs and nothing is imported: the
test is one attribute lookup on ``Session.send``.

Span attributes added, on the instrumentation's client span only:
``vpc.binding`` (the binding's name), ``server.address`` and
``server.port`` (the service's host and port actually connected to, which
the URL does not say).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from requests import Session
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.models import PreparedRequest, Response

if TYPE_CHECKING:
    from .routing import Route

__all__ = ["BINDING_ATTRIBUTE", "annotate", "instrumented", "send_traced"]

#: The span attribute naming the binding.
BINDING_ATTRIBUTE = "vpc.binding"

_MARK = "opentelemetry_instrumentation_requests_applied"
_SCOPE = "opentelemetry.instrumentation.requests"


def instrumented() -> bool:
    """Whether ``opentelemetry-instrumentation-requests`` wraps
    ``requests.Session.send`` now."""
    return getattr(Session.send, _MARK, False) is True


def annotate(binding: str | None, where: Route) -> None:
    """Add the binding and the dialled origin to the current span, when it
    is the requests instrumentation's client span (any other span, such as
    a caller's span while the instrumentation is suppressed, is left alone).

    :param binding: the binding's name.
    :param where: the request's route.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return
    span = trace.get_current_span()
    scope = getattr(span, "instrumentation_scope", None)
    if getattr(scope, "name", None) != _SCOPE or not span.is_recording():
        return
    if binding is not None:
        span.set_attribute(BINDING_ATTRIBUTE, binding)
    span.set_attribute("server.address", where.connect_host)
    span.set_attribute("server.port", where.port)


def send_traced(request: PreparedRequest, exchange: Callable[[], Response], stream: bool) -> Response:
    """Run ``exchange()`` (the fetch of ``request``, redirects included)
    inside the instrumentation's wrapper of ``Session.send``.

    :param request: the fetch's own prepared request (never the caller's):
        the instrumentation adds ``traceparent`` to its headers.
    :param exchange: sends ``request`` and returns the final response.
    :param stream: the fetch's ``stream``.
    :returns: what ``exchange()`` returned, with its own ``elapsed``.
    """
    # The wrapper reads the method, URL and headers of the request it is
    # given (and injects into those headers); the fetch's hooks stay with the
    # fetch (Session.send would dispatch them once more).
    envelope = PreparedRequest()
    envelope.method = request.method
    envelope.url = request.url
    envelope.headers = request.headers
    envelope.body = request.body
    envelope.hooks = default_hooks()
    fetcher = _FetchSession(exchange)
    response: Response = Session.send(
        fetcher,  # type: ignore[arg-type]
        envelope, stream=stream, proxies={}, allow_redirects=False,
    )
    if fetcher.elapsed is not None:
        response.elapsed = fetcher.elapsed  # Session.send's own timing is the chain's
    return response


class _NoCookies(RequestsCookieJar):
    """A jar that keeps nothing: a fetch has no cookie jar (as in Workers)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Keep nothing."""


class _FetchSession:
    """What ``Session.send`` needs of its session, for one fetch: its only
    adapter is this object, whose ``send`` runs the fetch; no cookies kept,
    no environment read, redirects already followed by the fetch."""

    stream = False
    verify = True
    cert = None
    trust_env = False

    def __init__(self, exchange: Callable[[], Response]) -> None:
        self._exchange = exchange
        self.cookies = _NoCookies()
        self.elapsed: Any = None

    def get_adapter(self, url: str) -> _FetchSession:
        return self

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        response = self._exchange()
        self.elapsed = response.elapsed
        return response

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(())
