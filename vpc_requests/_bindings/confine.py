"""Redirect chains confined to a binding, for sessions: every hop of a chain
received through a binding goes through that binding (S8), and a hop to a
host that is not the binding's own carries nothing that belongs to that host
(S14).

:class:`ConfinedSession` is a ``requests.Session`` whose
``resolve_redirects`` does this. ``binding.session()`` returns one;
``mount()`` turns the session it is given into one with :func:`confine`
(its class becomes a subclass of the session's own class, so a ``copy``,
``deepcopy`` or ``pickle`` of it is exactly as confined).

The rules for a hop of a confined chain, by the hop URL's host:

- *home* (the host the chain entered the binding at, or a host a
  :class:`Router` of the session routes to the same binding): as plain
  requests, through requests' own ``rebuild_auth`` (``Authorization``
  stripped on a change of origin, ``.netrc`` credentials for the new host)
  and cookie merging (the request's cookies, the chain's, the session jar's);
  its response's cookies go into the session jar.
- *foreign* (any other host): no ``Authorization``, no ``.netrc``
  credentials, no cookie from the session jar or the original request: only
  cookies that responses of this chain set; and its response's cookies stay
  out of the session jar (the service does not get to plant cookies for
  that host).
- always: no ``Proxy-Authorization`` (a binding never uses a proxy, S9),
  and the hop is sent straight to the binding's adapter, never looked up by
  URL, so no routing state exists outside the chain's own frame: a request a
  hook sends meanwhile is routed as any other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator, Iterable, Iterator
from datetime import timedelta
from http.cookiejar import CookieJar
from typing import Any, cast
from urllib.parse import urlsplit

import idna
import requests
from requests.adapters import BaseAdapter
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar, merge_cookies
from requests.exceptions import ChunkedEncodingError, ContentDecodingError, TooManyRedirects
from requests.hooks import dispatch_hook
from requests.models import PreparedRequest, Response
from requests.sessions import preferred_clock
from requests.utils import rewind_body

from .._compat import body_position, reclass, request_cookies
from .._transport.adapter import VPCServiceAdapter
from .._transport.redirects import MAX_REDIRECTS, resolve_location

__all__ = ["ConfinedSession", "Router", "confine", "normal_host"]

_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")


class Router(BaseAdapter):
    """An adapter that routes some URL hosts to bindings (``mount()``'s
    ``HostRouter``). Should not be used from user code."""

    def hosts_for(self, adapter: BaseAdapter) -> Iterable[str]:
        """The normalised URL hosts this router sends through ``adapter``."""
        return ()


class ConfinedSession(requests.Session):
    """A :class:`requests.Session` that keeps each redirect chain received
    through a binding in that binding, with what belongs to other hosts left
    out (see the module docstring). Everything else is plain requests.

    Copies (``copy.copy``, ``copy.deepcopy``) and pickles are
    ``ConfinedSession`` objects too.
    """

    def resolve_redirects(  # type: ignore[override]
        self,
        resp: Response,
        req: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
        yield_requests: bool = False,
        **adapter_kwargs: Any,
    ) -> Iterator[Any]:
        """As ``Session.resolve_redirects``; a chain received through a
        binding (from its first response or from any hop) is followed by
        :func:`_follow` instead. Should not be called from user code."""
        if not self.get_redirect_target(resp):
            # No chain (the common case): requests' own, as it is.
            return super().resolve_redirects(
                resp, req, stream, timeout, verify, cert, proxies, yield_requests, **adapter_kwargs
            )
        send: dict[str, Any] = {
            "stream": stream, "timeout": timeout, "verify": verify, "cert": cert,
            "proxies": proxies, **adapter_kwargs,
        }
        adapter = getattr(resp, "connection", None)
        if isinstance(adapter, VPCServiceAdapter):
            # With yield_requests (allow_redirects=False), Response.next: the
            # next hop is built by the same rules, and not sent.
            return _follow(self, adapter, resp, req, [], None if yield_requests else send)
        plain = super().resolve_redirects(resp, req, yield_requests=yield_requests, **send)
        return plain if yield_requests else _watch(self, plain, resp, send)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # A copy or pickle is built as the session's own class and confined
        # again; requests' __getstate__ gives the state, as for any session.
        base = next(c for c in type(self).__mro__ if not issubclass(c, ConfinedSession))
        return (_restore, (base, self.__getstate__()))


_CLASSES: dict[type[requests.Session], type[ConfinedSession]] = {requests.Session: ConfinedSession}


def confine(session: requests.Session) -> requests.Session:
    """Make ``session`` confine the redirect chains it receives through a
    binding: its class becomes a :class:`ConfinedSession` subclass of its own
    class (``isinstance`` checks against that class still hold).

    :param session: any :class:`requests.Session`; changed in place.
    :returns: ``session``.
    :raises TypeError: when its class cannot be extended (a layout that
        forbids the class change).
    """
    cls = type(session)
    if issubclass(cls, ConfinedSession):
        return session
    try:
        confined = _CLASSES.get(cls)
        if confined is None:
            confined = type(f"Confined{cls.__name__}", (ConfinedSession, cls), {"__module__": __name__})
            _CLASSES[cls] = confined
        reclass(session, confined)
    except TypeError as exc:
        raise TypeError(
            f"cannot confine redirects of a {cls.__qualname__}: {exc}; "
            "mount() a plain requests.Session instead"
        ) from exc
    return session


def _restore(base: type[requests.Session], state: dict[str, Any]) -> requests.Session:
    """Rebuild a pickled or copied :class:`ConfinedSession`."""
    session = base.__new__(base)
    session.__setstate__(state)
    return confine(session)


def _watch(
    session: requests.Session, plain: Iterator[Response], first: Response, send: dict[str, Any]
) -> Generator[Response, None, None]:
    """requests' own chain, until a hop's response comes from a binding: its
    redirect is followed through that binding, not by requests."""
    history = [first]
    for response in plain:
        yield response
        adapter = getattr(response, "connection", None)
        if isinstance(adapter, VPCServiceAdapter) and session.get_redirect_target(response):
            # requests' generator stops here, before it builds or sends the
            # next hop.
            cast(Generator[Response, None, None], plain).close()
            yield from _follow(session, adapter, response, response.request, history, send)
            return
        history.append(response)


def _follow(
    session: requests.Session,
    adapter: VPCServiceAdapter,
    resp: Response,
    req: PreparedRequest,
    history: list[Response],
    send: dict[str, Any] | None,
) -> Generator[Any, None, None]:
    """Follow ``resp``'s redirects through ``adapter``; ``history`` holds the
    chain's responses before ``resp``. With ``send=None``, yield the next
    hop's request instead, unsent (``Response.next``)."""
    limit = min(session.max_redirects, MAX_REDIRECTS)
    start = _host(str(req.url))
    home: set[str] | None = None  # computed when a hop leaves ``start``
    jar = request_cookies(req)
    sent_cookies: CookieJar = jar if jar is not None else RequestsCookieJar()
    chain_cookies = RequestsCookieJar()  # what the chain's responses set
    target = session.get_redirect_target(resp)
    while target:
        resp.history = history[:]
        history.append(resp)
        _drain(resp)
        if len(resp.history) >= limit:
            raise TooManyRedirects(f"Exceeded {limit} redirects.", response=resp)
        resp.close()
        extract_cookies_to_jar(chain_cookies, req, resp.raw)
        hop = req.copy()
        hop.url = resolve_location(target, str(req.url), str(resp.url))
        host = _host(hop.url)
        if host != start and home is None:
            home = _home_hosts(session, adapter, start)
        foreign = host != start and host not in cast(set[str], home)
        _build_hop(session, hop, req, resp, foreign, sent_cookies, chain_cookies)
        if send is None:
            yield hop
            return
        resp = _send(session, adapter, hop, send)
        if not foreign:
            extract_cookies_to_jar(session.cookies, hop, resp.raw)
        req = hop
        target = session.get_redirect_target(resp)
        yield resp


def _build_hop(
    session: requests.Session,
    hop: PreparedRequest,
    req: PreparedRequest,
    resp: Response,
    foreign: bool,
    sent_cookies: CookieJar,
    chain_cookies: RequestsCookieJar,
) -> None:
    """Method, body, cookies and credentials of ``hop`` (a copy of ``req``
    with the redirect's URL), as requests builds them for a home hop, and
    stripped of everything that belongs to its host for a foreign one."""
    session.rebuild_method(hop, resp)
    if resp.status_code not in (307, 308):
        for name in _BODY_HEADERS:
            hop.headers.pop(name, None)
        hop.body = None
    hop.headers.pop("Cookie", None)
    hop.headers.pop("Proxy-Authorization", None)
    jar = RequestsCookieJar()
    if foreign:
        hop.headers.pop("Authorization", None)
    else:
        merge_cookies(jar, sent_cookies)
        session.rebuild_auth(hop, resp)
    merge_cookies(jar, chain_cookies)
    if not foreign:
        merge_cookies(jar, session.cookies)
    hop.prepare_cookies(jar)
    if body_position(hop) is not None and ("Content-Length" in hop.headers or "Transfer-Encoding" in hop.headers):
        rewind_body(hop)


def _send(session: requests.Session, adapter: BaseAdapter, hop: PreparedRequest, send: dict[str, Any]) -> Response:
    """``Session.send(hop, allow_redirects=False)``, straight to ``adapter``."""
    started = preferred_clock()
    response = adapter.send(hop, **send)
    response.elapsed = timedelta(seconds=preferred_clock() - started)
    response = dispatch_hook("response", hop.hooks, response, **send)
    if not send["stream"]:
        response.content  # noqa: B018
    return response


def _drain(response: Response) -> None:
    """Read a redirect's body so its connection can be reused, as
    ``Session.resolve_redirects`` does (a broken body is skipped)."""
    try:
        response.content  # noqa: B018
    except (ChunkedEncodingError, ContentDecodingError, RuntimeError):
        response.raw.read(decode_content=False)


def _home_hosts(session: requests.Session, adapter: BaseAdapter, start: str) -> set[str]:
    """``start`` and every host a router of ``session`` sends to ``adapter``."""
    hosts = {start}
    for mounted in session.adapters.values():
        if isinstance(mounted, Router):
            hosts.update(mounted.hosts_for(adapter))
    return hosts


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return ""
    return normal_host(host) if host else ""


def normal_host(host: str) -> str:
    """A host as requests puts it in a prepared URL: lower case, IDNA for
    non-ASCII names, canonical IP text; one trailing dot ignored."""
    host = host.strip("[]").lower()
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            pass  # requests refuses such a URL anyway
    if host.endswith("."):
        host = host[:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host
