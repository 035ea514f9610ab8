"""pytest plugin: every requests.Session routes each request through a
vpc_requests binding whose service is the address the URL names (the test
server), so requests' own suite exercises VPCServiceAdapter end to end."""
from __future__ import annotations

import ipaddress
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from vpc_requests import VPCService, VPCServiceAdapter

ROUTED = {"count": 0}


class ByServerAdapter(HTTPAdapter):
    """One VPCServiceAdapter (one binding) per server address."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._bindings: dict[tuple[str, int], VPCServiceAdapter] = {}

    # requests' tests count pools through s.adapters[...].poolmanager: with
    # one server (one binding), that is the binding adapter's pool manager.
    @property  # type: ignore[override]
    def poolmanager(self):  # type: ignore[no-untyped-def]
        bindings = getattr(self, "_bindings", {})
        if len(bindings) == 1:
            return next(iter(bindings.values())).poolmanager
        return self._own_poolmanager

    @poolmanager.setter
    def poolmanager(self, value) -> None:  # type: ignore[no-untyped-def]
        self._own_poolmanager = value

    def __setstate__(self, state) -> None:  # type: ignore[no-untyped-def]
        self._lock = threading.Lock()
        self._bindings = {}
        super().__setstate__(state)

    def _binding(self, url: str) -> VPCServiceAdapter:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not host:  # no server to bind to: any binding refuses it (RoutingError)
            return VPCServiceAdapter(VPCService(ipv4="127.0.0.1", http_port=port, https_port=port))
        with self._lock:
            adapter = self._bindings.get((host, port))
            if adapter is None:
                try:
                    ip = ipaddress.ip_address(host)
                    where = {"ipv6" if ip.version == 6 else "ipv4": host}
                except ValueError:
                    where = {"hostname": host}
                service = VPCService(**where, http_port=port, https_port=port)
                adapter = VPCServiceAdapter(service, binding=f"TEST_{port}")
                self._bindings[(host, port)] = adapter
        return adapter

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        ROUTED["count"] += 1
        return self._binding(str(request.url)).send(request, **kwargs)

    def close(self) -> None:
        for adapter in self._bindings.values():
            adapter.close()
        super().close()


_original_init = requests.Session.__init__


def _init(self: requests.Session, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    _original_init(self, *args, **kwargs)
    self.mount("https://", ByServerAdapter())
    self.mount("http://", ByServerAdapter())


def pytest_configure(config) -> None:  # type: ignore[no-untyped-def]
    requests.Session.__init__ = _init  # type: ignore[method-assign]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    terminalreporter.write_line(f"requests sent through a binding: {ROUTED['count']}")
