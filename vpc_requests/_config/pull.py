"""The account's VPC Services through the Cloudflare API: fetch them, compare
them with the services file, and mirror them into it (``service pull`` and
``service diff``).

The official ``cloudflare`` SDK (the ``vpc_requests[cloudflare]`` extra) does
the HTTP: authentication, pagination, retries of 429 / 5xx answers, and
``CLOUDFLARE_BASE_URL``. This module turns its answers into
:class:`~vpc_requests.VPCService` values and its errors into one
:class:`CloudflareAPIError` line; the services file is edited by
:func:`vpc_requests._config.services_file.replace_services`, like every other edit.

::

    VPCError
     +-- CloudflareAPIError    the API refused, or could not be reached
     +-- MissingExtraError     (also ImportError) the SDK is not installed

The API token is read from ``CLOUDFLARE_API_TOKEN`` only; it is never
printed, logged or written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import ConfigError, VPCError
from .._model.service import VPCService
from .services_file import read_services, replace_services

if TYPE_CHECKING:
    from cloudflare import APIStatusError, Cloudflare

__all__ = [
    "ACCOUNT_ENV",
    "EXTRA",
    "TOKEN_ENV",
    "Change",
    "CloudflareAPIError",
    "MissingExtraError",
    "Plan",
    "diff_services",
    "fetch_services",
    "make_client",
    "plan_changes",
    "pull_services",
    "resolve_account_id",
]

log = logging.getLogger("vpc_requests.pull")  # the name it had before the layers; users filter on it

#: The environment variable the API token is read from (as wrangler and the SDK do).
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
#: The environment variable naming the account when ``--account-id`` is not given.
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
#: What to install for this module.
EXTRA = "pip install 'vpc_requests[cloudflare]'"

_PER_PAGE = 50


class CloudflareAPIError(VPCError):
    """The Cloudflare API refused the request (bad token, missing
    permission, unknown account, ...) or could not be reached.

    :param message: one line, quoting the API's own error messages.
    :param status: the HTTP status, ``None`` when there was no answer.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.status))


class MissingExtraError(VPCError, ImportError):
    """The ``cloudflare`` SDK is not installed; the message says what to run."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


class Change(NamedTuple):
    """One difference between the services file and the account.

    :param action: ``"create"`` (only in the account), ``"update"`` (in both,
        different) or ``"delete"`` (only in the file).
    :param local: the file's service (``None`` for ``create``).
    :param remote: the account's service (``None`` for ``delete``).
    """

    action: str
    local: VPCService | None
    remote: VPCService | None

    @property
    def service(self) -> VPCService:
        """The service as it will be (as it was, for ``delete``)."""
        service = self.remote or self.local
        assert service is not None
        return service

    def fields(self) -> list[tuple[str, object, object]]:
        """For ``update``: each API field that differs, as ``(dotted name,
        file's value, account's value)``; ``None`` stands for absent.

        :returns: the differences, sorted by field.
        """
        if self.local is None or self.remote is None:
            return []
        old, new = _flatten(self.local.to_api()), _flatten(self.remote.to_api())
        return [(key, old.get(key), new.get(key)) for key in sorted(set(old) | set(new))
                if old.get(key) != new.get(key)]

    def describe(self) -> str:
        """One line: ``+ name (id)``, ``- name (id)``, or ``~ name (id):
        field 'old' -> 'new', ...``."""
        service = self.service
        label = f"{service.name or '?'} ({service.service_id})"
        if self.action == "create":
            return f"+ {label}"
        if self.action == "delete":
            return f"- {label}"
        changes = ", ".join(f"{key} {_show(old)} -> {_show(new)}" for key, old, new in self.fields())
        return f"~ {label}: {changes}"


class Plan(NamedTuple):
    """What mirroring the account into the services file changes, in the
    file's order, then the account's new services.

    :param changes: the differences; empty when the file already matches.
    :param services: the account's services, as the file will hold them.
    """

    changes: tuple[Change, ...]
    services: tuple[VPCService, ...]

    def count(self, action: str) -> int:
        """How many changes are ``action`` (``create``, ``update``, ``delete``)."""
        return sum(change.action == action for change in self.changes)

    def summary(self) -> str:
        """``2 to create, 1 to update, 0 to delete``."""
        return ", ".join(f"{self.count(action)} to {action}" for action in ("create", "update", "delete"))


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"host": {"ipv4": ...}}`` as ``{"host.ipv4": ...}``."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: object) -> str:
    return "(none)" if value is None else repr(value)


# -- comparing ------------------------------------------------------------------------


def plan_changes(local: Mapping[str, VPCService], remote: Iterable[VPCService]) -> Plan:
    """Compare the file's services with the account's, by ``service_id``.

    Two services are the same when their API objects are equal
    (:meth:`VPCService.to_api`, timestamps included), which is also when
    :func:`~vpc_requests._config.services_file.replace_services` leaves them alone:
    ``service diff`` reports a difference exactly when ``service pull``
    would write.

    :param local: ``service_id`` -> service, as
        :attr:`vpc_requests._config.services_file.ServicesFile.services`.
    :param remote: the account's services.
    :returns: the plan.
    """
    wanted = {service.service_id: service for service in remote}
    changes: list[Change] = []
    for key, service in local.items():
        other = wanted.get(key)
        if other is None:
            changes.append(Change("delete", service, None))
        elif other.to_api() != service.to_api():
            changes.append(Change("update", service, other))
    changes.extend(Change("create", None, service) for key, service in wanted.items() if key not in local)
    return Plan(tuple(changes), tuple(wanted.values()))


# -- the API ----------------------------------------------------------------------------


def make_client(*, max_retries: int | None = None, timeout: float | None = None) -> Cloudflare:
    """A ``cloudflare.Cloudflare`` client authenticated by
    ``CLOUDFLARE_API_TOKEN``; its base URL is ``CLOUDFLARE_BASE_URL`` when
    set (the SDK reads it), else the public API.

    :param max_retries: retries of a 408 / 409 / 429 / 5xx answer or a
        connection failure (the SDK's default, 2, when ``None``).
    :param timeout: seconds per request (the SDK's default when ``None``).
    :returns: the client.
    :raises MissingExtraError: when the SDK is not installed.
    :raises CloudflareAPIError: when ``CLOUDFLARE_API_TOKEN`` is not set.
    """
    try:
        import cloudflare
    except ImportError as exc:
        raise MissingExtraError(
            f"service pull and service diff need the Cloudflare SDK, which is not installed; run: {EXTRA}"
        ) from exc
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CloudflareAPIError(
            f"{TOKEN_ENV} is not set; create an API token that can read the account's Connectivity "
            f"Directory (Workers VPC) and export it as {TOKEN_ENV}")
    options: dict[str, Any] = {}
    if max_retries is not None:
        options["max_retries"] = max_retries
    if timeout is not None:
        options["timeout"] = timeout
    client = cloudflare.Cloudflare(api_token=token, **options)
    # The SDK would also read CLOUDFLARE_EMAIL / CLOUDFLARE_API_KEY /
    # CLOUDFLARE_API_USER_SERVICE_KEY, and an email or key set there would be
    # sent instead of the token: the token alone authenticates (as wrangler
    # prefers it).
    client.api_email = client.api_key = client.user_service_key = None
    return client


def fetch_services(account_id: str, *, client: Cloudflare | None = None) -> list[VPCService]:
    """Every VPC Service of the account, every page of
    ``GET /accounts/{account_id}/connectivity/directory/services``.

    :param account_id: the Cloudflare account id.
    :param client: a ``cloudflare.Cloudflare`` client; :func:`make_client`
        when ``None``.
    :returns: the services, in the API's order.
    :raises CloudflareAPIError: when the API refuses or cannot be reached;
        the message quotes the API's errors and never holds the token.
    :raises ConfigError: when a service of the account cannot be loaded; the
        message names it.
    """
    if client is None:
        with make_client() as own:
            return fetch_services(account_id, client=own)
    import cloudflare

    objects: list[dict[str, Any]] = []
    try:
        pages = client.connectivity.directory.services.list(account_id=account_id, per_page=_PER_PAGE)
        for item in pages:  # the SDK fetches the next page until one comes back empty
            objects.append(item.to_dict(mode="json"))
    except cloudflare.APIStatusError as exc:
        raise _status_error(exc, account_id, client.api_token) from None
    except cloudflare.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise CloudflareAPIError(
            _redact(f"cannot reach the Cloudflare API at {client.base_url}: {cause}; "
                    "check the network (and CLOUDFLARE_BASE_URL when set)", client.api_token)) from None
    except cloudflare.APIError as exc:  # an answer the SDK could not read
        raise CloudflareAPIError(_redact(f"unexpected answer from the Cloudflare API at {client.base_url}: "
                                         f"{exc.message}", client.api_token)) from None
    log.debug("fetched %d services of account %s", len(objects), account_id)
    return [_load(obj) for obj in objects]


def _load(obj: Mapping[str, Any]) -> VPCService:
    """:meth:`VPCService.from_api`, with an error that names the service."""
    try:
        service = VPCService.from_api(obj)
    except ConfigError as exc:
        label = f"{obj.get('name') or '?'} ({obj.get('service_id') or 'no service_id'})"
        where = f" at {exc.field}" if exc.field else ""
        raise ConfigError(f"the account's service {label} cannot be loaded{where}: {exc.message}; "
                          "the services file was left as it was") from None
    if service.service_id is None:
        raise ConfigError(f"the account's service {service.name or '?'} has no service_id; "
                          "the services file was left as it was")
    return service


def _status_error(exc: APIStatusError, account_id: str, token: str | None) -> CloudflareAPIError:
    """One line from an ``APIStatusError``: the status, the API's messages
    and codes, and what to check."""
    status = exc.status_code
    body = exc.body
    messages: list[str] = []
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        for error in body["errors"]:
            if isinstance(error, Mapping) and error.get("message"):
                code = f" (code {error['code']})" if error.get("code") is not None else ""
                messages.append(f"{error['message']}{code}")
    detail = "; ".join(messages) or (str(body).strip()[:200] if body else "") or "no error message"
    hint = {
        400: "check the account id",
        401: f"check {TOKEN_ENV}",
        403: f"check that {TOKEN_ENV} is valid and may read the Connectivity Directory of account {account_id}",
        404: f"check the account id {account_id!r}",
        429: "rate limited; try again later",
    }.get(status, "try again later" if status >= 500 else "")
    text = f"the Cloudflare API answered {status}: {detail}" + (f"; {hint}" if hint else "")
    return CloudflareAPIError(_redact(" ".join(text.split()), token), status)


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


# -- the account id -----------------------------------------------------------------------


def resolve_account_id(given: str | None = None, *, wrangler_file: str | Path | None = None,
                       environment: str | None = None) -> str:
    """The account to read: ``given`` (``--account-id``), else
    ``CLOUDFLARE_ACCOUNT_ID``, else the wrangler file's ``account_id``
    (``[env.NAME]``'s own when it sets one, as wrangler inherits it).

    :param given: an explicit account id.
    :param wrangler_file: the Worker's configuration, when there is one.
    :param environment: the selected environment.
    :returns: the account id.
    :raises ConfigError: when none of them gives one, or the wrangler
        file's ``account_id`` is not a non-empty string.
    """
    for value in (given, os.environ.get(ACCOUNT_ENV)):
        if value and value.strip():
            return value.strip()
    if wrangler_file is not None and os.path.isfile(wrangler_file):
        from .wrangler import read_document

        document = read_document(wrangler_file)
        data = document.data if isinstance(document.data, Mapping) else {}
        where: tuple[Any, ...] = ("account_id",)
        value = data.get("account_id")
        env = data.get("env")
        if environment and isinstance(env, Mapping) and isinstance(env.get(environment), Mapping) \
                and "account_id" in env[environment]:
            value, where = env[environment]["account_id"], ("env", environment, "account_id")
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise document.error(f"must be a non-empty string, got {value!r}", where)
            return value.strip()
    raise ConfigError(f"no account id: give --account-id ID, set {ACCOUNT_ENV}, "
                      "or put account_id in the wrangler file")


# -- pull -----------------------------------------------------------------------------


def pull_services(path: str | Path, account_id: str, *, dry_run: bool = False,
                  client: Cloudflare | None = None,
                  services: Sequence[VPCService] | None = None,
                  **edit_options: Any) -> Plan:
    """Mirror the account's services into the services file: create, update
    and delete by ``service_id``; comments, ``[tunnels]`` and the other tables
    stay; one atomic write, and none when nothing changed.

    :param path: the services file (created when missing and the account
        has services).
    :param account_id: the account.
    :param dry_run: compute the changes, write nothing.
    :param client: a ``cloudflare.Cloudflare`` client (see :func:`make_client`).
    :param services: the account's services when already fetched (no API call).
    :param edit_options: how the edit waits for the file's lock
        (``lock_timeout``, ``waiting``: see
        :func:`~vpc_requests._config.services_file.replace_services`).
    :returns: the changes (made, or to be made when ``dry_run``).
    :raises CloudflareAPIError: as :func:`fetch_services`; the file is untouched.
    :raises ConfigError: when the file is broken or a service cannot be
        loaded; the file is untouched.
    """
    remote = list(services) if services is not None else fetch_services(account_id, client=client)
    before = replace_services(path, remote, write=not dry_run, **edit_options)
    return plan_changes(before.services, remote)


def diff_services(path: str | Path, account_id: str, *, client: Cloudflare | None = None) -> Plan:
    """The differences between the services file and the account (what
    :func:`pull_services` would change).

    :param path: the services file (a missing one holds no services).
    :returns: the plan; ``plan.changes`` is empty when they are equal.
    :raises CloudflareAPIError: as :func:`fetch_services`.
    :raises ConfigError: when the file is broken.
    """
    local = read_services(path, missing_ok=True)  # a broken file fails before any API call
    return plan_changes(local.services, fetch_services(account_id, client=client))
