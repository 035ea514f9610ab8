"""Every shape the Cloudflare API returns for VPC services loads: http and tcp
services, ``tls_settings`` certificate ids, the single-object envelope of
get/create/update, the list envelope, a bare list, and the error envelope
(:mod:`vpc_requests._model.service`, :mod:`vpc_requests._config.services_file`), and a TCP
service never makes a file unusable for the tools (``bindings``, ``service
list|get|create|update|delete``).

The fixtures in ``tests/fixtures/`` follow the official ``cloudflare`` SDK's
types (``cloudflare.types.connectivity.directory``); the first tests check
them against those types, so a fixture cannot drift from what the API sends.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pydantic
import pytest
from cloudflare.types.connectivity.directory.service_get_response import ServiceGetResponse
from cloudflare.types.connectivity.directory.service_list_response import ServiceListResponse
from helpers import contacted

from vpc_requests import ConfigError, RoutingError, VPCService, load_env
from vpc_requests._cli.cli import main
from vpc_requests._config.services_file import create_service, delete_service, read_services, update_service

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ENVELOPES = ("service_get.json", "service_create_tcp.json", "service_list.json")
DB_ID = "7c3e5a1b-9d2f-4e6a-8b0c-3d5f7a9b1c2e"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def copied(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(FIXTURES / name, target)
    return target


def objects(name: str) -> list[dict[str, Any]]:
    """The service objects of a fixture, whatever its envelope."""
    data = fixture(name)
    if isinstance(data, list):
        return data
    result = data["result"]
    return result if isinstance(result, list) else [result]


# -- the fixtures are what the SDK's types describe ---------------------------------


@pytest.mark.parametrize("name", [*ENVELOPES, "service_list_bare.json"])
def test_fixtures_follow_the_sdk_types(name: str) -> None:
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
        ServiceGetResponse if name != "service_list.json" else ServiceListResponse)
    for obj in objects(name):
        model = adapter.validate_python(obj)
        assert model.type == obj["type"] and model.name == obj["name"]
        if obj["type"] == "tcp":
            assert model.tcp_port == obj["tcp_port"]


def test_the_sdk_types_refuse_what_the_fixtures_must_not_be() -> None:
    # the twin: the check above would catch a fixture that drifted
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ServiceListResponse)
    broken = {**objects("service_list.json")[2], "type": "udp"}
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python(broken)


# -- from_api / to_api round trips of every object -----------------------------------


@pytest.mark.parametrize("obj", [obj for name in ENVELOPES for obj in objects(name)],
                         ids=lambda obj: f"{obj['type']}-{obj['name']}")
def test_every_api_object_round_trips(obj: dict[str, Any]) -> None:
    service = VPCService.from_api(obj)
    assert service.to_api() == obj
    assert VPCService.from_api(service.to_api()) == service
    assert service.type == obj["type"]


def test_tcp_and_certificate_fields_are_read() -> None:
    db = VPCService.from_api(fixture("service_create_tcp.json")["result"])
    assert (db.type, db.tcp_port, db.app_protocol, db.ipv4) == ("tcp", 5432, "postgresql", "10.0.2.20")
    api = VPCService.from_api(fixture("service_get.json")["result"])
    assert api.certificate_authority == "5a7c9e1b-3d5f-4a6b-8c0d-2e4f6a8b0c1d"
    assert api.client_certificate == "9b1d3f5a-7c9e-4b2d-8f0a-1c3e5a7b9d0f"


# -- envelopes as services files ---------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), [("service_get.json", 1), ("service_create_tcp.json", 1),
                                             ("service_list.json", 4), ("service_list_bare.json", 4)])
def test_each_envelope_loads_as_a_services_file(tmp_path: Path, name: str, count: int) -> None:
    contents = read_services(copied(tmp_path, name))
    assert len(contents.services) == count
    assert [s.to_api() for s in contents.services.values()] == objects(name)


def test_an_error_envelope_quotes_the_api_errors(tmp_path: Path) -> None:
    path = copied(tmp_path, "error_envelope.json")
    with pytest.raises(ConfigError) as info:
        read_services(path)
    message = str(info.value)
    assert "[10000] Authentication error" in message and "[9109] Invalid access token" in message
    assert info.value.path == str(path)
    # and no edit touches it
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="Authentication error"):
        create_service(path, VPCService(hostname="a.internal", name="a"))
    assert path.read_bytes() == before


@pytest.mark.parametrize("envelope", [
    {"success": False, "errors": [{"code": 7003, "message": "Could not route"}], "result": None},
    {"success": False, "errors": [], "result": None},
    {"result": [], "errors": ["not an object"], "success": False},
])
def test_error_envelope_variants_are_config_errors(tmp_path: Path, envelope: dict[str, Any]) -> None:
    path = tmp_path / "services.json"
    path.write_text(json.dumps(envelope))
    with pytest.raises(ConfigError, match="Cloudflare API error response"):
        read_services(path)


def test_a_bad_service_in_a_single_object_envelope_names_result(tmp_path: Path) -> None:
    data = fixture("service_create_tcp.json")
    data["result"]["tcp_port"] = 70000
    path = tmp_path / "db.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(ConfigError, match="70000") as info:
        read_services(path)
    assert info.value.field == "result.tcp_port"


def test_editing_a_single_object_envelope_makes_it_a_list_envelope(tmp_path: Path) -> None:
    path = copied(tmp_path, "service_create_tcp.json")
    update_service(path, "orders-db", tcp_port=6432)
    data = json.loads(path.read_text())
    assert isinstance(data["result"], list) and data["result"][0]["tcp_port"] == 6432
    assert data["success"] is True
    assert read_services(path).services[DB_ID].tcp_port == 6432


def test_editing_a_list_envelope_keeps_its_counts_and_other_services(tmp_path: Path) -> None:
    path = copied(tmp_path, "service_list.json")
    before = objects("service_list.json")
    delete_service(path, "billing-mysql")
    data = json.loads(path.read_text())
    assert data["result"] == before[:3]
    assert data["result_info"] == {"page": 1, "per_page": 20, "count": 3, "total_count": 3}


# -- a TCP service never makes a file unusable ----------------------------------------------


class Result(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bare_listener: socket.socket) -> Path:
    """A Worker with an http binding and a tcp binding whose service is a
    loopback listener that must never be contacted by fetch()."""
    port = bare_listener.getsockname()[1]
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\nvpc_services = [\n  { binding = "API", service_id = "svc-api" },\n'
        '  { binding = "DB", service_id = "svc-db" },\n]\n')
    (tmp_path / "vpc-services.toml").write_text(
        "# account services\n"
        "[[services]]\n"
        'service_id = "svc-api"\nname = "api"\ntype = "http"\nhost = { hostname = "internal-api.company.local" }\n'
        "\n# the orders database\n"
        "[[services]]\n"
        'service_id = "svc-db"\nname = "db"\ntype = "tcp"\n'
        f"tcp_port = {port}   # pgbouncer\n"
        'app_protocol = "postgresql"\nhost = { ipv4 = "127.0.0.1" }\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fetch_through_a_tcp_binding_is_refused_before_any_connection(
    project: Path, bare_listener: socket.socket
) -> None:
    env = load_env(project / "wrangler.toml")
    assert env.DB.service.type == "tcp" and env.DB.service.app_protocol == "postgresql"
    for attempt in (lambda: env.DB.fetch("http://db.internal/"),
                    lambda: env.DB.session().get("https://db.internal:5432/"),
                    lambda: env.DB.fetch("http://127.0.0.1/", redirect="manual")):
        with pytest.raises(RoutingError) as info:
            attempt()
        message = str(info.value)
        assert "'DB'" in message and "tcp service" in message and "connect()" in message
    assert not contacted(bare_listener)


def test_the_tools_work_with_a_tcp_service_in_the_file(project: Path, run: Callable[..., Result]) -> None:
    port = str(load_env(project / "wrangler.toml").DB.service.tcp_port)
    result = run("bindings")
    assert result.code == 0, result.err
    assert [line.split()[0] for line in result.out.splitlines()[1:]] == ["API", "DB"]
    listing = run("service", "list")
    assert listing.code == 0, listing.err
    db_row = listing.out.splitlines()[2].split()
    assert db_row[:6] == ["svc-db", "db", "tcp", f"TCP:{port}", "(postgresql)", "127.0.0.1"]
    got = run("service", "get", "db")
    details = dict(line.split(":", 1) for line in got.out.splitlines())
    assert got.code == 0 and details["Type"].strip() == "tcp"
    assert details["TCP Port"].strip() == port and details["App Protocol"].strip() == "postgresql"
    assert json.loads(run("service", "get", "db", "--json").out)["tcp_port"] == int(port)
    assert run("service", "update", "api", "--https-port", "8443").code == 0
    assert run("service", "update", "db", "--tcp-port", "6432").code == 0
    text = (project / "vpc-services.toml").read_text()
    assert "tcp_port = 6432   # pgbouncer" in text and "# the orders database" in text
    assert run("service", "delete", "api").code == 2  # binding API still names it
    assert run("service", "delete", "api", "--force").code == 0
    assert list(read_services(project / "vpc-services.toml").services) == ["svc-db"]


# -- create/update flags ----------------------------------------------------------------------


def test_create_a_tcp_service_with_wranglers_flags(project: Path, run: Callable[..., Result]) -> None:
    result = run("service", "create", "mysql", "--type", "tcp", "--hostname", "mysql.internal:3306",
                 "--app-protocol", "mysql", "--tunnel-id", "tun-1", "--cert-verification-mode", "verify_ca",
                 "--certificate-authority", "ca-1", "--client-certificate", "mtls-1", "--json")
    assert result.code == 0, result.err
    obj = json.loads(result.out)
    assert obj["type"] == "tcp" and obj["tcp_port"] == 3306 and obj["app_protocol"] == "mysql"
    assert obj["host"] == {"hostname": "mysql.internal", "resolver_network": {"tunnel_id": "tun-1"}}
    assert obj["tls_settings"] == {"cert_verification_mode": "verify_ca", "certificate_authority": "ca-1",
                                   "client_certificate": "mtls-1"}
    assert "http_port" not in obj


def test_update_switches_the_type_and_drops_the_old_types_ports(project: Path, run: Callable[..., Result]) -> None:
    assert run("service", "update", "db", "--type", "http", "--https-port", "8443").code == 0
    db = read_services(project / "vpc-services.toml").services["svc-db"]
    assert (db.type, db.tcp_port, db.app_protocol, db.https_port) == ("http", None, None, 8443)
    assert run("service", "update", "db", "--type", "tcp", "--tcp-port", "5432").code == 0
    db = read_services(project / "vpc-services.toml").services["svc-db"]
    assert (db.type, db.tcp_port, db.https_port) == ("tcp", 5432, None)


@pytest.mark.parametrize(("args", "text"), [
    (("create", "x", "--type", "tcp", "--ipv4", "10.0.0.1"), "tcp services require a --tcp-port"),
    (("create", "x", "--type", "tcp", "--ipv4", "10.0.0.1", "--tcp-port", "1", "--http-port", "80"),
     "--http-port is only for http services"),
    (("create", "x", "--ipv4", "10.0.0.1", "--tcp-port", "5432"), "--tcp-port is only for tcp services"),
    (("create", "x", "--ipv4", "10.0.0.1", "--app-protocol", "mysql"), "--app-protocol is only for tcp"),
    (("create", "x", "--type", "tcp", "--hostname", "db.internal:5432", "--tcp-port", "6432"),
     "conflicting tcp port"),
    (("create", "x", "--ipv4", "10.0.0.1", "--certificate-authority", "ca-1", "--cert-verification-mode",
      "disabled"), "--certificate-authority ca-1 needs a --cert-verification-mode other than disabled"),
    (("update", "db", "--https-port", "443"), "--https-port is only for http services; this service is of type tcp"),
    (("update", "db", "--type", "http", "--tcp-port", "1"), "--tcp-port is only for tcp services"),
    (("update", "api", "--type", "tcp"), "tcp services require a --tcp-port"),
    (("update", "api", "--cert-verification-mode", "disabled", "--certificate-authority", "c"),
     "other than disabled"),
    (("create", "x", "--ipv4", "10.0.0.1", "--app-protocol", "redis"), "invalid choice: 'redis'"),
])
def test_flag_rules_refuse_and_leave_the_file(project: Path, run: Callable[..., Result],
                                              args: tuple[str, ...], text: str) -> None:
    before = (project / "vpc-services.toml").read_bytes()
    result = run("service", *args)
    assert result.code == 2 and text in result.err, result
    assert len(result.err.splitlines()) == 1
    assert (project / "vpc-services.toml").read_bytes() == before


def test_update_refuses_a_ca_on_a_service_whose_mode_is_disabled(project: Path, run: Callable[..., Result]) -> None:
    assert run("service", "update", "api", "--cert-verification-mode", "disabled").code == 0
    result = run("service", "update", "api", "--certificate-authority", "ca-1")
    assert result.code == 2 and "other than disabled" in result.err
    # the twin: with a verifying mode in the same command it is accepted
    assert run("service", "update", "api", "--certificate-authority", "ca-1",
               "--cert-verification-mode", "verify_ca").code == 0
    api = read_services(project / "vpc-services.toml").services["svc-api"]
    assert (api.certificate_authority, api.cert_verification_mode) == ("ca-1", "verify_ca")


def test_a_bare_api_object_loads_and_an_edit_makes_it_a_list(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    path.write_text(json.dumps(fixture("service_create_tcp.json")["result"]))
    assert read_services(path).services[DB_ID].tcp_port == 5432
    update_service(path, DB_ID, app_protocol="mysql")
    data = json.loads(path.read_text())
    assert isinstance(data, list) and data[0]["app_protocol"] == "mysql"
    # the twin: a bad bare object names its field without a list index
    path.write_text(json.dumps({**data[0], "tcp_port": 0}))
    with pytest.raises(ConfigError) as info:
        read_services(path)
    assert info.value.field == "tcp_port"


def test_update_service_with_a_new_type_drops_the_old_types_ports(tmp_path: Path) -> None:
    path = copied(tmp_path, "service_list.json")
    new = update_service(path, "orders-api", type="tcp", tcp_port=5432)
    assert (new.type, new.tcp_port, new.http_port, new.https_port) == ("tcp", 5432, None, None)
    back = update_service(path, "orders-api", type="http")
    assert (back.type, back.tcp_port, back.port_for("https")) == ("http", None, 443)
    # the twin: the same type keeps its ports, and a port of the other type is refused
    assert update_service(path, "orders-db", type="tcp").tcp_port == 5432
    with pytest.raises(ConfigError, match="http_port=80"):
        update_service(path, "orders-db", http_port=80)
