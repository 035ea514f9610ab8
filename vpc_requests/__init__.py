"""Cloudflare Workers VPC Service binding semantics for ``requests``."""

from __future__ import annotations

import logging

from ._bindings.binding import Binding
from ._bindings.mount import mount
from ._bindings.network import NetworkBinding
from ._config.config import ConfigWarning, Env, load_env
from ._errors import (
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
from ._model.service import VPCService
from ._transport.abort import AbortController, AbortSignal
from ._transport.adapter import VPCServiceAdapter
from ._version import __version__ as __version__  # not in __all__, as before

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
