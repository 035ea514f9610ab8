"""Tests for :mod:`vpc_requests._transport.routing`: where a URL goes through a service
(S1-S5, S7), as a pure decision; the transport tests check the same on the
wire."""

from __future__ import annotations

import pickle

import pytest
import requests

from vpc_requests import RoutingError, VPCService
from vpc_requests._transport.routing import Route, route

NAME = "internal-api.company.local"
BOTH = VPCService(ipv4="192.0.2.10", http_port=8080, https_port=8443)
DEFAULTS = VPCService(hostname="origin.internal")
HTTP_ONLY = VPCService(ipv4="192.0.2.10", http_port=8080, name="http-only")
HTTPS_ONLY = VPCService(ipv4="192.0.2.10", https_port=8443, name="https-only")


# ------------------------------------------------------------ S1, S2: origin


@pytest.mark.parametrize(
    "url",
    [
        f"http://{NAME}/users",
        "http://10.0.1.50/api/data",
        "http://10.0.1.50:9999/api/data",
        "http://[fd00::1]:8080/",
        "http://evil.test/",
    ],
)
def test_connect_host_is_the_service_whatever_the_url_host(url: str) -> None:
    where = route(BOTH, url)
    assert where.connect_host == "192.0.2.10"
    assert where.port == 8080
    assert where.origin == "192.0.2.10:8080"


def test_connect_host_of_a_hostname_and_an_ipv6_service() -> None:
    assert route(DEFAULTS, f"http://{NAME}/").connect_host == "origin.internal"
    v6 = VPCService(ipv6="fd00::99", http_port=8080)
    where = route(v6, f"http://{NAME}/")
    assert where.connect_host == "fd00::99"
    assert where.origin == "[fd00::99]:8080"


@pytest.mark.parametrize(
    ("url", "port"),
    [
        (f"http://{NAME}/", 8080),
        (f"http://{NAME}:80/", 8080),
        (f"http://{NAME}:1234/", 8080),
        (f"https://{NAME}/", 8443),
        (f"https://{NAME}:443/", 8443),
        (f"https://{NAME}:1234/", 8443),
        (f"HTTPS://{NAME}/", 8443),
    ],
)
def test_port_comes_from_the_scheme_never_from_the_url(url: str, port: int) -> None:
    assert route(BOTH, url).port == port


def test_default_ports_when_the_service_sets_neither() -> None:
    assert route(DEFAULTS, f"http://{NAME}:8080/").port == 80
    assert route(DEFAULTS, f"https://{NAME}:8443/").port == 443
    assert route(DEFAULTS, f"https://{NAME}/").origin == "origin.internal:443"


def test_scheme_is_lower_cased() -> None:
    assert route(BOTH, f"HtTp://{NAME}/").scheme == "http"


# ----------------------------------------------------------- S3: one scheme


@pytest.mark.parametrize(
    ("service", "url", "allowed"),
    [
        (HTTP_ONLY, f"https://{NAME}/", "http"),
        (HTTPS_ONLY, f"http://{NAME}/", "https"),
    ],
)
def test_single_scheme_service_refuses_the_other_scheme(
    service: VPCService, url: str, allowed: str
) -> None:
    with pytest.raises(RoutingError) as info:
        route(service, url, "PRIVATE_API")
    message = str(info.value)
    assert "'PRIVATE_API'" in message
    assert f"use {allowed}://" in message
    # and the scheme it has a port for goes through
    assert route(service, f"{allowed}://{NAME}/", "PRIVATE_API").scheme == allowed


def test_routing_error_is_an_invalid_url_for_requests_users() -> None:
    with pytest.raises(requests.exceptions.InvalidURL):
        route(HTTP_ONLY, f"https://{NAME}/", "API")


# ------------------------------------------------------------ S4: Host header


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (f"http://{NAME}/users", NAME),
        (f"http://{NAME}:80/users", NAME),
        (f"https://{NAME}:443/users", NAME),
        (f"http://{NAME}:443/users", f"{NAME}:443"),
        (f"https://{NAME}:80/users", f"{NAME}:80"),
        (f"http://{NAME}:8080/users", f"{NAME}:8080"),
        ("http://10.0.1.50:9000/", "10.0.1.50:9000"),
        ("http://[fd00::1]:8080/", "[fd00::1]:8080"),
        ("http://[fd00::1]/", "[fd00::1]"),
        ("https://[fd00::1]:443/", "[fd00::1]"),
        (f"http://user:secret@{NAME}/", NAME),
        (f"http://user:p%40ss@{NAME}:8080/", f"{NAME}:8080"),
        (f"http://{NAME}?q=1", NAME),
        (f"http://{NAME}#frag", NAME),
    ],
)
def test_host_header(url: str, host: str) -> None:
    assert route(BOTH, url).host_header == host


def test_host_header_twin_a_non_default_port_is_never_dropped() -> None:
    # the failing twin of the default-port rule: 8080 must show
    assert route(BOTH, f"http://{NAME}:8080/").host_header != NAME


# ------------------------------------------------------------------ S5: SNI


@pytest.mark.parametrize(
    ("url", "sni"),
    [
        (f"https://{NAME}/", NAME),
        (f"https://{NAME}:9443/", NAME),
        (f"https://{NAME.upper()}/", NAME),
        (f"https://{NAME}./", NAME),
        ("https://10.0.1.50/", "10.0.1.50"),
        ("https://[FD00::0001]/", "fd00::1"),
        (f"http://{NAME}/", None),
    ],
)
def test_tls_name_is_the_url_host(url: str, sni: str | None) -> None:
    assert route(BOTH, url).server_hostname == sni


def test_url_host_is_kept_without_brackets() -> None:
    where = route(BOTH, "https://[fd00::1]:8443/")
    assert where.url_host == "fd00::1"
    assert where.host_header == "[fd00::1]:8443"


# -------------------------------------------------------- S7: URL shapes


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/users", "not an absolute URL"),
        ("users", "not an absolute URL"),
        ("internal-api.company.local/users", "not an absolute URL"),
        ("//internal-api.company.local/users", "not an absolute URL"),
        ("ftp://internal-api.company.local/file", "scheme 'ftp'"),
        ("ws://internal-api.company.local/", "scheme 'ws'"),
        ("mailto:ops@company.local", "not an absolute URL"),
        ("http:///users", "no host"),
        ("http://", "no host"),
        ("https://user@/x", "no host"),
        ("http://internal-api.company.local:99999/", "out of range"),
        ("http://internal-api.company.local:port/", "port"),
    ],
)
def test_refused_urls_name_the_binding(url: str, why: str) -> None:
    with pytest.raises(RoutingError) as info:
        route(BOTH, url, "PRIVATE_API")
    message = str(info.value)
    assert "'PRIVATE_API'" in message
    assert why in message


def test_refusal_without_a_binding_name_says_so() -> None:
    with pytest.raises(RoutingError, match="unnamed"):
        route(BOTH, "/users")


@pytest.mark.parametrize("url", [f"http://{NAME}/", f"https://{NAME}/"])
def test_absolute_http_and_https_are_the_accepted_twin(url: str) -> None:
    assert isinstance(route(BOTH, url, "PRIVATE_API"), Route)


# ------------------------------------------------------------------ values


def test_route_is_an_immutable_picklable_value() -> None:
    where = route(BOTH, f"https://{NAME}:9/")
    assert pickle.loads(pickle.dumps(where)) == where
    with pytest.raises(AttributeError):
        where.port = 1  # type: ignore[misc]


def test_routing_error_pickles() -> None:
    with pytest.raises(RoutingError) as info:
        route(HTTP_ONLY, f"https://{NAME}/", "API")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is RoutingError
    assert str(copy) == str(info.value)


def test_same_netloc_different_services_never_share_a_cached_route() -> None:
    other = VPCService(ipv4="192.0.2.99", http_port=81)
    assert route(BOTH, f"http://{NAME}/").origin == "192.0.2.10:8080"
    assert route(other, f"http://{NAME}/").origin == "192.0.2.99:81"
