"""Cloudflare Workers VPC Service binding semantics for ``requests``."""

from __future__ import annotations

import logging

from .abort import AbortController, AbortSignal
from .adapter import VPCServiceAdapter
from .binding import Binding
from .config import ConfigWarning, Env, load_env
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
from .mount import mount
from .network import NetworkBinding
from .service import VPCService

#: The package's version; ``setup.cfg`` reads it from here (the one source).
__version__ = "0.1.0"

__all__ = [
    "AbortController",
    "AbortError",
    "AbortSignal",
    "Binding",
    "ConfigError",
    "ConfigWarning",
    "Env",
    "NetworkBinding",
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
    "load_env",
    "mount",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
