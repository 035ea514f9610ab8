"""TLS settings for a binding's https pools: the service's
``cert_verification_mode`` combined with ``requests``' own ``verify=`` and
``cert=`` (S5, S6).

SSL contexts are built once per distinct settings and shared by the pools
that use them (loading a CA bundle per connection is slow). urllib3 re-applies
the same ``verify_mode`` and ``check_hostname`` to them on each connection, so
sharing them between threads is safe.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any, Union

from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssl_ import create_urllib3_context

__all__ = ["MODES", "pool_kwargs"]

MODES = ("verify_full", "verify_ca", "disabled")

VerifyType = Union[bool, str, None]
CertType = Union[str, tuple[str, str], None]


def pool_kwargs(
    server_hostname: str, mode: str, verify: VerifyType, cert: CertType
) -> dict[str, Any]:
    """urllib3 pool keyword arguments for one https route.

    ``server_hostname`` is part of urllib3's pool key, so two names never
    share a TLS connection. Cached: the same settings give the same dict
    (do not change it), with no file system access per request.

    :param server_hostname: the SNI name and the name the certificate is
        checked against (an IP for IP-literal URLs: no SNI is sent then).
    :param mode: the service's ``cert_verification_mode``.
    :param verify: ``requests``' ``verify=``: ``False`` turns checking off, a
        path replaces the CA bundle.
    :param cert: ``requests``' ``cert=``: a client certificate (and key).
    :raises OSError: for a CA bundle or client certificate path that does not
        exist, with the message ``requests`` gives.
    """
    if isinstance(cert, list):  # requests accepts a list; the cache needs a tuple
        cert = (str(cert[0]), str(cert[1]))
    return _pool_kwargs(server_hostname, mode, verify, cert)


@functools.lru_cache(maxsize=256)
def _pool_kwargs(server_hostname: str, mode: str, verify: VerifyType, cert: CertType) -> dict[str, Any]:
    check = "none" if verify is False or mode == "disabled" else mode
    ca = None
    if check != "none":
        ca = verify if isinstance(verify, str) else extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH)
    if isinstance(cert, (list, tuple)):
        cert = (str(cert[0]), str(cert[1]))
    context = _context(check, ca, cert)
    kwargs: dict[str, Any] = {
        "ssl_context": context,
        "server_hostname": server_hostname,
        "cert_reqs": "CERT_NONE" if check == "none" else "CERT_REQUIRED",
    }
    if check == "verify_ca":
        kwargs["assert_hostname"] = False
    return kwargs


@functools.lru_cache(maxsize=64)
def _context(check: str, ca: str | None, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
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
        from .abort import current_scope

        active = current_scope()
        if active is not None:
            active.watch_socket(self)
        super().do_handshake(block)
