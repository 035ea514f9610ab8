"""Tests for :mod:`vpc_requests._model.service`: validation, normalisation, the
transport-facing helpers and the Cloudflare API JSON shape."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

from vpc_requests._errors import ConfigError
from vpc_requests._model.modes import CERT_VERIFICATION_MODES
from vpc_requests._model.service import API_FIELDS, VPCService

HOST = "internal-api.company.local"
TUNNEL = "0e8b7c2a-1f3d-4c5e-9a6b-7d8e9f0a1b2c"


@contextlib.contextmanager
def config_error(match: str | None = None, *, field: str | None = None) -> Iterator[Any]:
    """``pytest.raises(ConfigError, match=...)`` that also checks ``.field``."""
    with pytest.raises(ConfigError, match=match) as info:
        yield info
    if field is not None:
        assert info.value.field == field, str(info.value)


# -- host shapes ---------------------------------------------------------------


def test_hostname_service() -> None:
    s = VPCService(hostname=HOST)
    assert (s.hostname, s.ipv4, s.ipv6) == (HOST, None, None)
    assert s.origin_host == HOST
    assert s.addresses == (HOST,)


def test_ipv4_service() -> None:
    s = VPCService(ipv4="10.0.1.50")
    assert s.origin_host == "10.0.1.50"
    assert s.addresses == ("10.0.1.50",)


def test_ipv6_service() -> None:
    s = VPCService(ipv6="fe80::1")
    assert s.origin_host == "fe80::1"
    assert s.addresses == ("fe80::1",)


def test_dual_stack_service_tries_ipv6_first_and_names_ipv4() -> None:
    s = VPCService(ipv4="10.0.1.50", ipv6="fe80::1")
    assert s.addresses == ("fe80::1", "10.0.1.50")
    assert s.origin_host == "10.0.1.50"


def test_no_host_is_refused() -> None:
    with config_error("needs a host", field="host"):
        VPCService(http_port=80)


@pytest.mark.parametrize("ips", [{"ipv4": "10.0.1.50"}, {"ipv6": "fe80::1"},
                                 {"ipv4": "10.0.1.50", "ipv6": "fe80::1"}])
def test_hostname_and_ip_together_are_refused(ips: dict[str, str]) -> None:
    with config_error("not both", field="host") as info:
        VPCService(hostname=HOST, **ips)
    assert repr(HOST) in str(info.value)
    for value in ips.values():
        assert repr(value) in str(info.value)


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        VPCService(HOST)  # type: ignore[misc]


# -- hostname ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Internal-API.Company.LOCAL", HOST),
        ("api", "api"),
        ("api.corp.", "api.corp."),  # absolute name: the trailing dot is kept
        ("_svc.db-1.corp", "_svc.db-1.corp"),
        ("bücher.corp", "bücher.corp"),  # IDN kept as given
        ("x1.y2", "x1.y2"),
        ("a" * 63 + ".corp", "a" * 63 + ".corp"),
        (".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 61),
        (".".join(["a" * 63] * 3) + "." + "b" * 61 + ".", ".".join(["a" * 63] * 3) + "." + "b" * 61 + "."),
    ],
)
def test_valid_hostnames_are_normalised(given: str, stored: str) -> None:
    assert VPCService(hostname=given).hostname == stored


def test_hostname_of_253_characters_is_the_limit() -> None:
    name = ".".join(["a" * 63] * 3) + "." + "b" * 61
    assert len(name) == 253
    assert VPCService(hostname=name).hostname == name
    with config_error("254 characters", field="host.hostname"):
        VPCService(hostname=name + "b")


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("http://internal-api.company.local", "URL scheme"),
        ("https://internal-api.company.local/x", "URL scheme"),
        ("internal-api.company.local/users", "path"),
        ("internal-api.company.local?x=1", "path"),
        ("internal-api.company.local:8080", "port"),
        ("internal api.company.local", "whitespace"),
        (" internal-api.company.local", "whitespace"),
        ("internal-api.company.local\n", "whitespace"),
        ("user@internal-api.company.local", "user information"),
        ("10.0.1.50", "IP address.*host.ipv4"),
        ("fe80::1", "IP address.*host.ipv6"),
        ("[fe80::1]", "IP address.*host.ipv6"),
        ("[::1]", "IP address.*host.ipv6"),
        ("10.0.1", "ends in a number"),
        ("api.0x7f", "ends in a number"),
        ("", "must not be empty"),
        ("a..b", "empty label"),
        (".corp", "empty label"),
        (".", "empty label"),
        ("a" * 64 + ".corp", "label of 64"),
        ("-api.corp", "starting or ending with '-'"),
        ("api-.corp", "starting or ending with '-'"),
        ("api*.corp", "contains"),
        ("[api.corp]", "contains"),
    ],
)
def test_invalid_hostnames_are_refused(bad: str, match: str) -> None:
    with config_error(match, field="host.hostname"):
        VPCService(hostname=bad)


def test_hostname_of_254_characters_is_refused() -> None:
    with config_error("254 characters", field="host.hostname"):
        VPCService(hostname="a" * 254)


@pytest.mark.parametrize("bad", [123, b"api.corp", ["api.corp"]])
def test_hostname_must_be_a_string(bad: object) -> None:
    with config_error("must be a string", field="host.hostname") as info:
        VPCService(hostname=bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


# -- IP addresses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [("10.0.1.50", "10.0.1.50"), ("192.168.0.1", "192.168.0.1"), ("0.0.0.0", "0.0.0.0")],
)
def test_valid_ipv4(given: str, stored: str) -> None:
    assert VPCService(ipv4=given).ipv4 == stored


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("10.0.1.256", "not a valid IPv4"),
        ("010.0.1.50", "not a valid IPv4"),
        ("10.0.1", "not a valid IPv4"),
        ("10.0.1.50:80", "not a valid IPv4"),
        ("", "not a valid IPv4"),
        ("fe80::1", "IPv6 address, put it in host.ipv6"),
        (167772161, "must be an IPv4 address string"),
    ],
)
def test_invalid_ipv4(bad: object, match: str) -> None:
    with config_error(match, field="host.ipv4") as info:
        VPCService(ipv4=bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("fe80::1", "fe80::1"),
        ("[fe80::1]", "fe80::1"),
        ("FE80:0000:0000:0000:0000:0000:0000:0001", "fe80::1"),
        ("::1", "::1"),
        ("::ffff:10.0.1.50", "::ffff:a00:132"),
    ],
)
def test_valid_ipv6_is_stored_compressed_without_brackets(given: str, stored: str) -> None:
    assert VPCService(ipv6=given).ipv6 == stored


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("fe80::g", "not a valid IPv6"),
        ("[fe80::1", "not a valid IPv6"),
        ("fe80::1]", "not a valid IPv6"),
        ("[fe80::1]:80", "not a valid IPv6"),
        ("fe80:::1", "not a valid IPv6"),
        ("fe80::1%eth0", "zone id"),
        ("10.0.1.50", "IPv4 address, put it in host.ipv4"),
        (42, "must be an IPv6 address string"),
    ],
)
def test_invalid_ipv6(bad: object, match: str) -> None:
    with config_error(match, field="host.ipv6") as info:
        VPCService(ipv6=bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


# -- ports ---------------------------------------------------------------------


def test_ports_default_to_80_and_443_and_stay_unset() -> None:
    s = VPCService(hostname=HOST)
    assert (s.http_port, s.https_port) == (None, None)
    assert s.port_for("http") == 80
    assert s.port_for("https") == 443
    assert s.schemes == ("http", "https")
    assert "http_port" not in s.to_api() and "https_port" not in s.to_api()


def test_explicit_default_ports_are_kept_explicit() -> None:
    s = VPCService(hostname=HOST, http_port=80, https_port=443)
    assert (s.http_port, s.https_port) == (80, 443)
    assert s.to_api()["http_port"] == 80 and s.to_api()["https_port"] == 443
    assert s != VPCService(hostname=HOST)


def test_both_ports_set() -> None:
    s = VPCService(hostname=HOST, http_port=8080, https_port=8443)
    assert s.port_for("http") == 8080
    assert s.port_for("https") == 8443


def test_only_http_port_allows_only_http() -> None:
    s = VPCService(hostname=HOST, http_port=8080)
    assert s.port_for("http") == 8080
    assert s.port_for("https") is None
    assert s.schemes == ("http",)


def test_only_https_port_allows_only_https() -> None:
    s = VPCService(hostname=HOST, https_port=8443)
    assert s.port_for("https") == 8443
    assert s.port_for("http") is None
    assert s.schemes == ("https",)


def test_port_for_is_case_insensitive_and_refuses_other_schemes() -> None:
    s = VPCService(hostname=HOST)
    assert s.port_for("HTTPS") == 443
    assert s.port_for("Http") == 80
    assert s.port_for("ftp") is None
    assert s.port_for("ws") is None


@pytest.mark.parametrize("port", [1, 80, 65535])
@pytest.mark.parametrize("field", ["http_port", "https_port"])
def test_valid_ports(field: str, port: int) -> None:
    s = VPCService(hostname=HOST, **{field: port})
    assert getattr(s, field) == port
    assert type(getattr(s, field)) is int


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (0, "out of range"),
        (65536, "out of range"),
        (-1, "out of range"),
        (True, "must be an integer"),
        (False, "must be an integer"),
        ("80", "must be an integer"),
        (80.0, "must be an integer"),
    ],
)
@pytest.mark.parametrize("field", ["http_port", "https_port"])
def test_invalid_ports(field: str, bad: object, match: str) -> None:
    with config_error(match, field=field) as info:
        VPCService(hostname=HOST, **{field: bad})
    assert repr(bad) in str(info.value)
    assert str(info.value).startswith(f"{field}: ")


# -- origin and describe -------------------------------------------------------


def test_origin_and_describe_for_a_hostname_service() -> None:
    s = VPCService(hostname=HOST)
    assert s.origin("http") == f"{HOST}:80"
    assert s.origin("HTTPS") == f"{HOST}:443"
    assert s.describe() == f"{HOST} (http 80, https 443)"


def test_origin_brackets_ipv6() -> None:
    s = VPCService(ipv6="fe80::1", https_port=8443)
    assert s.origin("https") == "[fe80::1]:8443"
    assert s.describe() == "fe80::1 (https 8443)"


def test_origin_of_dual_stack_uses_ipv4() -> None:
    s = VPCService(ipv4="10.0.1.50", ipv6="fe80::1", http_port=8080)
    assert s.origin("http") == "10.0.1.50:8080"
    assert s.describe() == "fe80::1 / 10.0.1.50 (http 8080)"


def test_origin_refuses_a_scheme_without_port() -> None:
    s = VPCService(hostname=HOST, http_port=8080)
    with pytest.raises(ValueError, match="no port for scheme 'https'; it allows: http"):
        s.origin("https")
    with pytest.raises(ValueError, match="'ftp'"):
        s.origin("ftp")


# -- certificate verification mode --------------------------------------------


def test_default_mode_is_verify_full() -> None:
    assert VPCService(hostname=HOST).cert_verification_mode == "verify_full"


@pytest.mark.parametrize("mode", ["verify_full", "verify_ca", "disabled"])
def test_valid_modes(mode: str) -> None:
    assert VPCService(hostname=HOST, cert_verification_mode=mode).cert_verification_mode == mode


@pytest.mark.parametrize("bad", ["VERIFY_FULL", "none", "", "strict", None, True])
def test_invalid_modes(bad: object) -> None:
    with config_error("unknown mode", field="tls_settings.cert_verification_mode") as info:
        VPCService(hostname=HOST, cert_verification_mode=bad)  # type: ignore[arg-type]
    text = str(info.value)
    assert repr(bad) in text
    assert all(mode in text for mode in CERT_VERIFICATION_MODES)


# -- resolver IPs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("10.0.0.2", "10.0.0.2"),
        ("10.0.0.2:53", "10.0.0.2:53"),
        ("10.0.0.2:0053", "10.0.0.2:53"),
        ("fd00::53", "fd00::53"),
        ("FD00:0:0::53", "fd00::53"),
        ("[fd00::53]", "fd00::53"),
        ("[fd00::53]:5353", "[fd00::53]:5353"),
    ],
)
def test_valid_resolver_ips_are_normalised(given: str, stored: str) -> None:
    assert VPCService(hostname=HOST, resolver_ips=[given]).resolver_ips == (stored,)


def test_resolver_ips_list_becomes_tuple_in_order() -> None:
    s = VPCService(hostname=HOST, resolver_ips=["10.0.0.3", "10.0.0.2"])
    assert s.resolver_ips == ("10.0.0.3", "10.0.0.2")
    assert isinstance(s.resolver_ips, tuple)
    assert VPCService(hostname=HOST).resolver_ips == ()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("10.0.0.2:0", "ports are 1-65535"),
        ("10.0.0.2:65536", "ports are 1-65535"),
        ("10.0.0.2:dns", "ports are 1-65535"),
        ("10.0.0.2:", "ports are 1-65535"),
        ("resolver.corp", "is not an IP address"),
        ("resolver.corp:53", "not an IPv4 address"),
        ("10.0.0.256", "is not an IP address"),
        ("10.0.0.256:53", "not an IPv4 address"),
        ("[fd00::53]53", "is not an IP address"),
        ("[10.0.0.2]:53", "not an IPv6 address"),
        ("[fd00::53", "is not an IP address"),
        (53, "got number"),
    ],
)
def test_invalid_resolver_ips(bad: object, match: str) -> None:
    with config_error(match, field="host.resolver_network.resolver_ips[1]") as info:
        VPCService(hostname=HOST, resolver_ips=["10.0.0.2", bad])  # type: ignore[list-item]
    assert repr(bad) in str(info.value)


def test_resolver_ips_must_be_a_list() -> None:
    with config_error(r"must be a list.*\['10.0.0.2'\]", field="host.resolver_network.resolver_ips"):
        VPCService(hostname=HOST, resolver_ips="10.0.0.2")  # type: ignore[arg-type]


def test_resolver_ips_only_with_hostname() -> None:
    assert VPCService(ipv4="10.0.1.50", resolver_ips=[]).resolver_ips == ()
    with config_error("only apply to a hostname", field="host.resolver_network.resolver_ips"):
        VPCService(ipv4="10.0.1.50", resolver_ips=["10.0.0.2"])


# -- identifiers ---------------------------------------------------------------


def test_identifiers() -> None:
    s = VPCService(hostname=HOST, name="my-api", service_id="svc-1", tunnel_id=TUNNEL)
    assert (s.name, s.service_id, s.tunnel_id) == ("my-api", "svc-1", TUNNEL)


@pytest.mark.parametrize("field", ["name", "service_id"])
@pytest.mark.parametrize("bad", ["", "  ", 7])
def test_invalid_identifiers(field: str, bad: object) -> None:
    with config_error(None, field=field) as info:
        VPCService(hostname=HOST, **{field: bad})
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("host", "field"),
    [({"hostname": HOST}, "host.resolver_network.tunnel_id"), ({"ipv4": "10.0.1.50"}, "host.network.tunnel_id")],
)
def test_tunnel_id_error_names_the_network_of_the_shape(host: dict[str, str], field: str) -> None:
    assert VPCService(tunnel_id=TUNNEL, **host).tunnel_id == TUNNEL
    with config_error("must be a string", field=field):
        VPCService(tunnel_id=42, **host)  # type: ignore[arg-type]


# -- Cloudflare API JSON -------------------------------------------------------

HOSTNAME_OBJ: dict[str, Any] = {
    "service_id": "2a1b3c4d-0000-4000-8000-000000000001",
    "type": "http",
    "name": "my-api",
    "http_port": 80,
    "https_port": 443,
    "host": {
        "hostname": HOST,
        "resolver_network": {"tunnel_id": TUNNEL, "resolver_ips": ["10.0.0.2"]},
    },
    "tls_settings": {"cert_verification_mode": "verify_ca"},
    "created_at": "2025-10-01T12:00:00Z",
    "updated_at": "2025-10-02T08:30:00Z",
}
DUAL_OBJ: dict[str, Any] = {
    "type": "http",
    "name": "dual",
    "host": {"ipv4": "10.0.1.50", "ipv6": "fe80::1", "network": {"tunnel_id": TUNNEL}},
}
HTTPS_ONLY_OBJ: dict[str, Any] = {
    "service_id": "svc-https",
    "type": "http",
    "https_port": 8443,
    "host": {"hostname": "secure.corp", "resolver_network": {"tunnel_id": TUNNEL}},
}
IPV6_EXPLICIT_TLS_OBJ: dict[str, Any] = {
    "type": "http",
    "http_port": 8080,
    "host": {"ipv6": "fd00::10", "network": {"tunnel_id": TUNNEL}},
    "tls_settings": {"cert_verification_mode": "verify_full"},
}
BARE_OBJ: dict[str, Any] = {"type": "http", "host": {"ipv4": "10.0.1.50"}}


def test_from_api_hostname_object() -> None:
    s = VPCService.from_api(HOSTNAME_OBJ)
    assert s == VPCService(
        hostname=HOST, http_port=80, https_port=443, name="my-api",
        service_id=HOSTNAME_OBJ["service_id"], tunnel_id=TUNNEL, resolver_ips=("10.0.0.2",),
        cert_verification_mode="verify_ca", created_at="2025-10-01T12:00:00Z",
        updated_at="2025-10-02T08:30:00Z",
    )


def test_from_api_ip_object() -> None:
    s = VPCService.from_api(DUAL_OBJ)
    assert (s.ipv4, s.ipv6, s.tunnel_id, s.name) == ("10.0.1.50", "fe80::1", TUNNEL, "dual")
    assert s.port_for("http") == 80 and s.port_for("https") == 443


def test_from_api_only_https_port() -> None:
    s = VPCService.from_api(HTTPS_ONLY_OBJ)
    assert s.port_for("https") == 8443
    assert s.port_for("http") is None


@pytest.mark.parametrize("obj", [HOSTNAME_OBJ, DUAL_OBJ, HTTPS_ONLY_OBJ, IPV6_EXPLICIT_TLS_OBJ, BARE_OBJ],
                         ids=["hostname", "dual", "https-only", "explicit-tls", "bare"])
def test_api_round_trips(obj: dict[str, Any]) -> None:
    s = VPCService.from_api(obj)
    assert s.to_api() == obj
    assert VPCService.from_api(s.to_api()) == s


def test_to_api_of_constructed_services() -> None:
    assert VPCService(hostname=HOST).to_api() == {"type": "http", "host": {"hostname": HOST}}
    s = VPCService(hostname=HOST, resolver_ips=["10.0.0.2"], cert_verification_mode="disabled")
    assert s.to_api() == {
        "type": "http",
        "host": {"hostname": HOST, "resolver_network": {"resolver_ips": ["10.0.0.2"]}},
        "tls_settings": {"cert_verification_mode": "disabled"},
    }
    assert VPCService.from_api(s.to_api()) == s


def test_to_api_returns_a_fresh_dict() -> None:
    s = VPCService.from_api(HOSTNAME_OBJ)
    obj = s.to_api()
    obj["host"]["resolver_network"]["resolver_ips"].append("10.9.9.9")
    assert s.to_api() == HOSTNAME_OBJ
    assert s.resolver_ips == ("10.0.0.2",)


def test_from_api_accepts_response_fields_and_unknown_top_level_keys() -> None:
    obj = dict(BARE_OBJ, created_at="2025-01-01T00:00:00Z", updated_at="2025-01-02T00:00:00Z",
               account_id="abc", some_future_field={"x": 1})
    s = VPCService.from_api(obj)
    assert s.created_at == "2025-01-01T00:00:00Z"
    assert s.updated_at == "2025-01-02T00:00:00Z"
    assert "account_id" not in s.to_api()
    assert "account_id" not in API_FIELDS and "host" in API_FIELDS


def test_from_api_type_may_be_omitted_and_defaults_to_http() -> None:
    assert VPCService.from_api({"host": {"ipv4": "10.0.1.50"}}) == VPCService(ipv4="10.0.1.50")
    assert VPCService.from_api({"host": {"ipv4": "10.0.1.50"}}).type == "http"
    with config_error("'udp'.*allowed: http, tcp", field="type"):
        VPCService.from_api({"type": "udp", "host": {"ipv4": "10.0.1.50"}})


def test_from_api_converts_digit_string_ports() -> None:
    s = VPCService.from_api({"http_port": "8080", "https_port": "8443", "host": {"ipv4": "10.0.1.50"}})
    assert (s.http_port, s.https_port) == (8080, 8443)
    with config_error("'80a'", field="http_port"):
        VPCService.from_api({"http_port": "80a", "host": {"ipv4": "10.0.1.50"}})
    with config_error("'0'", field="https_port"):
        VPCService.from_api({"https_port": "0", "host": {"ipv4": "10.0.1.50"}})


def test_from_api_treats_null_as_absent() -> None:
    s = VPCService.from_api({"http_port": None, "host": {"ipv4": "10.0.1.50", "ipv6": None, "network": None}})
    assert s == VPCService(ipv4="10.0.1.50")


@pytest.mark.parametrize(
    ("obj", "field", "match"),
    [
        ({"host": {"ipv4": "10.0.1.999"}}, "host.ipv4", "'10.0.1.999'"),
        ({"host": {"ipv6": "fe80::zz"}}, "host.ipv6", "'fe80::zz'"),
        ({"host": {"hostname": "http://x.corp"}}, "host.hostname", "'http://x.corp'"),
        ({"host": {"hostname": HOST, "resolver_network": {"resolver_ips": ["dns.corp"]}}},
         "host.resolver_network.resolver_ips[0]", "'dns.corp'"),
        ({"host": {"hostname": HOST, "resolver_network": {"resolver_ips": "10.0.0.2"}}},
         "host.resolver_network.resolver_ips", "'10.0.0.2'"),
        ({"host": {"hostname": HOST, "network": {"tunnel_id": TUNNEL}}}, "host.network", "resolver_network"),
        ({"host": {"ipv4": "10.0.1.50", "resolver_network": {"tunnel_id": TUNNEL}}},
         "host.resolver_network", "host.network"),
        ({"host": {"ipv4": "10.0.1.50", "ip4": "10.0.1.51"}}, "host.ip4", "unknown key 'ip4'"),
        ({"host": {"ipv4": "10.0.1.50", "network": {"tunnel": TUNNEL}}}, "host.network.tunnel", "unknown key"),
        ({"host": {"hostname": HOST, "resolver_network": {"resolver_ip": ["10.0.0.2"]}}},
         "host.resolver_network.resolver_ip", "unknown key"),
        ({"host": {"ipv4": "10.0.1.50", "network": "t"}}, "host.network", "JSON object"),
        ({"host": {"ipv4": "10.0.1.50"}, "http_port": 70000}, "http_port", "70000"),
        ({"host": {"ipv4": "10.0.1.50"}, "https_port": True}, "https_port", "True"),
        ({"host": {"ipv4": "10.0.1.50"}, "tls_settings": {"cert_verification_mode": "full"}},
         "tls_settings.cert_verification_mode", "'full'"),
        ({"host": {"ipv4": "10.0.1.50"}, "tls_settings": {"mode": "disabled"}}, "tls_settings.mode", "unknown key"),
        ({"host": {"ipv4": "10.0.1.50"}, "tls_settings": "disabled"}, "tls_settings", "'disabled'"),
        ({"host": {"ipv4": "10.0.1.50"}, "name": 5}, "name", "5"),
        ({"host": {"ipv4": "10.0.1.50"}, "created_at": 5}, "created_at", "5"),
        ({"host": {}}, "host", "needs a host"),
        ({"host": ["10.0.1.50"]}, "host", r"\['10.0.1.50'\]"),
        ({"type": "http"}, "host", "missing"),
    ],
)
def test_from_api_errors_name_the_api_path_and_value(obj: dict[str, Any], field: str, match: str) -> None:
    with config_error(match, field=field) as info:
        VPCService.from_api(obj)
    assert field in str(info.value)


@pytest.mark.parametrize("obj", [[BARE_OBJ], "10.0.1.50", None])
def test_from_api_needs_an_object(obj: object) -> None:
    with config_error("must be a JSON object"):
        VPCService.from_api(obj)  # type: ignore[arg-type]


def test_from_api_returns_plain_python_values_from_tomlkit() -> None:
    doc = tomlkit.parse(
        'type = "http"\nname = "toml"\nhttp_port = 8080\n'
        '[host]\nhostname = "API.corp"\n'
        '[host.resolver_network]\ntunnel_id = "t"\nresolver_ips = ["10.0.0.2"]\n'
        '[tls_settings]\ncert_verification_mode = "verify_ca"\n'
    )
    s = VPCService.from_api(doc)
    assert s.hostname == "api.corp" and s.http_port == 8080
    for value in (s.hostname, s.name, s.tunnel_id, s.cert_verification_mode, *s.resolver_ips):
        assert type(value) is str
    assert type(s.http_port) is int
    assert pickle.loads(pickle.dumps(s)) == s


# -- value behaviour -----------------------------------------------------------


def test_equal_services_hash_equal_and_work_as_keys() -> None:
    a = VPCService(hostname="API.corp", resolver_ips=["10.0.0.2"])
    b = VPCService(hostname="api.corp", resolver_ips=("10.0.0.2",))
    c = VPCService(hostname="api.corp", https_port=8443)
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1


def test_pickle_round_trip_keeps_value_and_api_shape() -> None:
    for s in (VPCService.from_api(HOSTNAME_OBJ), VPCService.from_api(IPV6_EXPLICIT_TLS_OBJ)):
        clone = pickle.loads(pickle.dumps(s))
        assert clone == s and hash(clone) == hash(s)
        assert clone.to_api() == s.to_api()


def test_copy_returns_the_same_immutable_value() -> None:
    s = VPCService(hostname=HOST)
    assert copy.copy(s) is s
    assert copy.deepcopy(s) is s


@pytest.mark.parametrize("field", ["hostname", "http_port", "resolver_ips", "cert_verification_mode", "extra"])
def test_assignment_raises(field: str) -> None:
    s = VPCService(hostname=HOST)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, field, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(s, "hostname")
    assert s.hostname == HOST
    assert not hasattr(s, "__dict__")


def test_replace_revalidates() -> None:
    s = VPCService(hostname=HOST, name="a")
    t = s.replace(https_port=8443, name="b")
    assert (t.hostname, t.https_port, t.name) == (HOST, 8443, "b")
    assert s.https_port is None and s.name == "a"
    assert s.replace(hostname=None, ipv4="10.0.1.50").origin_host == "10.0.1.50"
    with config_error("'http://x'", field="host.hostname"):
        s.replace(hostname="http://x")
    with config_error("not both", field="host"):
        s.replace(ipv4="10.0.1.50")
    with pytest.raises(TypeError, match="'port'"):
        s.replace(port=80)


def test_replace_keeps_explicit_tls_settings() -> None:
    s = VPCService.from_api(IPV6_EXPLICIT_TLS_OBJ)
    assert s.replace(name="x").to_api()["tls_settings"] == {"cert_verification_mode": "verify_full"}


def test_repr_shows_only_set_fields() -> None:
    s = VPCService(hostname=HOST, https_port=8443)
    assert repr(s) == f"VPCService(hostname={HOST!r}, https_port=8443)"


def test_config_error_is_a_value_error_that_pickles() -> None:
    with pytest.raises(ValueError) as info:
        VPCService(ipv4="nope")
    clone = pickle.loads(pickle.dumps(info.value))
    assert isinstance(clone, ConfigError)
    assert clone.field == "host.ipv4" and str(clone) == str(info.value)


# -- property: the API shape round-trips ---------------------------------------

_LABEL = st.from_regex(r"\A[a-z]([a-z0-9-]{0,8}[a-z0-9])?\Z")
_HOSTNAMES = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_PORTS = st.none() | st.integers(1, 65535)
_OPTIONAL_TEXT = st.none() | st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_RESOLVERS = st.lists(
    st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(str)
    | st.tuples(st.ip_addresses(v=4), st.integers(1, 65535)).map(lambda t: f"{t[0]}:{t[1]}")
    | st.tuples(st.ip_addresses(v=6), st.integers(1, 65535)).map(lambda t: f"[{t[0]}]:{t[1]}"),
    max_size=3,
)
_HOSTS = (
    st.builds(lambda h, r: {"hostname": h, "resolver_ips": r}, _HOSTNAMES, _RESOLVERS)
    | st.builds(lambda a: {"ipv4": str(a)}, st.ip_addresses(v=4))
    | st.builds(lambda a: {"ipv6": str(a)}, st.ip_addresses(v=6))
    | st.builds(lambda a, b: {"ipv4": str(a), "ipv6": str(b)}, st.ip_addresses(v=4), st.ip_addresses(v=6))
)


@settings(max_examples=60, deadline=None)
@given(
    host=_HOSTS,
    http_port=_PORTS,
    https_port=_PORTS,
    name=_OPTIONAL_TEXT,
    service_id=_OPTIONAL_TEXT,
    tunnel_id=_OPTIONAL_TEXT,
    mode=st.sampled_from(CERT_VERIFICATION_MODES),
)
def test_property_api_round_trip(host: dict[str, Any], http_port: int | None, https_port: int | None,
                                 name: str | None, service_id: str | None, tunnel_id: str | None,
                                 mode: str) -> None:
    s = VPCService(http_port=http_port, https_port=https_port, name=name, service_id=service_id,
                   tunnel_id=tunnel_id, cert_verification_mode=mode, **host)
    obj = s.to_api()
    assert VPCService.from_api(obj) == s
    assert VPCService.from_api(obj).to_api() == obj
    assert pickle.loads(pickle.dumps(s)) == s
    allowed = [scheme for scheme in ("http", "https") if s.port_for(scheme) is not None]
    assert allowed and list(s.schemes) == allowed


# -- tcp services ----------------------------------------------------------------

TCP_OBJ: dict[str, Any] = {
    "service_id": "5f0e7a3c-2b1d-4e6f-8a9b-0c1d2e3f4a5b",
    "type": "tcp",
    "name": "orders-db",
    "tcp_port": 5432,
    "app_protocol": "postgresql",
    "host": {"hostname": "db.internal", "resolver_network": {"tunnel_id": TUNNEL}},
    "tls_settings": {"cert_verification_mode": "verify_ca"},
    "created_at": "2025-11-01T00:00:00Z",
    "updated_at": "2025-11-01T00:00:00Z",
}


def test_tcp_service_loads_and_round_trips() -> None:
    s = VPCService.from_api(TCP_OBJ)
    assert (s.type, s.tcp_port, s.app_protocol) == ("tcp", 5432, "postgresql")
    assert (s.http_port, s.https_port) == (None, None)
    assert s.to_api() == TCP_OBJ
    assert VPCService.from_api(s.to_api()) == s
    assert pickle.loads(pickle.dumps(s)) == s and pickle.loads(pickle.dumps(s)).to_api() == TCP_OBJ


def test_tcp_service_allows_no_url_scheme() -> None:
    s = VPCService(ipv4="10.0.1.60", type="tcp", tcp_port=3306, app_protocol="mysql")
    assert s.port_for("http") is None and s.port_for("https") is None
    assert s.schemes == ()
    assert s.describe() == "10.0.1.60 (tcp 3306, mysql)"
    assert s.origin_host == "10.0.1.60"
    with pytest.raises(ValueError, match="no port for scheme 'https'"):
        s.origin("https")


def test_tcp_service_differs_from_the_http_service_of_the_same_host() -> None:
    tcp = VPCService(hostname=HOST, type="tcp", tcp_port=5432)
    assert tcp != VPCService(hostname=HOST)
    assert tcp == VPCService(hostname=HOST.upper(), type="tcp", tcp_port=5432)
    assert "type='tcp'" in repr(tcp) and "type=" not in repr(VPCService(hostname=HOST))


def test_tcp_port_may_be_absent_as_in_the_api_types() -> None:
    s = VPCService.from_api({"type": "tcp", "host": {"ipv4": "10.0.1.60"}})
    assert s.tcp_port is None and s.describe() == "10.0.1.60 (tcp)"
    assert s.to_api() == {"type": "tcp", "host": {"ipv4": "10.0.1.60"}}


def test_tcp_port_digit_string_converts_and_bad_ports_are_refused() -> None:
    assert VPCService.from_api({**TCP_OBJ, "tcp_port": "6432"}).tcp_port == 6432
    for bad in (0, 65536, "54x", True):
        with config_error(repr(bad), field="tcp_port"):
            VPCService.from_api({**TCP_OBJ, "tcp_port": bad})


def test_unknown_app_protocol_is_refused() -> None:
    with config_error("'redis'.*postgresql, mysql", field="app_protocol"):
        VPCService.from_api({**TCP_OBJ, "app_protocol": "redis"})


@pytest.mark.parametrize(("kind", "extra"), [
    ("tcp", {"http_port": 80}), ("tcp", {"https_port": 443}),
    ("http", {"tcp_port": 5432}), ("http", {"app_protocol": "mysql"}),
])
def test_ports_of_the_other_type_are_refused(kind: str, extra: dict[str, Any]) -> None:
    (key, value), = extra.items()
    with config_error(f"type '{kind}'.*{key}={value!r}", field="type"):
        VPCService(hostname=HOST, type=kind, **extra)
    with config_error(f"{key}={value!r}", field="type"):
        VPCService.from_api({"type": kind, "host": {"hostname": HOST}, **extra})


def test_replace_can_turn_an_http_service_into_a_tcp_service() -> None:
    s = VPCService(hostname=HOST, https_port=8443)
    with config_error("https_port=8443", field="type"):
        s.replace(type="tcp", tcp_port=5432)
    t = s.replace(type="tcp", tcp_port=5432, https_port=None)
    assert t.to_api() == {"type": "tcp", "tcp_port": 5432, "host": {"hostname": HOST}}


# -- tls_settings certificate ids --------------------------------------------------

CERTS_OBJ: dict[str, Any] = {
    "type": "http",
    "https_port": 8443,
    "host": {"hostname": HOST, "resolver_network": {"tunnel_id": TUNNEL}},
    "tls_settings": {"cert_verification_mode": "verify_full", "certificate_authority": "ca-1",
                     "client_certificate": "mtls-1"},
}


def test_certificate_ids_round_trip() -> None:
    s = VPCService.from_api(CERTS_OBJ)
    assert (s.certificate_authority, s.client_certificate) == ("ca-1", "mtls-1")
    assert s.to_api() == CERTS_OBJ
    assert pickle.loads(pickle.dumps(s)).to_api() == CERTS_OBJ
    assert s != s.replace(client_certificate=None)


def test_certificate_id_alone_writes_the_default_mode_the_api_requires() -> None:
    s = VPCService.from_api({"type": "http", "host": {"hostname": HOST},
                             "tls_settings": {"client_certificate": "mtls-1"}})
    assert s.cert_verification_mode == "verify_full"
    assert s.to_api()["tls_settings"] == {"cert_verification_mode": "verify_full", "client_certificate": "mtls-1"}
    assert VPCService.from_api(s.to_api()) == s


@pytest.mark.parametrize("key", ["certificate_authority", "client_certificate"])
def test_certificate_id_must_be_a_non_empty_string(key: str) -> None:
    for bad in ("", 12, ["x"]):
        with config_error(field=f"tls_settings.{key}"):
            VPCService.from_api({**CERTS_OBJ, "tls_settings": {key: bad}})


def test_unknown_tls_settings_key_is_still_refused() -> None:
    with config_error("'ca_id'", field="tls_settings.ca_id"):
        VPCService.from_api({**CERTS_OBJ, "tls_settings": {"ca_id": "x"}})
