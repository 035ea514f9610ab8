"""Hosts and ports as URLs and messages write them: the default port of each
scheme, ``host:port`` with an IPv6 host in brackets, and whether a host is an
IP literal.

Text rules only: nothing here resolves a name or encodes one (an
internationalised name is kept as given; IDNA is the socket layer's job).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Union

__all__ = ["DEFAULT_PORTS", "IPAddress", "host_port", "ip_literal", "ip_text", "is_ip"]

#: An IPv4 or IPv6 address.
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

#: The port of each URL scheme when a URL (or a service) gives none.
DEFAULT_PORTS: Mapping[str, int] = MappingProxyType({"http": 80, "https": 443})


def host_port(host: str, port: int | str) -> str:
    """``host:port``, an IPv6 host in brackets (``[::1]:443``).

    :param host: a name or an address, without brackets.
    :param port: the port.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ip_literal(host: str) -> IPAddress | None:
    """The address if ``host`` is an IP literal, else ``None``.

    An IPv6 literal may be in brackets and may carry a zone id
    (``fe80::1%eth0``); the zone is not part of the address returned.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP literal (as :func:`ip_literal`)."""
    return ip_literal(host) is not None


def ip_text(host: str) -> str:
    """The canonical text of an IP literal: no brackets, no zone, IPv6
    compressed.

    :raises ValueError: when ``host`` is not an IP literal.
    """
    address = ip_literal(host)
    if address is None:
        raise ValueError(f"{host!r} is not an IP address")
    return str(address)
