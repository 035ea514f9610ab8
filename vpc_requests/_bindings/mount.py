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
names (S8), and a hop to a host that is not routed to that binding carries
none of that host's credentials or cookies (S14): the session becomes a
:class:`~vpc_requests._bindings.confine.ConfinedSession` (see there), and so do its
copies and pickles. Nothing outside a redirect chain is affected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

from .._errors import ConfigError
from .._model.hosts import ip_literal
from .binding import Binding
from .confine import Router, confine, normal_host
from .network import NetworkBinding

__all__ = ["HostRouter", "mount"]

Bindable = Union[Binding, Any]  # a Binding, or an Env (anything with .bindings)


def mount(
    session: requests.Session,
    env_or_binding: Bindable,
    hosts: Mapping[str, str | Binding] | None = None,
) -> requests.Session:
    """Route ``session``'s requests for the bindings' hosts through them.

    :param session: a :class:`requests.Session` (changed in place: it
        becomes a :class:`~vpc_requests._bindings.confine.ConfinedSession`).
    :param env_or_binding: an :class:`~vpc_requests.Env` or one
        :class:`~vpc_requests.Binding`.
    :param hosts: a mapping: URL host -> binding name (or Binding). Without
        it, each binding claims its service's own hostname, IPv4 and IPv6
        address (a :class:`~vpc_requests.NetworkBinding` claims only the
        hosts named here, and sends each to that host inside its network).
    :returns: ``session``, for chaining. Adapters mounted on it later are not
        routed.
    :raises KeyError: for a binding name in ``hosts`` that is not configured.
    :raises TypeError: for ``hosts`` that is not a mapping.
    :raises ValueError: for a network binding alone without ``hosts``.
    :raises ~vpc_requests.ConfigError: for a ``hosts`` key that is not a bare
        host (a scheme, port or path in it), or a host claimed by two
        different bindings (in this call, or this one and an earlier one).
    """
    if isinstance(env_or_binding, Binding):
        bindings = {env_or_binding.name: env_or_binding}
    else:
        bindings = dict(env_or_binding.bindings)
    if hosts is not None and not isinstance(hosts, Mapping):
        raise TypeError(
            "mount(): hosts must be a mapping of URL host to binding name, such as "
            f"{{'internal-api.company.local': 'PRIVATE_API'}}; got a {type(hosts).__name__}"
        )
    routers = [a for a in session.adapters.values() if isinstance(a, HostRouter)]
    table: dict[str, Binding] = routers[0].table if routers else {}
    claims = _claims(bindings, hosts, alone=isinstance(env_or_binding, NetworkBinding))
    for host, binding in claims.items():
        _claim(table, host, binding, given=hosts is not None)
    table.update(claims)
    # Every prefix gets a router, not only http(s)://: a request to a bound
    # host must not leave through an adapter mounted for a longer prefix.
    for prefix in ("https://", "http://", *session.adapters):
        current = session.adapters[prefix] if prefix in session.adapters else session.get_adapter(prefix)
        if not isinstance(current, HostRouter):
            session.mount(prefix, HostRouter(table, current))
    return confine(session)


def _claims(
    bindings: Mapping[str, Binding], hosts: Mapping[str, str | Binding] | None, *, alone: bool
) -> dict[str, Binding]:
    """Normalised host -> binding, from ``hosts`` or the services' own
    addresses; a host claimed twice by different bindings is refused.
    ``alone``: a network binding was given on its own (without ``hosts``
    it claims nothing, which is refused)."""
    claims: dict[str, Binding] = {}
    if hosts is None:
        for binding in bindings.values():
            if isinstance(binding, NetworkBinding):
                # The URL decides its destination: it claims only hosts named in hosts=.
                if alone:
                    raise ValueError(f"mount(): network binding {binding.name!r} claims no host of its own; "
                                     "name the hosts it serves: hosts={'host.example': binding}")
                continue
            service = binding.service
            for host in (service.hostname, service.ipv4, service.ipv6):
                if host:
                    _claim(claims, normal_host(host), binding, given=False)
                    claims[normal_host(host)] = binding
        return claims
    for host, target in hosts.items():
        key = _host_key(host)
        if isinstance(target, Binding):
            binding = target
        elif isinstance(target, str) and target in bindings:
            binding = bindings[target]
        else:
            raise KeyError(
                f"mount(): no binding {target!r} for host {host!r}; "
                f"configured: {', '.join(bindings) or '(none)'}"
            )
        _claim(claims, key, binding, given=True)
        claims[key] = binding
    return claims


def _claim(table: Mapping[str, Binding], host: str, binding: Binding, *, given: bool) -> None:
    """Refuse ``host`` for ``binding`` when ``table`` gives it to another."""
    other = table.get(host)
    if other is None or other == binding:
        return
    fix = (
        "map each host to one binding"
        if given
        else "pass hosts={...} to say which binding each host goes to"
    )
    raise ConfigError(
        f"mount(): host {host!r} is claimed by two bindings, {other.name!r} and "
        f"{binding.name!r}; {fix}",
        field="hosts",
    )


class HostRouter(Router):
    """Sends each request through the binding that claims its URL host, or
    else through ``fallback``, the adapter the session had for that prefix.

    :param table: normalised URL host -> binding, shared by the routers of
        one session.
    :param fallback: the adapter for every other request.
    """

    def __init__(self, table: dict[str, Binding], fallback: BaseAdapter) -> None:
        super().__init__()
        self.table = table
        self.fallback = fallback

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        try:
            host = urlsplit(str(request.url)).hostname
        except ValueError:
            host = None
        binding = self.table.get(normal_host(host)) if host else None
        adapter = binding.adapter if binding is not None else self.fallback
        return adapter.send(request, *args, **kwargs)

    def hosts_for(self, adapter: BaseAdapter) -> Iterable[str]:
        """The hosts this router sends through ``adapter``. Should not be
        called from user code."""
        return [host for host, binding in self.table.items() if binding.adapter is adapter]

    def close(self) -> None:
        self.fallback.close()


def _host_key(host: str) -> str:
    """A ``hosts`` key, checked: the URL's host only (a key with a scheme,
    port or path would never match, and its requests would silently go out
    as plain requests)."""
    bare = host.strip("[]") if isinstance(host, str) else ""
    if not bare or any(c in bare for c in "/@?# \t") or (":" in bare and _ip_version(bare) != 6):
        raise ConfigError(
            f"mount(): hosts key {host!r} is not a host; give the URL's host only, "
            "without scheme, port or path, such as 'internal-api.company.local'",
            field="hosts",
        )
    return normal_host(host)


def _ip_version(host: str) -> int | None:
    address = ip_literal(host)
    return None if address is None else address.version
