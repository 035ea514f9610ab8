"""The local services file: the VPC Services of the account (what Cloudflare
keeps) and how this machine reaches each tunnel's network.

Reading accepts a TOML file of ``[[services]]`` tables (the API object's
fields, ``type`` ``http`` or ``tcp``) plus a ``[tunnels]`` table and a
``[certificates]`` table (certificate id -> local PEM files), or the API's
own JSON: a bare list, the list envelope ``{"result": [...], "success":
true}``, the single-object envelope of get/create/update (``{"result":
{...}}``), or ``{"services": [...]}``; edits keep the shape (a single-object
envelope becomes a list envelope) and ``result_info`` counts. An error
envelope (``{"success": false, "errors": [...]}``) is a
:class:`~vpc_requests.ConfigError` quoting the API's errors. Editing (:func:`create_service`,
:func:`update_service`, :func:`delete_service`) goes through ``tomlkit`` so
comments and layout survive, validates the whole result before writing, and
replaces the file atomically.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import stat
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import tomlkit
import tomlkit.items

from .errors import ConfigError
from .service import API_FIELDS, VPCService
from .sources import describe as _describe
from .sources import did_you_mean
from .tls import CertificateFiles
from .tunnels import TUNNEL_SCHEMES, parse_tunnel
from .wrangler import (
    ConfigWarning,
    Document,
    KeyPath,
    parse_document,
    read_document,
    strip_jsonc,
)

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

_TOP_KEYS = ("services", "tunnels", "certificates")
_HOST_FIELDS = ("hostname", "ipv4", "ipv6")
_NEW_FILE_HEADER = (
    "# VPC Services for vpc_requests: the fields of Cloudflare's API objects.\n"
    "# [tunnels] maps a tunnel_id to how this machine reaches its network:\n"
    '# "direct", "socks5://host:port", "socks5h://...", "http://..." or "https://...".\n'
    '# [certificates] maps a tls_settings certificate id to local PEM files:\n'
    '# "<id>" = { ca = "ca.pem" } or { cert = "client.pem", key = "client.key" }.\n'
)


class ServicesFile(NamedTuple):
    """What a services file holds.

    :param path: the file.
    :param services: ``service_id`` -> service, in file order.
    :param tunnels: ``tunnel_id`` -> transport URL (or ``"direct"``).
    :param certificates: certificate id -> local files, from the
        ``[certificates]`` table (relative paths read from the file's
        directory); pass it to a binding as ``certificates=``.
    """

    path: str
    services: dict[str, VPCService]
    tunnels: dict[str, str]
    certificates: Mapping[str, CertificateFiles] = MappingProxyType({})


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
        return ServicesFile(str(path), {}, {}, {})
    return _validate(read_document(path))


def _validate(document: Document) -> ServicesFile:
    entries, tunnels, certificates = _entries(document)
    services: dict[str, VPCService] = {}
    for entry, where in entries:
        service = _service(document, entry, where)
        if service.service_id in services:
            raise document.error(f"service_id {service.service_id!r} is used more than once",
                                 where, "service_id")
        services[_id(service)] = service
    return ServicesFile(document.path, services, _tunnels(document, tunnels),
                        _certificates(document, certificates))


def _entries(document: Document) -> tuple[list[tuple[Any, KeyPath]], Any, Any]:
    """The service objects with where each sits, and the raw ``tunnels``
    and ``certificates`` values."""
    data = document.data
    if isinstance(data, list):
        return [(entry, (index,)) for index, entry in enumerate(data)], {}, {}
    if not isinstance(data, Mapping):
        raise document.error(f"expected a table/object of services, got {_describe(data)}", ())
    if document.kind == "json" and (data.get("success") is False or data.get("errors")):
        raise document.error(_api_errors(data), ())
    if document.kind == "json" and "result" in data:
        key = "result"
        if isinstance(data["result"], Mapping):  # get/create/update: one service
            return [(data["result"], ("result",))], {}, {}
    elif _is_bare_object(document.kind, data):
        return [(data, ())], {}, {}
    else:
        key = "services"
        for name in data:
            if name not in _TOP_KEYS:
                guess = did_you_mean(name, _TOP_KEYS)
                hint = f"; did you mean {guess!r}?" if guess else ""
                document.warn(f"unknown key {name!r} ignored; expected: {', '.join(_TOP_KEYS)}{hint}", (name,))
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise document.error(f"must be an array of service tables, got {_describe(entries)}", (key,))
    pairs: list[tuple[Any, KeyPath]] = [(entry, (key, index)) for index, entry in enumerate(entries)]
    return pairs, data.get("tunnels", {}), data.get("certificates", {})


def _is_bare_object(kind: str, data: Mapping[str, Any]) -> bool:
    """Whether JSON ``data`` is one bare API service object."""
    return kind == "json" and "host" in data and "services" not in data and "result" not in data


def _api_errors(data: Mapping[str, Any]) -> str:
    """The message for an API error envelope, quoting the API's errors."""
    errors = data.get("errors")
    quoted = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            code = error.get("code")
            quoted.append(f"{'' if code is None else f'[{code}] '}{error.get('message', '')}".strip())
        else:
            quoted.append(str(error))
    detail = "; ".join(quoted) or "no error message"
    return (f"this is a Cloudflare API error response, not services: {detail} "
            "(the request for the services failed; fetch them again)")


def _certificates(document: Document, raw: object) -> dict[str, CertificateFiles]:
    if not isinstance(raw, Mapping):
        raise document.error('must be a table of "<certificate id>" = { ca = "..." } or '
                             f'{{ cert = "...", key = "..." }}, got {_describe(raw)}', ("certificates",))
    base = os.path.dirname(os.path.abspath(document.path))
    certificates: dict[str, CertificateFiles] = {}
    for cert_id, entry in raw.items():
        try:
            certificates[str(cert_id)] = CertificateFiles.from_table(entry, base)
        except ConfigError as exc:
            raise document.error(exc.message, ("certificates", cert_id), exc.field) from None
    return certificates


def _service(document: Document, entry: Any, where: KeyPath) -> VPCService:
    if document.kind == "toml" and isinstance(entry, Mapping):
        for key in entry:
            if key not in API_FIELDS:
                _unknown_service_key(document, str(key), where)
    try:
        service = VPCService.from_api(entry)
    except ConfigError as exc:
        raise document.error(exc.message, where, exc.field) from None
    if service.service_id is None:
        raise document.error("missing; every service needs a service_id (bindings name it)",
                             where, "service_id")
    return service


# The fields of a service that decide where its traffic goes (and how it is
# checked): a misspelling of one is an error, since ignoring it would send the
# traffic elsewhere (``http_prot = 8080`` -> port 80). ``hostname`` and the IPs
# belong in ``host``.
_ROUTING_FIELDS = frozenset({"type", "http_port", "https_port", "host", "tls_settings", "tcp_port",
                             "app_protocol"})


def _unknown_service_key(document: Document, key: str, where: KeyPath) -> None:
    """An unknown key of a service in our TOML format: an error when it is a
    host field out of place or close to a routing field, else a warning."""
    if key in _HOST_FIELDS or key in ("resolver_network", "network"):
        raise document.error(f"{key!r} belongs inside the service's host table: "
                             f"host = {{ {key} = ... }}", where, key)
    guess = did_you_mean(key, API_FIELDS)
    if guess is not None and guess in _ROUTING_FIELDS:
        raise document.error(f"unknown key {key!r}; did you mean {guess!r}? (ignoring it would change "
                             f"where this service's traffic goes)", where, key)
    hint = f"; did you mean {guess!r}?" if guess else ""
    document.warn(f"unknown key {key!r} in a service ignored{hint}; "
                  f"known: {', '.join(sorted(API_FIELDS))}", where + (key,))


def _id(service: VPCService) -> str:
    """The ``service_id`` of a service read from or written to a services
    file, which :func:`_service` and :func:`create_service` ensure."""
    assert service.service_id is not None
    return service.service_id


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
    """Validate a tunnel transport by the rules of
    :func:`vpc_requests.tunnels.parse_tunnel` (the ones bindings use):
    ``direct``, or a ``socks5://``, ``socks5h://``, ``http://`` or
    ``https://`` URL with a host, an optional port and optional
    ``user:password@``.

    :param url: the transport.
    :returns: ``url`` unchanged (a plain ``str``).
    :raises ConfigError: when it is not one of those; the message never
        shows a password.
    """
    if not isinstance(url, str):
        raise ConfigError(f"must be 'direct' or a URL socks5://, socks5h://, http:// or https://, "
                          f"got {_describe(url)}")
    try:
        parse_tunnel(str(url))
    except ConfigError:
        raise
    except ValueError as exc:  # urllib's own ("Invalid IPv6 URL"): never the URL, so no password
        raise ConfigError(f"not a valid transport URL ({exc}); use 'direct' or a URL socks5://, "
                          "socks5h://, http:// or https://") from None
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
    ``created_at`` / ``updated_at`` stamps. In a TOML file the new
    ``[[services]]`` table goes at the end, so nothing already written moves.

    :returns: the service as written.
    :raises ConfigError: when the file is broken, or the id or name is taken.
    """
    edit = _Edit.load(path)
    stamp = _now()
    service = service.replace(service_id=service.service_id or str(uuid.uuid4()),
                              created_at=stamp, updated_at=stamp)
    if service.service_id in edit.current.services:
        raise ConfigError(f"service_id {service.service_id!r} already exists", path=edit.path,
                          field="service_id")
    edit.check_name_free(service)
    obj = service.to_api()
    if edit.json is not None:
        edit.json_list().append(obj)
        text = edit.json_text()
    else:
        with _editing(edit.path):
            doc = tomlkit.parse(edit.text)
            if isinstance(doc.get("services"), tomlkit.items.Array):
                doc["services"].append(_toml_value(obj))
                text = tomlkit.dumps(doc)
            else:
                text = _append_table(edit.document, edit.text, obj)
    edit.commit(text, {**edit.current.services, _id(service): service})
    return service


def update_service(path: str | Path, ref: str, **changes: Any) -> VPCService:
    """Change fields of the service ``ref`` (an id or a name) in place; keys
    that do not change keep their text, comments and position.

    Giving any host field (``hostname``, ``ipv4``, ``ipv6``) replaces the
    host: the host fields not given are cleared, and so are the
    ``resolver_ips`` when the new host is not a hostname. So
    ``update_service(path, "api", ipv4="10.0.0.7")`` turns a hostname
    service into an IP service (its ``tunnel_id`` stays). Likewise a new
    ``type`` drops the ports of the old one: ``update_service(path, "db",
    type="tcp", tcp_port=5432)`` turns an http service into a tcp service.

    :param changes: :class:`VPCService` fields to change (not ``service_id``).
    :returns: the service as written.
    :raises ConfigError: when the file is broken, ``ref`` unknown, the result
        invalid or the new name taken.
    """
    edit = _Edit.load(path)
    old = find_service(edit.current, ref)
    if changes.get("service_id", old.service_id) != old.service_id:
        raise ConfigError("the service_id of a service cannot change", path=edit.path, field="service_id")
    if any(key in changes for key in _HOST_FIELDS):  # a new host replaces the old one
        changes = {**{key: None for key in _HOST_FIELDS}, **changes}
        if changes["hostname"] is None:
            changes.setdefault("resolver_ips", ())
    if changes.get("type", old.type) != old.type:  # a new type drops the old type's ports
        dropped = ("http_port", "https_port") if old.type == "http" else ("tcp_port", "app_protocol")
        changes = {**{key: None for key in dropped}, **changes}
    new = old.replace(**changes, updated_at=_now())
    edit.check_name_free(new, old)
    index = edit.index(old)
    if edit.json is not None:
        _sync(edit.json_list()[index], old.to_api(), new.to_api(), lambda value: value)
        text = edit.json_text()
    else:
        with _editing(edit.path):
            doc = tomlkit.parse(edit.text)
            _sync(doc["services"][index], old.to_api(), new.to_api(), _toml_value)
            text = tomlkit.dumps(doc)
    edit.commit(text, {**edit.current.services, _id(old): new})
    return new


def delete_service(path: str | Path, ref: str) -> VPCService:
    """Remove the service ``ref`` (an id or a name), with the comment lines
    directly above its table.

    :returns: the removed service.
    :raises ConfigError: when the file is broken or ``ref`` unknown.
    """
    edit = _Edit.load(path)
    old = find_service(edit.current, ref)
    index = edit.index(old)
    if edit.json is not None:
        del edit.json_list()[index]
        text = edit.json_text()
    else:
        with _editing(edit.path):
            cut = _cut_table(edit.document, index) if edit.document is not None else None
            if cut is None:  # an inline array: tomlkit handles the commas
                doc = tomlkit.parse(edit.text)
                del doc["services"][index]
                cut = tomlkit.dumps(doc)
        text = cut
    edit.commit(text, {key: s for key, s in edit.current.services.items() if key != old.service_id})
    return old


class _Edit:
    """One edit of a services file: its exact text, what it holds, and the
    parsed form being changed (``tomlkit`` for TOML, plain JSON otherwise)."""

    def __init__(self, path: str, text: str, current: ServicesFile, document: Document | None) -> None:
        self.path = path
        self.current = current
        self.document = document
        self.text = text
        self.json: Any = None
        if _is_json(path):
            self.json = json.loads(text) if text.strip() else []

    @classmethod
    def load(cls, path: str | Path) -> _Edit:
        """Read and validate the file; a missing file is an empty one."""
        name = str(path)
        if not os.path.exists(path):
            return cls(name, "", ServicesFile(name, {}, {}, {}), None)
        document = read_document(path, newline="")
        if document.kind == "json" and strip_jsonc(document.text) != document.text:
            raise ConfigError("cannot edit a JSON services file that has comments or trailing commas; "
                              "edit it by hand or convert it to TOML", path=name)
        return cls(name, document.text, _validate(document), document)

    def index(self, service: VPCService) -> int:
        return list(self.current.services).index(_id(service))

    def json_text(self) -> str:
        """The edited JSON; an API response's ``result_info`` counts follow
        the number of services."""
        if isinstance(self.json, dict):
            info = self.json.get("result_info")
            count = len(self.json_list())
            if isinstance(info, dict) and _is_count(info.get("count")):
                if _is_count(info.get("total_count")):
                    info["total_count"] += count - info["count"]
                info["count"] = count
        return json.dumps(self.json, indent=2) + "\n"

    def json_list(self) -> list[Any]:
        """The list of service objects, under the key the reader uses
        (``result`` when present, else ``services``; ``result`` for a new one)."""
        if isinstance(self.json, dict) and _is_bare_object("json", self.json):
            self.json = [self.json]  # one bare object becomes a list
        if isinstance(self.json, dict):
            key = "services" if "services" in self.json and "result" not in self.json else "result"
            if isinstance(self.json.get(key), dict):  # a single-object envelope becomes a list one
                self.json[key] = [self.json[key]]
            result: list[Any] = self.json.setdefault(key, [])
            return result
        entries: list[Any] = self.json
        return entries

    def check_name_free(self, service: VPCService, old: VPCService | None = None) -> None:
        for other in self.current.services.values():
            if service.name is not None and other.name == service.name and other is not old:
                raise ConfigError(f"a service named {service.name!r} already exists ({other.service_id})",
                                  path=self.path, field="name")

    def commit(self, text: str, expected: dict[str, VPCService]) -> None:
        """Check that ``text`` holds exactly ``expected`` (and the same
        tunnels), then write it atomically."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            result = _validate(parse_document(text, self.path))
        if (result.services != expected or result.tunnels != self.current.tunnels
                or result.certificates != self.current.certificates):  # pragma: no cover
            raise ConfigError("the edit would change other entries, so the file was left as it was "
                              "(please report this)", path=self.path)
        write_atomic(self.path, text)


@contextlib.contextmanager
def _editing(path: str) -> Iterator[None]:
    """Turn an unexpected failure of the TOML editing into a
    :class:`ConfigError`: the file is then left as it was."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot edit this file automatically ({type(exc).__name__}: {exc}); "
                          "the file was left as it was; edit it by hand", path=path) from exc


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_json(path: str | Path) -> bool:
    return str(path).lower().endswith((".json", ".jsonc"))


def _toml_value(value: Any) -> Any:
    """A plain value as tomlkit should write it: objects as inline tables."""
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table[key] = _toml_value(item)
        return table
    return value


def _append_table(document: Document | None, text: str, obj: Mapping[str, Any]) -> str:
    """``text`` with a ``[[services]]`` table for ``obj`` added after the last
    one (at the end when there is none), everything else as it was."""
    table = tomlkit.table()
    for key, value in obj.items():
        table[key] = _toml_value(value)
    block = tomlkit.document()
    block.append("services", tomlkit.aot())
    block["services"].append(table)
    newline = "\r\n" if "\r\n" in text else "\n"
    rendered = tomlkit.dumps(block).replace("\n", newline)
    if not text.strip():
        return (_NEW_FILE_HEADER + "\n").replace("\n", newline) + rendered
    lines = text.splitlines(keepends=True)
    end = _table_end(document, _count_tables(document) - 1, lines) if document is not None else len(lines)
    if end >= len(lines):
        return text.rstrip("\r\n") + newline * 2 + rendered
    rest = lines[end:]
    gap = "" if not rest[0].strip() else newline
    return "".join(lines[:end]) + newline + rendered + gap + "".join(rest)


def _count_tables(document: Document) -> int:
    return sum(1 for _, path in document.headers if len(path) == 2 and path[0] == "services")


def _table_end(document: Document, index: int, lines: list[str]) -> int:
    """The 0-based line after the ``index``-th ``[[services]]`` table's own
    lines: before the next other table, its introducing comments and the
    blank lines above them (``len(lines)`` at the end of the file)."""
    own = ("services", index)
    start = next((line - 1 for line, path in document.headers if path == own), None)
    if start is None:
        return len(lines)
    end = next((line - 1 for line, path in document.headers if line - 1 > start and path[:2] != own),
               len(lines))
    if end == len(lines):
        return end
    while end - 1 > start and _is_comment(lines[end - 1]):
        end -= 1
    while end - 1 > start and not lines[end - 1].strip():
        end -= 1
    return end


def _cut_table(document: Document, index: int) -> str | None:
    """``document``'s text without the ``index``-th ``[[services]]`` table,
    its sub-tables and the comment lines directly above it (a comment block
    that opens the file stays). ``None`` when services are an inline array."""
    headers = document.headers
    own = ("services", index)
    starts = [line for line, path in headers if path == own]
    if not starts:
        return None
    lines = document.text.splitlines(keepends=True)
    start = starts[0] - 1
    end = next((line - 1 for line, path in headers if line - 1 > start and path[:2] != own), len(lines))
    while end - 1 > start and _is_comment(lines[end - 1]):  # they introduce the next table
        end -= 1
    top = start
    while top > 0 and _is_comment(lines[top - 1]):
        top -= 1
    if top == 0:
        top = start
    return "".join(lines[:top] + lines[end:])


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _sync(container: MutableMapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any],
          convert: Any) -> None:
    """Make ``container`` (a table holding ``old``) hold ``new``, touching only
    what changed. Tables are updated key by key; inline tables are rewritten
    whole when anything in them changes."""
    for key, value in new.items():
        here = container.get(key)
        if old.get(key) == value:  # unchanged (perhaps implied, like type = "http")
            continue
        if (isinstance(value, Mapping) and isinstance(here, MutableMapping)
                and not isinstance(here, tomlkit.items.InlineTable) and isinstance(old.get(key), Mapping)):
            _sync(here, old[key], value, convert)
        elif key in container:
            container[key] = convert(value)
        else:
            _add_key(container, key, convert(value))
    for key in old:
        if key not in new and key in container:
            del container[key]


def _add_key(container: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Add ``key`` after the table's last plain key, before trailing comments
    and sub-tables (where plain assignment would put it)."""
    body = getattr(getattr(container, "value", container), "body", None)
    if not isinstance(container, tomlkit.items.Table) or body is None:
        container[key] = value
        return
    last = max((i for i, (k, item) in enumerate(body)
                if k is not None and not isinstance(item, (tomlkit.items.Table, tomlkit.items.AoT))),
               default=None)
    try:
        if last is None:
            raise ValueError("no plain key to follow")
        container.value._insert_at(last + 1, key, value)
    except (AttributeError, ValueError):  # e.g. a table made of dotted keys
        container[key] = value


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
