"""The closed sets of values the package accepts, each once: a ``Literal``
type for signatures, the tuple of its values (the default first) and one
check with one message.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

from .._errors import ConfigError

__all__ = [
    "APP_PROTOCOLS", "CERT_VERIFICATION_MODES", "DEFAULT_CERT_VERIFICATION_MODE", "ERROR_MODES",
    "REDIRECT_MODES", "SERVICE_TYPES",
    "AppProtocol", "CertVerificationMode", "ErrorMode", "RedirectMode", "ServiceType",
    "app_protocol", "cert_verification_mode", "error_mode", "redirect_mode", "service_type",
]

#: How an origin's certificate is checked: chain and name, chain only, not at all.
CertVerificationMode = Literal["verify_full", "verify_ca", "disabled"]
#: What a failed exchange becomes: an exception, or a response with the Cloudflare code.
ErrorMode = Literal["raise", "response"]
#: What ``fetch()`` does with a 3xx: follow it, return it, or raise.
RedirectMode = Literal["follow", "manual", "error"]
#: A service's ``type``.
ServiceType = Literal["http", "tcp"]
#: A ``tcp`` service's ``app_protocol`` (the API's, SDK 5.x).
AppProtocol = Literal["postgresql", "mysql"]

#: The accepted values of ``cert_verification_mode``, the default first.
CERT_VERIFICATION_MODES: tuple[CertVerificationMode, ...] = get_args(CertVerificationMode)
#: The mode of a service without ``tls_settings`` (and of a network's hosts).
DEFAULT_CERT_VERIFICATION_MODE: CertVerificationMode = CERT_VERIFICATION_MODES[0]
#: The accepted values of ``errors=``, the default first.
ERROR_MODES: tuple[ErrorMode, ...] = get_args(ErrorMode)
#: The accepted values of ``redirect=``, the default first.
REDIRECT_MODES: tuple[RedirectMode, ...] = get_args(RedirectMode)
#: The accepted values of ``type``, the default first.
SERVICE_TYPES: tuple[ServiceType, ...] = get_args(ServiceType)
#: The accepted values of ``app_protocol``.
APP_PROTOCOLS: tuple[AppProtocol, ...] = get_args(AppProtocol)


def error_mode(value: object) -> ErrorMode:
    """``value`` as an ``errors=`` mode.

    :raises ValueError: when it is not one of :data:`ERROR_MODES`.
    """
    if value not in ERROR_MODES:
        raise ValueError(f"errors must be one of {', '.join(ERROR_MODES)}; got {value!r}")
    return value


def redirect_mode(value: object) -> RedirectMode:
    """``value`` as a ``redirect=`` mode.

    :raises ValueError: when it is not one of :data:`REDIRECT_MODES`.
    """
    if value not in REDIRECT_MODES:
        raise ValueError(f"redirect must be one of {', '.join(REDIRECT_MODES)}; got {value!r}")
    return value


def cert_verification_mode(value: object, field: str = "tls_settings.cert_verification_mode") -> CertVerificationMode:
    """``value`` as a ``cert_verification_mode`` (the package's own string).

    :raises ConfigError: when it is not one of :data:`CERT_VERIFICATION_MODES`.
    """
    if value not in CERT_VERIFICATION_MODES or not isinstance(value, str):
        raise ConfigError(f"unknown mode {value!r}; allowed: {', '.join(CERT_VERIFICATION_MODES)}", field=field)
    return CERT_VERIFICATION_MODES[CERT_VERIFICATION_MODES.index(value)]


def service_type(value: object) -> ServiceType:
    """``value`` as a service ``type``.

    :raises ConfigError: when it is not one of :data:`SERVICE_TYPES`.
    """
    if value not in SERVICE_TYPES or not isinstance(value, str):
        raise ConfigError(f"unknown service type {value!r}; allowed: {', '.join(SERVICE_TYPES)}", field="type")
    return cast(ServiceType, str(value))


def app_protocol(value: object) -> AppProtocol:
    """``value`` as a ``tcp`` service's ``app_protocol``.

    :raises ConfigError: when it is not one of :data:`APP_PROTOCOLS`.
    """
    if value not in APP_PROTOCOLS or not isinstance(value, str):
        raise ConfigError(
            f"unknown app_protocol {value!r}; allowed: {', '.join(APP_PROTOCOLS)}", field="app_protocol"
        )
    return cast(AppProtocol, str(value))
