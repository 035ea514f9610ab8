"""Name resolution through a service's own DNS servers (``resolver_ips``),
as Cloudflare resolves a hostname service inside the private network.

:func:`resolver_for` gives the shared :class:`Resolver` of one list of DNS
servers; :meth:`Resolver.resolve` asks them for AAAA and A records (with
dnspython, the optional extra ``vpc_requests[dns]``), keeps each answer for
its TTL, and lets concurrent lookups of one name share a single query
(single-flight). NXDOMAIN or no address raises
:class:`~vpc_requests.ProxyError` ``dns_error``; no answer in time,
``dns_timeout`` (a :class:`~vpc_requests.ProxyConnectTimeout`).

Services without ``resolver_ips`` use the system resolver
(``getaddrinfo``), in :mod:`vpc_requests._transport.connection`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

from .._errors import ProxyError, proxy_error

__all__ = ["DEFAULT_LIFETIME", "MAX_TTL", "Resolver", "parse_server", "require_dns", "resolver_for"]

log = logging.getLogger("vpc_requests.resolver")  # the name it had before the layers; users filter on it

#: Seconds a lookup may take when the caller gives no timeout (dnspython's
#: own default lifetime).
DEFAULT_LIFETIME = 5.0

#: Answers are kept at most this long, whatever their TTL.
MAX_TTL = 86400.0


def require_dns() -> ModuleType:
    """Import dnspython.

    :returns: the ``dns.resolver`` module.
    :raises ImportError: naming the extra to install.
    """
    try:
        import dns.nameserver
        import dns.resolver
    except ImportError as exc:
        raise ImportError(
            "resolver_ips need dnspython to query those DNS servers: pip install 'vpc_requests[dns]'"
        ) from exc
    return dns.resolver


def parse_server(entry: str) -> tuple[str, int]:
    """Split a ``resolver_ips`` entry into address and port.

    :param entry: ``ip``, ``ip:port`` or ``[ipv6]:port`` (as
        :class:`~vpc_requests.VPCService` normalises them).
    :returns: ``(ip, port)``; the port is 53 when not given.
    :raises ValueError: for anything else.
    """
    if entry.startswith("["):
        host, _, port = entry[1:].partition("]:")
        return str(ipaddress.IPv6Address(host)), int(port)
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return str(ipaddress.IPv4Address(host)), int(port)
    return str(ipaddress.ip_address(entry)), 53


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    addresses: tuple[str, ...] = ()
    error: ProxyError | None = None


class Resolver:
    """Resolves names with one list of DNS servers, caching by TTL.

    Thread-safe. Use :func:`resolver_for` to share one per server list.

    :param servers: ``resolver_ips`` entries, tried in order.
    :param clock: the monotonic clock (tests pass their own).
    """

    def __init__(self, servers: Iterable[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.servers: tuple[str, ...] = tuple(servers)
        if not self.servers:
            raise ValueError("a Resolver needs at least one DNS server")
        resolver = require_dns()
        import dns.nameserver

        self._dns = resolver.Resolver(configure=False)
        self._dns.nameservers = [dns.nameserver.Do53Nameserver(*parse_server(s)) for s in self.servers]
        self._dns.cache = None
        self._dns.retry_servfail = False
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[str, ...], float]] = {}
        self._flights: dict[str, _Flight] = {}
        self.queries = 0  #: lookups sent (A and AAAA count as one), for tests and stats
        _instances.add(self)

    def __repr__(self) -> str:
        return f"<Resolver {', '.join(self.servers)}>"

    def _after_fork(self) -> None:
        # A lock held by a thread of the parent would never be released here,
        # and its lookups will never finish.
        self._lock = threading.Lock()
        self._flights = {}

    def clear(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._cache.clear()

    def resolve(self, name: str, timeout: float | None = None) -> tuple[str, ...]:
        """The addresses of ``name``: IPv6 first, then IPv4.

        A cached answer is returned while its TTL lasts; concurrent calls for
        a name not in the cache wait for one lookup.

        :param name: the hostname.
        :param timeout: seconds to wait (``None``: :data:`DEFAULT_LIFETIME`).
        :returns: the IP addresses, as text.
        :raises ProxyError: ``dns_error`` (NXDOMAIN, no address, servers
            failing) or ``dns_timeout``.
        """
        key = name.lower().rstrip(".")
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] > self._clock():
                return cached[0]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self.queries += 1
        if not leader:
            return self._wait(flight, name, timeout)
        try:
            addresses, ttl = self._lookup(name, DEFAULT_LIFETIME if timeout is None else timeout)
            flight.addresses = addresses
            if ttl > 0:
                with self._lock:
                    self._cache[key] = (addresses, self._clock() + min(ttl, MAX_TTL))
            return addresses
        except ProxyError as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _wait(self, flight: _Flight, name: str, timeout: float | None) -> tuple[str, ...]:
        if not flight.done.wait(DEFAULT_LIFETIME if timeout is None else timeout):
            raise self._timeout(name, timeout)
        if flight.error is not None:
            # A new exception per thread: one object raised in many threads
            # would share (and garble) its traceback.
            raise proxy_error(flight.error.code, detail=flight.error.detail)
        return flight.addresses

    def _lookup(self, name: str, timeout: float) -> tuple[tuple[str, ...], float]:
        import dns.exception
        import dns.resolver

        deadline = time.monotonic() + timeout
        found: dict[str, list[str]] = {}
        ttls: list[float] = []
        timed_out = False
        for index, rdtype in enumerate(("AAAA", "A")):
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            try:
                # Half the time for AAAA, so a server that drops AAAA queries
                # still leaves time for A.
                answer = self._dns.resolve(
                    name, rdtype, search=False, lifetime=left / (2 - index), raise_on_no_answer=False
                )
            except dns.resolver.NXDOMAIN as exc:
                raise proxy_error(
                    "dns_error",
                    detail=f"{name} does not exist (NXDOMAIN from resolver_ips {', '.join(self.servers)})",
                ) from exc
            except dns.exception.Timeout:
                timed_out = True
                continue
            except dns.resolver.NoNameservers as exc:
                raise proxy_error(
                    "dns_error",
                    detail=f"no resolver_ips server answered for {name}: {exc}",
                ) from exc
            except dns.exception.DNSException as exc:
                raise proxy_error("dns_error", detail=f"looking up {name}: {exc}") from exc
            if answer.rrset is not None:
                found[rdtype] = [rdata.address for rdata in answer.rrset]
                ttls.append(float(answer.chaining_result.minimum_ttl))
        addresses = tuple(found.get("AAAA", []) + found.get("A", []))
        if addresses:
            log.debug("resolved %s via %s: %s", name, self.servers, addresses)
            # A partial answer (one type timed out) is used but not kept.
            return addresses, 0.0 if timed_out else min(ttls)
        if timed_out:
            raise self._timeout(name, timeout)
        raise proxy_error(
            "dns_error",
            detail=f"{name} has no A or AAAA record (resolver_ips {', '.join(self.servers)})",
        )

    def _timeout(self, name: str, timeout: float | None) -> ProxyError:
        seconds = DEFAULT_LIFETIME if timeout is None else timeout
        return proxy_error(
            "dns_timeout",
            detail=f"no answer for {name} from resolver_ips {', '.join(self.servers)} within {seconds:g} s",
        )


_shared: dict[tuple[str, ...], Resolver] = {}
_shared_lock = threading.Lock()
_instances: weakref.WeakSet[Resolver] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()
    for resolver in list(_instances):
        resolver._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def resolver_for(servers: Iterable[str]) -> Resolver:
    """The process-wide :class:`Resolver` for ``servers`` (one cache per
    server list, shared by every binding that uses it).

    :param servers: ``resolver_ips`` entries.
    :returns: the resolver.
    :raises ImportError: when dnspython is not installed.
    """
    key = tuple(servers)
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = Resolver(key)
        return found
