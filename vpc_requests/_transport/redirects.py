"""The next hop of a redirect, built as ``requests``' own
``Session.resolve_redirects`` builds it (its helpers do the work), for code
that must follow redirects without leaving a binding (S8).
"""

from __future__ import annotations

from urllib.parse import urljoin, urlparse

import requests
from requests.models import PreparedRequest, Response
from requests.utils import requote_uri, rewind_body

from .._compat import body_position, request_cookies

__all__ = ["MAX_REDIRECTS", "next_request", "next_url", "resolve_location"]

#: Redirects a binding follows before raising ``requests.TooManyRedirects``
#: (as Workers' fetch): ``fetch()``, ``binding.session()`` and the chains a
#: ``mount()``ed session receives through a binding.
MAX_REDIRECTS = 20

# requests' redirect helpers (get_redirect_target, rebuild_method,
# should_strip_auth) are Session methods that keep no state.
_HELPERS = requests.Session()


def next_url(request_url: str, response: Response) -> str | None:
    """The absolute URL ``response`` redirects to, or ``None`` when it is not
    a redirect.

    :param request_url: the URL of the request that got ``response``.
    :param response: the response.
    """
    target = _HELPERS.get_redirect_target(response)
    if not target:
        return None
    return resolve_location(target, request_url, str(response.url))


def resolve_location(target: str, request_url: str, response_url: str) -> str:
    """A redirect's ``Location`` value made absolute, as
    ``Session.resolve_redirects`` makes it: scheme-relative and relative
    targets joined to ``response_url``, the request's fragment kept when the
    target has none, the result requoted.

    :param target: the ``Location`` value (as ``get_redirect_target`` gives it).
    :param request_url: the URL of the request that got the redirect.
    :param response_url: the URL of the redirect response.
    """
    previous_fragment = urlparse(request_url).fragment
    if target.startswith("//"):
        target = f"{urlparse(response_url).scheme}:{target}"
    parsed = urlparse(target)
    if parsed.fragment == "" and previous_fragment:
        parsed = parsed._replace(fragment=previous_fragment)
    target = parsed.geturl()
    if not parsed.netloc:
        target = urljoin(response_url, requote_uri(target))
    else:
        target = requote_uri(target)
    return target


def next_request(request: PreparedRequest, response: Response) -> PreparedRequest:
    """The request for the redirect's target: method rewritten (301/302
    POST->GET, 303->GET), body and its headers dropped unless 307/308,
    ``Authorization`` dropped when the host changes, cookies re-applied for
    the new URL. ``request`` is not changed.

    :param request: the request that got ``response``.
    :param response: a redirect response.
    """
    hop = request.copy()
    hop.url = next_url(str(request.url), response) or str(request.url)
    _HELPERS.rebuild_method(hop, response)
    if response.status_code not in (307, 308):
        for name in ("Content-Length", "Content-Type", "Transfer-Encoding"):
            hop.headers.pop(name, None)
        hop.body = None
    hop.headers.pop("Cookie", None)
    jar = request_cookies(hop)
    if jar:
        hop.prepare_cookies(jar)
    if "Authorization" in hop.headers and _HELPERS.should_strip_auth(str(request.url), str(hop.url)):
        del hop.headers["Authorization"]
    if body_position(hop) is not None and (
        "Content-Length" in hop.headers or "Transfer-Encoding" in hop.headers
    ):
        rewind_body(hop)
    return hop
