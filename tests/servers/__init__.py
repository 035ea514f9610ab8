"""Loopback servers for the test suite that are not for users: faults
(:mod:`.faults`) and tunnel ends (:mod:`.tunnels`), all on the one accept
loop of :class:`vpc_requests._loopback.LoopbackServer` (the urllib3
``dummyserver`` idea). What users may reuse lives in :mod:`vpc_requests.testing`.
"""

from .echo import EchoServer, read_all, roundtrip
from .faults import (
    BacklogFull,
    ScriptedServer,
    Unresponsive,
    closed_port,
    never_reads,
    read_head,
    reset_in_the_body,
    stalled_body,
    stalled_headers,
    tls13_only_context,
)
from .tunnels import Asked, ConnectProxy, DNSServer, Socks5Server, tls_server_context

__all__ = [
    "Asked",
    "BacklogFull",
    "ConnectProxy",
    "DNSServer",
    "EchoServer",
    "ScriptedServer",
    "Socks5Server",
    "Unresponsive",
    "closed_port",
    "never_reads",
    "read_all",
    "read_head",
    "reset_in_the_body",
    "roundtrip",
    "stalled_body",
    "stalled_headers",
    "tls13_only_context",
    "tls_server_context",
]
