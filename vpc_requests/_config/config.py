"""Configuration: the Worker's bindings (from its wrangler file) joined to the
account's services (from the local services file) into an :class:`Env`, the
Python counterpart of a Worker's ``env``.

::

    env = vpc_requests.load_env()            # wrangler.json / .jsonc / .toml, as wrangler finds it
    env.PRIVATE_API.fetch("http://internal-api.company.local/users")

The file formats are read by :mod:`vpc_requests._config.wrangler` and
:mod:`vpc_requests._config.services_file`; this module puts them together.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._bindings.binding import Binding
from .._bindings.network import NetworkBinding
from .._errors import ConfigError
from .._model.service import VPCService
from .services_file import ServicesFile, default_services_path, lookup, read_services
from .sources import ConfigWarning, Document, caller_level, read_document
from .wrangler import WRANGLER_FILES, BindingSpec, NetworkSpec, cloudflare_env, find_wrangler_file, read_worker

__all__ = ["ConfigWarning", "Env", "load_env"]

class Env:
    """The bindings of one Worker (environment), by name, like a Worker's ``env``.

    ``env.PRIVATE_API`` and ``env["PRIVATE_API"]`` give the
    :class:`~vpc_requests.Binding`; iteration yields the names in file order.
    An unknown name raises :class:`KeyError` (item access) or
    :class:`AttributeError` (attribute access) listing the configured names.
    A binding named like one of the Env's own attributes (``path``,
    ``close``, ``bindings``, ...) or starting with ``__`` is reachable only as
    ``env["NAME"]``; a :class:`ConfigWarning` says so when the Env is made.
    Envs pickle (the bindings are rebuilt on the other side).

    :param bindings: the bindings; names must be unique.
    :param services: every service of the services file, by ``service_id``.
    :param tunnels: ``tunnel_id`` -> transport, from the services file.
    :param path: the wrangler file it came from.
    :param services_path: the services file it came from.
    :param environment: the ``[env.NAME]`` read, ``None`` for the top level.
    :raises ValueError: when two bindings share a name.
    """

    def __init__(
        self,
        bindings: Iterable[Binding] = (),
        *,
        services: Mapping[str, VPCService] | None = None,
        tunnels: Mapping[str, str] | None = None,
        path: str | None = None,
        services_path: str | None = None,
        environment: str | None = None,
    ) -> None:
        self._fill(bindings, services, tunnels, path, services_path, environment)
        for name in _shadowed(self._bindings):
            where = f"{path}: " if path else ""
            warnings.warn(f"{where}{_shadowed_message(name)}", ConfigWarning, stacklevel=caller_level())

    @classmethod
    def _quiet(cls, bindings: Iterable[Binding], **state: Any) -> Env:
        """An Env made without the warnings of ``__init__`` (the caller has
        given them, or they were given before pickling)."""
        env = cls.__new__(cls)
        env._fill(bindings, state.get("services"), state.get("tunnels"), state.get("path"),
                  state.get("services_path"), state.get("environment"))
        return env

    def _fill(
        self,
        bindings: Iterable[Binding],
        services: Mapping[str, VPCService] | None,
        tunnels: Mapping[str, str] | None,
        path: str | None,
        services_path: str | None,
        environment: str | None,
    ) -> None:
        table: dict[str, Binding] = {}
        for binding in bindings:
            if binding.name in table:
                raise ValueError(f"binding name {binding.name!r} is used more than once")
            table[binding.name] = binding
        self._bindings = table
        self._services = dict(services or {})
        self._tunnels = dict(tunnels or {})
        self.path = path
        self.services_path = services_path
        self.environment = environment

    @property
    def bindings(self) -> dict[str, Binding]:
        """Binding name -> :class:`~vpc_requests.Binding`, in file order (a copy)."""
        return dict(self._bindings)

    @property
    def services(self) -> dict[str, VPCService]:
        """``service_id`` -> :class:`~vpc_requests.VPCService`, every service
        of the services file (a copy)."""
        return dict(self._services)

    @property
    def tunnels(self) -> dict[str, str]:
        """``tunnel_id`` -> transport URL or ``"direct"`` (a copy)."""
        return dict(self._tunnels)

    def _unknown(self, name: object) -> str:
        known = ", ".join(self._bindings) or "none"
        return f"no binding {name!r}; configured: {known}"

    def __getitem__(self, name: str) -> Binding:
        try:
            return self._bindings[name]
        except (KeyError, TypeError):
            raise KeyError(self._unknown(name)) from None

    def __getattr__(self, name: str) -> Binding:
        bindings: dict[str, Binding] | None = self.__dict__.get("_bindings")
        if bindings is None or name.startswith("__"):
            raise AttributeError(name)
        try:
            return bindings[name]
        except KeyError:
            raise AttributeError(self._unknown(name)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._bindings)

    def __len__(self) -> int:
        return len(self._bindings)

    def __contains__(self, name: object) -> bool:
        return name in self._bindings

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in self._bindings if n.isidentifier()})

    def __repr__(self) -> str:
        where = f" from {self.path!r}" if self.path else ""
        if self.environment:
            where += f" (env {self.environment!r})"
        return f"<Env{where}: {', '.join(self._bindings) or 'no bindings'}>"

    def close(self) -> None:
        """Close every binding's pooled connections (they reopen on demand)."""
        for binding in self._bindings.values():
            binding.close()

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        specs = list(self._bindings.values())  # each rebuilds itself, settings included
        state = {"services": self._services, "tunnels": self._tunnels, "path": self.path,
                 "services_path": self.services_path, "environment": self.environment}
        return (_rebuild_env, (specs, state))


def _rebuild_env(specs: list[Binding], state: dict[str, Any]) -> Env:
    """Unpickle an :class:`Env`: fresh bindings (and sessions) for the same
    services (each binding pickles its own settings)."""
    return Env._quiet(specs, **state)


# What ``env.NAME`` finds before any binding: the Env's own attributes.
_ENV_ATTRIBUTES = frozenset(dir(Env)) | {"path", "services_path", "environment", "_bindings", "_services",
                                         "_tunnels"}


def _shadowed(names: Iterable[str]) -> list[str]:
    """The binding names ``env.NAME`` does not reach."""
    return [name for name in names if name in _ENV_ATTRIBUTES or name.startswith("__")]


def _shadowed_message(name: str) -> str:
    return (f"binding {name!r} cannot be reached as env.{name} (that is the Env's own attribute); "
            f"use env[{name!r}]")


def load_env(
    path: str | Path | None = None,
    *,
    services: str | Path | None = None,
    environment: str | None = None,
) -> Env:
    """Load a Worker's VPC bindings and the services they name.

    :param path: the Worker's ``wrangler.json``, ``wrangler.jsonc`` or
        ``wrangler.toml``. ``None`` finds it as wrangler does: ``wrangler.json``
        in the current directory or its nearest parent, then ``wrangler.jsonc``
        likewise, then ``wrangler.toml`` (:func:`~vpc_requests._config.wrangler.find_wrangler_file`).
    :param services: the services file; default ``vpc-services.toml`` beside
        the wrangler file (needed only when there are bindings).
    :param environment: read ``[env.NAME]`` instead of the top level; ``None``
        takes ``$CLOUDFLARE_ENV`` (as wrangler does), ``""`` the top level.
        ``vpc_services`` is not inherited into environments (as in wrangler).
        A name the file does not define is an error, except in a file that
        defines no environments, which warns and reads the top level (as
        wrangler does).
    :returns: the environment, complete (never half-built).
    :raises ConfigError: for a missing, refused or malformed file, a bad
        field, a binding whose service is not defined or a binding name used
        twice (across all binding kinds), naming the file, the line where
        there is one, the field and the bad value.
    """
    if path is None:
        path = find_wrangler_file(".")
        if not path.is_file():
            raise ConfigError(f"no {', '.join(WRANGLER_FILES)} in the current directory or its parents; "
                              "give the Worker's configuration file", path=str(path))
    document = read_document(path)
    worker = read_worker(document, cloudflare_env(environment))
    specs = worker.services
    services_path = Path(services) if services is not None else default_services_path(path)
    if specs and not services_path.exists():
        names = ", ".join(spec.binding for spec in specs[:5]) + (", ..." if len(specs) > 5 else "")
        raise ConfigError(f"services file not found; bindings {names} need the services they name "
                          "(create it with 'vpc-requests service create')", path=str(services_path))
    contents = read_services(services_path, missing_ok=services is None and not specs)
    bindings = [_bind(document, spec, contents) for spec in specs]
    bindings += [_bind_network(document, spec, contents) for spec in worker.networks]
    for name, where in [(s.binding, s.where) for s in specs] + [(n.binding, n.where) for n in worker.networks]:
        if _shadowed([name]):
            document.warn(_shadowed_message(name), where + ("binding",))
    return Env._quiet(bindings, services=contents.services, tunnels=contents.tunnels, path=str(path),
                      services_path=contents.path, environment=worker.environment)


def _bind(document: Document, spec: BindingSpec, contents: ServicesFile) -> Binding:
    """The :class:`Binding` for one entry, with its service and tunnel."""
    service = _lookup(document, spec, contents)
    tunnel = contents.tunnels.get(service.tunnel_id) if service.tunnel_id else None
    try:
        return Binding(spec.binding, service, tunnel=None if tunnel == "direct" else tunnel,
                       certificates=dict(contents.certificates))
    except ConfigError as exc:
        raise document.error(exc.message, spec.where, exc.field or "binding") from None


def _bind_network(document: Document, spec: NetworkSpec, contents: ServicesFile) -> NetworkBinding:
    """The :class:`~vpc_requests.NetworkBinding` for one ``vpc_networks``
    entry: its transport is the ``[tunnels]`` entry of its ``tunnel_id`` or
    ``network_id``; direct when there is none."""
    tunnel = contents.tunnels.get(spec.tunnel_id or spec.network_id or "")
    try:
        return NetworkBinding(spec.binding, tunnel=None if tunnel == "direct" else tunnel,
                              tunnel_id=spec.tunnel_id, network_id=spec.network_id)
    except ConfigError as exc:
        raise document.error(exc.message, spec.where, exc.field or "binding") from None


def _lookup(document: Document, spec: BindingSpec, contents: ServicesFile) -> VPCService:
    named = lookup(contents, spec.service_id, spec.service)
    if len(named) == 1:
        return named[0]
    key, value = ("service_id", spec.service_id) if spec.service_id is not None else ("service", spec.service)
    if named:
        ids = ", ".join(str(s.service_id) for s in named)
        raise document.error(f"{len(named)} services are named {value!r} in {contents.path} "
                             f"({ids}); bind by service_id", spec.where, key)
    raise document.error(f"binding {spec.binding!r} names service {value!r}, which {contents.path} "
                         f"does not define; defined: {_known(contents)}", spec.where, key)


def _known(contents: ServicesFile, limit: int = 10) -> str:
    """The first services of a file, for messages: ``name (id), ...``."""
    items = [f"{s.name} ({s.service_id})" if s.name else str(s.service_id)
             for s in list(contents.services.values())[:limit]]
    if len(contents.services) > limit:
        items.append(f"... ({len(contents.services)} in all)")
    return ", ".join(items) or "none"
