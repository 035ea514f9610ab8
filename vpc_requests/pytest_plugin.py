"""A pytest plugin for testing code that uses bindings: private services on
loopback and an :class:`~vpc_requests.Env` from a wrangler snippet, each one
fixture away (as ``responses`` and ``pytest-httpserver`` are).

Installed with ``vpc_requests`` (the ``pytest11`` entry point
``vpc_requests``; disable it with ``-p no:vpc_requests``). The fixtures need
``h11`` and, for TLS, ``trustme`` (``pip install 'vpc_requests[demo]'``);
they are imported only when a fixture is used::

    def test_users(vpc_env, vpc_private_service):
        env = vpc_env(
            '''
            vpc_services = [{ binding = "API", service_id = "api" }]
            ''',
            services={"api": vpc_private_service},
        )
        env.API.fetch("http://internal-api.company.local/users")
        assert vpc_private_service.seen[0].host == "internal-api.company.local"
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._config.config import Env, load_env
from ._model.service import VPCService

if TYPE_CHECKING:
    import trustme

    from .testing import PrivateService

__all__ = ["as_service", "vpc_ca", "vpc_env", "vpc_private_service", "vpc_private_tls_service"]

#: The signature of the ``vpc_env`` factory.
EnvFactory = Callable[..., Env]


@pytest.fixture(scope="session")
def vpc_ca() -> trustme.CA:
    """One ``trustme.CA`` for the test session; it issues the certificate of
    ``vpc_private_tls_service``. Trust it with ``verify=`` and the
    service's :attr:`~vpc_requests.testing.PrivateService.ca_path`."""
    import trustme

    return trustme.CA()


@pytest.fixture
def vpc_private_service() -> Iterator[PrivateService]:
    """A plain-HTTP :class:`~vpc_requests.testing.PrivateService` on
    127.0.0.1, answering :func:`~vpc_requests.testing.echo`; stopped after
    the test. Set its ``handler`` attribute to answer differently."""
    from .testing import PrivateService

    with PrivateService(name="vpc-private-service") as service:
        yield service


@pytest.fixture
def vpc_private_tls_service(vpc_ca: trustme.CA) -> Iterator[PrivateService]:
    """An HTTPS :class:`~vpc_requests.testing.PrivateService` on 127.0.0.1
    whose certificate, from ``vpc_ca``, names
    ``internal-api.company.local`` and ``10.0.1.50``; pass
    ``verify=service.ca_path`` to trust it."""
    from .testing import PrivateService

    with PrivateService(tls=True, ca=vpc_ca, name="vpc-private-tls-service") as service:
        yield service


@pytest.fixture
def vpc_env(tmp_path: Path) -> Iterator[EnvFactory]:
    """A factory: ``vpc_env(wrangler, services={...}, environment=None)``
    writes the wrangler snippet (TOML, or JSON when it starts with ``{``)
    and a services file to a temporary directory and returns
    :func:`~vpc_requests.load_env`'s :class:`~vpc_requests.Env`, closed after
    the test.

    ``services`` maps a service id, which is also the service's name, so a
    binding may give either ``service_id`` or ``service``, to a
    :class:`~vpc_requests.testing.PrivateService` (the service is its
    loopback address and port, ``http_port`` or ``https_port`` by its
    ``tls``) or to a :class:`~vpc_requests.VPCService` (its ``service_id``
    and, if unset, its ``name`` become the key).
    """
    envs: list[Env] = []
    count = 0

    def make(wrangler: str, services: Mapping[str, PrivateService | VPCService] | None = None, *,
             environment: str | None = None) -> Env:
        nonlocal count
        count += 1
        directory = tmp_path / f"vpc-env-{count}"
        directory.mkdir()
        text = textwrap.dedent(wrangler).strip() + "\n"
        config = directory / ("wrangler.jsonc" if text.startswith("{") else "wrangler.toml")
        config.write_text(text, encoding="utf-8")
        listed = [as_service(key, value).to_api() for key, value in (services or {}).items()]
        services_path = directory / "vpc-services.json"
        services_path.write_text(json.dumps(listed, indent=2), encoding="utf-8")
        env = load_env(config, services=services_path, environment=environment)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def as_service(key: str, value: PrivateService | VPCService) -> VPCService:
    """The :class:`~vpc_requests.VPCService` that the ``vpc_env`` fixture writes for
    ``services[key]``.

    :param key: the service id (and default name).
    :param value: a private service or a VPC service.
    :returns: the service, with ``service_id`` ``key``.
    :raises TypeError: for anything else.
    """
    if isinstance(value, VPCService):
        return value.replace(service_id=key, name=value.name or key)
    from .testing import PrivateService

    if not isinstance(value, PrivateService):
        raise TypeError(f"services[{key!r}] should be a PrivateService or a VPCService, "
                        f"not {type(value).__name__}")
    v6 = ":" in value.host
    return VPCService(
        service_id=key, name=key,
        ipv4=None if v6 else value.host, ipv6=value.host if v6 else None,
        http_port=None if value.tls else value.port, https_port=value.port if value.tls else None,
    )
