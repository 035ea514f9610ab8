"""The local services file: the VPC Services of the account (what Cloudflare
keeps) and how this machine reaches each tunnel's network.

Reading accepts a TOML file of ``[[services]]`` tables (the API object's
fields) plus a ``[tunnels]`` table, or the API's own JSON (a list, or
``{"result": [...]}``). Editing (:func:`create_service`,
:func:`update_service`, :func:`delete_service`) goes through ``tomlkit`` so
comments and layout survive, validates the whole result before writing, and
replaces the file atomically.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import tempfile
import uuid
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import tomlkit
import tomlkit.items

from .errors import ConfigError
from .service import API_FIELDS, VPCService
from .wrangler import Document, KeyPath, _describe, parse_document, read_document, strip_jsonc

__all__ = [
    "DEFAULT_SERVICES_FILE",
    "TUNNEL_SCHEMES",
    "ServicesFile",
    "check_tunnel",
    "create_service",
    "default_services_path",
    "delete_service",
    "find_service",
    "read_services",
    "update_service",
    "write_atomic",
]

#: The services file's name, looked for beside the wrangler file.
DEFAULT_SERVICES_FILE = "vpc-services.toml"

#: The transports a ``[tunnels]`` entry may name (besides ``direct``).
TUNNEL_SCHEMES: tuple[str, ...] = ("socks5", "socks5h", "http", "https")

_TOP_KEYS = ("services", "tunnels")
_NEW_FILE_HEADER = (
    "# VPC Services for vpc_requests: the fields of Cloudflare's API objects.\n"
    "# [tunnels] maps a tunnel_id to how this machine reaches its network:\n"
    '# "direct", "socks5://host:port", "socks5h://...", "http://..." or "https://...".\n'
)


class ServicesFile(NamedTuple):
    """What a services file holds.

    :param path: the file.
    :param services: ``service_id`` -> service, in file order.
    :param tunnels: ``tunnel_id`` -> transport URL (or ``"direct"``).
    """

    path: str
    services: dict[str, VPCService]
    tunnels: dict[str, str]


def default_services_path(wrangler_path: str | Path) -> Path:
    """``vpc-services.toml`` beside the wrangler file."""
    return Path(wrangler_path).parent / DEFAULT_SERVICES_FILE


# -- reading --------------------------------------------------------------------


def read_services(path: str | Path, *, missing_ok: bool = False) -> ServicesFile:
    """Read and validate a services file.

    :param path: a TOML file, or a ``.json`` file as the API returns it.
    :param missing_ok: return an empty result when the file does not exist.
    :returns: the services and tunnels.
    :raises ConfigError: naming the file, line and field of what is wrong.
    """
    if missing_ok and not os.path.exists(path):
        return ServicesFile(str(path), {}, {})
    return _validate(read_document(path))


def _validate(document: Document) -> ServicesFile:
    entries, base, tunnels = _entries(document)
    services: dict[str, VPCService] = {}
    for index, entry in enumerate(entries):
        service = _service(document, entry, base + (index,))
        if service.service_id in services:
            raise document.error(f"service_id {service.service_id!r} is used more than once",
                                 base + (index,), "service_id")
        services[service.service_id] = service  # type: ignore[index]
    return ServicesFile(document.path, services, _tunnels(document, tunnels))


def _entries(document: Document) -> tuple[list[Any], KeyPath, Any]:
    """The service objects, where they sit, and the raw ``tunnels`` value."""
    data = document.data
    if isinstance(data, list):
        return data, (), {}
    if not isinstance(data, Mapping):
        raise document.error(f"expected a table/object of services, got {_describe(data)}", ())
    if document.kind == "json" and "result" in data:
        key = "result"
    else:
        key = "services"
        for name in data:
            if name not in _TOP_KEYS:
                document.warn(f"unknown key {name!r} ignored; expected: {', '.join(_TOP_KEYS)}", (name,))
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise document.error(f"must be an array of service tables, got {_describe(entries)}", (key,))
    return entries, (key,), data.get("tunnels", {})


def _service(document: Document, entry: object, where: KeyPath) -> VPCService:
    if document.kind == "toml" and isinstance(entry, Mapping):
        for key in entry:
            if key not in API_FIELDS:
                document.warn(f"unknown key {key!r} in a service ignored; "
                              f"known: {', '.join(sorted(API_FIELDS))}", where + (key,))
    try:
        service = VPCService.from_api(entry)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise document.error(exc.message, where, exc.field) from None
    if service.service_id is None:
        raise document.error("missing; every service needs a service_id (bindings name it)",
                             where, "service_id")
    return service


def _tunnels(document: Document, raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise document.error(f"must be a table of tunnel_id = \"transport URL\", got {_describe(raw)}",
                             ("tunnels",))
    tunnels: dict[str, str] = {}
    for tunnel_id, url in raw.items():
        try:
            tunnels[tunnel_id] = check_tunnel(url)
        except ConfigError as exc:
            raise document.error(exc.message, ("tunnels", tunnel_id)) from None
    return tunnels


def check_tunnel(url: object) -> str:
    """Validate a tunnel transport: ``direct``, or a ``socks5://``,
    ``socks5h://``, ``http://`` or ``https://`` URL with a host, an optional
    port and optional ``user:password@``.

    :param url: the transport.
    :returns: ``url`` unchanged (a plain ``str``).
    :raises ConfigError: when it is not one of those.
    """
    allowed = "'direct' or a URL socks5://, socks5h://, http:// or https://"
    if not isinstance(url, str):
        raise ConfigError(f"must be {allowed}, got {_describe(url)}")
    if url == "direct":
        return str(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in TUNNEL_SCHEMES or "://" not in url:
        raise ConfigError(f"unsupported transport {url!r}; use {allowed}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{url!r} has an invalid port; ports are 1-65535") from None
    if not parts.hostname or any(ch.isspace() for ch in url):
        raise ConfigError(f"{url!r} has no valid host; write e.g. socks5h://proxy.internal:1080")
    if port == 0:
        raise ConfigError(f"{url!r} has an invalid port; ports are 1-65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{url!r} has a path, query or fragment; give only scheme://[user:password@]host[:port]")
    return str(url)


def find_service(services: ServicesFile, ref: str) -> VPCService:
    """The service whose ``service_id`` is ``ref``, else the one named ``ref``.

    :param services: the file's contents.
    :param ref: an id or a name.
    :returns: the service.
    :raises ConfigError: when none or several match; the message lists them.
    """
    if ref in services.services:
        return services.services[ref]
    named = [s for s in services.services.values() if s.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(str(s.service_id) for s in named)
        raise ConfigError(f"{len(named)} services are named {ref!r} ({ids}); give the service_id",
                          path=services.path)
    known = ", ".join(f"{s.name or '?'} ({s.service_id})" for s in list(services.services.values())[:10])
    more = "" if len(services.services) <= 10 else f", ... ({len(services.services)} in all)"
    raise ConfigError(f"no service {ref!r}; defined: {known or 'none'}{more}", path=services.path)


# -- editing --------------------------------------------------------------------


def create_service(path: str | Path, service: VPCService) -> VPCService:
    """Add ``service`` to the services file (created when missing).

    The service gets a new UUID ``service_id`` when it has none, and
    ``created_at`` / ``updated_at`` stamps.

    :returns: the service as written.
    :raises ConfigError: when the file is broken, or the id or name is taken.
    """
    text, current = _load_for_edit(path)
    service = service.replace(service_id=service.service_id or str(uuid.uuid4()),
                              created_at=_now(), updated_at=_now())
    if service.service_id in current.services:
        raise ConfigError(f"service_id {service.service_id!r} already exists", path=current.path)
    _check_name_free(current, service)
    obj = service.to_api()
    if _is_json(current.path):
        data = json.loads(text) if text.strip() else []
        _json_list(data, current.path).append(obj)
        new_text = json.dumps(data, indent=2) + "\n"
    else:
        doc = tomlkit.parse(text) if text else tomlkit.parse(_NEW_FILE_HEADER)
        _toml_append(doc, obj)
        new_text = tomlkit.dumps(doc)
    _commit(current.path, new_text)
    return service


def update_service(path: str | Path, ref: str, **changes: Any) -> VPCService:
    """Change fields of the service ``ref`` (an id or a name) in place,
    leaving the rest of the file as it is.

    :param changes: :class:`VPCService` fields to change (not ``service_id``).
    :returns: the service as written.
    :raises ConfigError: when the file is broken, ``ref`` unknown, the result
        invalid or the new name taken.
    """
    text, current = _load_for_edit(path)
    old = find_service(current, ref)
    new = old.replace(**changes, updated_at=_now())
    if new.service_id != old.service_id:
        raise ConfigError("the service_id of a service cannot change", path=current.path, field="service_id")
    _check_name_free(current, new, old)
    index = list(current.services).index(old.service_id)  # type: ignore[arg-type]
    if _is_json(current.path):
        data = json.loads(text)
        entry = _json_list(data, current.path)[index]
        _sync(entry, old.to_api(), new.to_api(), lambda value: value)
        new_text = json.dumps(data, indent=2) + "\n"
    else:
        doc = tomlkit.parse(text)
        _sync(doc["services"][index], old.to_api(), new.to_api(), _toml_value)
        new_text = tomlkit.dumps(doc)
    _commit(current.path, new_text)
    return new


def delete_service(path: str | Path, ref: str) -> VPCService:
    """Remove the service ``ref`` (an id or a name).

    :returns: the removed service.
    :raises ConfigError: when the file is broken or ``ref`` unknown.
    """
    text, current = _load_for_edit(path)
    old = find_service(current, ref)
    index = list(current.services).index(old.service_id)  # type: ignore[arg-type]
    if _is_json(current.path):
        data = json.loads(text)
        del _json_list(data, current.path)[index]
        new_text = json.dumps(data, indent=2) + "\n"
    else:
        doc = tomlkit.parse(text)
        del doc["services"][index]
        new_text = tomlkit.dumps(doc)
    _commit(current.path, new_text)
    return old


def _is_json(path: str | Path) -> bool:
    return str(path).lower().endswith((".json", ".jsonc"))


def _load_for_edit(path: str | Path) -> tuple[str, ServicesFile]:
    """The file's exact text (``""`` when missing) and its validated contents."""
    name = str(path)
    if not os.path.exists(path):
        return "", ServicesFile(name, {}, {})
    document = read_document(path, newline="")
    if document.kind == "json" and strip_jsonc(document.text) != document.text:
        raise ConfigError("cannot edit a JSON services file that has comments; "
                          "edit it by hand or convert it to TOML", path=name)
    return document.text, _validate(document)


def _check_name_free(current: ServicesFile, service: VPCService, old: VPCService | None = None) -> None:
    if service.name is None:
        return
    for other in current.services.values():
        if other.name == service.name and (old is None or other.service_id != old.service_id):
            raise ConfigError(f"a service named {service.name!r} already exists ({other.service_id})",
                              path=current.path, field="name")


def _commit(path: str, text: str) -> None:
    """Validate the new text as a reader would, then write it atomically."""
    _validate(parse_document(text, path))
    write_atomic(path, text)


def _json_list(data: Any, name: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return data.setdefault("result", [])  # type: ignore[no-any-return]
    raise ConfigError("expected a JSON list of services or {\"result\": [...]}", path=name)


def _toml_value(value: Any) -> Any:
    """A plain value as tomlkit should write it: objects as inline tables."""
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table[key] = _toml_value(item)
        return table
    return value


def _toml_append(doc: tomlkit.TOMLDocument, obj: Mapping[str, Any]) -> None:
    """Append a service to the document's ``services`` array."""
    existing = doc.get("services")
    if isinstance(existing, tomlkit.items.Array):
        existing.append(_toml_value(obj))
        return
    table = tomlkit.table()
    for key, value in obj.items():
        table[key] = _toml_value(value)
    if isinstance(existing, tomlkit.items.AoT):
        existing.append(table)
    else:
        doc.append("services", tomlkit.aot())
        doc["services"].append(table)


def _sync(container: MutableMapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any],
          convert: Any) -> None:
    """Make ``container`` (a table holding ``old``) hold ``new``, touching only
    what changed, so untouched keys keep their comments and layout."""
    for key, value in new.items():
        here = container.get(key)
        if isinstance(value, Mapping) and isinstance(here, MutableMapping) and isinstance(old.get(key), Mapping):
            _sync(here, old[key], value, convert)
        elif key not in container or old.get(key) != value:
            container[key] = convert(value)
    for key in old:
        if key not in new and key in container:
            del container[key]


def _now() -> str:
    """The API's timestamp format, UTC."""
    stamp = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return stamp.isoformat().replace("+00:00", "Z")


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: a temporary file in the same
    directory, then :func:`os.replace`. The file's mode is kept (a new file
    gets the usual ``0o666 & ~umask``); a symlink's target is written.

    :raises OSError: when the directory is not writable; ``path`` is then untouched.
    """
    target = os.path.realpath(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target),
                                         prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _umask() -> int:
    """The process umask (read by setting it, so not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
