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
replaces the file atomically (:func:`write_atomic`).

Every edit is a read-modify-write under the file's lock (:func:`locked`, a
``filelock`` lock on ``.<name>.lock`` beside the file a symlink resolves to),
so concurrent editors (several ``vpc-requests`` processes) each see the
previous one's result and no change is lost; an edit that cannot get the
lock in time raises :class:`LockTimeout` and changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import stat
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import filelock
import tomlkit
import tomlkit.items

from .._compat import insert_key_at
from .._errors import ConfigError
from .._model.service import API_FIELDS, VPCService
from .._transport.tls import CertificateFiles
from .._transport.tunnels import TUNNEL_SCHEMES, parse_tunnel
from .sources import describe as _describe
from .sources import did_you_mean
from .wrangler import (
    ConfigWarning,
    Document,
    KeyPath,
    parse_document,
    read_bindings,
    read_document,
    strip_jsonc,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_SERVICES_FILE",
    "TUNNEL_SCHEMES",
    "LockTimeout",
    "ServiceInUse",
    "ServicesFile",
    "bindings_using",
    "check_tunnel",
    "create_service",
    "default_services_path",
    "delete_service",
    "find_service",
    "lock_path",
    "locked",
    "lookup",
    "read_services",
    "refers_to",
    "replace_services",
    "update_service",
    "write_atomic",
]

#: The services file's name, looked for beside the wrangler file.
DEFAULT_SERVICES_FILE = "vpc-services.toml"

#: Seconds an edit waits for another edit of the same file to finish.
DEFAULT_LOCK_TIMEOUT = 10.0

#: Told once, with a sentence saying so, when an edit has to wait for the lock.
Waiting = Callable[[str], None]

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
        raise document.error(f"must be a table of tunnel_id = \"transport URL\", got {_a(_type_name(raw))}",
                             ("tunnels",))
    tunnels: dict[str, str] = {}
    for tunnel_id, url in raw.items():
        try:
            tunnels[tunnel_id] = check_tunnel(url)
        except ConfigError as exc:
            raise document.error(exc.message, ("tunnels", tunnel_id)) from None
    return tunnels


def _type_name(value: object) -> str:
    """The TOML/JSON name of a value's type, for messages that must not show
    the value."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", dict: "table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def check_tunnel(url: object) -> str:
    """Validate a tunnel transport by the rules of
    :func:`vpc_requests._transport.tunnels.parse_tunnel` (the ones bindings use):
    ``direct``, or a ``socks5://``, ``socks5h://``, ``http://`` or
    ``https://`` URL with a host, an optional port and optional
    ``user:password@``.

    :param url: the transport.
    :returns: ``url`` unchanged (a plain ``str``).
    :raises ConfigError: when it is not one of those; the message never
        shows a password.
    """
    if not isinstance(url, str):
        # Only the value's type: a list or table may hold a URL with its
        # password.
        raise ConfigError(f"must be 'direct' or a URL socks5://, socks5h://, http:// or https://, "
                          f"got {_a(_type_name(url))} (not a string)")
    try:
        parse_tunnel(str(url))
    except ConfigError:
        raise
    except ValueError as exc:  # urllib's own ("Invalid IPv6 URL"): never the URL, so no password
        raise ConfigError(f"not a valid transport URL ({exc}); use 'direct' or a URL socks5://, "
                          "socks5h://, http:// or https://") from None
    return str(url)


def refers_to(service: VPCService, service_id: str | None, name: str | None) -> bool:
    """Whether a reference names ``service``: by ``service_id`` when it has
    one (a binding's ``service`` is then ignored, as wrangler ignores it),
    else by ``name``.

    :param service: the service.
    :param service_id: the reference's id, or ``None``.
    :param name: the reference's service name, or ``None``.
    """
    if service_id is not None:
        return service.service_id == service_id
    return name is not None and service.name == name


def lookup(services: ServicesFile, service_id: str | None, name: str | None) -> list[VPCService]:
    """The services of a file that a reference names (:func:`refers_to`):
    at most one by id; by name, every service of that name.

    :param services: the file's contents.
    :param service_id: the reference's id, or ``None``.
    :param name: the reference's service name, or ``None``.
    """
    if service_id is not None:
        found = services.services.get(service_id)
        return [] if found is None else [found]
    return [s for s in services.services.values() if refers_to(s, None, name)]


def find_service(services: ServicesFile, ref: str) -> VPCService:
    """The service whose ``service_id`` is ``ref``, else the one named ``ref``.

    :param services: the file's contents.
    :param ref: an id or a name.
    :returns: the service.
    :raises ConfigError: when none or several match; the message lists them.
    """
    named = lookup(services, ref, None) or lookup(services, None, ref)
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


class LockTimeout(ConfigError):
    """Another edit held the services file's lock for longer than the edit
    was willing to wait; nothing was changed."""


class ServiceInUse(ConfigError):
    """A service that bindings still name was not deleted.

    :param bindings: those bindings (``NAME``, or ``NAME [env.ENV]``).
    """

    def __init__(self, message: str, *, path: str | None = None, bindings: tuple[str, ...] = ()) -> None:
        super().__init__(message, path=path)
        self.bindings = bindings

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_in_use, (self.message, self.path, self.bindings))


def _rebuild_in_use(message: str, path: str | None, bindings: tuple[str, ...]) -> ServiceInUse:
    return ServiceInUse(message, path=path, bindings=bindings)


def lock_path(path: str | Path) -> Path:
    """The lock file of a services file: ``.<name>.lock`` beside the file
    ``path`` resolves to, so that an edit through a symlink and an edit of
    the file itself take the same lock. It stays after the edit (removing it
    would let two editors lock two different files).

    :param path: the services file (it need not exist).
    """
    target = Path(os.path.realpath(path))
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def locked(path: str | Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT,
           waiting: Waiting | None = None) -> Iterator[None]:
    """Hold the edit lock of the services file ``path`` (:func:`lock_path`):
    every read-modify-write of the file happens inside it. The lock is an OS
    file lock (``flock``), so it is released when the process ends, however
    it ends. A new lock file gets the read and write bits of the services
    file, so that everyone who may edit the file may take its lock.

    :param timeout: seconds to wait for another edit to finish.
    :param waiting: called once, with a sentence saying so, when the lock is
        held by another edit and this one has to wait.
    :raises LockTimeout: when the lock was not free within ``timeout``.
    :raises ConfigError: when the lock file cannot be created.
    """
    where = lock_path(path)
    try:  # whoever may write the file may take its lock (a shared, group-writable file)
        mode = stat.S_IMODE(os.stat(path).st_mode) & 0o666 | 0o600
    except OSError:
        lock = filelock.FileLock(str(where))
    else:
        lock = filelock.FileLock(str(where), mode=mode)
    try:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if waiting is not None:
                waiting(f"{path}: another edit of this file is in progress; waiting up to {timeout:g} s "
                        f"for its lock ({where})")
            lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise LockTimeout(f"another edit held the lock ({where}) for more than {timeout:g} s; "
                          "nothing was changed, try again", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot create the lock file {where}: {exc.strerror or exc}; nothing was changed",
                          path=str(path)) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _edit(path: str | Path, lock_timeout: float, waiting: Waiting | None) -> Iterator[_Edit]:
    """The file read and validated under its lock, which is held until the
    edit is committed (or has failed)."""
    with locked(path, timeout=lock_timeout, waiting=waiting):
        yield _Edit.load(path)


def create_service(path: str | Path, service: VPCService, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                   waiting: Waiting | None = None) -> VPCService:
    """Add ``service`` to the services file (created when missing).

    The service gets a new UUID ``service_id`` when it has none, and
    ``created_at`` / ``updated_at`` stamps. In a TOML file the new
    ``[[services]]`` table goes at the end, so nothing already written moves.

    :param lock_timeout: seconds to wait for another edit (:func:`locked`).
    :param waiting: see :func:`locked`.
    :returns: the service as written.
    :raises ConfigError: when the file is broken, or the id or name is taken.
    :raises LockTimeout: when another edit held the file too long.
    """
    with _edit(path, lock_timeout, waiting) as edit:
        return _create(edit, service)


def _create(edit: _Edit, service: VPCService) -> VPCService:
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


def update_service(path: str | Path, ref: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                   waiting: Waiting | None = None, **changes: Any) -> VPCService:
    """Change fields of the service ``ref`` (an id or a name) in place; keys
    that do not change keep their text, comments and position.

    Giving any host field (``hostname``, ``ipv4``, ``ipv6``) replaces the
    host: the host fields not given are cleared, and so are the
    ``resolver_ips`` when the new host is not a hostname. So
    ``update_service(path, "api", ipv4="10.0.0.7")`` turns a hostname
    service into an IP service (its ``tunnel_id`` stays). Likewise a new
    ``type`` drops the ports of the old one: ``update_service(path, "db",
    type="tcp", tcp_port=5432)`` turns an http service into a tcp service.

    :param lock_timeout: seconds to wait for another edit (:func:`locked`).
    :param waiting: see :func:`locked`.
    :param changes: :class:`VPCService` fields to change (not ``service_id``).
    :returns: the service as written.
    :raises ConfigError: when the file is broken, ``ref`` unknown, the result
        invalid or the new name taken.
    :raises LockTimeout: when another edit held the file too long.
    """
    with _edit(path, lock_timeout, waiting) as edit:
        return _update(edit, ref, changes)


def _update(edit: _Edit, ref: str, changes: dict[str, Any]) -> VPCService:
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


def delete_service(path: str | Path, ref: str, *, bound_in: str | Path | None = None,
                   lock_timeout: float = DEFAULT_LOCK_TIMEOUT, waiting: Waiting | None = None) -> VPCService:
    """Remove the service ``ref`` (an id or a name), with the comment lines
    directly above its table.

    :param bound_in: a Worker configuration (wrangler file): refuse to
        delete a service that a binding of it, in any environment, names
        (:func:`bindings_using`). ``None`` deletes without looking.
    :param lock_timeout: seconds to wait for another edit (:func:`locked`).
    :param waiting: see :func:`locked`.
    :returns: the removed service.
    :raises ServiceInUse: when bindings of ``bound_in`` name the service.
    :raises ConfigError: when the file (or ``bound_in``) is broken or ``ref``
        unknown.
    :raises LockTimeout: when another edit held the file too long.
    """
    with _edit(path, lock_timeout, waiting) as edit:
        return _delete(edit, ref, bound_in)


def _delete(edit: _Edit, ref: str, bound_in: str | Path | None) -> VPCService:
    old = find_service(edit.current, ref)
    if bound_in is not None:
        users = bindings_using(bound_in, old)
        if users:
            raise ServiceInUse(f"service {old.name or '?'} ({old.service_id}) is still named by "
                               f"{'binding' if len(users) == 1 else 'bindings'} {', '.join(users)} in {bound_in}; "
                               "nothing was deleted", path=edit.path, bindings=tuple(users))
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


def replace_services(path: str | Path, services: Iterable[VPCService], *, write: bool = True,
                     lock_timeout: float = DEFAULT_LOCK_TIMEOUT, waiting: Waiting | None = None) -> ServicesFile:
    """Make the services file hold exactly ``services``, matched by
    ``service_id``, in one atomic write (what ``service pull`` does).

    A service whose API object changed is updated in place (only the keys
    that changed are rewritten, so comments stay); a service the file lacks
    is appended; a service not in ``services`` is removed with the comment
    lines directly above it. The values are written as given, timestamps
    included (nothing is stamped). ``[tunnels]`` and every other table stay as
    they are. A file whose services already match is not rewritten.

    :param services: the services, each with a ``service_id``.
    :param write: ``False`` checks that the edit can be made but writes nothing.
    :param lock_timeout: seconds to wait for another edit (:func:`locked`).
    :param waiting: see :func:`locked`.
    :returns: what the file held before.
    :raises ConfigError: when the file is broken, a service has no
        ``service_id`` or two share one; the file is then left as it was.
    :raises LockTimeout: when another edit held the file too long.
    """
    wanted: dict[str, VPCService] = {}
    for service in services:
        if service.service_id is None:
            raise ConfigError(f"every service needs a service_id; {service!r} has none", path=str(path))
        if service.service_id in wanted:
            raise ConfigError(f"service_id {service.service_id!r} is given more than once", path=str(path))
        wanted[service.service_id] = service
    with _edit(path, lock_timeout, waiting) as edit:
        return _replace(edit, wanted, write)


def _replace(edit: _Edit, wanted: Mapping[str, VPCService], write: bool) -> ServicesFile:
    """The read-modify-write of :func:`replace_services` on a loaded file."""
    current = edit.current.services
    changed = [key for key in current if key in wanted and current[key].to_api() != wanted[key].to_api()]
    gone = [key for key in current if key not in wanted]
    new = [key for key in wanted if key not in current]
    if not (changed or gone or new):
        return edit.current
    if edit.json is not None:
        entries = edit.json_list()
        positions = list(current)
        for key in changed:
            _sync(entries[positions.index(key)], current[key].to_api(), wanted[key].to_api(), lambda v: v)
        for key in reversed(gone):
            del entries[positions.index(key)]
        entries.extend(wanted[key].to_api() for key in new)
        text = edit.json_text()
    else:
        with _editing(edit.path):
            text = _replace_toml(edit, wanted, changed, gone, new)
    if write:
        edit.commit(text, dict(wanted))
    return edit.current


def _replace_toml(edit: _Edit, wanted: Mapping[str, VPCService], changed: list[str], gone: list[str],
                  new: list[str]) -> str:
    """The TOML text of :func:`replace_services`: updates through ``tomlkit``,
    then each removal and each addition on the text, re-parsed in between so
    that lines and indices stay right."""
    current = edit.current.services
    text = edit.text
    if changed:
        doc = tomlkit.parse(text)
        positions = list(current)
        for key in changed:
            _sync(doc["services"][positions.index(key)], current[key].to_api(), wanted[key].to_api(),
                  _toml_value)
        text = tomlkit.dumps(doc)
    remaining = list(current)
    for key in reversed(gone):  # the last first, so the earlier indices hold
        index = remaining.index(key)
        cut = _cut_table(parse_document(text, edit.path), index)
        if cut is None:  # an inline array: tomlkit handles the commas
            doc = tomlkit.parse(text)
            del doc["services"][index]
            cut = tomlkit.dumps(doc)
        text = cut
        del remaining[index]
    for key in new:
        obj = wanted[key].to_api()
        doc = tomlkit.parse(text)
        if isinstance(doc.get("services"), tomlkit.items.Array):
            doc["services"].append(_toml_value(obj))
            text = tomlkit.dumps(doc)
        else:
            document = parse_document(text, edit.path) if text.strip() else None
            text = _append_table(document, text, obj)
    return text


def bindings_using(wrangler: str | Path, service: VPCService) -> list[str]:
    """The bindings of a Worker configuration that name ``service``, by its
    ``service_id`` or (``service = "<name>"``) by its name, at the top level
    and in every ``[env.NAME]``.

    :param wrangler: the wrangler file.
    :returns: ``NAME`` for a top-level binding, ``NAME [env.ENV]`` for one of
        an environment, in file order.
    :raises ConfigError: when the file is missing or broken (so whether the
        service is in use cannot be told).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        document = read_document(wrangler)
        envs = document.data.get("env") if isinstance(document.data, Mapping) else None
        names: list[str | None] = [None, *(envs if isinstance(envs, Mapping) else ())]
        found: list[str] = []
        for environment in names:
            for spec in read_bindings(document, environment):
                if refers_to(service, spec.service_id, spec.service):
                    found.append(spec.binding if environment is None else f"{spec.binding} [env.{environment}]")
    return found


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
        insert_key_at(container, last + 1, key, value)
    except (AttributeError, ValueError):  # e.g. a table made of dotted keys
        container[key] = value


def _now() -> str:
    """The API's timestamp format, UTC."""
    stamp = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return stamp.isoformat().replace("+00:00", "Z")


def write_atomic(path: str | Path, text: str) -> None:
    """Replace the contents of ``path`` with ``text`` atomically: a temporary
    file in the same directory, written and flushed to disk, then
    :func:`os.replace`, so a reader sees the old file or the new one, never
    a part. On any error the file is left as it was.

    - A symlink is followed: its target is replaced, the link stays a link.
    - The file's owner, group and mode are kept (a new file gets
      ``0o666 & ~umask``); other metadata (ACLs, extended attributes) are not.
    - A file with more than one hard link is refused: replacing it would
      leave its other names with the old contents.

    :raises ConfigError: for a hard-linked file, or one whose owner or group
        this process cannot give the new file; the file is untouched.
    :raises OSError: when the directory is not writable; the file is untouched.
    """
    target = os.path.realpath(path)
    try:
        before: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        before = None
    if before is not None and before.st_nlink > 1:
        raise ConfigError(
            f"the file has {before.st_nlink} hard links; replacing it would leave the other names "
            "with the old contents, so nothing was changed. Edit a file with one name (a symlink "
            "is fine)", path=str(path))
    directory = os.path.dirname(target)
    handle, temporary = _temporary(directory, os.path.basename(target), 0o600 if before else 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            if before is not None:
                _keep_owner_and_mode(out.fileno(), temporary, before, str(path))
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _temporary(directory: str, name: str, mode: int) -> tuple[int, str]:
    """A new file ``.<name>.<random>.tmp`` in ``directory``, opened for
    writing, created with ``mode`` (less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, mode), temporary
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    raise FileExistsError(f"no free temporary name in {directory}")  # pragma: no cover


def _keep_owner_and_mode(handle: int, temporary: str, before: os.stat_result, path: str) -> None:
    """Give the open temporary file the owner, group and mode of the file
    it replaces (owner first: a change of owner may clear set-id bits).
    Windows reports no owner (0, 0) and, before Python 3.13, has no
    ``fchmod``."""
    now = os.fstat(handle)
    if (now.st_uid, now.st_gid) != (before.st_uid, before.st_gid):
        try:
            os.fchown(handle, before.st_uid, before.st_gid)
        except PermissionError:
            raise ConfigError(
                f"cannot keep the file's owner and group (uid {before.st_uid}, gid {before.st_gid}) on the "
                "new contents, so nothing was changed; edit it as its owner", path=path) from None
    if hasattr(os, "fchmod"):
        os.fchmod(handle, stat.S_IMODE(before.st_mode))
    else:  # pragma: no cover - Windows before Python 3.13
        os.chmod(temporary, stat.S_IMODE(before.st_mode))


def _fsync_directory(directory: str) -> None:
    """Make the rename durable, where the platform allows it."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(handle)
    except OSError:  # pragma: no cover - file systems that cannot
        pass
    finally:
        os.close(handle)
