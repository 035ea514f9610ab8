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
names (S8): a response hook notes the redirect's target for the thread that
received it, and the router sends the next request to exactly that URL, in
that thread, through the same binding.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Mapping
from typing import Any, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

from .adapter import VPCServiceAdapter
from .binding import Binding
from .redirects import next_url

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
        binding claims its service's own hostname, IPv4 and IPv6 address.
    :returns: ``session``, for chaining. Adapters mounted on it later are not
        routed.
    :raises KeyError: for a binding name in ``hosts`` that is not configured.
    """
    if isinstance(env_or_binding, Binding):
        bindings = {env_or_binding.name: env_or_binding}
    else:
        bindings = dict(env_or_binding.bindings)
    table: dict[str, Binding] = {}
    if hosts is None:
        for binding in bindings.values():
            service = binding.service
            for host in (service.hostname, service.ipv4, service.ipv6):
                if host:
                    table[_normal(host)] = binding
    else:
        for host, target in hosts.items():
            if isinstance(target, Binding):
                table[_normal(host)] = target
            elif target in bindings:
                table[_normal(host)] = bindings[target]
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
    if routes.note_redirect not in session.hooks["response"]:
        session.hooks["response"].append(routes.note_redirect)
    return session


class _Routes:
    """The host table and the pending redirect hops, shared by the routers
    of one session."""

    def __init__(self) -> None:
        self.table: dict[str, Binding] = {}
        self._pending = threading.local()

    def adapter_for(self, url: str) -> BaseAdapter | None:
        """The binding adapter ``url`` must go through, if any."""
        pending: tuple[str, VPCServiceAdapter] | None = getattr(self._pending, "hop", None)
        self._pending.hop = None
        if pending is not None and pending[0] == url:
            return pending[1]
        try:
            host = urlsplit(url).hostname
        except ValueError:
            host = None
        binding = self.table.get(_normal(host)) if host else None
        return binding.adapter if binding is not None else None

    def note_redirect(self, response: Response, **kwargs: Any) -> Response:
        """Response hook: remember that the next request of this thread to
        the redirect's target belongs to the binding that got ``response``.

        Should not be called from user code.
        """
        adapter = getattr(response, "connection", None)
        if isinstance(adapter, VPCServiceAdapter) and response.is_redirect:
            target = next_url(str(response.request.url), response)
            if target is not None:
                self._pending.hop = (target, adapter)
        return response

    def __getstate__(self) -> dict[str, Any]:
        return {"table": self.table}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self)
        self.table.update(state["table"])


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


def _normal(host: str) -> str:
    host = host.strip("[]").lower()
    if host.endswith("."):
        host = host[:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host
