"""vpc_requests._model.modes: each closed set, its Literal type and its one check."""

from __future__ import annotations

from typing import get_args

import pytest

from vpc_requests import ConfigError
from vpc_requests._model import modes


@pytest.mark.parametrize(("check", "kind"), [
    (modes.error_mode, modes.ErrorMode), (modes.redirect_mode, modes.RedirectMode),
    (modes.cert_verification_mode, modes.CertVerificationMode), (modes.service_type, modes.ServiceType),
    (modes.app_protocol, modes.AppProtocol),
])
def test_every_value_of_the_literal_passes_its_check(check, kind) -> None:
    for value in get_args(kind):
        assert check(value) == value


@pytest.mark.parametrize(("check", "name"), [(modes.error_mode, "errors"), (modes.redirect_mode, "redirect")])
def test_keyword_modes_refuse_other_values_listing_the_allowed(check, name) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be one of .*; got 'Raise'$"):
        check("Raise")


@pytest.mark.parametrize(("check", "value"), [
    (modes.cert_verification_mode, "VERIFY_FULL"), (modes.service_type, "udp"), (modes.app_protocol, ["mysql"]),
])
def test_service_fields_refuse_other_values_as_config_errors(check, value) -> None:
    with pytest.raises(ConfigError, match="allowed: "):
        check(value)


def test_defaults_come_first() -> None:
    assert modes.DEFAULT_CERT_VERIFICATION_MODE == modes.CERT_VERIFICATION_MODES[0] == "verify_full"
    assert modes.ERROR_MODES[0] == "raise"
    assert modes.REDIRECT_MODES[0] == "follow"
    assert modes.SERVICE_TYPES[0] == "http"
