"""Tests for the ``vpc-requests`` command line (:mod:`vpc_requests._cli.cli`):
every subcommand in-process, some as a real subprocess, ``fetch`` and
``check`` against loopback services, every failure with its exit status and
an untouched file."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from helpers import eventually
from servers import BacklogFull, Socks5Server, closed_port

from vpc_requests._cli.cli import main
from vpc_requests._config.config import load_env
from vpc_requests._config.services_file import read_services
from vpc_requests.testing import PrivateService, Reply

API_ID = "0199a1b2-0000-4000-8000-000000000001"
DB_ID = "0199a1b2-0000-4000-8000-000000000002"
TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
PROXIED = "0e0e0e0e-0000-4000-8000-000000000000"

SERVICES = f"""\
# The account's VPC services (keep this comment).

# The main API.
[[services]]
service_id = "{API_ID}"  # from the dashboard
name = "internal-api"
type = "http"
host = {{ hostname = "internal-api.company.local", resolver_network = {{ tunnel_id = "{TUNNEL}" }} }}

# The database API, plain HTTP on 8080.
[[services]]
service_id = "{DB_ID}"
name = "db-api"
http_port = 8080   # not 80
host = {{ ipv4 = "10.0.1.50", network = {{ tunnel_id = "{PROXIED}" }} }}

# How this machine reaches each tunnel.
[tunnels]
"{PROXIED}" = "socks5h://user:secret@bastion.internal:1080"
"""

WRANGLER = f"""\
name = "my-worker"

[[vpc_services]]
binding = "PRIVATE_API"
service_id = "{API_ID}"

[[vpc_services]]
binding = "DB"
service = "db-api"

[env.staging]
vpc_services = [{{ binding = "STAGING_API", service_id = "{API_ID}" }}]
"""


class Result(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Worker folder as the current directory."""
    (tmp_path / "wrangler.toml").write_text(WRANGLER)
    (tmp_path / "vpc-services.toml").write_text(SERVICES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``main()`` in-process: its exit status and what it printed."""

    def invoke(*args: str) -> Result:
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


def assert_one_error_line(result: Result, *texts: str, code: int = 2) -> None:
    """Bad input: exit 2, exactly one line on stderr, no traceback."""
    assert result.code == code, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("vpc-requests: "), lines[0]
    assert "Traceback" not in result.err
    for text in texts:
        assert text in lines[0], lines[0]


def services_bytes(project: Path) -> bytes:
    return (project / "vpc-services.toml").read_bytes()


# -- parser ---------------------------------------------------------------------------


def test_help(run: Run) -> None:
    result = run("--help")
    assert result.code == 0 and "bindings" in result.out and "service" in result.out


def test_no_command_is_a_usage_error(run: Run) -> None:
    result = run()
    assert result.code == 2 and "usage:" in result.err


def test_service_without_an_action_shows_its_usage(run: Run) -> None:
    result = run("service")
    assert result.code == 2 and "usage: vpc-requests service" in result.err and "create" in result.err


def test_unknown_option_is_a_usage_error(run: Run) -> None:
    result = run("bindings", "--colour")
    assert_one_error_line(result, "vpc-requests: error: unrecognized arguments: --colour")


@pytest.mark.parametrize(("args", "text"), [
    (("frobnicate",), "argument COMMAND: invalid choice: 'frobnicate'"),
    (("fetch", "API"), "the following arguments are required: URL"),
    (("service", "get"), "the following arguments are required: SERVICE"),
    (("service", "update", "x", "--https-port"), "argument --https-port: expected one argument"),
    (("fetch-many", "API", "in.txt", "-j", "many"), "argument -j/--concurrency: invalid int value: 'many'"),
])
def test_usage_errors_are_one_line(run: Run, args: tuple[str, ...], text: str) -> None:
    result = run(*args)
    assert_one_error_line(result, "vpc-requests: error: " + text)
    assert "usage:" not in result.err and result.out == ""


def test_help_of_a_subcommand_is_unchanged(run: Run) -> None:
    result = run("service", "create", "--help")
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("usage: vpc-requests service create [-h]")
    assert "--http-port PORT" in result.out and "--cert-verification-mode" in result.out


@pytest.mark.parametrize("command", [("check",), ("fetch", "API", "http://internal-api.company.local/"),
                                     ("fetch-many", "API", "in.txt")])
@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "soon"])
def test_timeout_must_be_a_positive_number(project: Path, run: Run, plain: PrivateService,
                                           command: tuple[str, ...], value: str) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text("http://internal-api.company.local/x\n")
    result = run(*command, f"--timeout={value}")
    assert_one_error_line(result, "vpc-requests: error: argument --timeout: ", repr(value))
    assert result.out == "" and plain.connections == 0


# -- bindings ---------------------------------------------------------------------------


def test_bindings_table(project: Path, run: Run) -> None:
    result = run("bindings")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["BINDING", "SERVICE", "SERVICE", "ID", "HOST", "HTTP", "HTTPS", "TUNNEL"]
    assert lines[1].split() == ["PRIVATE_API", "internal-api", API_ID, "internal-api.company.local",
                                "80", "443", "direct"]
    assert lines[2].split() == ["DB", "db-api", DB_ID, "10.0.1.50", "8080", "-",
                                "socks5h://user:***@bastion.internal:1080"]
    assert lines[0].index("HOST") == lines[1].index("internal-api.company.local")  # aligned
    assert "secret" not in result.out


def test_bindings_json(project: Path, run: Run) -> None:
    result = run("bindings", "--json")
    data = json.loads(result.out)
    assert [item["binding"] for item in data] == ["PRIVATE_API", "DB"]
    assert data[1]["service"] == {"service_id": DB_ID, "type": "http", "name": "db-api", "http_port": 8080,
                                  "host": {"ipv4": "10.0.1.50", "network": {"tunnel_id": PROXIED}}}
    assert data[1]["tunnel"] == "socks5h://user:***@bastion.internal:1080"


@pytest.mark.parametrize("args", [
    ("--env", "staging", "bindings", "--json"),
    ("bindings", "--env", "staging", "--json"),
    ("bindings", "--json", "--env=staging"),
])
def test_env_option_before_or_after_the_command(project: Path, run: Run, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert [item["binding"] for item in json.loads(result.out)] == ["STAGING_API"]


@pytest.mark.parametrize("position", ["before", "after"])
def test_config_and_services_options_before_or_after(
        project: Path, run: Run, position: str, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    options = ["--config", str(project / "wrangler.toml"), "--services", str(project / "vpc-services.toml")]
    args = options + ["bindings"] if position == "before" else ["bindings"] + options
    result = run(*args)
    assert result.code == 0 and "PRIVATE_API" in result.out


def test_default_config_falls_back_to_wrangler_jsonc(project: Path, run: Run) -> None:
    (project / "wrangler.toml").unlink()
    (project / "wrangler.jsonc").write_text(
        f'{{ // c\n "vpc_services": [{{"binding": "J", "service_id": "{API_ID}"}},]}}'
    )
    result = run("bindings")
    assert result.code == 0 and result.out.splitlines()[1].startswith("J ")


def test_bindings_broken_config(project: Path, run: Run) -> None:
    (project / "wrangler.toml").write_text('[[vpc_services]]\nbinding = "A"\nservice_id = 7\n')
    result = run("bindings")
    assert_one_error_line(result, "error: wrangler.toml:3: vpc_services[0].service_id:", "got integer 7")
    assert result.out == ""


def test_bindings_missing_config(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(run("bindings"), "no wrangler.json, wrangler.jsonc, wrangler.toml in the current directory")


def test_bindings_prints_warnings_on_stderr(project: Path, run: Run) -> None:
    (project / "wrangler.toml").write_text(WRANGLER.replace('service = "db-api"', 'service = "db-api"\ncolor = 1'))
    result = run("bindings")
    assert result.code == 0
    assert result.err.startswith("vpc-requests: warning: wrangler.toml:10: unexpected field 'color'")


def test_bindings_none(project: Path, run: Run) -> None:
    (project / "wrangler.toml").write_text('name = "w"\n')
    result = run("bindings")
    assert result.code == 0 and result.out == "no VPC bindings in wrangler.toml\n"


# -- service list / get ----------------------------------------------------------------


def test_service_list_table(project: Path, run: Run) -> None:
    """wrangler vpc service list's columns (id, name, type, ports, host,
    tunnel, created, modified), then the transport."""
    result = run("service", "list")
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TYPE", "PORTS", "HOST", "TUNNEL", "CREATED", "MODIFIED",
                                "TRANSPORT"]
    assert lines[1].split() == [API_ID, "internal-api", "http", "HTTP:80,", "HTTPS:443",
                                "internal-api.company.local", TUNNEL, "-", "-", "direct"]
    assert lines[2].split() == [DB_ID, "db-api", "http", "HTTP:8080", "10.0.1.50", PROXIED, "-", "-",
                                "socks5h://user:***@bastion.internal:1080"]
    assert lines[0].index("NAME") == lines[2].index("db-api")
    assert lines[0].index("HOST") == lines[2].index("10.0.1.50")


def test_service_list_json_is_the_api_shape(project: Path, run: Run) -> None:
    data = json.loads(run("service", "list", "--json").out)
    assert data[0] == {"service_id": API_ID, "type": "http", "name": "internal-api",
                       "host": {"hostname": "internal-api.company.local",
                                "resolver_network": {"tunnel_id": TUNNEL}}}


def test_service_list_without_a_file(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("service", "list")
    assert result.code == 0 and result.out == "no services in vpc-services.toml\n"
    assert not (tmp_path / "vpc-services.toml").exists()


def test_service_list_explicit_missing_file(project: Path, run: Run) -> None:
    assert_one_error_line(run("service", "list", "--services", "nope.toml"), "nope.toml: file not found")


@pytest.mark.parametrize("ref", ["db-api", DB_ID])
def test_service_get_by_name_or_id(project: Path, run: Run, ref: str) -> None:
    result = run("service", "get", ref)
    assert result.code == 0
    fields = dict(line.split(":", 1) for line in result.out.splitlines())
    assert list(fields) == ["Service ID", "Name", "Type", "HTTP Port", "HTTPS Port", "Cert Verification Mode",
                            "IPv4", "Tunnel ID", "Transport"]  # wrangler vpc service get's labels and order
    assert fields["Service ID"].strip() == DB_ID
    assert fields["HTTP Port"].strip() == "8080"
    assert fields["HTTPS Port"].strip() == "- (https not allowed)"
    assert fields["Transport"].strip() == "socks5h://user:***@bastion.internal:1080"


def test_service_get_json(project: Path, run: Run) -> None:
    data = json.loads(run("service", "get", "internal-api", "--json").out)
    assert data["service_id"] == API_ID and data["host"]["hostname"] == "internal-api.company.local"


def test_service_get_unknown(project: Path, run: Run) -> None:
    result = run("service", "get", "nope")
    assert_one_error_line(result, "no service 'nope'; defined: internal-api", f"db-api ({DB_ID})")


# -- service create ---------------------------------------------------------------------


def lines_in_order(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(line == needle for line in it) for needle in needles)


def test_service_create_keeps_comments_and_layout(project: Path, run: Run) -> None:
    before = (project / "vpc-services.toml").read_text()
    result = run("service", "create", "web", "--ipv4", "10.0.2.7", "--https-port", "8443",
                 "--tunnel-id", TUNNEL, "--cert-verification-mode", "verify_ca")
    assert result.code == 0, result.err
    after = (project / "vpc-services.toml").read_text()
    assert lines_in_order(before.splitlines(), after.splitlines())
    assert after.index('name = "web"') < after.index("# How this machine reaches each tunnel.")
    new_id = result.out.split("(")[1].split(")")[0]
    assert str(uuid.UUID(new_id)) == new_id
    service = load_env(project / "wrangler.toml").services[new_id]
    assert (service.name, service.ipv4, service.https_port, service.http_port) == ("web", "10.0.2.7", 8443, None)
    assert service.cert_verification_mode == "verify_ca" and service.created_at


def test_service_create_makes_the_file(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("service", "create", "--name", "api", "--hostname", "API.Company.Local",
                 "--resolver-ips", "10.0.0.53, 10.0.0.54:5353", "--json")
    assert result.code == 0, result.err
    created = json.loads(result.out)
    assert created["host"] == {"hostname": "api.company.local",
                               "resolver_network": {"resolver_ips": ["10.0.0.53", "10.0.0.54:5353"]}}
    text = (tmp_path / "vpc-services.toml").read_text()
    assert text.startswith("# VPC Services for vpc_requests")
    mode = stat.S_IMODE((tmp_path / "vpc-services.toml").stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    # No temporary file left; the lock file stays (see test_services_edit.py).
    assert sorted(os.listdir(tmp_path)) == [".vpc-services.toml.lock", "vpc-services.toml"]


def test_service_create_keeps_the_file_mode(project: Path, run: Run) -> None:
    os.chmod(project / "vpc-services.toml", 0o640)
    assert run("service", "create", "web", "--ipv4", "10.0.2.7").code == 0
    assert stat.S_IMODE((project / "vpc-services.toml").stat().st_mode) == 0o640


def test_service_create_into_api_json(project: Path, run: Run) -> None:
    path = project / "services.json"
    path.write_text(json.dumps({"success": True, "result": []}))
    assert run("--services", "services.json", "service", "create", "web", "--ipv6", "[fd00::7]").code == 0
    data = json.loads(path.read_text())
    assert data["success"] is True and data["result"][0]["host"] == {"ipv6": "fd00::7"}


JSON_SERVICE = {"service_id": "s1", "name": "api", "type": "http", "host": {"hostname": "a.internal"}}


@pytest.mark.parametrize("shape", ["list", "result", "services", "result_info"])
def test_service_edits_of_each_api_json_shape(project: Path, run: Run, shape: str) -> None:
    """The service list stays under the key it was read from (a bare list,
    ``result``, ``services``); ``result_info`` counts follow it."""
    path = project / "services.json"
    data: object = {
        "list": [JSON_SERVICE],
        "result": {"success": True, "errors": [], "result": [JSON_SERVICE]},
        "services": {"services": [JSON_SERVICE]},
        "result_info": {"result": [JSON_SERVICE], "result_info": {"page": 1, "count": 1, "total_count": 1}},
    }[shape]
    path.write_text(json.dumps(data))

    def services() -> list[dict[str, object]]:
        found = json.loads(path.read_text())
        if shape == "list":
            return found  # type: ignore[no-any-return]
        key = "services" if shape == "services" else "result"
        assert set(found) == set(data)  # type: ignore[arg-type]  # no other key added
        if shape == "result_info":
            info = found["result_info"]
            assert (info["page"], info["count"], info["total_count"]) == (1, len(found[key]), len(found[key]))
        return found[key]  # type: ignore[no-any-return]

    def edit(*args: str) -> None:
        result = run("--services", "services.json", "service", *args)
        assert result.code == 0, result.err

    edit("create", "web", "--ipv4", "10.0.0.7")
    assert [s["name"] for s in services()] == ["api", "web"]
    edit("update", "web", "--hostname", "web.internal")
    assert services()[1]["host"] == {"hostname": "web.internal"}
    edit("delete", "api")
    assert [s["name"] for s in services()] == ["web"]
    edit("delete", "web")
    assert services() == []
    assert list(read_services(path).services) == []


def test_service_create_preserves_crlf(project: Path, run: Run) -> None:
    path = project / "vpc-services.toml"
    path.write_bytes(SERVICES.replace("\n", "\r\n").encode())
    assert run("service", "create", "web", "--ipv4", "10.0.2.7").code == 0
    data = path.read_bytes()
    assert b'name = "web"\r\n' in data and b"\n" not in data.replace(b"\r\n", b"")


@pytest.mark.parametrize(("args", "texts"), [
    (("web", "--hostname", "https://web.internal"), ("host.hostname", "'https://web.internal'", "URL scheme")),
    (("web", "--hostname", "web.internal", "--ipv4", "10.0.0.1"), ("either hostname or ipv4/ipv6",)),
    (("web",), ("needs a host",)),
    (("web", "--ipv4", "10.0.0.1", "--resolver-ips", "10.0.0.53"), ("only apply to a hostname",)),
    (("web", "--ipv4", "10.0.0.1", "--http-port", "0"), ("http_port", "0 is out of range")),
    (("db-api", "--ipv4", "10.0.0.1"), ("a service named 'db-api' already exists", DB_ID)),
    (("--ipv4", "10.0.0.1"), ("a name is required",)),
    (("web", "--name", "other", "--ipv4", "10.0.0.1"), ("two names given",)),
])
def test_service_create_refuses_bad_input_and_leaves_the_file(
        project: Path, run: Run, args: tuple[str, ...], texts: tuple[str, ...]) -> None:
    before = services_bytes(project)
    assert_one_error_line(run("service", "create", *args), *texts)
    assert services_bytes(project) == before
    assert sorted(set(os.listdir(project)) - {".vpc-services.toml.lock"}) == ["vpc-services.toml", "wrangler.toml"]


@pytest.mark.parametrize(("args", "text"), [
    (("--http-port", "http"), "argument --http-port: invalid int value: 'http'"),
    (("--http-port", "abc"), "argument --http-port: invalid int value: 'abc'"),
    (("--cert-verification-mode", "strict"), "argument --cert-verification-mode: invalid choice: 'strict'"),
    (("--type", "udp"), "argument --type: invalid choice: 'udp'"),
])
def test_service_create_argparse_errors_exit_2(project: Path, run: Run, args: tuple[str, ...], text: str) -> None:
    before = services_bytes(project)
    result = run("service", "create", "web", "--ipv4", "10.0.0.1", *args)
    assert_one_error_line(result, "vpc-requests: error: " + text, "(see 'vpc-requests service create --help')")
    assert result.out == ""
    assert services_bytes(project) == before


# -- service update / delete ---------------------------------------------------------------


def test_service_update_changes_only_what_it_must(project: Path, run: Run) -> None:
    before = (project / "vpc-services.toml").read_text().splitlines()
    result = run("service", "update", "db-api", "--http-port", "9090", "--https-port", "9443")
    assert result.code == 0, result.err
    after = (project / "vpc-services.toml").read_text().splitlines()
    changed = [line for line in before if line not in after]
    added = [line for line in after if line not in before]
    assert changed == ["http_port = 8080   # not 80"]
    assert added[0] == "http_port = 9090   # not 80"  # the comment stays with its key
    assert sorted(line.split(" =")[0] for line in added) == ["http_port", "https_port", "updated_at"]
    service = load_env(project / "wrangler.toml").DB.service
    assert (service.http_port, service.https_port) == (9090, 9443)


def test_service_update_switches_the_host_shape(project: Path, run: Run) -> None:
    assert run("service", "update", API_ID, "--ipv4", "10.0.3.3").code == 0
    service = load_env(project / "wrangler.toml").PRIVATE_API.service
    assert (service.hostname, service.ipv4, service.tunnel_id) == (None, "10.0.3.3", TUNNEL)
    text = (project / "vpc-services.toml").read_text()
    assert "# The main API." in text and f'"{API_ID}"  # from the dashboard' in text


def test_service_update_rename(project: Path, run: Run) -> None:
    assert run("service", "update", "db-api", "--name", "database").code == 0
    assert run("service", "get", "database").code == 0


@pytest.mark.parametrize(("args", "texts"), [
    (("nope", "--http-port", "81"), ("no service 'nope'",)),
    (("db-api", "--ipv4", "999.1.1.1"), ("host.ipv4", "'999.1.1.1'")),
    (("db-api", "--name", "internal-api"), ("a service named 'internal-api' already exists",)),
    (("db-api",), ("nothing to change",)),
])
def test_service_update_refuses_bad_input_and_leaves_the_file(
        project: Path, run: Run, args: tuple[str, ...], texts: tuple[str, ...]) -> None:
    before = services_bytes(project)
    assert_one_error_line(run("service", "update", *args), *texts)
    assert services_bytes(project) == before


def test_service_delete(project: Path, run: Run) -> None:
    (project / "wrangler.toml").write_text('name = "w"\n')  # no binding names it
    result = run("service", "delete", "internal-api")
    assert result.code == 0 and API_ID in result.out
    text = (project / "vpc-services.toml").read_text()
    assert API_ID not in text and "# The main API." not in text
    for kept in ("# The account's VPC services (keep this comment).", "# The database API, plain HTTP on 8080.",
                 "http_port = 8080   # not 80", "# How this machine reaches each tunnel."):
        assert kept in text
    assert [s.name for s in read_services(project / "vpc-services.toml").services.values()] == ["db-api"]


def test_service_delete_unknown(project: Path, run: Run) -> None:
    before = services_bytes(project)
    assert_one_error_line(run("service", "delete", "nope"), "no service 'nope'")
    assert services_bytes(project) == before


@pytest.mark.parametrize("action", [("create", "web", "--ipv4", "10.0.0.1"), ("update", "db-api", "--http-port", "1"),
                                    ("delete", "db-api"), ("list",), ("get", "db-api")])
def test_broken_services_file_is_left_alone(project: Path, run: Run, action: tuple[str, ...]) -> None:
    path = project / "vpc-services.toml"
    path.write_text(SERVICES.replace('ipv4 = "10.0.1.50"', 'ipv4 = "10.0.1"'))
    before = path.read_bytes()
    assert_one_error_line(run("service", *action), "vpc-services.toml:15: services[1].host.ipv4",
                          "'10.0.1'")
    assert path.read_bytes() == before


@pytest.mark.parametrize(("url", "text"), [
    ("socks5h://ops:secret@[fe80::1%25eth0]:1080", "IPv6 zone ids are not supported"),
    ("socks5h://ops:secret@bastion internal:1080", "no valid host"),
    ("ftp://ops:secret@bastion.internal", "unsupported transport"),
])
def test_bad_tunnel_is_refused_by_the_binding_rules_without_its_password(
        project: Path, run: Run, url: str, text: str) -> None:
    """The services file checks [tunnels] with the rules bindings use
    (tunnels.parse_tunnel), and never prints a password."""
    path = project / "vpc-services.toml"
    path.write_text(SERVICES.replace("socks5h://user:secret@bastion.internal:1080", url))
    before = path.read_bytes()
    for args in (("service", "list"), ("service", "create", "web", "--ipv4", "10.0.0.1"), ("bindings",)):
        result = run(*args)
        assert_one_error_line(result, f'vpc-services.toml:19: tunnels.{PROXIED}', text, "ops:***@")
        assert "secret" not in result.err
    assert path.read_bytes() == before


def test_unparsable_services_file_is_left_alone(project: Path, run: Run) -> None:
    path = project / "vpc-services.toml"
    path.write_text(SERVICES + "[[services]\n")
    before = path.read_bytes()
    assert_one_error_line(run("service", "create", "web", "--ipv4", "10.0.0.1"), "invalid TOML")
    assert path.read_bytes() == before


# -- fetch ---------------------------------------------------------------------------------


def serve_config(folder: Path, *, http: int | None = None, https: int | None = None,
                 hostname: str | None = None, extra: str = "") -> None:
    """One binding, API, whose service is on loopback at the given ports."""
    host = f'hostname = "{hostname}"' if hostname else 'ipv4 = "127.0.0.1"'
    ports = "".join(f"{key} = {value}\n" for key, value in (("http_port", http), ("https_port", https)) if value)
    (folder / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "{API_ID}"\nname = "api"\n{ports}host = {{ {host} }}\n{extra}')
    (folder / "wrangler.toml").write_text(f'[[vpc_services]]\nbinding = "API"\nservice_id = "{API_ID}"\n')


@pytest.fixture
def plain() -> Iterator[PrivateService]:
    with PrivateService() as service:
        yield service


def test_fetch_goes_through_the_binding(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    result = run("fetch", "API", "http://internal-api.company.local:9999/users?active=1")
    assert result.code == 0, result.err
    [seen] = plain.seen
    assert (seen.method, seen.target, seen.host) == ("GET", "/users?active=1", "internal-api.company.local:9999")
    assert json.loads(result.out)["path"] == "/users?active=1"


def test_fetch_method_headers_and_body(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    result = run("fetch", "API", "http://internal-api.company.local/users", "-X", "PUT",
                 "-H", "Content-Type: application/json", "-H", "X-Trace:  abc", "-d", '{"name": "John"}')
    assert result.code == 0, result.err
    [seen] = plain.seen
    assert (seen.method, seen.host, seen.body) == ("PUT", "internal-api.company.local", b'{"name": "John"}')
    assert seen.header("Content-Type") == "application/json" and seen.header("X-Trace") == "abc"


def test_fetch_data_from_file_defaults_to_post(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    (project / "body.bin").write_bytes(b"\x00\x01binary")
    assert run("fetch", "API", "http://internal-api.company.local/up", "-d", "@body.bin").code == 0
    assert (plain.seen[0].method, plain.seen[0].body) == ("POST", b"\x00\x01binary")


def test_fetch_include_and_any_status(project: Path, run: Run) -> None:
    handler = lambda seen: Reply(404, {"X-Why": "gone"}, "no such user")  # noqa: E731
    with PrivateService(handler=handler) as service:
        serve_config(project, http=service.port)
        result = run("fetch", "API", "http://internal-api.company.local/users/7", "-i")
    assert result.code == 0
    head, body = result.out.split("\r\n\r\n", 1)
    assert head.splitlines()[0] == "HTTP/1.1 404 Not Found"
    assert "X-Why: gone" in head.splitlines()
    assert body == "no such user"


def test_fetch_https_sends_the_url_host_as_sni(project: Path, run: Run) -> None:
    with PrivateService(tls=True) as service:
        serve_config(project, https=service.port)
        result = run("fetch", "API", "https://internal-api.company.local/data",
                     "--cacert", service.ca_path)
        assert result.code == 0, result.err
        [seen] = service.seen
    assert (seen.sni, seen.host, seen.tls) == ("internal-api.company.local", "internal-api.company.local", True)


def test_fetch_https_untrusted_certificate_fails(project: Path, run: Run) -> None:
    with PrivateService(tls=True) as service:
        serve_config(project, https=service.port)
        result = run("fetch", "API", "https://internal-api.company.local/data")
    assert_one_error_line(result, "ProxyError: tls_certificate_error", "binding 'API'", code=1)


def test_fetch_refused_connection(project: Path, run: Run) -> None:
    serve_config(project, http=closed_port())
    result = run("fetch", "API", "http://internal-api.company.local/users")
    assert_one_error_line(result, "vpc-requests: ProxyError: connection_refused", "binding 'API'", code=1)
    assert result.out == ""


def test_fetch_scheme_without_a_port_is_refused(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    assert_one_error_line(run("fetch", "API", "https://internal-api.company.local/"), "API")
    assert plain.connections == 0


@pytest.mark.parametrize(("args", "text"), [
    (("NOPE", "http://internal-api.company.local/"), "no binding 'NOPE'; configured: API"),
    (("API", "http://internal-api.company.local/", "-H", "no-colon"), "bad header 'no-colon'"),
    (("API", "http://internal-api.company.local/", "-d", "@missing.bin"), "missing.bin"),
    (("API", "/relative"), "/relative"),
])
def test_fetch_bad_input(project: Path, run: Run, plain: PrivateService, args: tuple[str, ...], text: str) -> None:
    serve_config(project, http=plain.port)
    assert_one_error_line(run("fetch", *args), text)
    assert plain.connections == 0


# -- check ---------------------------------------------------------------------------------


def test_check_ok(project: Path, run: Run, plain: PrivateService) -> None:
    with PrivateService(tls=True, names=("localhost",)) as tls:
        serve_config(project, http=plain.port, https=tls.port, hostname="localhost")
        result = run("check", "--cacert", tls.ca_path, "--timeout", "2")
        assert result.code == 0, result.out
        assert eventually(lambda: tls.handshakes == 1)
    rows = [line.split() for line in result.out.splitlines()]
    assert rows[0] == ["BINDING", "SCHEME", "ORIGIN", "SNI", "TRANSPORT", "TUNNEL", "CONNECT", "TLS", "RESULT"]
    assert rows[1][:6] == ["API", "http", f"localhost:{plain.port}", "-", "direct", "-"] and rows[1][-1] == "OK"
    assert rows[1][7:] == ["ms", "-", "OK"]  # no TLS for http
    assert rows[2][:6] == ["API", "https", f"localhost:{tls.port}", "localhost", "direct", "-"]
    assert rows[2][7:10:2] == ["ms", "ms"] and rows[2][-1] == "OK"
    assert rows[-1] == ["2", "of", "2", "OK"]
    # a TCP probe, no request (its connection counted once the accept loop gets a core)
    assert eventually(lambda: plain.connections == 1) and plain.seen == []


def test_check_fails_on_a_closed_port(project: Path, run: Run) -> None:
    port = closed_port()
    serve_config(project, http=port)
    result = run("check")
    assert result.code == 1
    row = result.out.splitlines()[1]
    assert f"127.0.0.1:{port}" in row and "FAIL connection_refused: " in row
    assert result.out.splitlines()[-1] == "1 of 1 FAILED"


def test_check_fails_on_a_certificate_for_another_name(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("other.internal",)) as tls:
        serve_config(project, https=tls.port, hostname="localhost")
        result = run("check", "--cacert", tls.ca_path)
    assert result.code == 1
    assert "FAIL tls_certificate_error: certificate verify failed: Hostname mismatch" in result.out.splitlines()[1]


def test_check_insecure_accepts_any_certificate(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("other.internal",)) as tls:
        serve_config(project, https=tls.port, hostname="localhost")
        result = run("check", "-k")
    assert result.code == 0, result.out


CHAIN_ONLY = "OK (chain only; give --sni NAME to check a name)"


def test_check_ip_service_sends_no_sni_and_checks_the_chain_only(project: Path, run: Run) -> None:
    """Requests to an IP service send their URL's host, which check does not
    know: a certificate for that name is healthy, and the row says the name
    went unchecked."""
    with PrivateService(tls=True, names=("internal-api.company.local",)) as tls:
        serve_config(project, https=tls.port)
        result = run("check", "--cacert", tls.ca_path)
        assert run("fetch", "API", "https://internal-api.company.local/", "--cacert", tls.ca_path).code == 0
    assert result.code == 0, result.out
    row = result.out.splitlines()[1]
    assert row.split()[:5] == ["API", "https", f"127.0.0.1:{tls.port}", "-", "direct"]
    assert row.endswith(CHAIN_ONLY)
    assert result.out.splitlines()[-1] == "1 of 1 OK"


def test_check_ip_service_still_checks_the_chain(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("internal-api.company.local",)) as tls:
        serve_config(project, https=tls.port)
        result = run("check")  # the default CA bundle does not trust the test CA
    assert result.code == 1
    assert "FAIL tls_certificate_error: certificate verify failed" in result.out.splitlines()[1]


def test_check_sni_sends_and_checks_the_name(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("internal-api.company.local",)) as tls:
        serve_config(project, https=tls.port)
        good = run("check", "--cacert", tls.ca_path, "--sni", "internal-api.company.local")
        bad = run("check", "--cacert", tls.ca_path, "--sni", "other.company.local")
    assert good.code == 0, good.out
    row = good.out.splitlines()[1]
    assert row.split()[:5] == ["API", "https", f"127.0.0.1:{tls.port}", "internal-api.company.local", "direct"]
    assert row.endswith(" OK")
    assert bad.code == 1
    assert "FAIL tls_certificate_error: certificate verify failed: Hostname mismatch" in bad.out.splitlines()[1]


def test_check_sni_ip_checks_the_ip(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("127.0.0.1",)) as tls:
        serve_config(project, https=tls.port)
        good = run("check", "--cacert", tls.ca_path, "--sni", "127.0.0.1", "--json")
        bad = run("check", "--cacert", tls.ca_path, "--sni", "10.0.1.50", "--json")
    [probe] = json.loads(good.out)
    assert (good.code, probe["result"], probe["sni"], probe["certificate"], probe["checked_name"]) == (
        0, "OK", None, "full", "127.0.0.1")
    assert (bad.code, json.loads(bad.out)[0]["code"]) == (1, "tls_certificate_error")


def test_check_sni_replaces_a_hostname_services_name(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("alias.internal",)) as tls:
        serve_config(project, https=tls.port, hostname="localhost")
        assert run("check", "--cacert", tls.ca_path).code == 1
        result = run("check", "--cacert", tls.ca_path, "--sni", "alias.internal")
    assert result.code == 0, result.out
    assert result.out.splitlines()[1].split()[3] == "alias.internal"


def test_check_bad_sni_is_bad_input(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, https=plain.port)
    assert_one_error_line(run("check", "--sni", "not a name"), "server_name: 'not a name'")
    assert plain.connections == 0


def test_check_only_the_bindings_named(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    with (project / "wrangler.toml").open("a") as wrangler:
        wrangler.write(f'\n[[vpc_services]]\nbinding = "OTHER"\nservice_id = "{API_ID}"\n')
    result = run("check", "OTHER")
    assert result.code == 0, result.out
    assert [line.split()[0] for line in result.out.splitlines()[1:-1]] == ["OTHER"]
    assert eventually(lambda: plain.connections == 1)
    assert_one_error_line(run("check", "API", "NOPE"), "no binding 'NOPE'; configured: API, OTHER")
    # nothing sent for the failed check: a sentinel exchange, answered only
    # after every connection queued before it was accepted (and counted)
    assert requests.get(plain.url, timeout=60).ok
    assert plain.connections == 2


def test_check_connect_timeout(project: Path, run: Run) -> None:
    with BacklogFull() as backlog:
        serve_config(project, http=backlog.port)
        result = run("check", "--timeout", "0.2")
    assert result.code == 1 and "FAIL connection_timeout" in result.out


def tunnel_config(folder: Path, tunnel: str, *, https_port: int = 8443) -> None:
    """One binding, API, to a hostname service only its tunnel can reach."""
    (folder / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "{API_ID}"\nname = "api"\nhttps_port = {https_port}\n'
        f'host = {{ hostname = "internal-api.company.local", resolver_network = {{ tunnel_id = "{TUNNEL}" }} }}\n'
        f'\n[tunnels]\n"{TUNNEL}" = "{tunnel}"\n')
    (folder / "wrangler.toml").write_text(f'[[vpc_services]]\nbinding = "API"\nservice_id = "{API_ID}"\n')


def test_check_probes_through_the_tunnel(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("internal-api.company.local",)) as tls, \
            Socks5Server({("internal-api.company.local", 8443): ("127.0.0.1", tls.port)},
                         credentials=("user", "secret")) as socks:
        tunnel_config(project, f"socks5h://user:secret@127.0.0.1:{socks.port}")
        result = run("check", "--cacert", tls.ca_path, "--timeout", "2")
        assert result.code == 0, result.out
        assert [(a.host, a.port) for a in socks.asked] == [("internal-api.company.local", 8443)]
        assert eventually(lambda: tls.handshakes == 1)
    header, row = result.out.splitlines()[:2]
    transport = f"SOCKS5 proxy 127.0.0.1:{socks.port} (names resolved by the proxy), user 'user'"
    assert row[header.index("TRANSPORT"):].startswith(transport)
    tunnel_cell = row[header.index("TUNNEL"):header.index("CONNECT")].split()
    assert tunnel_cell[0] == "ok" and tunnel_cell[2] == "ms"
    assert row.split()[:4] == ["API", "https", "internal-api.company.local:8443", "internal-api.company.local"]
    assert row.endswith("OK") and result.out.splitlines()[-1] == "1 of 1 OK"
    assert "secret" not in result.out


def test_check_tunnel_down_fails_naming_the_tunnel(project: Path, run: Run) -> None:
    port = closed_port()
    tunnel_config(project, f"socks5h://user:secret@127.0.0.1:{port}")
    result = run("check", "--timeout", "2")
    assert result.code == 1
    header, row = result.out.splitlines()[:2]
    assert row[header.index("TUNNEL"):].startswith("FAIL ")
    assert f"FAIL connection_refused: tunnel socks5h://user:***@127.0.0.1:{port} refused the connection" in row
    assert result.out.splitlines()[-1] == "1 of 1 FAILED"
    assert "secret" not in result.out


def test_check_json(project: Path, run: Run) -> None:
    port = closed_port()
    tunnel_config(project, f"socks5h://user:secret@127.0.0.1:{port}")
    result = run("check", "--json")
    assert result.code == 1
    [probe] = json.loads(result.out)
    assert (probe["binding"], probe["scheme"], probe["result"], probe["code"]) == (
        "API", "https", "FAIL", "connection_refused")
    assert probe["tunnel"]["ok"] is False and "secret" not in result.out


def test_check_missing_ca_bundle_is_bad_input(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port, https=plain.port)
    assert_one_error_line(run("check", "--cacert", "nope.pem"), "nope.pem")
    assert plain.connections == 0


def test_check_no_bindings_fails(project: Path, run: Run) -> None:
    """Nothing checked is not a pass: a misspelt key or a wrong --env must
    not look like a healthy Worker."""
    (project / "wrangler.toml").write_text('name = "w"\n')
    result = run("check")
    assert_one_error_line(result, "no VPC bindings in wrangler.toml; nothing to check", code=1)
    assert result.out == ""
    result = run("check", "--json")
    assert result.code == 1 and json.loads(result.out) == []
    assert "no VPC bindings in wrangler.toml" in result.err


# -- fetch-many ------------------------------------------------------------------------------


def records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_fetch_many_urls_and_json_lines(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text(
        "# a comment\n"
        "http://internal-api.company.local:9999/users/1\n"
        "\n"
        + json.dumps({"url": "http://other.company.local/users", "method": "POST",
                      "headers": {"Content-Type": "application/json"}, "body": '{"name": "John"}'}) + "\n")
    result = run("fetch-many", "API", "in.txt", "--concurrency", "2")
    assert result.code == 0, result.err
    first, second = records(result.out)
    assert (first["index"], first["url"], first["status"]) == (0, "http://internal-api.company.local:9999/users/1", 200)
    assert json.loads(first["body"])["host"] == "internal-api.company.local:9999"  # type: ignore[arg-type]
    assert (second["index"], second["status"]) == (1, 200)
    posted = [seen for seen in plain.seen if seen.method == "POST"]
    assert [(s.host, s.target, s.body, s.header("Content-Type")) for s in posted] == [
        ("other.company.local", "/users", b'{"name": "John"}', "application/json")]


def test_fetch_many_a_bad_line_is_an_error_record(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text("https://internal-api.company.local/\n{not json\n"
                                    "http://internal-api.company.local/ok\n")
    result = run("fetch-many", "API", "in.txt", "--out", "out.jsonl")
    assert result.code == 1 and result.out == "" and result.err == ""
    bad, broken, good = records((project / "out.jsonl").read_text())
    assert bad["url"] == "https://internal-api.company.local/" and "error" in bad
    assert bad["error"]["type"] == "RoutingError"  # type: ignore[index]
    assert broken["error"]["code"] is None and "JSON" in broken["error"]["message"]  # type: ignore[index]
    assert (good["index"], good["status"]) == (2, 200)
    assert [s.target for s in plain.seen] == ["/ok"]


def test_fetch_many_lines_cannot_change_how_fetches_are_made(project: Path, run: Run) -> None:
    """``verify``, ``timeout``, ... come from the command line only: a line
    that gives one is an error record naming it, and the batch goes on."""
    with PrivateService(tls=True, names=("other.internal",)) as tls:  # a certificate that must fail
        serve_config(project, https=tls.port)
        url = "https://internal-api.company.local/"
        (project / "in.txt").write_text("\n".join(json.dumps(line) for line in [
            {"url": url + "a", "verify": False},
            {"url": url + "b", "timeout": 0.001, "cert": "/etc/passwd"},
            {"url": url + "c", "method": "PUT", "headers": {"X-A": "1"}, "body": "x", "params": {"q": 1}},
        ]) + "\n")
        result = run("fetch-many", "API", "in.txt", "-k")  # even with -k, only -k says so
        assert tls.seen and [s.target for s in tls.seen] == ["/c?q=1"]
    assert result.code == 1
    verify, several, good = records(result.out)
    assert verify["url"] == url + "a" and verify["error"]["type"] == "ValueError"  # type: ignore[index]
    assert "'verify' not allowed" in verify["error"]["message"]  # type: ignore[index]
    assert "url, method, headers, body, json, params" in verify["error"]["message"]  # type: ignore[index]
    assert "keys 'timeout', 'cert' not allowed" in several["error"]["message"]  # type: ignore[index]
    assert good["status"] == 200


def test_fetch_many_a_line_cannot_turn_verification_off(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("other.internal",)) as tls:
        serve_config(project, https=tls.port)
        (project / "in.txt").write_text(json.dumps({"url": "https://internal-api.company.local/",
                                                    "verify": False}) + "\n")
        result = run("fetch-many", "API", "in.txt")
        assert tls.connections == 0 and tls.seen == []
    [record] = records(result.out)
    assert result.code == 1 and "'verify' not allowed" in record["error"]["message"]  # type: ignore[index]


def test_fetch_many_refused_gives_error_records(project: Path, run: Run) -> None:
    serve_config(project, http=closed_port())
    (project / "in.txt").write_text("http://internal-api.company.local/a\nhttp://internal-api.company.local/b\n")
    result = run("fetch-many", "API", "in.txt")
    assert result.code == 1 and "Traceback" not in result.err
    found = records(result.out)
    assert [r["index"] for r in found] == [0, 1]
    assert {r["error"]["code"] for r in found} == {"connection_refused"}  # type: ignore[index]
    assert all("binding 'API'" in r["error"]["message"] for r in found)  # type: ignore[index]


def test_fetch_many_from_stdin_with_headers(project: Path, run: Run, plain: PrivateService,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    serve_config(project, http=plain.port)
    monkeypatch.setattr(sys, "stdin", io.StringIO("http://internal-api.company.local/x\n"))
    result = run("fetch-many", "API", "-", "-i")
    assert result.code == 0, result.err
    [record] = records(result.out)
    assert record["headers"]["Content-Type"] == "application/json"  # type: ignore[index]


def test_fetch_many_progress(project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text("http://internal-api.company.local/x\n" * 3)
    result = run("fetch-many", "API", "in.txt", "--progress")
    assert result.code == 0 and len(records(result.out)) == 3
    assert "API" in result.err


@pytest.mark.parametrize(("args", "text"), [
    (("API", "missing.txt"), "missing.txt"),
    (("NOPE", "in.txt"), "no binding 'NOPE'; configured: API"),
    (("API", "in.txt", "--out", "no/such/dir/out.jsonl"), "no/such/dir/out.jsonl"),
])
def test_fetch_many_bad_input(project: Path, run: Run, plain: PrivateService, args: tuple[str, ...],
                              text: str) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text("http://internal-api.company.local/x\n")
    result = run("fetch-many", *args)
    assert_one_error_line(result, text)
    assert result.out == "" and plain.connections == 0


def test_fetch_many_insecure_warns_once(project: Path, run: Run) -> None:
    with PrivateService(tls=True, names=("other.internal",)) as tls:
        serve_config(project, https=tls.port)
        (project / "in.txt").write_text("https://internal-api.company.local/x\n" * 4)
        result = run("fetch-many", "API", "in.txt", "-k", "-j", "2")
    assert result.code == 0 and [r["status"] for r in records(result.out)] == [200] * 4
    assert len(result.err.splitlines()) == 1 and "Unverified HTTPS request" in result.err


def test_fetch_many_concurrency_must_be_positive(project: Path, run: Run) -> None:
    result = run("fetch-many", "API", "in.txt", "--concurrency", "0")
    assert result.code == 2 and "must be at least 1" in result.err


def test_missing_extra_is_one_line(project: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def require_socks() -> None:
        raise ImportError("socks5:// and socks5h:// tunnels need socksio: pip install 'vpc_requests[socks]'")

    monkeypatch.setattr("vpc_requests._transport.connection.require_socks", require_socks)
    tunnel_config(project, "socks5h://127.0.0.1:1080")
    assert_one_error_line(run("check"), "pip install 'vpc_requests[socks]'")


# -- demo ------------------------------------------------------------------------------------


def test_demo_runs_the_demo(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def run_demo(out: object) -> int:
        calls.append(out)
        print("demo output", file=out)  # type: ignore[arg-type]
        return 3

    monkeypatch.setitem(sys.modules, "vpc_requests._cli.demo", types.SimpleNamespace(run_demo=run_demo))
    result = run("demo")
    assert (result.code, result.out, len(calls)) == (3, "demo output\n", 1)


# -- as a real program -----------------------------------------------------------------------


def program(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vpc_requests", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def test_subprocess_bindings_json(project: Path) -> None:
    done = program("bindings", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert [item["binding"] for item in json.loads(done.stdout)] == ["PRIVATE_API", "DB"]


def test_subprocess_bad_input(project: Path) -> None:
    before = services_bytes(project)
    done = program("service", "create", "web", "--hostname", "web internal", cwd=project)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("vpc-requests: error: host.hostname:")
    assert services_bytes(project) == before


def test_subprocess_fetch_many(project: Path, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text("http://internal-api.company.local/a\nhttps://internal-api.company.local/b\n")
    done = program("fetch-many", "API", "in.txt", "--out", "out.jsonl", cwd=project)
    assert done.returncode == 1 and done.stderr == "" and done.stdout == ""
    good, bad = records((project / "out.jsonl").read_text())
    assert (good["status"], bad["error"]["type"]) == (200, "RoutingError")  # type: ignore[index]
    assert [s.host for s in plain.seen] == ["internal-api.company.local"]


def test_subprocess_fetch_many_bad_file(project: Path) -> None:
    serve_config(project, http=closed_port())
    done = program("fetch-many", "API", "missing.txt", cwd=project)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("vpc-requests: error: ")
    assert "missing.txt" in done.stderr


def test_subprocess_fetch(project: Path, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    done = program("fetch", "API", "http://internal-api.company.local/users", cwd=project)
    assert done.returncode == 0, done.stderr
    assert plain.seen[0].host == "internal-api.company.local"
    assert json.loads(done.stdout)["host"] == "internal-api.company.local"


def test_console_script_runs_each_subcommand(project: Path) -> None:
    """The installed ``vpc-requests`` script, as a real process, for the
    subcommands the ``python -m`` runs above do not cover."""
    script = Path(sys.executable).parent / "vpc-requests"
    assert script.exists(), script

    def vpc(*args: str, code: int = 0, err: str = "") -> str:
        done = subprocess.run([str(script), *args], cwd=project, capture_output=True, text=True, timeout=60,
                              check=False)
        assert (done.returncode, err in done.stderr, bool(done.stderr)) == (code, True, bool(err)), (args, done)
        return done.stdout

    with PrivateService(tls=True, names=("127.0.0.1",)) as tls:
        created = json.loads(vpc("service", "create", "web", "--ipv4", "127.0.0.1", "--https-port", str(tls.port),
                                 "--json"))
        web = created["service_id"]
        assert uuid.UUID(web) and created["host"] == {"ipv4": "127.0.0.1"}
        assert [line.split()[1] for line in vpc("service", "list").splitlines()[1:]] == [
            "internal-api", "db-api", "web"]
        assert vpc("service", "get", "web").splitlines()[0].split() == ["Service", "ID:", web]
        assert vpc("service", "update", "web", "--cert-verification-mode", "verify_ca") == (
            f"Updated service web ({web}) in vpc-services.toml\n")
        with (project / "wrangler.toml").open("a") as wrangler:
            wrangler.write('\n[[vpc_services]]\nbinding = "WEB"\nservice = "web"\n')
        # Only WEB: the other bindings' services are not on loopback.
        out = vpc("check", "WEB", "--cacert", tls.ca_path, "--sni", "127.0.0.1")
        assert eventually(lambda: tls.handshakes == 1)
    assert out.splitlines()[1].split()[:2] == ["WEB", "https"] and out.splitlines()[-1] == "1 of 1 OK"
    assert vpc("service", "delete", web, code=2, err="still named by binding WEB in wrangler.toml") == ""
    assert vpc("service", "delete", web, "--force") == f"Deleted service web ({web}) from vpc-services.toml\n"
    assert web not in services_bytes(project).decode()


def test_service_edits_of_an_inline_array_and_dotted_keys(project: Path, run: Run) -> None:
    path = project / "vpc-services.toml"
    path.write_text(textwrap.dedent('''\
        services = [
          { service_id = "a", name = "a", host = { ipv4 = "10.0.0.1" } },
          { service_id = "b", name = "b", host.hostname = "b.internal" },  # dotted
        ]
        '''))
    assert run("service", "create", "c", "--ipv4", "10.0.0.3").code == 0
    assert run("service", "delete", "a").code == 0
    assert run("service", "update", "b", "--hostname", "c.internal", "--http-port", "81").code == 0
    contents = read_services(path)
    assert [(s.name, s.origin("http")) for s in contents.services.values()] == [("b", "c.internal:81"),
                                                                               ("c", "10.0.0.3:80")]
    assert "# dotted" in path.read_text()


# -- global options as wrangler's ------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("-e", "staging", "bindings", "--json"),
    ("bindings", "-e", "staging", "--json"),
    ("bindings", "--json", "-estaging"),
])
def test_short_env_option_before_or_after_the_command(project: Path, run: Run, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert [item["binding"] for item in json.loads(result.out)] == ["STAGING_API"]


@pytest.mark.parametrize("position", ["before", "after"])
def test_short_config_option_before_or_after(
        project: Path, run: Run, position: str, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    options = ["-c", str(project / "wrangler.toml")]
    result = run(*(options + ["bindings"] if position == "before" else ["bindings"] + options))
    assert result.code == 0 and "PRIVATE_API" in result.out


def test_short_config_option_names_a_missing_file(project: Path, run: Run) -> None:
    assert_one_error_line(run("bindings", "-c", "other.toml"), "other.toml: file not found")


@pytest.mark.parametrize("position", ["before", "after"])
def test_cwd_runs_as_if_started_there(project: Path, run: Run, position: str,
                                      tmp_path_factory: pytest.TempPathFactory,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """As wrangler's --cwd: the wrangler file is found there, and relative
    paths (here --services) are relative to it; the process's own working
    directory is restored afterwards."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    options = ["--cwd", str(project), "--services", "vpc-services.toml"]
    args = options + ["service", "create", "web", "--ipv4", "10.0.2.7"]
    if position == "after":
        args = ["service", "create", "web", "--ipv4", "10.0.2.7"] + options
    result = run(*args)
    assert result.code == 0, result.err
    assert result.out.endswith(" in vpc-services.toml\n")
    assert "web" in {s.name for s in read_services(project / "vpc-services.toml").services.values()}
    assert Path.cwd() == elsewhere and sorted(os.listdir(elsewhere)) == []


def test_cwd_that_does_not_exist_is_one_line(project: Path, run: Run) -> None:
    result = run("--cwd", "no-such-dir", "bindings")
    assert_one_error_line(result, "--cwd no-such-dir: No such file or directory")
    assert Path.cwd() == project


def test_fetch_many_concurrency_is_j_because_c_is_the_config(
        project: Path, run: Run, plain: PrivateService) -> None:
    serve_config(project, http=plain.port)
    (project / "in.txt").write_text("http://internal-api.company.local/x\n" * 3)
    result = run("fetch-many", "API", "in.txt", "--concurrency", "2")
    assert result.code == 0 and [r["status"] for r in records(result.out)] == [200] * 3
    result = run("fetch-many", "API", "in.txt", "-c", "2")  # -c is --config now, as in wrangler
    assert_one_error_line(result, "2: file not found")


def test_version(run: Run) -> None:
    import vpc_requests

    result = run("--version")
    assert (result.code, result.out, result.err) == (0, f"vpc-requests {vpc_requests.__version__}\n", "")
    assert vpc_requests.__version__[0].isdigit()


def test_version_has_one_source() -> None:
    """setup.cfg reads the version from the package (vpc_requests/_version.py,
    a literal setuptools reads without importing): no second copy."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert setup["metadata"]["version"] == "attr: vpc_requests._version.__version__"


def test_version_is_not_a_subcommand_option(project: Path, run: Run) -> None:
    assert_one_error_line(run("service", "list", "--version"), "unrecognized arguments: --version")


def test_service_create_takes_the_name_as_a_positional(project: Path, run: Run) -> None:
    result = run("service", "create", "web", "--ipv4", "10.0.2.7", "--json")
    assert result.code == 0 and json.loads(result.out)["name"] == "web"


# -- service delete of a bound service ----------------------------------------------------------


@pytest.mark.parametrize(("ref", "bindings"), [
    ("internal-api", "bindings PRIVATE_API, STAGING_API [env.staging] in wrangler.toml"),
    (DB_ID, "binding DB in wrangler.toml"),  # bound by name (service = "db-api"), deleted by id
])
def test_service_delete_of_a_bound_service_is_refused(project: Path, run: Run, ref: str, bindings: str) -> None:
    before = services_bytes(project)
    result = run("service", "delete", ref)
    assert_one_error_line(result, "is still named by " + bindings, "nothing was deleted", "--force")
    assert result.out == "" and services_bytes(project) == before


def test_service_delete_force_deletes_a_bound_service(project: Path, run: Run) -> None:
    result = run("service", "delete", "internal-api", "--force")
    assert result.code == 0 and result.out == f"Deleted service internal-api ({API_ID}) from vpc-services.toml\n"
    assert list(read_services(project / "vpc-services.toml").services) == [DB_ID]


def test_service_delete_checks_the_wrangler_file_given_with_c(project: Path, run: Run) -> None:
    (project / "other.toml").write_text('name = "w"\n')
    assert run("service", "delete", "internal-api", "-c", "other.toml").code == 0


def test_service_delete_with_a_broken_wrangler_file_is_refused(project: Path, run: Run) -> None:
    (project / "wrangler.toml").write_text("[[vpc_services]]\nbinding = 7\n")
    before = services_bytes(project)
    assert_one_error_line(run("service", "delete", "internal-api"), "wrangler.toml:2: vpc_services[0].binding")
    assert services_bytes(project) == before
    assert run("service", "delete", "internal-api", "--force").code == 0


def test_service_delete_without_a_wrangler_file(project: Path, run: Run) -> None:
    (project / "wrangler.toml").unlink()
    assert run("service", "delete", "internal-api").code == 0


@pytest.mark.parametrize("value", ["0", "-1", "never"])
def test_lock_timeout_must_be_a_positive_number(project: Path, run: Run, value: str) -> None:
    before = services_bytes(project)
    result = run("service", "update", "db-api", "--http-port", "81", "--lock-timeout", value)
    assert_one_error_line(result, "argument --lock-timeout: ", repr(value))
    assert services_bytes(project) == before


# -- no traceback, no terminal control ---------------------------------------------------------


def explode(args: object) -> int:
    raise RuntimeError("unexpected \x1b[31mboom")


def test_an_unexpected_exception_is_one_line_and_exit_70(
        project: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPC_REQUESTS_DEBUG", raising=False)
    monkeypatch.setattr("vpc_requests._cli.cli.cmd_bindings", explode)
    result = run("bindings")
    assert_one_error_line(result, "internal error: RuntimeError: unexpected \\x1b[31mboom", "--debug", code=70)
    assert "\x1b" not in result.err


@pytest.mark.parametrize("how", ["--debug", "VPC_REQUESTS_DEBUG=1"])
def test_debug_shows_the_traceback(project: Path, run: Run, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr("vpc_requests._cli.cli.cmd_bindings", explode)
    if how == "--debug":
        result = run("bindings", "--debug")
    else:
        monkeypatch.setenv("VPC_REQUESTS_DEBUG", "1")
        result = run("bindings")
    assert result.code == 70
    assert "Traceback (most recent call last)" in result.err and "in explode" in result.err
    assert result.err.splitlines()[-1].startswith("vpc-requests: internal error: RuntimeError")


def test_debug_shows_the_traceback_of_an_expected_error_too(project: Path, run: Run) -> None:
    result = run("--debug", "service", "get", "nope")
    assert result.code == 2 and "Traceback" in result.err and "ConfigError" in result.err
    assert result.err.splitlines()[-1].startswith("vpc-requests: error: ")


def test_subprocess_unexpected_exception_has_no_traceback(project: Path) -> None:
    code = ("import sys, vpc_requests._cli.cli as cli\n"
            "def explode(args): raise KeyError('x')\n"
            "cli.cmd_bindings = explode\n"
            "sys.exit(cli.main(['bindings']))\n")
    env = {k: v for k, v in os.environ.items() if k != "VPC_REQUESTS_DEBUG"}
    done = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 70 and done.stdout == ""
    assert done.stderr == ("vpc-requests: internal error: KeyError: 'x' (this is a bug; --debug or "
                           "VPC_REQUESTS_DEBUG=1 shows the traceback)\n")


ESC_NAME = "red\x1b[31mname\u202e"


def hostile_project(project: Path) -> None:
    """A service and a binding whose names hold an ANSI escape and a
    right-to-left override."""
    toml_name = ESC_NAME.replace("\x1b", "\\u001b").replace("\u202e", "\\u202e")
    (project / "vpc-services.toml").write_text(SERVICES.replace('name = "db-api"', f'name = "{toml_name}"'))
    (project / "wrangler.toml").write_text(
        f'[[vpc_services]]\nbinding = "DB{toml_name}"\nservice_id = "{DB_ID}"\n')


def assert_escaped(text: str) -> None:
    assert "\x1b" not in text and "\u202e" not in text
    assert "red\\x1b[31mname\\u202e" in text


@pytest.mark.parametrize("args", [
    ("service", "list"),
    ("service", "get", DB_ID),
    ("service", "update", DB_ID, "--http-port", "81"),
    ("bindings",),
])
def test_control_characters_in_names_are_printed_escaped(project: Path, run: Run, args: tuple[str, ...]) -> None:
    hostile_project(project)
    result = run(*args)
    assert result.code == 0, result.err
    assert_escaped(result.out)


def test_control_characters_escaped_in_create_delete_and_errors(project: Path, run: Run) -> None:
    hostile_project(project)
    result = run("service", "create", "new-" + ESC_NAME, "--ipv4", "10.0.0.9")
    assert result.code == 0, result.err
    assert_escaped(result.out)
    result = run("service", "create", ESC_NAME, "--ipv4", "10.0.0.9")  # the name is taken
    assert result.code == 2
    assert_escaped(result.err)
    result = run("service", "delete", DB_ID)  # refused: names the binding
    assert result.code == 2
    assert_escaped(result.err)
    result = run("service", "delete", DB_ID, "--force")
    assert result.code == 0
    assert_escaped(result.out)


def test_control_characters_escaped_in_check(project: Path, run: Run) -> None:
    hostile_project(project)
    (project / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "{DB_ID}"\nname = "db"\nhttp_port = {closed_port()}\n'
        'host = { ipv4 = "127.0.0.1" }\n')
    result = run("check")
    assert result.code == 1
    assert "\x1b" not in result.out and "DBred\\x1b[31mname\\u202e" in result.out


def test_plain_names_are_printed_as_they_are(project: Path, run: Run) -> None:
    """The twin: nothing printable is escaped (a backslash stays one)."""
    (project / "vpc-services.toml").write_text(SERVICES.replace('name = "db-api"', 'name = "db\\\\api é"'))
    result = run("service", "list")
    assert result.code == 0 and "db\\api é" in result.out and "\\\\" not in result.out
