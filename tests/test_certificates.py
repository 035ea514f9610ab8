"""Tests for the ``tls_settings`` certificate ids and the services file's
``[certificates]`` table (:mod:`vpc_requests._transport.tls`, :mod:`vpc_requests._config.services_file`):
a mapped CA is the service's trust store, a mapped client certificate is
presented, an unmapped id refuses https before any connection."""

from __future__ import annotations

import pickle
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from helpers import eventually
from urllib3.exceptions import InsecureRequestWarning

from vpc_requests import Binding, ConfigError, ProxySSLError, VPCService, load_env
from vpc_requests._config.services_file import create_service, read_services
from vpc_requests._transport.tls import CertificateFiles, certificate_map, service_context
from vpc_requests.testing import PrivateService

NAME = "internal-api.company.local"
URL = f"https://{NAME}/orders"


def services_toml(port: int, tls: str, certificates: str = "") -> str:
    return (
        "[[services]]\n"
        'service_id = "svc-api"\n'
        'name = "api"\n'
        'type = "http"\n'
        f"https_port = {port}\n"
        'host = { ipv4 = "127.0.0.1" }\n'
        f"tls_settings = {{ {tls} }}\n"
        + (f"\n[certificates]\n{certificates}" if certificates else "")
    )


def binding_from(path: Path) -> Binding:
    contents = read_services(path)
    return Binding("API", contents.services["svc-api"], certificates=contents.certificates)


@pytest.fixture
def private_ca_service() -> Iterator[tuple[PrivateService, trustme.CA]]:
    """An https service whose certificate comes from its own private CA
    (not the session's ``ca``, not the system store)."""
    private = trustme.CA()
    with PrivateService(tls=True, ca=private, names=(NAME,), name="private-ca") as server:
        yield server, private


@pytest.fixture
def mtls_service(ca: trustme.CA) -> Iterator[PrivateService]:
    """An https service that requires a client certificate issued by ``ca``.
    TLS 1.2, so a missing certificate fails inside the handshake every time."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert(NAME).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    with PrivateService(tls=True, ssl_context=context, ca=ca, name="mtls") as server:
        yield server


def write_client(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    client = ca.issue_cert("batch-job.company.local")
    cert, key = directory / "client.pem", directory / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    return cert, key


# -- certificate_authority --------------------------------------------------------


def test_mapped_ca_is_the_trust_store(tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]) -> None:
    server, private = private_ca_service
    (tmp_path / "certs").mkdir()
    private.cert_pem.write_to_path(str(tmp_path / "certs" / "private-ca.pem"))
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(server.port, 'cert_verification_mode = "verify_full", '
                                               'certificate_authority = "ca-1"',
                                  '"ca-1" = { ca = "certs/private-ca.pem" }\n'))
    with binding_from(path) as binding:
        response = binding.fetch(URL)
    assert response.status_code == 200
    assert server.seen[0].sni == NAME and server.seen[0].header("Host") == NAME


def test_mapped_ca_of_another_authority_fails_the_handshake(
    tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, _ = private_ca_service
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "wrong-ca.pem"))
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(server.port, 'certificate_authority = "ca-1"',
                                  '"ca-1" = { ca = "wrong-ca.pem" }\n'))
    with binding_from(path) as binding, pytest.raises(ProxySSLError) as info:
        binding.fetch(URL)
    assert info.value.code == "tls_certificate_error"
    assert server.seen == []


def test_unmapped_ca_refuses_https_before_any_connection(
    tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, private = private_ca_service
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(server.port, 'certificate_authority = "ca-1"'))
    with binding_from(path) as binding, pytest.raises(ConfigError) as info:
        # even a verify= bundle that would trust the server is no substitute
        # for the service's own CA
        with private.cert_pem.tempfile() as bundle:
            binding.fetch(URL, verify=bundle)
    message = str(info.value)
    assert "'ca-1'" in message and "[certificates]" in message and "'API'" in message
    assert "certificate_authority" in message
    assert server.connections == 0


def test_unmapped_ca_through_load_env_fails_https_but_not_http(tmp_path: Path, http_service: PrivateService) -> None:
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\nvpc_services = [{ binding = "API", service_id = "svc-api" }]\n')
    (tmp_path / "vpc-services.toml").write_text(
        "[[services]]\n"
        'service_id = "svc-api"\n'
        f"http_port = {http_service.port}\n"
        "https_port = 9\n"
        'host = { ipv4 = "127.0.0.1" }\n'
        'tls_settings = { cert_verification_mode = "verify_ca", certificate_authority = "ca-9" }\n')
    env = load_env(tmp_path / "wrangler.toml")
    assert env.API.fetch(f"http://{NAME}/").status_code == 200
    with pytest.raises(ConfigError, match=r"'ca-9'.*\[certificates\]"):
        env.API.fetch(URL)


def test_verify_false_needs_no_ca_and_disabled_mode_ignores_the_ca_id(
    tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, _ = private_ca_service
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(server.port, 'certificate_authority = "ca-1"'))
    with binding_from(path) as binding, pytest.warns(InsecureRequestWarning):
        assert binding.fetch(URL, verify=False).status_code == 200
    path.write_text(services_toml(server.port, 'cert_verification_mode = "disabled", certificate_authority = "ca-1"'))
    with binding_from(path) as binding, pytest.warns(InsecureRequestWarning):
        assert binding.fetch(URL).status_code == 200
    assert len(server.seen) == 2


def test_a_requests_ca_bundle_is_trusted_besides_the_mapped_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, private = private_ca_service
    private.cert_pem.write_to_path(str(tmp_path / "private-ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "corporate.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corporate.pem"))
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(server.port, 'certificate_authority = "ca-1"',
                                  '"ca-1" = { ca = "private-ca.pem" }\n'))
    with binding_from(path) as binding:
        assert binding.fetch(URL).status_code == 200
    # the twin: the corporate bundle alone does not trust the service
    path.write_text(services_toml(server.port, 'cert_verification_mode = "verify_full"'))
    with binding_from(path) as binding, pytest.raises(ProxySSLError):
        binding.fetch(URL)


# -- client_certificate ---------------------------------------------------------------


def test_mapped_client_certificate_is_presented(tmp_path: Path, ca: trustme.CA, mtls_service: PrivateService) -> None:
    cert, key = write_client(ca, tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(
        mtls_service.port, 'certificate_authority = "ca-1", client_certificate = "mtls-1"',
        '"ca-1" = { ca = "ca.pem" }\n"mtls-1" = { cert = "client.pem", key = "client.key" }\n'))
    with binding_from(path) as binding:
        assert binding.fetch(URL).status_code == 200
    assert mtls_service.seen[0].sni == NAME
    # the twin: a client certificate of another authority is refused by the service
    (tmp_path / "other").mkdir()
    other_cert, other_key = write_client(trustme.CA(), tmp_path / "other")
    path.write_text(services_toml(
        mtls_service.port, 'certificate_authority = "ca-1", client_certificate = "mtls-1"',
        f'"ca-1" = {{ ca = "ca.pem" }}\n"mtls-1" = {{ cert = "{other_cert}", key = "{other_key}" }}\n'))
    with binding_from(path) as binding, pytest.raises(ProxySSLError):
        binding.fetch(URL)
    assert len(mtls_service.seen) == 1


def test_unmapped_client_certificate_refuses_https_before_any_connection(
    tmp_path: Path, ca: trustme.CA, mtls_service: PrivateService
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(mtls_service.port, 'certificate_authority = "ca-1", client_certificate = "mtls-1"',
                                  '"ca-1" = { ca = "ca.pem" }\n'))
    with binding_from(path) as binding, pytest.raises(ConfigError) as info:
        binding.fetch(URL)
    assert "'mtls-1'" in str(info.value) and "[certificates]" in str(info.value)
    assert "client_certificate" in str(info.value)
    assert mtls_service.connections == 0


def test_requests_cert_replaces_an_unmapped_client_certificate(
    tmp_path: Path, ca: trustme.CA, mtls_service: PrivateService
) -> None:
    cert, key = write_client(ca, tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(mtls_service.port, 'certificate_authority = "ca-1", client_certificate = "mtls-1"',
                                  '"ca-1" = { ca = "ca.pem" }\n'))
    with binding_from(path) as binding:
        assert binding.fetch(URL, cert=(str(cert), str(key))).status_code == 200


@pytest.mark.parametrize(("tls", "entry", "why"), [
    ('certificate_authority = "x"', '"x" = { cert = "c.pem", key = "c.key" }', "not a CA"),
    ('client_certificate = "x"', '"x" = { ca = "ca.pem" }', "not a client certificate"),
])
def test_an_id_mapped_to_the_wrong_kind_of_file_is_refused(tmp_path: Path, tls: str, entry: str, why: str) -> None:
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(1, tls, entry + "\n"))
    with binding_from(path) as binding, pytest.raises(ConfigError, match=why):
        binding.fetch(URL)


# -- the [certificates] table ------------------------------------------------------------


def test_certificate_paths_are_read_from_the_services_files_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "vpc-services.toml"
    path.write_text(services_toml(443, 'certificate_authority = "ca-1"',
                                  '"ca-1" = { ca = "pki/ca.pem" }\n'
                                  f'"mtls-1" = {{ cert = "{tmp_path}/c.pem", key = "c.key" }}\n'
                                  '"bundle" = { cert = "both.pem" }\n'))
    certificates = read_services(path).certificates
    assert certificates["ca-1"] == CertificateFiles(ca=str(tmp_path / "conf" / "pki" / "ca.pem"))
    assert certificates["mtls-1"].client == (str(tmp_path / "c.pem"), str(tmp_path / "conf" / "c.key"))
    assert certificates["bundle"].client == str(tmp_path / "conf" / "both.pem")


@pytest.mark.parametrize(("entry", "line", "field", "text"), [
    ('"x" = { ca = "a.pem", cert = "b.pem" }', 10, "certificates.x.ca", "not both"),
    ('"x" = { key = "k.pem" }', 10, "certificates.x", "give ca"),
    ('"x" = { cert = "", key = "k.pem" }', 10, "certificates.x.cert", "non-empty"),
    ('"x" = { pem = "a.pem" }', 10, "certificates.x.pem", "unknown key 'pem'"),
    ('"x" = "a.pem"', 10, "certificates.x", "must be a table"),
])
def test_bad_certificates_entries_name_file_line_and_field(
    tmp_path: Path, entry: str, line: int, field: str, text: str
) -> None:
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(443, 'cert_verification_mode = "verify_ca"', entry + "\n"))
    with pytest.raises(ConfigError, match=text) as info:
        read_services(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, field)


def test_certificates_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "vpc-services.toml"
    path.write_text('certificates = ["a.pem"]\n')
    with pytest.raises(ConfigError, match="certificate id") as info:
        read_services(path)
    assert info.value.field == "certificates"


def test_edits_keep_the_certificates_table(tmp_path: Path) -> None:
    path = tmp_path / "vpc-services.toml"
    path.write_text(services_toml(443, 'certificate_authority = "ca-1"',
                                  '# our private CA\n"ca-1" = { ca = "ca.pem" }\n'))
    create_service(path, VPCService(hostname="db.internal", name="db", type="tcp", tcp_port=5432,
                                    client_certificate="mtls-9"))
    text = path.read_text()
    assert '# our private CA\n"ca-1" = { ca = "ca.pem" }' in text
    contents = read_services(path)
    assert set(contents.certificates) == {"ca-1"}
    db = next(s for s in contents.services.values() if s.name == "db")
    assert (db.type, db.tcp_port, db.client_certificate) == ("tcp", 5432, "mtls-9")


def test_certificate_map_accepts_plain_tables_and_refuses_bad_ones() -> None:
    assert certificate_map({"a": {"ca": "ca.pem"}})["a"].ca == "ca.pem"
    assert certificate_map(None) == {}
    with pytest.raises(ConfigError, match="certificate 'b'.*not both"):
        certificate_map({"b": {"ca": "ca.pem", "key": "k.pem"}})


def test_binding_with_certificates_pickles(tmp_path: Path,
                                           private_ca_service: tuple[PrivateService, trustme.CA]) -> None:
    server, private = private_ca_service
    private.cert_pem.write_to_path(str(tmp_path / "private-ca.pem"))
    service = VPCService(ipv4="127.0.0.1", https_port=server.port, certificate_authority="ca-1")
    binding = Binding("API", service, certificates={"ca-1": {"ca": str(tmp_path / "private-ca.pem")}})
    clone = pickle.loads(pickle.dumps(binding))
    with clone:
        assert clone.fetch(URL).status_code == 200
    # the twin: the same service without the mapping refuses
    with Binding("API", service) as bare, pytest.raises(ConfigError, match="'ca-1'"):
        bare.fetch(URL)
    binding.close()


# -- service_context: the same rules for a raw TLS socket (connect(tls=True)) ---------------


def _handshake(context: ssl.SSLContext, port: int) -> str | None:
    """A raw TLS connection to the loopback service; the version it agreed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=NAME) as tls:
        return tls.version()


def test_service_context_presents_the_mapped_client_certificate(
    tmp_path: Path, ca: trustme.CA, mtls_service: PrivateService
) -> None:
    cert, key = write_client(ca, tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    service = VPCService(hostname=NAME, type="tcp", tcp_port=mtls_service.port,
                         certificate_authority="ca-1", client_certificate="mtls-1")
    certificates = {"ca-1": {"ca": str(tmp_path / "ca.pem")}, "mtls-1": {"cert": str(cert), "key": str(key)}}
    assert _handshake(service_context(service, certificates, binding="DB"), mtls_service.port) == "TLSv1.2"
    assert eventually(lambda: mtls_service.handshakes == 1)
    # the twins: no mapping for the client certificate, and a CA that does not match
    with pytest.raises(ConfigError, match=r"'DB'.*'mtls-1'.*\[certificates\]"):
        service_context(service, {"ca-1": {"ca": str(tmp_path / "ca.pem")}}, binding="DB")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))
    wrong = service_context(service, {**certificates, "ca-1": {"ca": str(tmp_path / "other.pem")}})
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(wrong, mtls_service.port)
    assert mtls_service.handshakes == 1


def test_service_context_checks_the_name_only_with_verify_full(
    tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, private = private_ca_service
    private.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    certificates = {"ca-1": {"ca": str(tmp_path / "ca.pem")}}
    full = VPCService(ipv4="127.0.0.1", type="tcp", tcp_port=server.port, certificate_authority="ca-1")
    assert service_context(full, certificates).check_hostname is True
    chain_only = full.replace(cert_verification_mode="verify_ca")
    context = service_context(chain_only, certificates)
    assert context.check_hostname is False and context.verify_mode == ssl.CERT_REQUIRED
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="some-other-name.internal") as tls:
        assert tls.version() is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            service_context(full, certificates).wrap_socket(raw, server_hostname="some-other-name.internal")


def test_load_env_bindings_use_the_certificates_table(
    tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, private = private_ca_service
    private.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\nvpc_services = [{ binding = "API", service_id = "svc-api" }]\n'
    )
    (tmp_path / "vpc-services.toml").write_text(
        services_toml(server.port, 'certificate_authority = "ca-1"', '"ca-1" = { ca = "ca.pem" }\n')
    )
    env = load_env(tmp_path / "wrangler.toml")
    assert env.API.fetch(URL).status_code == 200
    assert pickle.loads(pickle.dumps(env)).API.fetch(URL).status_code == 200


def test_load_env_bindings_without_the_mapping_are_refused(
    tmp_path: Path, private_ca_service: tuple[PrivateService, trustme.CA]
) -> None:
    server, _ = private_ca_service
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\nvpc_services = [{ binding = "API", service_id = "svc-api" }]\n'
    )
    (tmp_path / "vpc-services.toml").write_text(services_toml(server.port, 'certificate_authority = "ca-1"'))
    env = load_env(tmp_path / "wrangler.toml")
    with pytest.raises(ConfigError, match=r"ca-1.*\[certificates\]|\[certificates\].*ca-1"):
        env.API.fetch(URL)
    assert server.connections == 0
