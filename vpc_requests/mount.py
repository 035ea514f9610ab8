"""``mount()``: give a legacy script's existing ``requests.Session`` binding
semantics for chosen hosts, without rewriting the script.

A :class:`HostRouter` is mounted for ``http://`` and ``https://``. It sends a
request whose URL host is claimed by a binding through that binding's adapter
(any port in the URL ignored), and every other request through the adapter
that was mounted before, exactly as plain requests would. Host matching is
exact and case-insensitive (one trailing dot ignored): prefix matching, as
``Session.mount`` does, would let ``internal-api.company.local.evil.test``
through.

A redirect received through a binding stays in that binding whatever host it
names (S8): the session's ``resolve_redirects`` is wrapped so that, while it
follows a chain that began at a binding, every request it sends (in that
thread) goes through that binding, at most :data:`~vpc_requests.binding.MAX_REDIRECTS`
hops. Per-request hooks, ``Session.send`` and changed session hooks cannot
undo that, and nothing outside a redirect chain is affected.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Union
from urllib.parse import urlsplit

import idna
import requests
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

from .adapter import VPCServiceAdapter
from .binding import MAX_REDIRECTS, Binding
from .errors import ConfigError
from .network import NetworkBinding

__all__ = ["HostRouter", "mount"]

Bindable = Union[Binding, Any]  # a Binding, or an Env (anything with .bindings)


def mount(
    session: requests.Session,
    env_or_binding: Bindable,
    hosts: Mapping[str, str | Binding] | None = None,
) -> requests.Session:
    """Route ``session``'s requests for the bindings' hosts through them.

    :param session: a plain :class:`requests.Session` (changed in place).
    :param env_or_binding: an :class:`~vpc_requests.Env` or one
        :class:`~vpc_requests.Binding`.
    :param hosts: URL host -> binding name (or Binding). Without it, each
        binding claims its service's own hostname, IPv4 and IPv6 address (a
        :class:`~vpc_requests.NetworkBinding` claims only the hosts named
        here, and sends each to that host inside its network).
    :returns: ``session``, for chaining. Adapters mounted on it later are not
        routed.
    :raises KeyError: for a binding name in ``hosts`` that is not configured.
    :raises ValueError: for a network binding alone without ``hosts``.
    :raises ~vpc_requests.ConfigError: for a ``hosts`` key that is not a bare
        host (a scheme, port or path in it).
    """
    if isinstance(env_or_binding, Binding):
        bindings = {env_or_binding.name: env_or_binding}
    else:
        bindings = dict(env_or_binding.bindings)
    table: dict[str, Binding] = {}
    if hosts is None:
        for binding in bindings.values():
            if isinstance(binding, NetworkBinding):
                # The URL decides its destination: it claims only hosts named in hosts=.
                if isinstance(env_or_binding, NetworkBinding):
                    raise ValueError(f"mount(): network binding {binding.name!r} claims no host of its own; "
                                     "name the hosts it serves: hosts={'host.example': binding}")
                continue
            service = binding.service
            for host in (service.hostname, service.ipv4, service.ipv6):
                if host:
                    table[_normal(host)] = binding
    else:
        for host, target in hosts.items():
            key = _host_key(host)
            if isinstance(target, Binding):
                table[key] = target
            elif target in bindings:
                table[key] = bindings[target]
            else:
                raise KeyError(
                    f"mount(): no binding {target!r} for host {host!r}; "
                    f"configured: {', '.join(bindings) or '(none)'}"
                )
    routers = [a for a in session.adapters.values() if isinstance(a, HostRouter)]
    routes = routers[0].routes if routers else _Routes()
    routes.table.update(table)
    # Every prefix gets a router, not only http(s)://: a redirect received
    # through a binding must not leave through an adapter mounted for, say,
    # ftp:// or a longer https:// prefix.
    for prefix in ("https://", "http://", *session.adapters):
        current = session.get_adapter(prefix) if prefix not in session.adapters else session.adapters[prefix]
        if not isinstance(current, HostRouter):
            session.mount(prefix, HostRouter(routes, current))
    if not isinstance(session.__dict__.get("resolve_redirects"), _ConfinedRedirects):
        # An instance attribute: this session only, its class untouched.
        session.resolve_redirects = _ConfinedRedirects(  # type: ignore[method-assign,assignment]
            routes, session.resolve_redirects
        )
    return session


class _Routes:
    """The host table, and the binding a redirect chain is confined to in
    each thread, shared by the routers of one session."""

    def __init__(self) -> None:
        self.table: dict[str, Binding] = {}
        self._chain = threading.local()

    def adapter_for(self, url: str) -> BaseAdapter | None:
        """The binding adapter ``url`` must go through, if any.

        :raises requests.TooManyRedirects: for a confined chain's hop past
            :data:`~vpc_requests.binding.MAX_REDIRECTS`.
        """
        confined: VPCServiceAdapter | None = getattr(self._chain, "adapter", None)
        if confined is not None:
            self._chain.hops += 1
            if self._chain.hops > MAX_REDIRECTS:
                raise requests.TooManyRedirects(f"Exceeded {MAX_REDIRECTS} redirects.")
            return confined
        try:
            host = urlsplit(url).hostname
        except ValueError:
            host = None
        binding = self.table.get(_normal(host)) if host else None
        return binding.adapter if binding is not None else None

    def enter(self, adapter: VPCServiceAdapter, hops: int) -> tuple[Any, int]:
        """Send this thread's requests through ``adapter``, ``hops`` hops
        counted so far; returns the state to give :meth:`leave`."""
        previous = (getattr(self._chain, "adapter", None), getattr(self._chain, "hops", 0))
        self._chain.adapter, self._chain.hops = adapter, hops
        return previous

    def leave(self, previous: tuple[Any, int]) -> int:
        """Restore the state :meth:`enter` returned; returns the hops counted."""
        hops: int = self._chain.hops
        self._chain.adapter, self._chain.hops = previous
        return hops

    def __getstate__(self) -> dict[str, Any]:
        return {"table": self.table}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self)
        self.table.update(state["table"])


class _ConfinedRedirects:
    """A session's ``resolve_redirects``, with every hop of a chain that
    began at a binding sent through that binding."""

    def __init__(self, routes: _Routes, resolve: Callable[..., Iterator[Any]]) -> None:
        self.routes = routes
        self.resolve = resolve

    def __call__(self, resp: Response, req: PreparedRequest, *args: Any, **kwargs: Any) -> Iterator[Any]:
        hops = self.resolve(resp, req, *args, **kwargs)
        adapter = getattr(resp, "connection", None)
        if not isinstance(adapter, VPCServiceAdapter) or kwargs.get("yield_requests"):
            # Not a binding's chain, or requests only building the next
            # request (allow_redirects=False): nothing is sent.
            return hops
        return self._confined(adapter, hops)

    def _confined(self, adapter: VPCServiceAdapter, hops: Iterator[Any]) -> Iterator[Any]:
        counted = 0
        while True:
            # Only while requests' own redirect loop runs: the requests it
            # sends then are this chain's hops.
            previous = self.routes.enter(adapter, counted)
            try:
                item = next(hops)
            except StopIteration:
                return
            finally:
                counted = self.routes.leave(previous)
            yield item


class HostRouter(BaseAdapter):
    """Sends each request through the binding that claims its URL host (or
    whose redirect it follows), or else through ``fallback``, the adapter the
    session had for that prefix.

    :param routes: the session's shared host table.
    :param fallback: the adapter for every other request.
    """

    def __init__(self, routes: _Routes, fallback: BaseAdapter) -> None:
        super().__init__()
        self.routes = routes
        self.fallback = fallback

    @property
    def table(self) -> dict[str, Binding]:
        """Normalised URL host -> binding."""
        return self.routes.table

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        adapter = self.routes.adapter_for(str(request.url)) or self.fallback
        return adapter.send(request, *args, **kwargs)

    def close(self) -> None:
        self.fallback.close()


def _host_key(host: str) -> str:
    """A ``hosts`` key, checked: the URL's host only (a key with a scheme,
    port or path would never match, and its requests would silently go out
    as plain requests)."""
    bare = host.strip("[]")
    if not bare or any(c in bare for c in "/@?# \t") or (":" in bare and not _is_ipv6(bare)):
        raise ConfigError(
            f"mount(): hosts key {host!r} is not a host; give the URL's host only, "
            "without scheme, port or path, such as 'internal-api.company.local'",
            field="hosts",
        )
    return _normal(host)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _normal(host: str) -> str:
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
