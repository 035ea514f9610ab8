"""TLS settings for a binding's https pools: the service's
``tls_settings`` (``cert_verification_mode``, and the local files of its
``certificate_authority`` / ``client_certificate`` ids) combined with
``requests``' own ``verify=`` and ``cert=`` (S5, S6).

How the pieces combine, per https request:

* ``verify=False`` or the mode ``disabled``: no certificate check at all.
* The service names a ``certificate_authority`` (mapped to a local PEM file by
  the services file's ``[certificates]`` table): that file is the trust store
  instead of the system's; a ``verify=`` CA bundle path is trusted in
  addition (so ``REQUESTS_CA_BUNDLE`` never locks the service's own CA out).
* The service names a ``client_certificate``: its ``cert`` / ``key`` files are
  presented, unless the request gives its own ``cert=``.
* An id the binding has no local files for fails the binding's https
  requests with a :class:`~vpc_requests.ConfigError` naming the id and the
  ``[certificates]`` table (never a silent fall back to the system store);
  plain http requests are unaffected.

SSL contexts are built once per distinct settings and shared by the pools
that use them (loading a CA bundle per connection is slow). urllib3 re-applies
the same ``verify_mode`` and ``check_hostname`` to them on each connection, so
sharing them between threads is safe. A CA bundle or client certificate
rewritten in place or replaced by a rename is picked up: each file's inode,
modification time and size are part of the cache key, looked up at most once
every :data:`RECHECK_SECONDS` per path (no file system call per request).
New files mean a new context, hence new pools (the context is in urllib3's
pool key); connections already open are kept.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssl_ import create_urllib3_context

from .._errors import ConfigError
from .._model.modes import CertVerificationMode
from .._model.service import VPCService
from .abort import watch

__all__ = ["RECHECK_SECONDS", "CertificateFiles", "ServiceFiles", "certificate_map", "pool_kwargs",
           "service_context", "service_files"]


#: How long a CA bundle's or client certificate's (inode, mtime, size) is trusted
#: before it is looked up again.
RECHECK_SECONDS = 1.0

VerifyType = Union[bool, str, "os.PathLike[str]", None]
#: ``cert=`` as requests takes it: a path, or (certificate, key or None).
_Path = Union[str, "os.PathLike[str]"]
CertType = Union[_Path, tuple[_Path, Union[_Path, None]], None]
_Cert = Union[str, tuple[str, Union[str, None]], None]
_Stamp = Union[tuple[int, int, int], None]


@dataclass(frozen=True, init=False)
class CertificateFiles:
    """The local PEM files of one certificate uploaded to Cloudflare (one
    entry of the services file's ``[certificates]`` table): a CA
    certificate (``ca``), or a client certificate (``cert``, with its
    ``key`` unless ``cert``'s file holds the key too).

    :param ca: the CA certificate(s) an origin's certificate must chain to.
    :param cert: the client certificate presented to the origin.
    :param key: the client certificate's private key.
    :param base: the directory relative paths are read from (the services
        file's); paths are stored absolute.
    :raises ConfigError: for no file, ``ca`` together with ``cert``/``key``,
        ``key`` without ``cert``, or a path that is not a non-empty string.
    """

    ca: str | None
    cert: str | None
    key: str | None

    def __init__(
        self,
        *,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        base: str | os.PathLike[str] | None = None,
    ) -> None:
        if ca is None and cert is None:
            raise ConfigError("give ca = \"ca.pem\" (a certificate authority) or cert = \"client.pem\" "
                              "(and key = \"client.key\") for a client certificate")
        if ca is not None and (cert is not None or key is not None):
            raise ConfigError("give either ca (a certificate authority) or cert/key (a client certificate), "
                              "not both: each uploaded certificate has its own id", field="ca")
        if key is not None and cert is None:
            raise ConfigError("key needs cert (the client certificate it belongs to)", field="key")
        for name, value in (("ca", ca), ("cert", cert), ("key", key)):
            object.__setattr__(self, name, None if value is None else _path(value, name, base))

    @classmethod
    def from_table(cls, table: object, base: str | os.PathLike[str] | None = None) -> CertificateFiles:
        """Read one ``[certificates]`` entry: ``{ ca = "..." }`` or ``{ cert
        = "...", key = "..." }``.

        :raises ConfigError: for anything else; ``.field`` names the key.
        """
        if isinstance(table, CertificateFiles):
            return table
        if not isinstance(table, Mapping):
            raise ConfigError(f"must be a table such as {{ ca = \"ca.pem\" }} or {{ cert = \"client.pem\", "
                              f"key = \"client.key\" }}, got {type(table).__name__} {table!r}")
        unknown = sorted(str(key) for key in table if key not in ("ca", "cert", "key"))
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}; an entry takes: ca, or cert and key",
                              field=unknown[0])
        return cls(ca=table.get("ca"), cert=table.get("cert"), key=table.get("key"), base=base)

    @property
    def client(self) -> _Cert:
        """The client certificate as requests' ``cert=`` takes it, or ``None``."""
        if self.cert is None:
            return None
        return self.cert if self.key is None else (self.cert, self.key)


def _path(value: object, field: str, base: str | os.PathLike[str] | None) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"must be a file path (a non-empty string), got {value!r}", field=field)
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return str(path)


def certificate_map(
    certificates: Mapping[str, CertificateFiles | Mapping[str, Any]] | None,
) -> dict[str, CertificateFiles]:
    """``certificates=`` of a binding or adapter as ``id`` ->
    :class:`CertificateFiles` (plain tables such as ``{"ca": "ca.pem"}``
    accepted; relative paths are read from the current directory).

    :raises ConfigError: for an entry that is not valid.
    """
    result: dict[str, CertificateFiles] = {}
    for cert_id, entry in (certificates or {}).items():
        try:
            result[str(cert_id)] = CertificateFiles.from_table(entry)
        except ConfigError as exc:
            raise ConfigError(f"certificate {cert_id!r}: {exc.message}", field=exc.field) from None
    return result


@dataclass(frozen=True)
class ServiceFiles:
    """The local TLS files of one service's ``tls_settings`` ids.

    :ivar ca: the CA file of ``certificate_authority`` (``None``: none named,
        or the mode is ``disabled``).
    :ivar client: the client certificate of ``client_certificate``, as
        requests' ``cert=`` takes it.
    :ivar ca_problem: why the CA is missing (an id with no local file, or a
        file of the wrong kind), else ``None``.
    :ivar client_problem: the same for the client certificate.
    """

    ca: str | None = None
    client: _Cert = None
    ca_problem: str | None = None
    client_problem: str | None = None

    @property
    def problem(self) -> bool:
        """Whether an id has no usable local files."""
        return self.ca_problem is not None or self.client_problem is not None

    def check(self, verify: VerifyType, cert: CertType) -> None:
        """Refuse an https request that needs a missing file: the CA unless
        ``verify=False``, the client certificate unless ``cert=`` is given.

        :raises ConfigError: naming the id and the ``[certificates]`` table.
        """
        if self.ca_problem is not None and verify is not False:
            raise ConfigError(self.ca_problem)
        if self.client_problem is not None and not cert:
            raise ConfigError(self.client_problem)


def service_files(
    service: VPCService, certificates: Mapping[str, CertificateFiles], binding: str | None = None
) -> ServiceFiles:
    """Look up the local files of ``service``'s certificate ids.

    :param service: the service.
    :param certificates: ``id`` -> files (the ``[certificates]`` table).
    :param binding: the binding's name, for the message.
    :returns: the files, and for an id with no local files (or files of the
        wrong kind) a message naming the id and the table.
    """
    who = f"binding {binding or '(unnamed)'!r}: service {service.name or service.origin_host!r}"
    found: dict[str, Any] = {}
    for field, cert_id, kind in (("certificate_authority", service.certificate_authority, "ca"),
                                 ("client_certificate", service.client_certificate, "cert")):
        if cert_id is None or (kind == "ca" and service.cert_verification_mode == "disabled"):
            continue
        files = certificates.get(cert_id)
        if files is None:
            example = '{ ca = "ca.pem" }' if kind == "ca" else '{ cert = "client.pem", key = "client.key" }'
            found[f"{kind}_problem"] = (
                f"{who} names tls_settings.{field} {cert_id!r}, which has no local file: map it in the "
                f"services file's [certificates] table, \"{cert_id}\" = {example} (or pass certificates= "
                "to the Binding); TLS to it is refused rather than checked against another trust store"
            )
        elif kind == "ca" and files.ca is None:
            found["ca_problem"] = (f"{who} names {cert_id!r} as tls_settings.{field}, but [certificates] maps "
                                   "it to a client certificate (cert/key), not a CA (ca)")
        elif kind == "cert" and files.cert is None:
            found["cert_problem"] = (f"{who} names {cert_id!r} as tls_settings.{field}, but [certificates] "
                                     "maps it to a CA (ca), not a client certificate (cert/key)")
        elif kind == "ca":
            found["ca"] = files.ca
        else:
            found["client"] = files.client
    if "cert_problem" in found:
        found["client_problem"] = found.pop("cert_problem")
    return ServiceFiles(**found)


def pool_kwargs(
    server_hostname: str, mode: CertVerificationMode, verify: VerifyType, cert: CertType, trust: str | None = None
) -> dict[str, Any]:
    """urllib3 pool keyword arguments for one https route.

    ``server_hostname`` is part of urllib3's pool key, so two names never
    share a TLS connection. Cached: the same settings and files give the same
    dict (do not change it).

    :param server_hostname: the SNI name and the name the certificate is
        checked against (an IP for IP-literal URLs: no SNI is sent then).
    :param mode: the service's ``cert_verification_mode``.
    :param verify: ``requests``' ``verify=``: ``False`` turns checking off, a
        path (``str`` or path-like) replaces the CA bundle.
    :param cert: ``requests``' ``cert=``: a client certificate path, or a
        ``(certificate, key)`` pair whose key may be ``None``.
    :param trust: the service's own CA file (its ``certificate_authority``):
        the trust store instead of the default bundle; a ``verify`` path is
        trusted in addition.
    :raises OSError: for a CA bundle or client certificate path that does not
        exist, with the message ``requests`` gives.
    """
    return _pool_kwargs(server_hostname, *_settings(mode, verify, cert, trust))


def service_context(
    service: VPCService,
    certificates: Mapping[str, CertificateFiles] | None = None,
    *,
    binding: str | None = None,
    verify: VerifyType = True,
    cert: CertType = None,
) -> ssl.SSLContext:
    """The client SSL context for a TLS connection to ``service`` outside
    urllib3 (a raw socket, e.g. ``connect(tls=True)``), under the same rules
    as the https pools: the verification mode, the ``[certificates]`` files
    of its ids, ``verify=`` and ``cert=``. Wrap with
    ``context.wrap_socket(sock, server_hostname=name)``: ``verify_full``
    checks the name (``check_hostname``), ``verify_ca`` only the chain.
    Shared and cached: do not change it.

    :param service: the service (any type).
    :param certificates: ``id`` -> files (:func:`certificate_map` accepts
        plain tables).
    :param binding: the binding's name, for messages.
    :raises ConfigError: when an id the service names has no local files.
    :raises OSError: for a CA or certificate file that does not exist.
    """
    files = service_files(service, certificate_map(certificates), binding)
    files.check(verify, cert)
    context: ssl.SSLContext = _context(*_settings(service.cert_verification_mode, verify,
                                                   cert or files.client, files.ca))
    return context


def _settings(
    mode: CertVerificationMode, verify: VerifyType, cert: CertType, trust: str | None
) -> tuple[str, tuple[str, ...], _Cert, tuple[_Stamp, ...]]:
    """(check, CA files, client certificate, the files' stamps) for a context."""
    check = "none" if verify is False or mode == "disabled" else mode
    given: str | None = None
    if isinstance(verify, str):
        given = verify
    elif isinstance(verify, os.PathLike):
        given = os.fspath(verify)
    ca: tuple[str, ...] = ()
    if check == "none":
        pass
    elif trust is not None:
        ca = (trust,) if given is None or given == trust else (trust, given)
    else:
        ca = (given or _default_ca(),)
    client = None if cert is None else _client_cert(cert)
    if client is None:
        files: tuple[str | None, ...] = ca
    elif isinstance(client, str):
        files = (*ca, client)
    else:
        files = (*ca, *client)
    stamps = tuple([_stamp(path) for path in files if path is not None])
    return check, ca, client, stamps


@functools.lru_cache(maxsize=1)
def _default_ca() -> str:
    return str(extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH))


def _client_cert(cert: CertType) -> _Cert:
    """``cert=`` as requests reads it: nothing when false, else a path or a
    (certificate, key) pair, paths as ``str``."""
    if not cert:
        return None
    if isinstance(cert, (str, os.PathLike)):
        return os.fspath(cert)
    certfile, keyfile = cert
    return (os.fspath(certfile), None if keyfile is None else os.fspath(keyfile))


#: path -> (when it was looked up, its stamp or None if missing)
_STAMPS: dict[str, tuple[float, _Stamp]] = {}


def _stamp(path: str) -> _Stamp:
    """``path``'s (inode, mtime_ns, size), looked up at most once every
    :data:`RECHECK_SECONDS`; ``None`` when it cannot be read."""
    now = time.monotonic()
    seen = _STAMPS.get(path)
    if seen is not None and now - seen[0] < RECHECK_SECONDS:
        return seen[1]
    try:
        info = os.stat(path)
    except OSError:
        stamp: _Stamp = None
    else:
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
    if len(_STAMPS) >= 256:
        _STAMPS.clear()
    _STAMPS[path] = (now, stamp)
    return stamp


@functools.lru_cache(maxsize=256)
def _pool_kwargs(
    server_hostname: str, check: str, ca: tuple[str, ...], cert: _Cert, stamps: tuple[_Stamp, ...]
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "ssl_context": _context(check, ca, cert, stamps),
        "server_hostname": server_hostname,
        "cert_reqs": "CERT_NONE" if check == "none" else "CERT_REQUIRED",
    }
    if check == "verify_ca":
        kwargs["assert_hostname"] = False
    return kwargs


@functools.lru_cache(maxsize=64)
def _context(check: str, ca: tuple[str, ...], cert: _Cert, stamps: tuple[_Stamp, ...]) -> ssl.SSLContext:
    """The context for these settings; ``stamps`` (the files' inode, mtime
    and size) only key the cache, so a file replaced is loaded again."""
    for path in ca:
        if not os.path.exists(path):
            raise OSError(
                f"Could not find a suitable TLS CA certificate bundle, invalid path: {path}"
            )
    context = create_urllib3_context(
        cert_reqs=ssl.CERT_NONE if check == "none" else ssl.CERT_REQUIRED
    )
    if check == "verify_full":
        context.check_hostname = True
    else:
        context.check_hostname = False
    for path in ca:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        for file, what in ((certfile, "certificate"), (keyfile, "key")):
            if file and not os.path.exists(file):
                raise OSError(f"Could not find the TLS {what} file, invalid path: {file}")
        context.load_cert_chain(certfile, keyfile)
    context.sslsocket_class = _AbortableSSLSocket
    return context


class _AbortableSSLSocket(ssl.SSLSocket):
    """Registers itself with the running fetch's abort scope before the
    handshake, so an abort can interrupt a handshake in progress."""

    def do_handshake(self, block: bool = False) -> None:
        watch(self)
        super().do_handshake(block)
