"""The VPC Service model: an immutable, validated mirror of a Cloudflare
Workers VPC Service (``type`` ``http`` or ``tcp``), and its Cloudflare API
JSON shape.

A service is where a binding's connections go (docs/semantics.rst, S1-S3): a host (a
``hostname``, or an ``ipv4`` and/or ``ipv6`` address), a port per scheme (an
``http`` service) or one ``tcp_port`` (a ``tcp`` service, reached with
``connect()``, never ``fetch()``), and how the origin's certificate is checked
(S6): the verification mode and the ids of the certificates uploaded to
Cloudflare (``certificate_authority``, ``client_certificate``), which the
services file's ``[certificates]`` table maps to local files.

Normalisation choices (documented, and relied upon by equality and hashing):

* ``hostname`` is lower-cased. A trailing dot (an absolute name) is *kept*: it
  changes how a resolver with search domains treats the name, so ``api.`` and
  ``api`` are different services. The 253-character limit does not count it.
  Internationalised names are kept as given (Unicode, lower-cased); the socket
  layer encodes them for DNS.
* IP addresses are stored in their canonical text form (IPv6 compressed,
  without brackets). IPv6 zone ids (``fe80::1%eth0``) are refused.
* Ports are stored as given; ``None`` for both means "80 and 443" (use
  :meth:`VPCService.port_for`), so :meth:`VPCService.to_api` only writes the
  ports that were set.
* ``resolver_ips`` become a tuple of canonical ``ip``, ``ip:port`` or
  ``[ipv6]:port`` strings, in the given order.
* A ``tcp`` service has no ``http_port`` / ``https_port`` and an ``http``
  service no ``tcp_port`` / ``app_protocol``: the API keeps them apart, and a
  mix is refused rather than half-used. ``tcp_port`` may be absent (the API
  types it optional); :meth:`VPCService.port_for` is ``None`` for every URL
  scheme of a ``tcp`` service.
* :meth:`VPCService.from_api` ignores unknown top-level keys (the API adds
  response fields), but refuses unknown keys inside ``host``, its networks and
  ``tls_settings``, where a typo would silently change the route. The known
  top-level keys are :data:`API_FIELDS`, for loaders that want to warn.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from . import modes
from .hosts import DEFAULT_PORTS, host_port, ip_literal
from .modes import DEFAULT_CERT_VERIFICATION_MODE, AppProtocol, CertVerificationMode, ServiceType

__all__ = ["API_FIELDS", "VPCService"]

#: The top-level keys of the API object that :meth:`VPCService.from_api` reads.
API_FIELDS: frozenset[str] = frozenset(
    {"service_id", "type", "name", "http_port", "https_port", "tcp_port", "app_protocol",
     "host", "tls_settings", "created_at", "updated_at"}
)

_DEFAULT_MODE = DEFAULT_CERT_VERIFICATION_MODE
_MAX_HOSTNAME = 253
_MAX_LABEL = 63
_HOST_KEYS = ("hostname", "ipv4", "ipv6", "network", "resolver_network")
_NETWORK_KEYS = ("tunnel_id",)
_RESOLVER_NETWORK_KEYS = ("tunnel_id", "resolver_ips")
_TLS_KEYS = ("cert_verification_mode", "certificate_authority", "client_certificate")

_HOSTNAME = "host.hostname"
_IPV4 = "host.ipv4"
_IPV6 = "host.ipv6"
_RESOLVER_IPS = "host.resolver_network.resolver_ips"
_MODE = "tls_settings.cert_verification_mode"
_HTTP_ONLY = ("http_port", "https_port")
_TCP_ONLY = ("tcp_port", "app_protocol")


@dataclass(frozen=True, init=False, repr=False)
class VPCService:
    """A Cloudflare VPC Service: where a binding connects.

    Build one with keyword arguments or from the API's JSON with
    :meth:`from_api`. Instances are immutable, hashable and picklable; every
    argument is validated and normalised here, so an instance is always valid.

    :param hostname: DNS name of the origin (exclusive with the IPs).
    :param ipv4: IPv4 address of the origin.
    :param ipv6: IPv6 address of the origin (brackets optional).
    :param http_port: port for ``http`` URLs.
    :param https_port: port for ``https`` URLs. When neither port is given
        they are 80 and 443; when only one is, only that scheme is allowed.
    :param name: the service's name.
    :param service_id: the service's id (what ``wrangler`` bindings name).
    :param tunnel_id: the Cloudflare Tunnel that reaches the origin.
    :param resolver_ips: DNS resolvers for ``hostname`` (``ip``, ``ip:port``
        or ``[ipv6]:port``); only with ``hostname``.
    :param cert_verification_mode: ``verify_full`` (chain and name),
        ``verify_ca`` (chain only) or ``disabled``.
    :param type: ``http`` (default: reached with ``fetch()`` and requests) or
        ``tcp`` (reached with ``connect()``; ``fetch()`` refuses it).
    :param tcp_port: a ``tcp`` service's port.
    :param app_protocol: a ``tcp`` service's protocol: ``postgresql`` or
        ``mysql`` (informational).
    :param certificate_authority: id of a CA certificate uploaded to
        Cloudflare that the origin's certificate must chain to
        (``tls_settings.certificate_authority``); the services file's
        ``[certificates]`` table maps it to a local PEM file.
    :param client_certificate: id of an uploaded client (mTLS) certificate
        presented to the origin (``tls_settings.client_certificate``), mapped
        the same way.
    :param created_at: the API's creation timestamp, kept for round trips.
    :param updated_at: the API's update timestamp, kept for round trips.
    :raises ConfigError: when a value is invalid; ``.field`` names it by its
        API path (``host.hostname``, ``http_port``, ...).
    """

    __slots__ = (
        "hostname", "ipv4", "ipv6", "http_port", "https_port", "name",
        "service_id", "tunnel_id", "resolver_ips", "cert_verification_mode",
        "created_at", "updated_at", "type", "tcp_port", "app_protocol",
        "certificate_authority", "client_certificate", "_tls_given",
    )

    hostname: str | None
    ipv4: str | None
    ipv6: str | None
    http_port: int | None
    https_port: int | None
    name: str | None
    service_id: str | None
    tunnel_id: str | None
    resolver_ips: tuple[str, ...]
    cert_verification_mode: CertVerificationMode
    created_at: str | None
    updated_at: str | None
    type: ServiceType
    tcp_port: int | None
    app_protocol: AppProtocol | None
    certificate_authority: str | None
    client_certificate: str | None
    if TYPE_CHECKING:
        # Whether from_api() was given tls_settings (kept for to_api() round
        # trips). Declared for type checkers only: at run time it is a slot,
        # not a dataclass field, so equality, hashing and repr ignore it.
        _tls_given: bool

    def __init__(
        self,
        *,
        hostname: str | None = None,
        ipv4: str | None = None,
        ipv6: str | None = None,
        http_port: int | None = None,
        https_port: int | None = None,
        name: str | None = None,
        service_id: str | None = None,
        tunnel_id: str | None = None,
        resolver_ips: tuple[str, ...] | list[str] = (),
        cert_verification_mode: CertVerificationMode = _DEFAULT_MODE,
        created_at: str | None = None,
        updated_at: str | None = None,
        type: ServiceType = "http",  # the API's name, though it shadows the builtin
        tcp_port: int | None = None,
        app_protocol: AppProtocol | None = None,
        certificate_authority: str | None = None,
        client_certificate: str | None = None,
    ) -> None:
        kind = modes.service_type(type)
        _check_type_fields(kind, {"http_port": http_port, "https_port": https_port,
                                  "tcp_port": tcp_port, "app_protocol": app_protocol})
        if hostname is None and ipv4 is None and ipv6 is None:
            raise ConfigError(
                "a service needs a host: hostname, or ipv4 and/or ipv6; none was given",
                field="host",
            )
        if hostname is not None and (ipv4 is not None or ipv6 is not None):
            ips = ", ".join(
                f"{key}={value!r}" for key, value in (("ipv4", ipv4), ("ipv6", ipv6)) if value is not None
            )
            raise ConfigError(
                f"give either hostname or ipv4/ipv6, not both; got hostname={hostname!r}, {ips}",
                field="host",
            )
        network = "host.resolver_network" if hostname is not None else "host.network"
        ips_given = _resolver_list(resolver_ips)
        if ips_given and hostname is None:
            raise ConfigError(
                f"resolver_ips {list(ips_given)!r} only apply to a hostname service; "
                "an IP service has host.network, which takes only tunnel_id",
                field=_RESOLVER_IPS,
            )
        values = {
            "hostname": None if hostname is None else _hostname(hostname),
            "ipv4": None if ipv4 is None else _ipv4(ipv4),
            "ipv6": None if ipv6 is None else _ipv6(ipv6),
            "http_port": None if http_port is None else _port(http_port, "http_port"),
            "https_port": None if https_port is None else _port(https_port, "https_port"),
            "name": _text(name, "name"),
            "service_id": _text(service_id, "service_id"),
            "tunnel_id": _text(tunnel_id, f"{network}.tunnel_id"),
            "resolver_ips": tuple(_resolver_ip(ip, i) for i, ip in enumerate(ips_given)),
            "cert_verification_mode": modes.cert_verification_mode(cert_verification_mode, _MODE),
            "created_at": _text(created_at, "created_at"),
            "updated_at": _text(updated_at, "updated_at"),
            "type": kind,
            "tcp_port": None if tcp_port is None else _port(tcp_port, "tcp_port"),
            "app_protocol": None if app_protocol is None else modes.app_protocol(app_protocol),
            "certificate_authority": _text(certificate_authority, "tls_settings.certificate_authority"),
            "client_certificate": _text(client_certificate, "tls_settings.client_certificate"),
            "_tls_given": False,
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # -- alternate constructor and API shape ---------------------------------

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> VPCService:
        """Build a service from Cloudflare's API JSON object.

        Accepts what the API returns (``created_at``, ``updated_at`` and any
        other top-level response field; unknown top-level keys are ignored)
        and what a hand-written services file holds (``type`` may be left
        out; ports may be digit strings). JSON ``null`` counts as absent.

        :param obj: the service object, e.g. ``{"type": "http", "host":
            {"hostname": "api.internal", "resolver_network": {"tunnel_id":
            "..."}}, "https_port": 8443}``.
        :returns: the validated service.
        :raises ConfigError: when the object is invalid; ``.field`` is the
            API path of the bad value (``host.ipv4``, ``type``, ...).
        """
        if not isinstance(obj, Mapping):
            raise ConfigError(f"a VPC service must be a JSON object, got {_kind(obj)} {obj!r}")
        host = obj.get("host")
        if not isinstance(host, Mapping):
            if host is None:
                raise ConfigError(
                    "missing; give {hostname, resolver_network} or {ipv4 and/or ipv6, network}",
                    field="host",
                )
            raise ConfigError(f"must be a JSON object, got {_kind(host)} {host!r}", field="host")
        _known(host, _HOST_KEYS, "host")
        kwargs: dict[str, Any] = {
            "hostname": host.get("hostname"),
            "ipv4": host.get("ipv4"),
            "ipv6": host.get("ipv6"),
        }
        if kwargs["hostname"] is not None:
            if host.get("network") is not None:
                raise ConfigError(
                    "a hostname service takes host.resolver_network, not host.network",
                    field="host.network",
                )
            network = _sub_object(host, "resolver_network", "host.resolver_network", _RESOLVER_NETWORK_KEYS)
            resolvers = network.get("resolver_ips")
            kwargs["resolver_ips"] = () if resolvers is None else resolvers
        else:
            if host.get("resolver_network") is not None:
                raise ConfigError(
                    "an IP service (ipv4/ipv6) takes host.network, not host.resolver_network "
                    "(which needs host.hostname)",
                    field="host.resolver_network",
                )
            network = _sub_object(host, "network", "host.network", _NETWORK_KEYS)
        kwargs["tunnel_id"] = network.get("tunnel_id")
        for key in ("http_port", "https_port", "tcp_port"):
            kwargs[key] = _api_port(obj.get(key), key)
        for key in ("name", "service_id", "created_at", "updated_at", "app_protocol"):
            kwargs[key] = obj.get(key)
        if obj.get("type") is not None:
            kwargs["type"] = obj["type"]
        tls = _sub_object(obj, "tls_settings", "tls_settings", _TLS_KEYS)
        mode = tls.get("cert_verification_mode")
        if mode is not None:
            kwargs["cert_verification_mode"] = mode
        for key in ("certificate_authority", "client_certificate"):
            kwargs[key] = tls.get(key)
        service = cls(**kwargs)
        if mode is not None:
            object.__setattr__(service, "_tls_given", True)
        return service

    def to_api(self) -> dict[str, Any]:
        """The service as Cloudflare's API JSON object.

        Only fields that are set appear: ports only when given,
        ``tls_settings`` only when the mode is not the default, was given
        to :meth:`from_api`, or a certificate id is set (the mode is then
        always written, as the API requires it). ``VPCService.from_api(s.to_api()) == s``.

        :returns: a new ``dict`` of plain JSON values.
        """
        obj: dict[str, Any] = {}
        if self.service_id is not None:
            obj["service_id"] = self.service_id
        obj["type"] = self.type
        if self.name is not None:
            obj["name"] = self.name
        for key in (*_HTTP_ONLY, *_TCP_ONLY):
            value = getattr(self, key)
            if value is not None:
                obj[key] = value
        host: dict[str, Any] = {}
        network: dict[str, Any] = {}
        if self.tunnel_id is not None:
            network["tunnel_id"] = self.tunnel_id
        if self.hostname is not None:
            host["hostname"] = self.hostname
            if self.resolver_ips:
                network["resolver_ips"] = list(self.resolver_ips)
            if network:
                host["resolver_network"] = network
        else:
            if self.ipv4 is not None:
                host["ipv4"] = self.ipv4
            if self.ipv6 is not None:
                host["ipv6"] = self.ipv6
            if network:
                host["network"] = network
        obj["host"] = host
        ids = {key: getattr(self, key) for key in ("certificate_authority", "client_certificate")
               if getattr(self, key) is not None}
        if self._tls_given or self.cert_verification_mode != _DEFAULT_MODE or ids:
            obj["tls_settings"] = {"cert_verification_mode": self.cert_verification_mode, **ids}
        if self.created_at is not None:
            obj["created_at"] = self.created_at
        if self.updated_at is not None:
            obj["updated_at"] = self.updated_at
        return obj

    def replace(self, **changes: Any) -> VPCService:
        """A copy with some fields changed, validated again (like
        :func:`dataclasses.replace`).

        :param changes: constructor arguments to change.
        :returns: the new service.
        :raises TypeError: for a name that is not a field.
        :raises ConfigError: when the result is invalid.
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise TypeError(
                f"VPCService has no field {', '.join(map(repr, unknown))}; fields: {', '.join(_FIELDS)}"
            )
        kwargs = {key: getattr(self, key) for key in _FIELDS}
        kwargs.update(changes)
        return _restore(kwargs, self._tls_given)

    # -- what the transport reads --------------------------------------------

    def port_for(self, scheme: str) -> int | None:
        """The port a URL of ``scheme`` connects to (S2, S3).

        :param scheme: ``http`` or ``https``, any case.
        :returns: the port, or ``None`` when this service does not allow the
            scheme (only the other port is set, not http/https at all, or a
            ``tcp`` service).
        """
        key = scheme.lower()
        if key not in DEFAULT_PORTS or self.type != "http":
            return None
        if self.http_port is None and self.https_port is None:
            return DEFAULT_PORTS[key]
        return self.http_port if key == "http" else self.https_port

    @property
    def schemes(self) -> tuple[str, ...]:
        """The URL schemes this service allows, ``http`` before ``https``."""
        return tuple(scheme for scheme in DEFAULT_PORTS if self.port_for(scheme) is not None)

    @property
    def origin_host(self) -> str:
        """The host to connect to: ``hostname``, else ``ipv4`` if set, else
        ``ipv6`` (without brackets)."""
        host = self.hostname or self.ipv4 or self.ipv6
        assert host is not None  # the constructor guarantees a host
        return host

    @property
    def addresses(self) -> tuple[str, ...]:
        """The hosts to try, in order: ``(hostname,)``, or for an IP service
        ``ipv6`` first, then ``ipv4`` (dual stack: IPv6 first, fall back to
        IPv4)."""
        if self.hostname is not None:
            return (self.hostname,)
        return tuple(ip for ip in (self.ipv6, self.ipv4) if ip is not None)

    def origin(self, scheme: str) -> str:
        """``host:port`` of :attr:`origin_host` for ``scheme``, for messages;
        an IPv6 address in brackets.

        :param scheme: ``http`` or ``https``, any case.
        :returns: e.g. ``internal-api.company.local:443`` or ``[fe80::1]:80``.
        :raises ValueError: when the service does not allow ``scheme``.
        """
        port = self.port_for(scheme)
        if port is None:
            allowed = ", ".join(self.schemes)
            raise ValueError(f"{self.describe()} has no port for scheme {scheme!r}; it allows: {allowed}")
        return host_port(self.origin_host, port)

    def describe(self) -> str:
        """A short human description.

        :returns: e.g. ``internal-api.company.local (http 80, https 443)``,
            ``db.internal (tcp 5432, postgresql)``.
        """
        if self.type == "tcp":
            tcp = ", ".join(str(part) for part in (self.tcp_port, self.app_protocol) if part is not None)
            return f"{' / '.join(self.addresses)} (tcp{' ' + tcp if tcp else ''})"
        ports = ", ".join(f"{scheme} {self.port_for(scheme)}" for scheme in self.schemes)
        return f"{' / '.join(self.addresses)} ({ports})"

    # -- value protocol ------------------------------------------------------

    def __repr__(self) -> str:
        parts = [
            f"{key}={getattr(self, key)!r}"
            for key in _FIELDS
            if getattr(self, key) != _DEFAULTS[key]
        ]
        return f"VPCService({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, ({key: getattr(self, key) for key in _FIELDS}, self._tls_given))

    def __copy__(self) -> VPCService:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> VPCService:
        return self


#: Constructor arguments, in order, and their defaults.
_DEFAULTS: dict[str, Any] = {
    "hostname": None, "ipv4": None, "ipv6": None, "http_port": None,
    "https_port": None, "name": None, "service_id": None, "tunnel_id": None,
    "resolver_ips": (), "cert_verification_mode": _DEFAULT_MODE,
    "created_at": None, "updated_at": None, "type": "http", "tcp_port": None,
    "app_protocol": None, "certificate_authority": None, "client_certificate": None,
}
_FIELDS: tuple[str, ...] = tuple(_DEFAULTS)


def _restore(kwargs: Mapping[str, Any], tls_given: bool) -> VPCService:
    """Rebuild a service (unpickling, :meth:`VPCService.replace`)."""
    service = VPCService(**kwargs)
    if tls_given:
        object.__setattr__(service, "_tls_given", True)
    return service


# -- validation helpers -------------------------------------------------------


def _kind(value: object) -> str:
    """A JSON-ish name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _text(value: object, field: str) -> str | None:
    """An optional, non-empty string field."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, got {_kind(value)} {value!r}", field=field)
    if not value.strip():
        raise ConfigError(f"must be a non-empty string, got {value!r}", field=field)
    return str.__str__(value)


def _hostname(value: object) -> str:
    """Validate and normalise a hostname as the API and wrangler do."""
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, got {_kind(value)} {value!r}", field=_HOSTNAME)
    if not value:
        raise ConfigError("must not be empty; give a DNS name such as 'internal-api.company.local'",
                          field=_HOSTNAME)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{value!r} contains whitespace or control characters; give a bare DNS name",
                          field=_HOSTNAME)
    if "://" in value:
        bare = value.split("://", 1)[1].split("/", 1)[0]
        raise ConfigError(
            f"{value!r} contains a URL scheme; give only the host name, such as {bare!r}",
            field=_HOSTNAME,
        )
    literal = ip_literal(value)
    if literal is not None:
        other = "host.ipv4" if literal.version == 4 else "host.ipv6"
        raise ConfigError(
            f"{value!r} is an IP address, not a DNS name; put it in {other} instead",
            field=_HOSTNAME,
        )
    for chars, what in (("/?#\\", "a path, query or fragment"), ("@", "user information"),
                        (":", "a port (set http_port / https_port instead)")):
        if any(ch in value for ch in chars):
            raise ConfigError(f"{value!r} contains {what}; give only the DNS name", field=_HOSTNAME)
    name = value[:-1] if value.endswith(".") else value
    if len(name) > _MAX_HOSTNAME:
        raise ConfigError(
            f"{_short(value)} is {len(name)} characters long; at most {_MAX_HOSTNAME} are allowed",
            field=_HOSTNAME,
        )
    labels = name.split(".")
    for label in labels:
        if not label:
            raise ConfigError(f"{value!r} has an empty label (leading or doubled dot)", field=_HOSTNAME)
        if len(label) > _MAX_LABEL:
            raise ConfigError(
                f"{_short(value)} has a label of {len(label)} characters; labels are 1-{_MAX_LABEL}",
                field=_HOSTNAME,
            )
        bad = sorted({ch for ch in label if not (ch.isalnum() or ch in "-_")})
        if bad:
            raise ConfigError(
                f"{value!r} contains {''.join(bad)!r}; labels allow letters, digits, '-' and '_'",
                field=_HOSTNAME,
            )
        if label.startswith("-") or label.endswith("-"):
            raise ConfigError(f"{value!r} has label {label!r} starting or ending with '-'",
                              field=_HOSTNAME)
    last = labels[-1]
    if last.isascii() and (last.isdigit() or (last[:2].lower() == "0x" and _is_hex(last[2:]))):
        raise ConfigError(
            f"{value!r} ends in a number, so resolvers read it as an IPv4 address; "
            "use host.ipv4 for an address, or a name whose last label is not numeric",
            field=_HOSTNAME,
        )
    return value.lower()


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in text)


def _short(value: str) -> str:
    """``repr`` of a possibly very long value, shortened for messages."""
    return repr(value) if len(value) <= 80 else repr(value[:60] + "...")


def _ipv4(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be an IPv4 address string, got {_kind(value)} {value!r}", field=_IPV4)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    hint = "; that is an IPv6 address, put it in host.ipv6" if ip_literal(value) is not None else ""
    raise ConfigError(
        f"{value!r} is not a valid IPv4 address (dotted quad such as '10.0.1.50'){hint}",
        field=_IPV4,
    )


def _ipv6(value: object, field: str = _IPV6) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be an IPv6 address string, got {_kind(value)} {value!r}", field=field)
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if "%" in text:
        raise ConfigError(f"{value!r} has a zone id; give the address without '%...'", field=field)
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        pass
    hint = ""
    if ip_literal(value) is not None and field == _IPV6:
        hint = "; that is an IPv4 address, put it in host.ipv4"
    raise ConfigError(
        f"{value!r} is not a valid IPv6 address (such as 'fe80::1' or '[fe80::1]'){hint}",
        field=field,
    )


def _port(value: object, field: str) -> int:
    """A port number: an ``int`` (not ``bool``) in 1-65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"must be an integer 1-65535, got {_kind(value)} {value!r}", field=field)
    if not 1 <= value <= 65535:
        raise ConfigError(f"{value!r} is out of range; ports are 1-65535", field=field)
    return int(value)


def _api_port(value: object, field: str) -> int | None:
    """A port from JSON/TOML: as :func:`_port`, also accepting digit strings."""
    if value is None:
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ConfigError(f"must be an integer 1-65535, got string {value!r}", field=field)
        if not 1 <= int(value) <= 65535:
            raise ConfigError(f"{value!r} is out of range; ports are 1-65535", field=field)
        return int(value)
    return _port(value, field)


def _check_type_fields(kind: ServiceType, values: Mapping[str, object]) -> None:
    """Refuse the port fields of the other service type (the API keeps them
    apart; a mix would be half-used)."""
    wrong = _TCP_ONLY if kind == "http" else _HTTP_ONLY
    given = [f"{key}={values[key]!r}" for key in wrong if values[key] is not None]
    if given:
        right, other = ("http_port / https_port", "tcp") if kind == "http" else ("tcp_port", "http")
        raise ConfigError(
            f"a service of type {kind!r} takes {right}, not {', '.join(given)}; "
            f"{' and '.join(wrong)} belong to type {other!r}",
            field="type",
        )


def _resolver_list(value: object) -> tuple[object, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ConfigError(
        f"must be a list of IP addresses, got {_kind(value)} {value!r}"
        + (f"; write [{value!r}]" if isinstance(value, str) else ""),
        field=_RESOLVER_IPS,
    )


def _resolver_ip(value: object, index: int) -> str:
    """One resolver: ``ip``, ``ip:port`` or ``[ipv6]:port``, normalised."""
    field = f"{_RESOLVER_IPS}[{index}]"
    allowed = "an IP address, 'ip:port' or '[ipv6]:port'"
    if not isinstance(value, str):
        raise ConfigError(f"must be {allowed}, got {_kind(value)} {value!r}", field=field)
    port_text: str | None = None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{value!r} is not {allowed}", field=field)
        try:
            address = ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise ConfigError(f"{value!r} is not {allowed}: {host!r} is not an IPv6 address",
                              field=field) from None
        if rest:
            port_text = rest[1:]
    else:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
        host, sep, port_text = value.partition(":")
        if not sep or ":" in port_text:
            raise ConfigError(f"{value!r} is not {allowed}", field=field)
        try:
            address = str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ConfigError(f"{value!r} is not {allowed}: {host!r} is not an IPv4 address",
                              field=field) from None
    if port_text is None:
        return address
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{value!r} has port {port_text!r}; ports are 1-65535", field=field)
    return host_port(address, int(port_text))


def _known(obj: Mapping[str, Any], keys: tuple[str, ...], field: str) -> None:
    """Refuse keys of a closed API object that are not in ``keys``."""
    unknown = sorted(str(key) for key in obj if key not in keys)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; {field} takes: {', '.join(keys)}",
            field=f"{field}.{unknown[0]}",
        )


def _sub_object(parent: Mapping[str, Any], key: str, field: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    """``parent[key]`` as a closed object (``{}`` when absent)."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a JSON object, got {_kind(value)} {value!r}", field=field)
    _known(value, keys, field)
    return value
