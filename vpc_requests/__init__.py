"""Cloudflare Workers VPC Service binding semantics for ``requests``."""

from __future__ import annotations

import logging

from .abort import AbortController, AbortSignal
from .adapter import VPCServiceAdapter
from .binding import Binding
from .errors import (
    AbortError,
    ConfigError,
    ProxyChunkedEncodingError,
    ProxyConnectionError,
    ProxyConnectTimeout,
    ProxyError,
    ProxyReadTimeout,
    ProxySSLError,
    RedirectError,
    RoutingError,
    VPCError,
)
from .service import VPCService

__all__ = [
    "AbortController",
    "AbortError",
    "AbortSignal",
    "Binding",
    "ConfigError",
    "ProxyChunkedEncodingError",
    "ProxyConnectTimeout",
    "ProxyConnectionError",
    "ProxyError",
    "ProxyReadTimeout",
    "ProxySSLError",
    "RedirectError",
    "RoutingError",
    "VPCError",
    "VPCService",
    "VPCServiceAdapter",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
