"""Reading the Worker's own configuration (``wrangler.json``,
``wrangler.jsonc``, ``wrangler.toml``) the way wrangler reads its
``vpc_services`` and ``vpc_networks`` keys.

The rules follow workers-sdk ``packages/workers-utils/src/config/``:
``config-helpers.ts`` (discovery), ``validation.ts``
(``normalizeAndValidateConfig``, ``validateVpcServiceBinding``,
``validateVpcNetworkBinding``, ``validateBindingsHaveUniqueNames``) and
``validation-helpers.ts`` (``notInheritable``, ``getBindingNames``,
``validateAdditionalProperties``). Where we differ on purpose, README's
"Differences from wrangler" table says so and why. Parsing and line finding
live in :mod:`vpc_requests._config.sources`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .._errors import ConfigError
from .sources import (
    ConfigWarning,
    Document,
    KeyPath,
    describe,
    did_you_mean,
    document_kind,
    join_field,
    parse_document,
    read_document,
    split_field,
    strip_jsonc,
)
from .wrangler_fields import BINDING_KINDS, ENVIRONMENT_FIELDS, TOP_LEVEL_FIELDS

__all__ = [
    "WRANGLER_FILES",
    "BindingSpec",
    "ConfigWarning",
    "Document",
    "KeyPath",
    "NetworkSpec",
    "WorkerConfig",
    "cloudflare_env",
    "document_kind",
    "find_wrangler_file",
    "join_field",
    "parse_document",
    "read_bindings",
    "read_document",
    "read_worker",
    "split_field",
    "strip_jsonc",
]

#: The names wrangler looks for, in its order: each is searched for in the
#: folder and then every parent before the next name is tried
#: (``findWranglerConfig`` in ``config-helpers.ts``).
WRANGLER_FILES: tuple[str, ...] = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")

#: The variable that picks the environment when none is given (as in wrangler).
CLOUDFLARE_ENV = "CLOUDFLARE_ENV"

# The keys wrangler knows in each entry (validateVpcServiceBinding,
# validateVpcNetworkBinding); "service" is our extension (bind by name).
_SERVICE_KEYS = ("binding", "service_id", "remote")
_NETWORK_KEYS = ("binding", "tunnel_id", "network_id", "remote")
_KIND_WORDS = {"vpc_services": "VPC bindings", "vpc_networks": "VPC network bindings"}


class BindingSpec(NamedTuple):
    """One ``vpc_services`` entry of the Worker's configuration.

    :param binding: the binding's name (``env.<binding>`` in the Worker).
    :param service_id: the bound service's id, or ``None`` when it is bound
        by name.
    :param service: the bound service's name (``service = "<name>"``), or ``None``.
    :param where: the entry's place in the document (for error lines).
    """

    binding: str
    service_id: str | None
    service: str | None
    where: KeyPath


class NetworkSpec(NamedTuple):
    """One ``vpc_networks`` entry: a binding to a whole network, reached
    through a tunnel (``tunnel_id``) or a Cloudflare network (``network_id``);
    exactly one of the two is set.

    :param binding: the binding's name.
    :param tunnel_id: the tunnel's id, or ``None``.
    :param network_id: the network's id, or ``None``.
    :param where: the entry's place in the document (for error lines).
    """

    binding: str
    tunnel_id: str | None
    network_id: str | None
    where: KeyPath


class WorkerConfig(NamedTuple):
    """The VPC bindings of one environment of a Worker configuration.

    :param services: the ``vpc_services`` entries, in file order.
    :param networks: the ``vpc_networks`` entries, in file order.
    :param environment: the ``[env.NAME]`` read, ``None`` for the top level
        (also when an environment was asked for and the file defines none).
    """

    services: list[BindingSpec]
    networks: list[NetworkSpec]
    environment: str | None


def cloudflare_env(environment: str | None) -> str | None:
    """The environment to read: ``environment`` when given, else
    ``$CLOUDFLARE_ENV``; an empty name means the top level (as
    ``args.env ?? getCloudflareEnv()`` followed by ``if (envName)`` in
    ``normalizeAndValidateConfig``).

    :returns: the name, or ``None`` for the top level.
    """
    if environment is None:
        environment = os.environ.get(CLOUDFLARE_ENV)
    return environment or None


def find_wrangler_file(directory: str | Path = ".") -> Path:
    """The Worker configuration wrangler would use when run in ``directory``
    without ``--config``: ``wrangler.json`` in ``directory`` or its nearest
    parent, else ``wrangler.jsonc`` likewise, else ``wrangler.toml``
    (three sweeps up to the root, as ``findWranglerConfig`` does with
    ``empathic/find``'s ``file()``; only regular files count).

    :param directory: where to start.
    :returns: the path found (relative when ``directory`` is), or
        ``directory/wrangler.toml`` when there is none (which does not exist).
    """
    folder = Path(directory)
    folders = [folder, *folder.resolve().parents]
    for name in WRANGLER_FILES:
        for place in folders:
            if (place / name).is_file():
                return place / name
    return folder / "wrangler.toml"


def read_bindings(document: Document, environment: str | None = None) -> list[BindingSpec]:
    """The ``vpc_services`` bindings of a Worker configuration (see
    :func:`read_worker`, which also reads ``vpc_networks``)."""
    return read_worker(document, environment).services


def read_worker(document: Document, environment: str | None = None) -> WorkerConfig:
    """The VPC bindings of a Worker configuration, validated as wrangler
    validates them.

    * Unknown top-level and environment keys warn (:class:`ConfigWarning`),
      with the key meant when one is close (``vpc_service`` -> ``vpc_services``).
    * The top level's ``vpc_services`` / ``vpc_networks`` are validated even
      when an environment is read (wrangler validates the top level always).
    * ``vpc_services`` and ``vpc_networks`` are not inherited: an environment
      without its own gets none, with a warning when the top level has some;
      an environment's list that lacks a top-level binding name warns per name.
    * An environment the file does not define is an error, except in a file
      that defines no environments: that warns and reads the top level.
    * Binding names are unique across every binding kind of the environment
      read (``validateBindingsHaveUniqueNames``).

    :param document: the parsed wrangler file (see :func:`read_document`).
    :param environment: ``[env.NAME]`` to read, or ``None`` for the top level
        (``$CLOUDFLARE_ENV`` is applied by :func:`cloudflare_env`, not here).
    :returns: the bindings.
    :raises ConfigError: for a missing environment, a malformed entry or a
        binding name used twice.
    """
    root = document.data
    if not isinstance(root, Mapping):
        raise document.error(f"the configuration must be a table/object, got {describe(root)}", ())
    _warn_unknown(document, root, (), TOP_LEVEL_FIELDS, "top-level")
    top_services = _services(document, root, ())
    top_networks = _networks(document, root, ())
    if not environment:
        _check_unique(document, root, ())
        return WorkerConfig(top_services, top_networks, None)
    envs = root.get("env")
    if envs is None:  # an empty [env] table is "other environments" to wrangler: an error below
        document.warn(
            f'no environment found in configuration with name "{environment}" (the file defines no '
            f"environments), so the top-level configuration is used, as wrangler does", ())
        _check_unique(document, root, ())
        return WorkerConfig(top_services, top_networks, None)
    table = _environment(document, environment)
    base: KeyPath = ("env", environment)
    _warn_unknown(document, table, base, ENVIRONMENT_FIELDS, f"env.{environment}")
    services = _not_inherited(document, table, base, "vpc_services", top_services,
                              lambda: _services(document, table, base))
    networks = _not_inherited(document, table, base, "vpc_networks", top_networks,
                              lambda: _networks(document, table, base))
    _check_unique(document, table, base)
    return WorkerConfig(services, networks, environment)


def _warn_unknown(document: Document, table: Mapping[str, Any], base: KeyPath,
                  known: frozenset[str], where: str) -> None:
    """``validateAdditionalProperties``: one warning per unknown key, with a
    did-you-mean when a known key is close."""
    for key in table:
        if key in known:
            continue
        guess = did_you_mean(key, known)
        hint = f"; did you mean {guess!r}?" if guess else ""
        document.warn(f"unexpected field {key!r} in the {where} configuration (wrangler does not know "
                      f"it and ignores it){hint}", base + (key,))


def _environment(document: Document, name: str) -> Mapping[str, Any]:
    envs = document.data.get("env")
    if not isinstance(envs, Mapping):
        raise document.error(f"must be a table of environments, got {describe(envs)}", ("env",))
    table = envs.get(name)
    if table is None:
        known = ", ".join(sorted(envs)) or "none"
        raise ConfigError(f"no environment {name!r}; defined: {known}", path=document.path,
                          field=f"env.{name}")
    if not isinstance(table, Mapping):
        raise document.error(f"must be a table, got {describe(table)}", ("env", name))
    return table


def _not_inherited(document: Document, table: Mapping[str, Any], base: KeyPath, key: str,
                   top: list[Any], read: Any) -> list[Any]:
    """``notInheritable`` and ``validateBindingArray``'s per-name warning."""
    environment = str(base[1])
    if key not in table:
        if key in document.data:
            document.warn(
                f'"{key}" exists at the top level, but not on "env.{environment}"; it is not inherited, '
                f'so environment {environment!r} has no {_KIND_WORDS[key]}. Add "{key}" to "env.{environment}"',
                (key,))
        return []
    entries: list[Any] = read()
    names = {entry.binding for entry in entries}
    for entry in top:
        if entry.binding not in names:
            document.warn(
                f'there is a {key} binding with name "{entry.binding}" at the top level, but not on '
                f'"env.{environment}"; {key} is not inherited by environments. Add a binding for '
                f'"{entry.binding}" to "env.{environment}.{key}"', entry.where + ("binding",))
    return entries


def _entries(document: Document, table: Mapping[str, Any], base: KeyPath, key: str,
             shape: str) -> Iterator[tuple[Mapping[str, Any], KeyPath]]:
    """Each entry of the array ``key`` of ``table``, checked to be a table."""
    entries = table.get(key, [])
    where = base + (key,)
    if not isinstance(entries, list):
        raise document.error(f"must be an array of {{ {shape} }} tables, got {describe(entries)}", where)
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise document.error(f"bindings should be tables like {{ {shape} }}, got {describe(entry)}",
                                 where + (index,))
        yield entry, where + (index,)


def _services(document: Document, table: Mapping[str, Any], base: KeyPath) -> list[BindingSpec]:
    return [_service(document, entry, where)
            for entry, where in _entries(document, table, base, "vpc_services", 'binding = "NAME", service_id = "..."')]


def _service(document: Document, entry: Mapping[str, Any], where: KeyPath) -> BindingSpec:
    """One ``vpc_services`` entry (``validateVpcServiceBinding``)."""
    service_id, service = entry.get("service_id"), entry.get("service")
    for key in entry:
        if key not in _SERVICE_KEYS and not (key == "service" and service_id is None):
            ignored = " (ignored: service_id is given)" if key == "service" else ""
            document.warn(f"unexpected field {key!r} in {join_field(where)}{ignored}; "
                          f"expected: binding, service_id (or service), remote", where + (key,))
    binding = _name(document, entry, where)
    if service_id is not None or service is None:
        key, value = "service_id", service_id
        service = None
    else:
        key, value = "service", service
    if not isinstance(value, str) or not value.strip():
        raise document.error(
            f'should have a string "service_id" field (or "service" with the service\'s name), '
            f"got {describe(value)}", where, key)
    if "remote" in entry and not isinstance(entry["remote"], bool):
        document.warn(f"remote should be a boolean, got {describe(entry['remote'])} (it means nothing "
                      f"to vpc_requests; wrangler does not check it for vpc_services)", where + ("remote",))
    return BindingSpec(binding, value if key == "service_id" else None, service, where)


def _networks(document: Document, table: Mapping[str, Any], base: KeyPath) -> list[NetworkSpec]:
    return [_network(document, entry, where)
            for entry, where in _entries(document, table, base, "vpc_networks", 'binding = "NAME", tunnel_id = "..."')]


def _network(document: Document, entry: Mapping[str, Any], where: KeyPath) -> NetworkSpec:
    """One ``vpc_networks`` entry (``validateVpcNetworkBinding``): a binding
    and exactly one of ``tunnel_id`` / ``network_id``, a string."""
    for key in entry:
        if key not in _NETWORK_KEYS:
            document.warn(f"unexpected field {key!r} in {join_field(where)}; "
                          f"expected: {', '.join(_NETWORK_KEYS)}", where + (key,))
    binding = _name(document, entry, where)
    has_tunnel, has_network = "tunnel_id" in entry, "network_id" in entry
    if has_tunnel and has_network:
        raise document.error('give either "tunnel_id" or "network_id", not both', where, "network_id")
    if not has_tunnel and not has_network:
        raise document.error('should have a "tunnel_id" or a "network_id" field', where, "tunnel_id")
    key = "tunnel_id" if has_tunnel else "network_id"
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise document.error(f'should be a non-empty string, got {describe(value)}', where, key)
    return NetworkSpec(binding, value if has_tunnel else None, value if has_network else None, where)


def _name(document: Document, entry: Mapping[str, Any], where: KeyPath) -> str:
    binding = entry.get("binding")
    if not isinstance(binding, str) or not binding.strip():
        raise document.error(f'should have a string "binding" field, got {describe(binding)}',
                             where, "binding")
    return binding


# -- binding names are unique (validateBindingsHaveUniqueNames) --------------------


def _check_unique(document: Document, table: Mapping[str, Any], base: KeyPath) -> None:
    """No binding name is used twice among the bindings of the environment
    read, whatever their kind.

    :raises ConfigError: at the second use, naming both.
    """
    first: dict[str, tuple[str, KeyPath]] = {}
    for kind, name, path in _all_names(document.data, table, base):
        if name not in first:
            first[name] = (kind, path)
            continue
        other_kind, other = first[name]
        line = document.line_of(other)
        if other_kind == kind:
            at = f" (first defined at line {line})" if line is not None else ""
            raise document.error(f"binding name {name!r} is used more than once{at}", path)
        at = f", line {line}" if line is not None else ""
        raise document.error(
            f"binding name {name!r} is used by both {_entry(other)} ({other_kind}{at}) and {_entry(path)} "
            f"({kind}); binding names must be unique across all binding kinds, as in wrangler", path)


def _entry(path: KeyPath) -> str:
    """A binding's place for messages: ``kv_namespaces[0]``, ``vars.API``."""
    return join_field(path[:-1] if path[-1] in ("binding", "name") else path)


def _all_names(root: Mapping[str, Any], table: Mapping[str, Any],
               base: KeyPath) -> Iterator[tuple[str, str, KeyPath]]:
    """(kind, name, path) of every binding of the environment, in wrangler's
    order of kinds (``friendlyBindingNames``, then ``secrets.required``)."""
    for key, (kind, scope) in BINDING_KINDS.items():
        prefix: KeyPath
        if scope == "top" or (scope == "inherited" and key not in table):
            source, prefix = root, ()
        else:
            source, prefix = table, base
        value = source.get(key)
        path: KeyPath = prefix + (key,)
        if key == "queues":
            value = value.get("producers") if isinstance(value, Mapping) else None
            path += ("producers",)
        for name, where in _binding_names(value, path):
            yield kind, name, where
    secrets = table.get("secrets")
    required = secrets.get("required") if isinstance(secrets, Mapping) else None
    if isinstance(required, list):
        for index, name in enumerate(required):
            if isinstance(name, str):
                yield "Secret", name, base + ("secrets", "required", index)


def _binding_names(value: object, path: KeyPath) -> Iterator[tuple[str, KeyPath]]:
    """``getBindingNames`` (validation-helpers.ts) with the place of each name:
    ``{bindings = [{name}]}``, ``[{binding}]``, ``{binding = ...}``, else a
    table's keys (``vars``)."""
    if isinstance(value, Mapping):
        bindings = value.get("bindings")
        if isinstance(bindings, list) and all(isinstance(b, Mapping) and isinstance(b.get("name"), str)
                                              for b in bindings):
            for index, item in enumerate(bindings):
                yield item["name"], path + ("bindings", index, "name")
        elif value.get("binding") is not None:
            if isinstance(value["binding"], str):
                yield value["binding"], path + ("binding",)
        else:
            for key, item in value.items():
                if item is not None:
                    yield str(key), path + (key,)
    elif isinstance(value, list) and all(isinstance(e, Mapping) and isinstance(e.get("binding"), str)
                                         for e in value):
        for index, entry in enumerate(value):
            yield entry["binding"], path + (index, "binding")
