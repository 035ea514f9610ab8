"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis: how many examples, by profile. "ci" (the default) is what the
# suite always ran; HYPOTHESIS_PROFILE=dev runs a third of them, for a quick
# local run. No deadlines (CI machines are loaded) and no example database
# (runs stay independent); the properties with a server round trip per
# example (test_properties.E2E) take a twelfth.
settings.register_profile("ci", max_examples=300, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear proxy settings; tests that want them set them on purpose."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)



@pytest.fixture(autouse=True)
def _no_cloudflare_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLOUDFLARE_ENV picks the wrangler environment (as in wrangler); tests
    that want it set it on purpose."""
    monkeypatch.delenv("CLOUDFLARE_ENV", raising=False)

# --- loopback private services (vpc_requests.testing) ---------------------

HTTPS_NAMES = ("internal-api.company.local", "10.0.1.50", "other.company.local")


@pytest.fixture(scope="session")
def ca():
    """One ``trustme.CA`` for the whole run."""
    import trustme

    return trustme.CA()


@pytest.fixture
def http_service():
    """A plain-HTTP :class:`~vpc_requests.testing.PrivateService` on 127.0.0.1."""
    from vpc_requests.testing import PrivateService

    with PrivateService(name="http-service") as service:
        yield service


@pytest.fixture
def https_service(ca):
    """A TLS :class:`~vpc_requests.testing.PrivateService` on 127.0.0.1, its
    certificate from the ``ca`` fixture for :data:`HTTPS_NAMES`."""
    from vpc_requests.testing import PrivateService

    with PrivateService(tls=True, ca=ca, names=HTTPS_NAMES, name="https-service") as service:
        yield service


# --- subprocesses: loopback only, as pytest-socket enforces in this process ----

LOOPBACK_GUARD = str(Path(__file__).resolve().parent / "loopback_guard")


@pytest.fixture(autouse=True)
def _loopback_guard_for_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python subprocess a test starts loads tests/loopback_guard/sitecustomize.py."""
    current = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", LOOPBACK_GUARD + (os.pathsep + current if current else ""))


@pytest.fixture
def bare_listener() -> Iterator[socket.socket]:
    """A loopback listening socket that never accepts: a "proxy" whose
    pending connections show it was contacted (see helpers.contacted)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        yield listener


# --- bindings: the one factory ---------------------------------------------------


@pytest.fixture
def make_binding():
    """Make :class:`~vpc_requests.Binding` objects to loopback services; all
    closed at teardown.

    ``make_binding(*targets, tls=False, both=False, name="PRIVATE_API", **kwargs)``:
    each target is a port (``https_port`` with ``tls``, else ``http_port``)
    or a :class:`~vpc_requests.testing.PrivateService` (by its own ``tls``);
    ``both`` gives each port as ``http_port`` and ``https_port``; ``kwargs``
    go to :class:`~vpc_requests.Binding`.
    """
    from vpc_requests import Binding, VPCService

    made: list[Binding] = []

    def make(*targets: object, tls: bool = False, both: bool = False, name: str = "PRIVATE_API",
             **kwargs: object) -> Binding:
        ports: dict[str, int] = {}
        for target in targets:
            port, secure = (target, tls) if isinstance(target, int) else (target.port, target.tls)  # type: ignore[attr-defined]
            if both:
                ports.update(http_port=port, https_port=port)
            else:
                ports["https_port" if secure else "http_port"] = port
        binding = Binding(name, VPCService(ipv4="127.0.0.1", **ports), **kwargs)  # type: ignore[arg-type]
        made.append(binding)
        return binding

    yield make
    for binding in made:
        binding.close()
