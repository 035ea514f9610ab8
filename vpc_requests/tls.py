"""TLS settings for a binding's https pools: the service's
``cert_verification_mode`` combined with ``requests``' own ``verify=`` and
``cert=`` (S5, S6).

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
from typing import Any, Union

from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssl_ import create_urllib3_context

from .abort import watch

__all__ = ["MODES", "RECHECK_SECONDS", "pool_kwargs"]

MODES = ("verify_full", "verify_ca", "disabled")

#: How long a CA bundle's or client certificate's (inode, mtime, size) is trusted
#: before it is looked up again.
RECHECK_SECONDS = 1.0

VerifyType = Union[bool, str, "os.PathLike[str]", None]
#: ``cert=`` as requests takes it: a path, or (certificate, key or None).
CertType = Any
_Cert = Union[str, tuple[str, Union[str, None]], None]
_Stamp = Union[tuple[int, int, int], None]


def pool_kwargs(
    server_hostname: str, mode: str, verify: VerifyType, cert: CertType
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
    :raises OSError: for a CA bundle or client certificate path that does not
        exist, with the message ``requests`` gives.
    """
    check = "none" if verify is False or mode == "disabled" else mode
    ca: str | None = None
    if check == "none":
        pass
    elif isinstance(verify, str):
        ca = verify
    elif isinstance(verify, os.PathLike):
        ca = os.fspath(verify)
    else:
        ca = _default_ca()
    client = None if cert is None else _client_cert(cert)
    if client is None:
        files: tuple[str | None, ...] = (ca,)
    elif isinstance(client, str):
        files = (ca, client)
    else:
        files = (ca, *client)
    stamps = tuple([_stamp(path) for path in files if path is not None])
    return _pool_kwargs(server_hostname, check, ca, client, stamps)


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
    server_hostname: str, check: str, ca: str | None, cert: _Cert, stamps: tuple[_Stamp, ...]
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
def _context(check: str, ca: str | None, cert: _Cert, stamps: tuple[_Stamp, ...]) -> ssl.SSLContext:
    """The context for these settings; ``stamps`` (the files' inode, mtime
    and size) only key the cache, so a file replaced is loaded again."""
    if ca is not None and not os.path.exists(ca):
        raise OSError(
            f"Could not find a suitable TLS CA certificate bundle, invalid path: {ca}"
        )
    context = create_urllib3_context(
        cert_reqs=ssl.CERT_NONE if check == "none" else ssl.CERT_REQUIRED
    )
    if check == "verify_full":
        context.check_hostname = True
    else:
        context.check_hostname = False
    if ca is not None:
        if os.path.isdir(ca):
            context.load_verify_locations(capath=ca)
        else:
            context.load_verify_locations(cafile=ca)
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        for path, what in ((certfile, "certificate"), (keyfile, "key")):
            if path and not os.path.exists(path):
                raise OSError(f"Could not find the TLS {what} file, invalid path: {path}")
        context.load_cert_chain(certfile, keyfile)
    context.sslsocket_class = _AbortableSSLSocket
    return context


class _AbortableSSLSocket(ssl.SSLSocket):
    """Registers itself with the running fetch's abort scope before the
    handshake, so an abort can interrupt a handshake in progress."""

    def do_handshake(self, block: bool = False) -> None:
        watch(self)
        super().do_handshake(block)
