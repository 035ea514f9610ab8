"""Exceptions raised by :mod:`vpc_requests`, and the one place where transport
errors from ``requests``/``urllib3`` are translated into them.

The tree::

    VPCError
    ├── ConfigError (ValueError)            bad service, binding or config file
    ├── RoutingError (requests.InvalidURL)  URL a binding refuses (S3, S7)
    ├── RedirectError (requests.RequestException)
    │                                       a redirect under redirect="error"
    ├── AbortError (requests.RequestException)
    │                                       the fetch's AbortSignal fired
    └── ProxyError (requests.RequestException)
        │                                   .code, .binding, .origin
        ├── ProxyConnectionError (requests.ConnectionError)
        │   ├── ProxyConnectTimeout (requests.ConnectTimeout)
        │   └── ProxySSLError (requests.exceptions.SSLError)
        ├── ProxyReadTimeout (requests.ReadTimeout)
        └── ProxyChunkedEncodingError (requests.exceptions.ChunkedEncodingError)

Every concrete :class:`ProxyError` is also exactly the ``requests`` exception
plain ``requests`` raises for the same failure, so existing
``except requests.ConnectionError`` code keeps working: ``translate()``
picks the class from what ``requests`` raised and only the ``.code`` from the
cause (a read timeout while the body arrives is a ``ConnectionError`` with
``connection_read_timeout``, as in ``requests``).
"""

from __future__ import annotations

import http.client
import io
import pickle
import socket
import ssl
from typing import Any

import requests
import urllib3
import urllib3.exceptions as u3
from requests.structures import CaseInsensitiveDict

from ._compat import mark_body_read

__all__ = [
    "AbortError",
    "ConfigError",
    "ProxyChunkedEncodingError",
    "ProxyConnectTimeout",
    "ProxyConnectionError",
    "ProxyError",
    "ProxyReadTimeout",
    "ProxySSLError",
    "RedirectError",
    "RoutingError",
    "VPCError",
    "advice",
    "error_response",
    "from_transport",
    "proxy_error",
    "translate",
]


class VPCError(Exception):
    """Root of every exception :mod:`vpc_requests` raises on its own account."""


class ConfigError(VPCError, ValueError):
    """A service, binding or configuration file is invalid.

    :param message: what is wrong and what to do about it.
    :param path: the file, when the error comes from one.
    :param line: the 1-based line in that file, when known.
    :param field: the field (dotted path) that is wrong, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        if field is not None and f"'{field}'" not in message:
            message = f"{field}: {message}"
        super().__init__(where + message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (type(self), (self.message,), {"path": self.path, "line": self.line, "field": self.field}),
        )


class RoutingError(VPCError, requests.exceptions.InvalidURL):
    """A binding refuses a URL before sending anything (not absolute http/https,
    or a scheme its service has no port for)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, {}))


class RedirectError(VPCError, requests.RequestException):
    """A fetch with ``redirect="error"`` received a redirect."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, {}))


class AbortError(VPCError, requests.RequestException):
    """The fetch's :class:`~vpc_requests.AbortSignal` fired; ``.reason`` holds
    the value given to ``abort()`` (a :class:`TimeoutError` for
    ``AbortSignal.timeout``)."""

    def __init__(self, reason: object = None, **kwargs: Any) -> None:
        self.reason = reason
        text = "AbortError: the operation was aborted"
        if reason is not None:
            text += f" ({reason})"
        super().__init__(text, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        reason = self.reason
        try:
            pickle.dumps(reason)
        except Exception:
            reason = repr(reason)
        return (_rebuild, (type(self), (reason,), {}))


class ProxyError(VPCError, requests.RequestException):
    """The binding could not reach, or hear from, its service.

    ``str(e)`` starts ``ProxyError: <code>`` as in Workers, then names the
    binding and the origin. A failure translated from what ``requests``
    raised (``translate()``) carries exactly that exception's ``args``
    (``args[0]`` the urllib3 exception, so ``e.args[0].reason`` works),
    ``.request`` and ``.response``, and its text follows the prefix (with
    the URL's path and query, which may hold a token, as ``<path hidden>``)::

        ProxyError: connection_read_timeout (binding 'X', origin 10.0.1.50:8080):
        HTTPConnectionPool(host='10.0.1.50', port=8080): Read timed out. (read timeout=2.0)

    A failure of our own (a tunnel's, a ``resolver_ips`` lookup's) has the
    whole message as ``args[0]``.

    :param code: one of Cloudflare's documented codes (RFC 9209 Proxy-Status
        error types), such as ``connection_refused``.
    :param args: the ``args`` of the ``requests`` exception this failure
        is (none for a failure of our own).
    :param binding: the binding's name.
    :param origin: ``host:port`` the binding connects to.
    :param detail: what the underlying library said (the innermost message).
    :param hint: what to do about it, appended to the message.
    """

    def __init__(
        self,
        code: str,
        *args: Any,
        binding: str | None = None,
        origin: str | None = None,
        detail: str = "",
        hint: str = "",
        request: requests.PreparedRequest | None = None,
        response: requests.Response | None = None,
    ) -> None:
        self.code = code
        self.binding = binding
        self.origin = origin
        self.detail = detail
        self.hint = hint
        text = f"ProxyError: {code}"
        context = ", ".join(
            part
            for part in (
                f"binding {binding!r}" if binding else "",
                f"origin {origin}" if origin else "",
            )
            if part
        )
        if context:
            text += f" ({context})"
        if args:
            super().__init__(*args, request=request, response=response)
            said = _without_path(super().__str__(), args[0])
        else:
            said = detail
        if said:
            text += f": {said}"
        if hint:
            text += f"; {hint}"
        if not args:
            super().__init__(text, request=request, response=response)
        self._message = text

    def __str__(self) -> str:
        return self._message

    def __reduce__(self) -> tuple[Any, ...]:
        # urllib3's exceptions pickle without their pool (their text then
        # changes), so the message travels as it is; what does not pickle
        # (a request with a lambda hook) is left behind.
        args = self.args if self._message != (self.args[0] if self.args else None) else ()
        kwargs = {"binding": self.binding, "origin": self.origin, "detail": self.detail, "hint": self.hint}
        state: dict[str, Any] = {"_message": self._message}
        if not _pickles(args):
            args = tuple(repr(arg) for arg in args)
        if self.request is not None and _pickles(self.request):
            state["request"] = self.request
        return (_rebuild, (type(self), (self.code, *args), kwargs), state)


def _without_path(text: str, first: object) -> str:
    """urllib3's text without the request's path and query (a token in a
    path or query must not reach logs through ``str(e)``); ``e.args[0].url``
    and ``e.request.url`` still have them."""
    url = getattr(first, "url", None) if isinstance(first, u3.RequestError) else None
    if url and url != "/":
        return text.replace(f"url: {url} (", "url: <path hidden> (", 1)
    return text


def _pickles(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


class ProxyConnectionError(ProxyError, requests.ConnectionError):
    """The connection failed or broke (refused, terminated, DNS, protocol)."""


class ProxyConnectTimeout(ProxyConnectionError, requests.ConnectTimeout):
    """The connection (or name lookup) did not complete in time."""


class ProxySSLError(ProxyConnectionError, requests.exceptions.SSLError):
    """The TLS handshake failed (certificate or protocol)."""


class ProxyReadTimeout(ProxyError, requests.ReadTimeout):
    """The service did not answer in time."""


class ProxyChunkedEncodingError(ProxyError, requests.exceptions.ChunkedEncodingError):
    """The response body ended before it was complete."""


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], kwargs: dict[str, Any]) -> BaseException:
    return cls(*args, **kwargs)


#: Which exception class :func:`proxy_error` builds for each code (a
#: failure of our own, such as a tunnel's). ``translate()`` does not use
#: it: a translated failure is the class plain ``requests`` raised.
CODE_CLASSES: dict[str, type[ProxyError]] = {
    "connection_refused": ProxyConnectionError,
    "connection_terminated": ProxyConnectionError,
    "connection_timeout": ProxyConnectTimeout,
    "connection_read_timeout": ProxyReadTimeout,
    "connection_write_timeout": ProxyConnectionError,
    "connection_limit_reached": ProxyConnectionError,
    "dns_error": ProxyConnectionError,
    "dns_timeout": ProxyConnectTimeout,
    "destination_not_found": ProxyConnectionError,
    "destination_unavailable": ProxyConnectionError,
    "destination_ip_prohibited": ProxyConnectionError,
    "destination_ip_unroutable": ProxyConnectionError,
    "tls_protocol_error": ProxySSLError,
    "tls_certificate_error": ProxySSLError,
    "tls_alert_received": ProxySSLError,
    "http_request_error": ProxyConnectionError,
    "http_request_denied": ProxyConnectionError,
    "http_protocol_error": ProxyConnectionError,
    "http_response_incomplete": ProxyChunkedEncodingError,
    "http_response_timeout": ProxyReadTimeout,
    "proxy_internal_error": ProxyConnectionError,
    "proxy_configuration_error": ProxyConnectionError,
}


def proxy_error(code: str, **kwargs: Any) -> ProxyError:
    """Build the :class:`ProxyError` subclass that carries ``code``.

    :param code: a key of :data:`CODE_CLASSES`.
    :param kwargs: passed to :class:`ProxyError`.
    :returns: the exception (not raised).
    """
    return CODE_CLASSES.get(code, ProxyConnectionError)(code, **kwargs)


def error_response(
    exc: ProxyError,
    request: requests.PreparedRequest | None = None,
    *,
    connection: Any = None,
) -> requests.Response:
    """What Workers code sees for a binding failure under ``wrangler dev``
    (``errors="response"``): a ``500`` ``text/plain`` response whose body is
    ``ProxyError: <code>``.

    :param exc: the failure.
    :param request: the request that failed, set as the response's
        ``.request``.
    :param connection: the adapter, set as the response's ``.connection``.
    :returns: the response, its body already read; ``.raw`` is a
        :class:`urllib3.HTTPResponse` over the same bytes, so ``close()``,
        ``iter_content()``, ``iter_lines()`` and ``with`` work as on any
        response.
    """
    body = f"ProxyError: {exc.code}".encode()
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Content-Length": str(len(body))}
    response = requests.Response()
    response.status_code = 500
    response.reason = "Internal Server Error"
    response.headers = CaseInsensitiveDict(headers)
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=500, reason=response.reason,
        preload_content=False, decode_content=False,
    )
    mark_body_read(response, body)
    response.encoding = "utf-8"
    response.connection = connection
    if request is not None:
        response.url = str(request.url)
        response.request = request
    return response


_SOCKET_TIMEOUTS = (TimeoutError, socket.timeout)  # one class since Python 3.10


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain of errors behind ``exc``: requests wraps urllib3, which wraps
    the socket, ssl or http.client error."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or any(err is s for s in seen):
            continue
        seen.append(err)
        if isinstance(err, u3.MaxRetryError):
            todo.append(err.reason)
        todo.extend(a for a in err.args if isinstance(a, BaseException))
        todo.append(err.__cause__)
        todo.append(err.__context__)
    return seen


def from_transport(exc: BaseException) -> bool:
    """Whether ``exc`` wraps an error of the transport (urllib3, ssl, socket),
    as every exception ``HTTPAdapter.send`` raises for a network failure
    does; one raised in its place by a mock (``responses``) wraps nothing.

    :param exc: what ``HTTPAdapter.send`` raised.
    """
    return any(isinstance(err, (u3.HTTPError, OSError)) for err in _causes(exc)[1:])


def classify(exc: BaseException) -> str:
    """The Cloudflare error code for a transport failure.

    :param exc: a ``requests``, ``urllib3``, ``ssl`` or socket exception.
    :returns: the code, ``proxy_internal_error`` when nothing fits.
    """
    chain = _causes(exc)
    for err in chain:
        if isinstance(err, ProxyError):
            return err.code
        if isinstance(err, (ssl.SSLCertVerificationError, ssl.CertificateError)):
            return "tls_certificate_error"
    # requests raises ChunkedEncodingError only while reading a body: the
    # response was cut short, whatever cut it (a reset, a bad chunk).
    if any(isinstance(err, requests.exceptions.ChunkedEncodingError) for err in chain):
        return "http_response_incomplete"
    # The most specific cause first: urllib3's NewConnectionError is (for
    # compatibility) a ConnectTimeoutError even when the connection was refused.
    for err in chain:
        if isinstance(err, ConnectionRefusedError):
            return "connection_refused"
        if isinstance(err, (u3.NameResolutionError, socket.gaierror)):
            return "dns_error"
        if isinstance(err, (http.client.IncompleteRead, u3.IncompleteRead, u3.InvalidChunkLength)):
            return "http_response_incomplete"
        if isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError,
                            BrokenPipeError, ConnectionAbortedError)):
            return "connection_terminated"
    for err in chain:
        if isinstance(err, u3.ProtocolError) and any(isinstance(a, _SOCKET_TIMEOUTS) for a in err.args):
            # urllib3 turns a timeout while reading into ReadTimeoutError;
            # a bare socket timeout it wraps comes from sending the request.
            return "connection_write_timeout"
        if isinstance(err, u3.ConnectTimeoutError) and not isinstance(err, u3.NewConnectionError):
            return "connection_timeout"
        if isinstance(err, requests.ConnectTimeout):
            return "connection_timeout"
        if isinstance(err, (u3.ReadTimeoutError, requests.ReadTimeout)):
            return "connection_read_timeout"
        if isinstance(err, (u3.SSLError, ssl.SSLError, requests.exceptions.SSLError)):
            return "tls_protocol_error"
        if isinstance(err, requests.exceptions.ChunkedEncodingError):
            return "http_response_incomplete"
        if isinstance(err, (http.client.HTTPException, u3.HeaderParsingError)):
            return "http_protocol_error"
        if isinstance(err, _SOCKET_TIMEOUTS):
            return "connection_read_timeout"
    for err in chain:
        if isinstance(err, OSError) and not isinstance(err, requests.RequestException) and err.errno:
            return "destination_unavailable"
    return "proxy_internal_error"


def translate(
    exc: BaseException,
    *,
    binding: str | None,
    origin: str | None,
    request: requests.PreparedRequest | None = None,
    code: str | None = None,
) -> ProxyError:
    """Translate a transport failure into the fitting :class:`ProxyError`:
    the subclass that is also exactly the ``requests`` exception plain
    ``requests`` raises for it (a ``ReadTimeout`` stays a ``ReadTimeout``, a
    ``ConnectionError`` a ``ConnectionError``), with the code
    :func:`classify` finds.

    :param exc: what ``requests`` raised; or a raw ``urllib3``, ``ssl`` or
        socket error from reading a body, taken as ``requests``'
        ``Response.iter_content`` wraps it (``ProtocolError`` ->
        ``ChunkedEncodingError``, ``ReadTimeoutError`` -> ``ConnectionError``,
        ``SSLError`` -> ``SSLError``): ``HTTPAdapter.send`` wraps every
        error before the body.
    :param binding: the binding's name, for the message.
    :param origin: ``host:port`` that was connected to, for the message.
    :param request: the request that failed.
    :param code: force this code instead of classifying ``exc``.
    :returns: the exception to raise ``from exc``; a
        :class:`ProxyConnectionError` for anything that is no transport error.
    """
    raised = _as_requests(exc)
    found = code or classify(raised)
    cls = next((ours for theirs, ours in _MIRRORS if isinstance(raised, theirs)), ProxyConnectionError)
    if isinstance(raised, requests.RequestException):
        args = raised.args
        if isinstance(raised.request, requests.PreparedRequest):
            request = raised.request
        response = raised.response
    else:
        args, response = (raised,), None
    return cls(
        found, *args, binding=binding, origin=origin, detail=_detail(exc),
        hint=advice(found, raised, origin), request=request, response=response,
    )


#: OpenSSL's verify results that mean "no CA this client trusts signed it".
_UNTRUSTED = {
    18,  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19,  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21,  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
}
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def advice(code: str, raised: BaseException, origin: str | None = None) -> str:
    """What to do about a failure, for the end of its message: whether the
    service runs at that address (a refused direct connection), how to trust
    its CA or what name is checked (a certificate error).

    :param code: the failure's code.
    :param raised: the error (its chain is searched).
    :param origin: ``host:port`` that was connected to.
    :returns: the advice, ``""`` when there is none to give (a tunnel's own
        message already says what to check).
    """
    chain = _causes(raised)
    if any(isinstance(err, ProxyError) for err in chain):
        return ""  # a tunnel's or resolver's failure: its message says what to do
    if code == "connection_refused":
        where = f" at {origin}" if origin else ""
        return (
            f"nothing accepts connections{where}: is the service running at that address and port? "
            "(check the service's host and http_port/https_port)"
        )
    if code == "tls_certificate_error":
        verify = next((err for err in chain if isinstance(err, ssl.SSLCertVerificationError)), None)
        number = getattr(verify, "verify_code", None)
        if number in _NAME_MISMATCH:
            return (
                "the certificate does not name the URL's host, which is what is checked: use a URL "
                "whose host the certificate names, or the service's cert_verification_mode = "
                "'verify_ca' to check the chain only"
            )
        if number in _UNTRUSTED:
            return (
                "the service's certificate is not signed by a CA this client trusts: give that CA "
                "with verify='/path/to/ca.pem' (CLI: --cacert FILE; or REQUESTS_CA_BUNDLE), or, for "
                "testing only, verify=False / the service's cert_verification_mode = 'disabled'"
            )
    return ""


#: Our class for each ``requests`` exception a transport failure can be,
#: the most specific first.
_MIRRORS: tuple[tuple[type[BaseException], type[ProxyError]], ...] = (
    (requests.ConnectTimeout, ProxyConnectTimeout),
    (requests.exceptions.SSLError, ProxySSLError),
    (requests.ReadTimeout, ProxyReadTimeout),
    (requests.exceptions.ChunkedEncodingError, ProxyChunkedEncodingError),
    (requests.ConnectionError, ProxyConnectionError),
)

#: How ``Response.iter_content`` wraps an error of the body (urllib3 has
#: already made socket, ssl and http.client errors into its own), in order.
_BODY_WRAPS: tuple[tuple[tuple[type[BaseException], ...], type[requests.RequestException]], ...] = (
    ((u3.SSLError, ssl.SSLError), requests.exceptions.SSLError),
    ((u3.ReadTimeoutError, *_SOCKET_TIMEOUTS), requests.ConnectionError),
    ((u3.ProtocolError, http.client.HTTPException, OSError), requests.exceptions.ChunkedEncodingError),
)


def _as_requests(exc: BaseException) -> BaseException:
    """``exc`` as plain ``requests`` raises it (see ``translate()``)."""
    if isinstance(exc, requests.RequestException):
        return exc
    for raw, wrapper in _BODY_WRAPS:
        if isinstance(exc, raw):
            wrapped = wrapper(exc)
            wrapped.__cause__ = exc
            return wrapped
    return exc


def _detail(exc: BaseException) -> str:
    """The innermost readable message of ``exc``'s chain."""
    chain = _causes(exc)
    for err in reversed(chain):
        text = str(err).strip()
        if text and not isinstance(err, (u3.MaxRetryError,)):
            return text
    return str(exc)
