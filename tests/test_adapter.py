"""Tests for :mod:`vpc_requests._transport.adapter`: a ``requests.Session`` with a
:class:`VPCServiceAdapter` mounted, against real loopback services, asserting
on what the service saw (docs/semantics.rst: S1-S6, S9, S10, S12, S13, pools, pickling,
``responses``). URL hosts such as ``10.0.1.50`` are never connected to: the
suite only allows loopback, so a routing bug fails here."""

from __future__ import annotations

import os
import pathlib
import pickle
import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
import trustme
from helpers import contacted
from pytest_socket import SocketConnectBlockedError
from urllib3.exceptions import InsecureRequestWarning

from vpc_requests import (
    Binding,
    ProxyError,
    ProxySSLError,
    RoutingError,
    VPCService,
    VPCServiceAdapter,
)
from vpc_requests._transport import tls
from vpc_requests.testing import PrivateService, Reply

NAME = "internal-api.company.local"
OTHER = "other.company.local"
BINDING = "PRIVATE_API"

MakeSession = Callable[..., "tuple[requests.Session, VPCServiceAdapter]"]


@pytest.fixture
def mounted() -> Iterator[MakeSession]:
    """Make sessions with a VPCServiceAdapter mounted for http and https;
    all closed at the end."""
    made: list[requests.Session] = []

    def make(service: VPCService, binding: str | None = BINDING, **kwargs: object):
        adapter = VPCServiceAdapter(service, binding=binding, **kwargs)
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        made.append(session)
        return session, adapter

    yield make
    for session in made:
        session.close()


@pytest.fixture
def plain() -> Iterator[requests.Session]:
    """A plain requests.Session, for the failing twins."""
    with requests.Session() as session:
        yield session


def http_of(server: PrivateService) -> VPCService:
    return VPCService(ipv4="127.0.0.1", http_port=server.port)


def https_of(server: PrivateService, mode: str = "verify_full") -> VPCService:
    return VPCService(ipv4="127.0.0.1", https_port=server.port, cert_verification_mode=mode)


# --------------------------------------------------------------- S1: route


@pytest.mark.parametrize("host", ["10.0.1.50", NAME, "10.0.1.50:9999", f"{NAME}:8080"])
def test_connection_goes_to_the_service_whatever_the_url_host(
    http_service: PrivateService, mounted: MakeSession, host: str
) -> None:
    session, _ = mounted(http_of(http_service))
    response = session.get(f"http://{host}/users?id=7")
    assert response.status_code == 200
    (seen,) = http_service.seen
    assert seen.host == host
    assert seen.target == "/users?id=7"
    assert seen.port == http_service.port
    assert response.url == f"http://{host}/users?id=7"


# pytest-socket 0.8 also warns when it blocks, 0.7 (the last for Python 3.9)
# does not; the socket it blocked may be collected late (ResourceWarning).
@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning", "ignore::ResourceWarning")
def test_twin_plain_requests_to_an_ip_url_host_is_blocked(
    http_service: PrivateService, plain: requests.Session
) -> None:
    with pytest.raises(SocketConnectBlockedError, match="10.0.1.50"):
        plain.get("http://10.0.1.50/users", timeout=0.3)
    assert http_service.seen == []


def test_twin_plain_requests_to_a_name_url_host_fails(
    http_service: PrivateService, plain: requests.Session
) -> None:
    with pytest.raises(requests.ConnectionError):  # the name does not resolve
        plain.get(f"http://{NAME}/users", timeout=0.3)
    assert http_service.seen == []


def test_ipv6_service(mounted: MakeSession) -> None:
    with PrivateService(host="::1") as server:
        session, _ = mounted(VPCService(ipv6="::1", http_port=server.port))
        assert session.get(f"http://{NAME}/v6").status_code == 200
        (seen,) = server.seen
    assert seen.host == NAME
    assert seen.target == "/v6"


def test_dual_stack_service_falls_back_to_ipv4(
    http_service: PrivateService, mounted: MakeSession
) -> None:
    # nothing listens on ::1 at the IPv4 server's port: IPv6 first, then IPv4
    service = VPCService(ipv4="127.0.0.1", ipv6="::1", http_port=http_service.port)
    session, _ = mounted(service)
    assert session.get(f"http://{NAME}/").status_code == 200
    assert http_service.seen[0].host == NAME


# ---------------------------------------------------------------- S2: port


@pytest.mark.parametrize("url_port", ["", ":80", ":443", ":8080", ":1"])
def test_url_port_is_ignored(
    http_service: PrivateService, mounted: MakeSession, url_port: str
) -> None:
    session, _ = mounted(http_of(http_service))
    assert session.get(f"http://{NAME}{url_port}/p").status_code == 200
    assert http_service.seen[0].port == http_service.port


def test_scheme_picks_the_port(
    http_service: PrivateService, https_service: PrivateService, mounted: MakeSession
) -> None:
    service = VPCService(ipv4="127.0.0.1", http_port=http_service.port, https_port=https_service.port)
    session, _ = mounted(service)
    session.verify = https_service.ca_path
    assert session.get(f"http://{NAME}:{https_service.port}/a").status_code == 200
    assert session.get(f"https://{NAME}:{http_service.port}/b").status_code == 200
    assert [s.target for s in http_service.seen] == ["/a"]
    assert [s.target for s in https_service.seen] == ["/b"]
    assert https_service.seen[0].tls


def test_default_ports_are_80_and_443() -> None:
    adapter = VPCServiceAdapter(VPCService(ipv4="127.0.0.1"), binding=BINDING)
    try:
        for url, port in ((f"http://{NAME}:8080/", 80), (f"https://{NAME}:8443/", 443)):
            request = requests.Request("GET", url).prepare()
            host_params, _ = adapter.build_connection_pool_key_attributes(request, True)
            assert host_params == {"scheme": url.split(":")[0], "host": "127.0.0.1", "port": port}
            assert adapter.route(url).port == port
    finally:
        adapter.close()


# ---------------------------------------------------------- S3: one scheme


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_single_scheme_service_refuses_the_other_before_connecting(
    mounted: MakeSession, scheme: str, ca: trustme.CA
) -> None:
    tls = scheme == "http"  # the server speaks the *other* scheme
    with PrivateService(tls=tls, ca=ca if tls else None, names=(NAME,)) as server:
        ports = {"https_port" if tls else "http_port": server.port}
        session, _ = mounted(VPCService(ipv4="127.0.0.1", **ports))
        with pytest.raises(RoutingError) as info:
            session.get(f"{scheme}://{NAME}/x")
        assert f"'{BINDING}'" in str(info.value)
        assert f"no {scheme}_port" in str(info.value)
        assert server.connections == 0
        # the twin: its own scheme goes through
        other = "https" if tls else "http"
        verify = server.ca_path if tls else True
        assert session.get(f"{other}://{NAME}/x", verify=verify).status_code == 200
        assert server.connections == 1


# --------------------------------------------------------- S4: Host header


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (f"http://{NAME}/", NAME),
        (f"http://{NAME}:80/", NAME),
        (f"http://{NAME}:8080/", f"{NAME}:8080"),
        ("http://10.0.1.50:443/", "10.0.1.50:443"),
        ("http://[fd00::1]:8080/", "[fd00::1]:8080"),
        ("http://[fd00::1]/", "[fd00::1]"),
        (f"http://user:secret@{NAME}:8081/", f"{NAME}:8081"),
    ],
)
def test_host_header_on_the_wire(
    http_service: PrivateService, mounted: MakeSession, url: str, host: str
) -> None:
    session, _ = mounted(http_of(http_service))
    session.get(url)
    (seen,) = http_service.seen
    assert seen.host == host
    assert [k.lower() for k, _ in seen.headers].count("host") == 1
    assert "secret" not in seen.host


def test_host_header_over_https(https_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(https_of(https_service))
    session.get(f"https://{NAME}:443/", verify=https_service.ca_path)
    session.get(f"https://{NAME}:8443/", verify=https_service.ca_path)
    assert [s.host for s in https_service.seen] == [NAME, f"{NAME}:8443"]


def test_url_userinfo_becomes_basic_auth_as_in_requests(
    http_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(http_of(http_service))
    session.get(f"http://user:secret@{NAME}/")
    seen = http_service.seen[0]
    assert seen.host == NAME
    assert seen.header("Authorization") == requests.auth._basic_auth_str("user", "secret")


def test_caller_host_header_is_sent_as_given_like_plain_requests(
    http_service: PrivateService, mounted: MakeSession, plain: requests.Session
) -> None:
    session, _ = mounted(http_of(http_service))
    session.get(f"http://{NAME}/", headers={"Host": "custom.example:1234"})
    plain.get(f"{http_service.url}/", headers={"Host": "custom.example:1234"})
    ours, theirs = http_service.seen
    assert ours.host == theirs.host == "custom.example:1234"


# ---------------------------------------------------------------- S5: TLS


def test_sni_and_certificate_follow_the_url_host(
    https_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(https_of(https_service))
    for name in (NAME, OTHER):
        response = session.get(f"https://{name}/tls", verify=https_service.ca_path)
        assert response.status_code == 200
    assert [(s.sni, s.host) for s in https_service.seen] == [(NAME, NAME), (OTHER, OTHER)]


def test_twin_certificate_name_mismatch_is_refused(
    https_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(https_of(https_service))
    with pytest.raises(requests.exceptions.SSLError) as info:
        session.get("https://wrong.company.local/", verify=https_service.ca_path)
    error = info.value
    assert isinstance(error, ProxyError)
    assert isinstance(error, ProxySSLError)
    assert error.code == "tls_certificate_error"
    assert error.binding == BINDING
    assert str(error).startswith("ProxyError: tls_certificate_error")
    assert f"127.0.0.1:{https_service.port}" in str(error)
    assert https_service.seen == []


def test_ip_literal_url_sends_no_sni_and_checks_ip_sans(
    https_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(https_of(https_service))
    response = session.get("https://10.0.1.50/api/data", verify=https_service.ca_path)
    assert response.status_code == 200
    (seen,) = https_service.seen
    assert seen.sni is None
    assert seen.host == "10.0.1.50"


def test_twin_ip_not_in_the_certificate_is_refused(
    https_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(https_of(https_service))
    with pytest.raises(ProxySSLError) as info:
        session.get("https://10.0.1.51/api/data", verify=https_service.ca_path)
    assert info.value.code == "tls_certificate_error"
    assert https_service.seen == []


def test_ipv6_literal_url_checked_against_ip_sans(ca: trustme.CA, mounted: MakeSession) -> None:
    with PrivateService(tls=True, ca=ca, names=("fd00::1",)) as server:
        session, _ = mounted(https_of(server))
        assert session.get("https://[fd00::1]/", verify=server.ca_path).status_code == 200
        assert server.seen[0].sni is None
        assert server.seen[0].host == "[fd00::1]"
        with pytest.raises(ProxySSLError):
            session.get("https://[fd00::2]/", verify=server.ca_path)
        assert len(server.seen) == 1


def test_origin_address_is_not_what_the_certificate_is_checked_against(
    ca: trustme.CA, mounted: MakeSession
) -> None:
    # a certificate for the origin (127.0.0.1) alone does not cover the URL host
    with PrivateService(tls=True, ca=ca, names=("127.0.0.1",)) as server:
        session, _ = mounted(https_of(server))
        with pytest.raises(ProxySSLError):
            session.get(f"https://{NAME}/", verify=server.ca_path)
        assert server.seen == []


# --------------------------------------------------------- S6: TLS modes


def test_verify_ca_accepts_a_name_mismatch(https_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(https_of(https_service, "verify_ca"))
    response = session.get("https://wrong.company.local/", verify=https_service.ca_path)
    assert response.status_code == 200
    assert https_service.seen[0].sni == "wrong.company.local"


def test_twin_verify_ca_rejects_an_unknown_ca(https_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(https_of(https_service, "verify_ca"))
    with pytest.raises(ProxySSLError) as info:
        session.get(f"https://{NAME}/")  # certifi's bundle: trustme's CA is unknown
    assert info.value.code == "tls_certificate_error"
    other = trustme.CA()
    with other.cert_pem.tempfile() as path:
        with pytest.raises(ProxySSLError):
            session.get(f"https://{NAME}/", verify=path)
    assert https_service.seen == []


def test_disabled_accepts_anything_and_warns(https_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(https_of(https_service, "disabled"))
    with pytest.warns(InsecureRequestWarning):
        assert session.get("https://wrong.company.local/").status_code == 200
    with pytest.warns(InsecureRequestWarning):
        assert session.get("https://10.0.9.9/").status_code == 200
    assert [s.sni for s in https_service.seen] == ["wrong.company.local", None]


def test_requests_verify_false_is_honoured(https_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(https_of(https_service))
    with pytest.warns(InsecureRequestWarning):
        assert session.get("https://wrong.company.local/", verify=False).status_code == 200
    session.verify = False
    with pytest.warns(InsecureRequestWarning):
        assert session.get(f"https://{NAME}/").status_code == 200
    assert len(https_service.seen) == 2


def test_requests_verify_ca_path_is_honoured(https_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(https_of(https_service))
    assert session.get(f"https://{NAME}/", verify=https_service.ca_path).status_code == 200
    session.verify = https_service.ca_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert session.get(f"https://{NAME}/").status_code == 200


def test_twin_default_verify_uses_certifi_and_fails(
    https_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(https_of(https_service))
    with pytest.raises(ProxySSLError) as info:
        session.get(f"https://{NAME}/")
    assert info.value.code == "tls_certificate_error"
    assert https_service.seen == []


def test_missing_ca_bundle_path_is_an_error_like_requests(
    https_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(https_of(https_service))
    with pytest.raises(OSError, match="invalid path"):
        session.get(f"https://{NAME}/", verify="/nonexistent/ca.pem")
    assert https_service.connections == 0


def test_requests_cert_is_sent_as_client_certificate(ca: trustme.CA, mounted: MakeSession) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # TLS 1.2: the client certificate is checked inside the handshake, so a
    # missing one fails there (SSLError) every time. Under TLS 1.3 the server
    # refuses it after the client's handshake has finished, and the client
    # sees either the alert or a reset, depending on timing.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert(NAME).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("batch-job.company.local")
    with PrivateService(tls=True, ssl_context=context, ca=ca) as server:
        session, _ = mounted(https_of(server))
        with client.private_key_and_cert_chain_pem.tempfile() as pem:
            assert session.get(f"https://{NAME}/m", verify=server.ca_path, cert=pem).status_code == 200
        assert server.seen[0].sni == NAME
        # the twin: without the client certificate the service refuses
        with pytest.raises(ProxySSLError):
            session.get(f"https://{NAME}/m", verify=server.ca_path)
        assert len(server.seen) == 1


def test_verify_and_cert_take_paths_as_requests_does_and_a_key_of_none(
    ca: trustme.CA, mounted: MakeSession
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(NAME).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("batch-job.company.local")
    with PrivateService(tls=True, ssl_context=context, ca=ca) as server:
        session, _ = mounted(https_of(server))
        verify = pathlib.Path(server.ca_path)
        with client.private_key_and_cert_chain_pem.tempfile() as pem:
            for cert in ((pem, None), [pem, None], (pathlib.Path(pem), None), pathlib.Path(pem)):
                assert session.get(f"https://{NAME}/m", verify=verify, cert=cert).status_code == 200
            # the twin: a path object naming another CA's bundle is used, and fails
            with trustme.CA().cert_pem.tempfile() as other, pytest.raises(ProxySSLError) as info:
                session.get(f"https://{NAME}/m", verify=pathlib.Path(other), cert=(pem, None))
        assert info.value.code == "tls_certificate_error"
        assert len(server.seen) == 4


@pytest.fixture
def stamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what the TLS settings know of files, and look again each time."""
    monkeypatch.setattr(tls, "_STAMPS", {})
    monkeypatch.setattr(tls, "RECHECK_SECONDS", 0.0)


@pytest.mark.parametrize("how", ["in place", "by a rename"])
def test_a_ca_bundle_replaced_is_loaded_again(
    tmp_path: pathlib.Path, mounted: MakeSession, stamps: None, how: str
) -> None:
    old, new = trustme.CA(), trustme.CA()
    bundle = tmp_path / "bundle.pem"
    old.cert_pem.write_to_path(str(bundle))
    with PrivateService(tls=True, ca=new, names=(NAME,)) as server:
        session, _ = mounted(https_of(server))
        # the twin: the bundle does not hold the service's CA yet
        with pytest.raises(ProxySSLError):
            session.get(f"https://{NAME}/", verify=str(bundle))
        if how == "in place":
            before = bundle.stat().st_mtime_ns
            new.cert_pem.write_to_path(str(bundle))
            # a rotation seconds later; a coarse clock could give the same mtime
            os.utime(bundle, ns=(before + 10**9, before + 10**9))
        else:
            new.cert_pem.write_to_path(str(tmp_path / "next.pem"))
            os.replace(tmp_path / "next.pem", bundle)
        assert session.get(f"https://{NAME}/", verify=str(bundle)).status_code == 200
        assert len(server.seen) == 1


def test_tls_settings_look_at_a_file_at_most_once_per_recheck_interval(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    bundle = tmp_path / "bundle.pem"
    ca.cert_pem.write_to_path(str(bundle))
    looked: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(tls, "_STAMPS", {})
    monkeypatch.setattr(tls.os, "stat", counting_stat)
    first = tls.pool_kwargs(NAME, "verify_full", str(bundle), None)
    assert str(bundle) in looked
    looked.clear()
    for _ in range(100):
        assert tls.pool_kwargs(NAME, "verify_full", str(bundle), None) is first
    assert looked == []
    monkeypatch.setattr(tls, "RECHECK_SECONDS", 0.0)  # the twin: every call looks
    for _ in range(10):
        assert tls.pool_kwargs(NAME, "verify_full", str(bundle), None) is first
    assert looked.count(str(bundle)) == 10


def test_deprecated_get_connection_routes_like_the_adapter(mounted: MakeSession) -> None:
    _, adapter = mounted(VPCService(ipv4="127.0.0.1", http_port=8080, https_port=8443))
    with pytest.warns(DeprecationWarning, match="get_connection_with_tls_context"):
        pool = adapter.get_connection(f"https://{NAME}:9999/x")
    assert (pool.scheme, pool.host, pool.port) == ("https", "127.0.0.1", 8443)
    assert pool is adapter.get_connection_with_tls_context(
        requests.Request("GET", f"https://{NAME}/").prepare(), True
    )
    with pytest.warns(DeprecationWarning):
        assert adapter.get_connection(f"http://{NAME}:9999/x").port == 8080
    with pytest.warns(DeprecationWarning), pytest.raises(RoutingError):
        adapter.get_connection("ftp://files.company.local/x")
    with pytest.warns(DeprecationWarning):
        # the twin: plain requests' pool is the URL's port, without TLS settings
        plain = requests.adapters.HTTPAdapter().get_connection(f"https://{NAME}:9999/x")
    assert (plain.host, plain.port) == (NAME, 9999)


# ----------------------------------------------------------- S9: proxies


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"])
def test_proxy_environment_is_never_used(
    http_service: PrivateService,
    https_service: PrivateService,
    mounted: MakeSession,
    bare_listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    proxy = f"http://user:pw@127.0.0.1:{bare_listener.getsockname()[1]}"
    monkeypatch.setenv(variable, proxy)
    service = VPCService(ipv4="127.0.0.1", http_port=http_service.port, https_port=https_service.port)
    session, _ = mounted(service)
    assert session.get(f"http://{NAME}/a", timeout=2).status_code == 200
    assert session.get(f"https://{NAME}/b", timeout=2, verify=https_service.ca_path).status_code == 200
    assert not contacted(bare_listener)
    assert http_service.seen[0].target == "/a"
    assert https_service.seen[0].target == "/b"
    for seen in http_service.seen + https_service.seen:
        assert seen.header("Proxy-Authorization") is None


def test_explicit_session_proxies_are_never_used(
    http_service: PrivateService, mounted: MakeSession, bare_listener: socket.socket
) -> None:
    proxy = f"http://127.0.0.1:{bare_listener.getsockname()[1]}"
    session, _ = mounted(http_of(http_service))
    session.proxies = {"http": proxy, "https": proxy, "all": proxy}
    assert session.get(f"http://{NAME}/a", proxies={"http": proxy}, timeout=2).status_code == 200
    assert not contacted(bare_listener)
    # origin-form request target, never a proxy's absolute form
    assert http_service.seen[0].target == "/a"


def test_twin_plain_requests_does_use_the_proxy(
    http_service: PrivateService,
    plain: requests.Session,
    bare_listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{bare_listener.getsockname()[1]}")
    with pytest.raises(requests.exceptions.Timeout):
        plain.get(f"http://{NAME}/a", timeout=0.3)
    assert contacted(bare_listener)
    assert http_service.seen == []


# ------------------------------------------------------------ S10: headers


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("GET", {}),
        ("POST", {"json": {"a": 1}}),
        ("PUT", {"data": {"k": "v"}, "headers": {"X-Trace": "t1"}}),
        ("DELETE", {"data": b""}),
        ("GET", {"params": {"q": "1"}, "auth": ("u", "p"), "cookies": {"c": "1"}}),
    ],
)
def test_headers_are_what_plain_requests_sends(
    http_service: PrivateService,
    mounted: MakeSession,
    plain: requests.Session,
    method: str,
    kwargs: dict,
) -> None:
    session, _ = mounted(http_of(http_service))
    session.request(method, f"http://{NAME}/h", **kwargs)
    plain.request(method, f"{http_service.url}/h", **kwargs)
    ours, theirs = http_service.seen
    assert [k for k, _ in ours.headers] == [k for k, _ in theirs.headers]
    assert [kv for kv in ours.headers if kv[0] != "Host"] == [kv for kv in theirs.headers if kv[0] != "Host"]
    assert (ours.method, ours.target, ours.body) == (theirs.method, theirs.target, theirs.body)
    for name, _ in ours.headers:
        assert not name.lower().startswith(("cf-", "x-forwarded", "forwarded", "via", "proxy-"))


# -------------------------------------------------------- S12: statuses


@pytest.mark.parametrize("status", [400, 401, 404, 418, 500, 502, 503])
def test_error_statuses_are_returned_not_raised(mounted: MakeSession, status: int) -> None:
    def handler(seen):
        return Reply(status, {"Content-Type": "text/plain"}, f"status {status}")

    with PrivateService(handler=handler) as server:
        session, _ = mounted(http_of(server))
        response = session.get(f"http://{NAME}/s")
    assert response.status_code == status
    assert response.text == f"status {status}"
    # the twin: raise_for_status still raises, as in requests
    with pytest.raises(requests.HTTPError):
        response.raise_for_status()


# ------------------------------------------------------ S13: no mutation


def snapshot(prepared: requests.PreparedRequest) -> tuple:
    return (prepared.method, prepared.url, dict(prepared.headers), prepared.body)


def test_prepared_request_is_not_mutated(http_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(http_of(http_service))
    prepared = requests.Request("POST", f"http://{NAME}:8080/m", data=b"body", headers={"X-A": "1"}).prepare()
    before = snapshot(prepared)
    response = session.send(prepared)
    assert snapshot(prepared) == before
    assert "Host" not in prepared.headers
    assert response.request is prepared
    assert http_service.seen[0].host == f"{NAME}:8080"
    # sending the same object again, to another name, is not affected
    prepared.url = f"http://{OTHER}/m"
    session.send(prepared)
    assert http_service.seen[1].host == OTHER


def test_prepared_request_is_not_mutated_across_redirects(mounted: MakeSession) -> None:
    def handler(seen):
        if seen.target == "/start":
            return Reply.redirect("http://elsewhere.company.local:9000/end", 307)
        return Reply(200, body=seen.host or "")

    with PrivateService(handler=handler) as server:
        session, _ = mounted(http_of(server))
        prepared = requests.Request("PUT", f"http://{NAME}/start", data=b"x").prepare()
        before = snapshot(prepared)
        response = session.send(prepared, allow_redirects=True)
        assert snapshot(prepared) == before
        assert response.text == "elsewhere.company.local:9000"
        assert [s.host for s in server.seen] == [NAME, "elsewhere.company.local:9000"]
        assert [s.body for s in server.seen] == [b"x", b"x"]


def test_caller_host_header_on_a_prepared_request_is_kept_not_copied(
    http_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(http_of(http_service))
    prepared = requests.Request("GET", f"http://{NAME}/", headers={"Host": "given"}).prepare()
    session.send(prepared)
    assert http_service.seen[0].host == "given"
    assert prepared.headers["Host"] == "given"


# ------------------------------------------------------------------- pools


def test_one_pool_and_connection_per_tls_name(https_service: PrivateService, mounted: MakeSession) -> None:
    session, adapter = mounted(https_of(https_service))
    for name in (NAME, OTHER, NAME, OTHER):
        session.get(f"https://{name}/p", verify=https_service.ca_path)
    keys = list(adapter.poolmanager.pools.keys())
    assert len(keys) == 2
    assert {k.key_server_hostname for k in keys} == {NAME, OTHER}
    assert {(k.key_host, k.key_port) for k in keys} == {("127.0.0.1", https_service.port)}
    assert https_service.connections == 2
    by_connection = {s.connection: s.sni for s in https_service.seen}
    assert sorted(by_connection.values()) == sorted([NAME, OTHER])


def test_tls_settings_are_part_of_the_pool_key(https_service: PrivateService, mounted: MakeSession) -> None:
    session, adapter = mounted(https_of(https_service))
    session.get(f"https://{NAME}/", verify=https_service.ca_path)
    with pytest.warns(InsecureRequestWarning):
        session.get(f"https://{NAME}/", verify=False)
    assert len(adapter.poolmanager.pools) == 2
    assert https_service.connections == 2
    # the twin: an unverified pool never serves a verified request for the same name
    with pytest.raises(ProxySSLError):
        session.get(f"https://{NAME}/")


def test_repeated_requests_reuse_one_connection(https_service: PrivateService, mounted: MakeSession) -> None:
    session, adapter = mounted(https_of(https_service))
    for _ in range(5):
        assert session.get(f"https://{NAME}/r", verify=https_service.ca_path).status_code == 200
    assert https_service.connections == 1
    assert https_service.handshakes == 1
    assert len(adapter.poolmanager.pools) == 1
    assert {s.connection for s in https_service.seen} == {1}


def test_url_ports_do_not_split_pools(http_service: PrivateService, mounted: MakeSession) -> None:
    session, adapter = mounted(http_of(http_service))
    for port in ("", ":81", ":8080"):
        session.get(f"http://{NAME}{port}/")
    assert len(adapter.poolmanager.pools) == 1
    assert http_service.connections == 1


def test_two_adapters_to_different_services_never_share_pools(mounted: MakeSession) -> None:
    with PrivateService(name="a") as a, PrivateService(name="b") as b:
        first, _ = mounted(http_of(a), binding="A")
        second, _ = mounted(http_of(b), binding="B")
        first.get(f"http://{NAME}/")
        second.get(f"http://{NAME}/")
        assert (len(a.seen), len(b.seen)) == (1, 1)


# ---------------------------------------------------------------- pickling


def test_adapter_pickles_and_the_copy_works(http_service: PrivateService, mounted: MakeSession) -> None:
    session, adapter = mounted(http_of(http_service))
    session.get(f"http://{NAME}/before")
    copy = pickle.loads(pickle.dumps(adapter))
    assert copy.service == adapter.service
    assert copy.binding == BINDING
    assert len(copy.poolmanager.pools) == 0
    with requests.Session() as other:
        other.mount("http://", copy)
        assert other.get("http://10.0.1.50/after").status_code == 200
    assert [s.target for s in http_service.seen] == ["/before", "/after"]
    assert http_service.seen[1].host == "10.0.1.50"


def test_session_with_the_adapter_pickles(http_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(http_of(http_service))
    with pickle.loads(pickle.dumps(session)) as copy:
        assert copy.get(f"http://{NAME}/copied").status_code == 200
    assert http_service.seen[0].target == "/copied"


def test_adapter_needs_a_service() -> None:
    with pytest.raises(TypeError, match="VPCService"):
        VPCServiceAdapter("127.0.0.1")  # type: ignore[arg-type]


# --------------------------------------------------------------- responses


def test_responses_intercepts_the_adapter(http_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(http_of(http_service))
    with responses.RequestsMock() as mock:
        mock.get(f"http://{NAME}/users", json=[{"id": 1}])
        response = session.get(f"http://{NAME}/users")
        assert response.json() == [{"id": 1}]
        assert mock.calls[0].request.url == f"http://{NAME}/users"
    assert http_service.seen == []
    assert http_service.connections == 0


def test_twin_responses_refuses_an_unregistered_url(http_service: PrivateService, mounted: MakeSession) -> None:
    session, _ = mounted(http_of(http_service))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"http://{NAME}/users", json=[])
        with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
            session.get(f"http://{NAME}/other")
    assert http_service.connections == 0


def test_responses_sees_the_request_exactly_as_plain_requests_sends_it() -> None:
    """A strict header matcher registered for what plain requests sends also
    matches the same request through the adapter and fetch(): the Host
    header is added below requests, where mocks do not look."""
    from responses import matchers

    url = "http://internal-api.company.local/users"
    with requests.Session() as plain:
        expected = dict(plain.prepare_request(requests.Request("GET", url)).headers)
    service = VPCService(ipv4="127.0.0.1", http_port=1)
    with responses.RequestsMock() as mock, requests.Session() as session:
        mock.get(url, json=[], match=[matchers.header_matcher(expected, strict_match=True)])
        session.mount("http://", VPCServiceAdapter(service, binding="API"))
        assert session.get(url).status_code == 200
        binding = Binding("API", service)
        assert binding.fetch(url).status_code == 200
        binding.close()
        # The twin: one more header and the strict matcher refuses.
        with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
            session.get(url, headers={"X-Extra": "1"})


# ------------------------------------------- the response build_response makes


def test_response_cookies_as_requests_gives_them(http_service: PrivateService, mounted: MakeSession) -> None:
    http_service.handler = lambda seen: Reply(headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2")])
    session, _ = mounted(http_of(http_service))
    response = session.get(f"http://{NAME}/")
    assert response.cookies.get_dict() == {"a": "1", "b": "2"}
    assert response.headers["set-cookie"] == "a=1; Path=/, b=2"
    copy = pickle.loads(pickle.dumps(response))
    assert copy.cookies.get_dict() == {"a": "1", "b": "2"}
    assert copy.content == response.content


def test_twin_response_without_set_cookie_has_an_empty_jar_of_its_own(
    http_service: PrivateService, mounted: MakeSession
) -> None:
    session, _ = mounted(http_of(http_service))
    first, second = session.get(f"http://{NAME}/"), session.get(f"http://{NAME}/")
    assert len(first.cookies) == 0
    first.cookies.set("mine", "1")
    assert len(second.cookies) == 0  # never shared between responses
    assert set(vars(requests.Response())) - {"cookies", "headers"} <= set(vars(first))
    assert pickle.loads(pickle.dumps(second)).cookies.get_dict() == {}


# ------------------------------------------- pool keys kept per route


def test_a_pool_made_after_growing_gets_the_new_size(http_service: PrivateService) -> None:
    """The pool key and context kept per route follow the manager's settings:
    a pool first made after ensure_pool_maxsize() has the grown size."""
    adapter = VPCServiceAdapter(http_of(http_service), binding=BINDING)
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.get(f"http://{NAME}/first")
        adapter.ensure_pool_maxsize(12)
        session.get(f"http://{NAME}/second")  # the same pool, grown in place
        adapter.poolmanager.clear()  # the next request makes a new pool
        session.get(f"http://{NAME}/third")
        pools = [adapter.poolmanager.pools[key] for key in adapter.poolmanager.pools.keys()]
        assert [pool.pool.maxsize for pool in pools] == [12]
    assert [s.target for s in http_service.seen] == ["/first", "/second", "/third"]


def test_twin_a_pool_made_without_growing_keeps_the_default_size(http_service: PrivateService) -> None:
    adapter = VPCServiceAdapter(http_of(http_service), binding=BINDING)
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.get(f"http://{NAME}/first")
        adapter.poolmanager.clear()
        session.get(f"http://{NAME}/second")
        pools = [adapter.poolmanager.pools[key] for key in adapter.poolmanager.pools.keys()]
        assert [pool.pool.maxsize for pool in pools] == [requests.adapters.DEFAULT_POOLSIZE]
