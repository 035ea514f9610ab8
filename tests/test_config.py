"""Tests for :mod:`vpc_requests._config.config` (with the readers in
:mod:`vpc_requests._config.wrangler` and :mod:`vpc_requests._config.services_file`): real
files in temporary folders, every bad file paired with its error text."""

from __future__ import annotations

import json
import pickle
import textwrap
import warnings
from pathlib import Path

import pytest

from vpc_requests import Binding, ConfigError, VPCService
from vpc_requests._config.config import ConfigWarning, Env, load_env
from vpc_requests._config.services_file import check_tunnel, read_services, update_service
from vpc_requests._config.wrangler import find_wrangler_file, strip_jsonc

API_ID = "0199a1b2-0000-4000-8000-000000000001"
DB_ID = "0199a1b2-0000-4000-8000-000000000002"
TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"

SERVICES = f"""\
# The account's VPC services.
[[services]]
service_id = "{API_ID}"
name = "internal-api"
type = "http"
host = {{ hostname = "internal-api.company.local", resolver_network = {{ tunnel_id = "{TUNNEL}" }} }}

[[services]]
service_id = "{DB_ID}"
name = "db-api"
type = "http"
http_port = 8080
[services.host]
ipv4 = "10.0.1.50"
[services.host.network]
tunnel_id = "{TUNNEL}"
"""

WRANGLER_TOML = f"""\
name = "my-worker"
main = "src/index.ts"

[[vpc_services]]
binding = "PRIVATE_API"
service_id = "{API_ID}"
remote = true

[[vpc_services]]
binding = "DB"
service_id = "{DB_ID}"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Worker folder with ``wrangler.toml`` and ``vpc-services.toml``."""
    write(tmp_path, "wrangler.toml", WRANGLER_TOML)
    write(tmp_path, "vpc-services.toml", SERVICES)
    return tmp_path


def check_error(exc: ConfigError, path: Path, line: int | None, field: str | None, *texts: str) -> None:
    """The error names the file, the line, the field and the bad value."""
    assert exc.path == str(path)
    assert exc.line == line
    assert exc.field == field
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    assert str(exc).startswith(prefix), str(exc)
    for text in texts:
        assert text in str(exc), str(exc)


# -- the three wrangler formats -------------------------------------------------


def test_toml_bindings_in_file_order(project: Path) -> None:
    env = load_env(project / "wrangler.toml")
    assert list(env) == ["PRIVATE_API", "DB"]
    assert len(env) == 2
    api = env.PRIVATE_API
    assert isinstance(api, Binding) and api is env["PRIVATE_API"]
    assert api.name == "PRIVATE_API"
    assert api.service.hostname == "internal-api.company.local"
    assert api.service.service_id == API_ID
    assert api.tunnel is None
    assert env.DB.service.ipv4 == "10.0.1.50" and env.DB.service.http_port == 8080
    assert list(env.bindings) == ["PRIVATE_API", "DB"]
    assert list(env.services) == [API_ID, DB_ID]
    assert env.tunnels == {}
    assert env.path == str(project / "wrangler.toml")
    assert env.services_path == str(project / "vpc-services.toml")


def test_toml_inline_array_form(project: Path) -> None:
    write(project, "wrangler.toml", f"""\
        vpc_services = [
          {{ binding = "PRIVATE_API", service_id = "{API_ID}" }},
          {{ binding = "DB", service_id = "{DB_ID}", remote = false }},
        ]
        """)
    assert list(load_env(project / "wrangler.toml")) == ["PRIVATE_API", "DB"]


def test_json(project: Path) -> None:
    path = project / "wrangler.json"
    path.write_text(json.dumps({"name": "w", "vpc_services": [
        {"binding": "DB", "service_id": DB_ID}, {"binding": "PRIVATE_API", "service_id": API_ID}]}))
    env = load_env(path)
    assert list(env) == ["DB", "PRIVATE_API"]
    assert env.DB.service.service_id == DB_ID


def test_jsonc_comments_trailing_commas_and_slashes_in_strings(project: Path) -> None:
    path = write(project, "wrangler.jsonc", f"""\
        // The Worker's configuration
        {{
          "name": "my-worker", // trailing comment
          "route": "https://example.invalid/*", /* a URL with // and /* inside a string */
          "vpc_services": [
            /* first */ {{ "binding": "PRIVATE_API", "service_id": "{API_ID}", }},
            {{ "binding": "DB", "service_id": "{DB_ID}", "remote": true }},
          ],
        }}
        """)
    env = load_env(path)
    assert list(env) == ["PRIVATE_API", "DB"]


def test_strip_jsonc_keeps_strings_and_positions() -> None:
    text = '{"a": "x//y", // c\n "b": "/*z*/", /* d\n e */ "c": [1, 2,],}'
    stripped = strip_jsonc(text)
    assert json.loads(stripped) == {"a": "x//y", "b": "/*z*/", "c": [1, 2]}
    assert stripped.count("\n") == text.count("\n")
    assert len(stripped) == len(text)


def test_default_path_falls_back_to_json_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "wrangler.toml").unlink()
    write(project, "wrangler.jsonc", f'{{"vpc_services": [{{"binding": "DB", "service_id": "{DB_ID}"}},]}}')
    monkeypatch.chdir(project)
    assert find_wrangler_file() == Path("wrangler.jsonc")
    assert list(load_env()) == ["DB"]


def test_default_path_missing_names_the_files_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_env()
    assert "no wrangler.json, wrangler.jsonc, wrangler.toml in the current directory or its parents" in str(info.value)


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_env(tmp_path / "nope.toml")
    check_error(info.value, tmp_path / "nope.toml", None, None, "file not found")


def test_services_file_found_beside_the_wrangler_file_not_cwd(
        project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert len(load_env(project / "wrangler.toml")) == 2


def test_explicit_services_file(project: Path) -> None:
    other = write(project, "account.toml", SERVICES.replace("10.0.1.50", "10.0.1.51"))
    env = load_env(project / "wrangler.toml", services=other)
    assert env.DB.service.ipv4 == "10.0.1.51"
    assert env.services_path == str(other)


def test_no_bindings_needs_no_services_file(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\n')
    env = load_env(path)
    assert len(env) == 0 and list(env) == []


def test_bindings_without_services_file_fail(project: Path) -> None:
    (project / "vpc-services.toml").unlink()
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    check_error(info.value, project / "vpc-services.toml", None, None,
                "services file not found", "PRIVATE_API, DB")


def test_explicit_services_file_missing_fails_even_without_bindings(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\n')
    with pytest.raises(ConfigError, match="file not found"):
        load_env(path, services=tmp_path / "missing.toml")


# -- environments -----------------------------------------------------------------


ENVIRONMENTS = f"""\
[[vpc_services]]
binding = "PRIVATE_API"
service_id = "{API_ID}"

[env.staging]
name = "my-worker-staging"
vpc_services = [ {{ binding = "STAGING_DB", service_id = "{DB_ID}" }} ]

[env.production]
name = "my-worker-production"
"""


def test_environment_uses_its_own_bindings(project: Path) -> None:
    path = write(project, "wrangler.toml", ENVIRONMENTS)
    with pytest.warns(ConfigWarning, match='name "PRIVATE_API" at the top level, but not on "env.staging"'):
        env = load_env(path, environment="staging")
    assert list(env) == ["STAGING_DB"]
    assert env.environment == "staging"
    assert list(load_env(path)) == ["PRIVATE_API"]


def test_environment_does_not_inherit_and_warns(project: Path) -> None:
    path = write(project, "wrangler.toml", ENVIRONMENTS)
    with pytest.warns(ConfigWarning) as record:
        env = load_env(path, environment="production")
    assert len(env) == 0
    message = str(record[0].message)
    assert f"{path}:1:" in message
    assert '"vpc_services" exists at the top level, but not on "env.production"' in message
    assert "not inherited" in message


def test_environment_without_top_level_bindings_does_not_warn(project: Path) -> None:
    path = write(project, "wrangler.toml", '[env.production]\nname = "p"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_env(path, environment="production")) == 0


def test_unknown_environment(project: Path) -> None:
    path = write(project, "wrangler.toml", ENVIRONMENTS)
    with pytest.raises(ConfigError) as info:
        load_env(path, environment="prod")
    check_error(info.value, path, None, "env.prod", "no environment 'prod'", "production, staging")


# -- wrangler's other rules -------------------------------------------------------------


def test_unknown_key_warns_with_file_line_and_key(project: Path) -> None:
    path = write(project, "wrangler.toml", WRANGLER_TOML + 'colour = "red"\n')
    with pytest.warns(ConfigWarning, match=r"wrangler\.toml:12: unexpected field 'colour' in vpc_services\[1\]"):
        env = load_env(path)
    assert list(env) == ["PRIVATE_API", "DB"]


def test_remote_is_accepted_without_warning(project: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_env(project / "wrangler.toml")


def test_binding_by_service_name(project: Path) -> None:
    path = write(project, "wrangler.toml", '[[vpc_services]]\nbinding = "DB"\nservice = "db-api"\n')
    assert load_env(path).DB.service.service_id == DB_ID


def test_binding_by_unknown_service_name(project: Path) -> None:
    path = write(project, "wrangler.toml", '[[vpc_services]]\nbinding = "DB"\nservice = "db"\n')
    with pytest.raises(ConfigError) as info:
        load_env(path)
    check_error(info.value, path, 3, "vpc_services[0].service", "names service 'db'",
                f"defined: internal-api ({API_ID}), db-api ({DB_ID})")


def test_binding_by_ambiguous_service_name(project: Path) -> None:
    write(project, "vpc-services.toml", SERVICES.replace('"internal-api"', '"db-api"'))
    path = write(project, "wrangler.toml", '[[vpc_services]]\nbinding = "DB"\nservice = "db-api"\n')
    with pytest.raises(ConfigError) as info:
        load_env(path)
    check_error(info.value, path, 3, "vpc_services[0].service", "2 services are named 'db-api'", "service_id")


BAD_WRANGLER = [
    pytest.param('name = "w"\n[[vpc_services]\nbinding = "X"\n', 2, None, ("invalid TOML",), id="toml-syntax"),
    pytest.param('vpc_services = { binding = "X" }\n', 1, "vpc_services",
                 ("must be an array", "table {'binding': 'X'}"), id="not-an-array"),
    pytest.param('vpc_services = ["X"]\n', 1, "vpc_services[0]", ("got string 'X'",), id="entry-not-a-table"),
    pytest.param(f'[[vpc_services]]\nbinding = "A"\nservice_id = "{API_ID}"\n\n[[vpc_services]]\n'
                 f'service_id = "{DB_ID}"\n', 5, "vpc_services[1].binding",
                 ('string "binding" field', "got nothing"), id="binding-missing"),
    pytest.param(f'[[vpc_services]]\nbinding = 5\nservice_id = "{API_ID}"\n', 2, "vpc_services[0].binding",
                 ("got integer 5",), id="binding-not-a-string"),
    pytest.param('[[vpc_services]]\nbinding = "A"\n', 1, "vpc_services[0].service_id",
                 ('string "service_id" field', "got nothing"), id="service-id-missing"),
    pytest.param('[[vpc_services]]\nbinding = "A"\nservice_id = ["x"]\n', 3, "vpc_services[0].service_id",
                 ("got array ['x']",), id="service-id-not-a-string"),
    pytest.param(f'[[vpc_services]]\nbinding = "A"\nservice_id = "{API_ID}"\n\n'
                 f'[[vpc_services]]\nbinding = "A"\nservice_id = "{DB_ID}"\n', 6, "vpc_services[1].binding",
                 ("'A' is used more than once", "first defined at line 2"), id="duplicate-binding"),
    pytest.param('[[vpc_services]]\nbinding = "A"\nservice_id = "nope"\n', 3, "vpc_services[0].service_id",
                 ("names service 'nope'", "does not define", "internal-api"), id="unknown-service-id"),
    pytest.param('[env.dev]\nvpc_services = [\n  { binding = "A", service_id = "x" },\n  { binding = 1 },\n]\n',
                 4, "env.dev.vpc_services[1].binding", ("integer 1",), id="in-environment"),
]


@pytest.mark.parametrize(("text", "line", "field", "texts"), BAD_WRANGLER)
def test_bad_wrangler_toml(project: Path, text: str, line: int, field: str | None, texts: tuple[str, ...]) -> None:
    path = write(project, "wrangler.toml", text)
    with pytest.raises(ConfigError) as info:
        load_env(path, environment="dev" if "env.dev" in text else None)
    check_error(info.value, path, line, field, *texts)


def test_bad_wrangler_jsonc_points_at_the_line(project: Path) -> None:
    path = write(project, "wrangler.jsonc", f"""\
        {{
          // bindings
          "vpc_services": [
            {{ "binding": "A", "service_id": "{API_ID}" }},
            {{
              "binding": "B",
              "service_id": 42,
            }},
          ],
        }}
        """)
    with pytest.raises(ConfigError) as info:
        load_env(path)
    check_error(info.value, path, 7, "vpc_services[1].service_id", "got integer 42")


def test_jsonc_syntax_error_has_the_line(project: Path) -> None:
    path = write(project, "wrangler.jsonc", '{\n  // c\n  "vpc_services": [\n    { "binding": "A" "x": 1 }\n  ]\n}\n')
    with pytest.raises(ConfigError) as info:
        load_env(path)
    check_error(info.value, path, 4, None, "invalid JSON", "Expecting ','")


# -- the services file --------------------------------------------------------------


def test_services_api_json_list(project: Path) -> None:
    api = [VPCService(hostname="internal-api.company.local", service_id=API_ID, name="internal-api",
                      tunnel_id=TUNNEL).to_api() | {"created_at": "2025-10-01T12:00:00Z"},
           VPCService(ipv4="10.0.1.50", http_port=8080, service_id=DB_ID, name="db-api").to_api()]
    path = project / "services.json"
    path.write_text(json.dumps(api, indent=2))
    env = load_env(project / "wrangler.toml", services=path)
    assert env.PRIVATE_API.service.created_at == "2025-10-01T12:00:00Z"
    assert env.DB.service.http_port == 8080


def test_services_api_json_result_envelope(project: Path) -> None:
    result = [{"service_id": API_ID, "type": "http", "name": "internal-api",
               "host": {"hostname": "internal-api.company.local",
                        "resolver_network": {"tunnel_id": TUNNEL, "resolver_ips": ["10.0.0.53"]}},
               "tls_settings": {"cert_verification_mode": "verify_ca"},
               "created_at": "2025-10-01T12:00:00Z", "updated_at": "2025-10-02T12:00:00Z"},
              {"service_id": DB_ID, "type": "http", "name": "db-api", "https_port": 8443,
               "host": {"ipv4": "10.0.1.50", "network": {"tunnel_id": TUNNEL}}}]
    path = project / "services.json"
    path.write_text(json.dumps({"success": True, "errors": [], "messages": [], "result": result,
                                "result_info": {"count": 2}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the API's envelope keys are not "unknown keys"
        env = load_env(project / "wrangler.toml", services=path)
    assert env.PRIVATE_API.service.resolver_ips == ("10.0.0.53",)
    assert env.PRIVATE_API.service.cert_verification_mode == "verify_ca"
    assert env.DB.service.port_for("https") == 8443 and env.DB.service.port_for("http") is None


def test_services_json_bad_value_points_at_the_line(project: Path) -> None:
    path = project / "services.json"
    path.write_text(json.dumps({"result": [
        {"service_id": API_ID, "host": {"hostname": "internal-api.company.local"}},
        {"service_id": DB_ID, "host": {"ipv4": "10.0.1.500"}}]}, indent=2))
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml", services=path)
    lines = path.read_text().splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if "10.0.1.500" in line)
    check_error(info.value, path, expected, "result[1].host.ipv4", "'10.0.1.500'", "not a valid IPv4")


BAD_SERVICES = [
    pytest.param(SERVICES.replace('"internal-api.company.local"', '"https://internal-api.company.local/x"'),
                 6, "services[0].host.hostname", ("'https://internal-api.company.local/x'", "URL scheme"),
                 id="hostname-with-scheme"),
    pytest.param(SERVICES.replace('ipv4 = "10.0.1.50"', 'ipv4 = "10.0.1"'), 14, "services[1].host.ipv4",
                 ("'10.0.1'",), id="bad-ipv4-in-sub-table"),
    pytest.param(SERVICES.replace("http_port = 8080", "http_port = 70000"), 12, "services[1].http_port",
                 ("70000", "1-65535"), id="port-out-of-range"),
    pytest.param(SERVICES.replace('type = "http"\nhttp_port', 'type = "tcp"\nhttp_port'), 11,
                 "services[1].type", ("'tcp'",), id="unsupported-type"),
    pytest.param(SERVICES.replace(f'service_id = "{DB_ID}"\n', ""), 8, "services[1].service_id",
                 ("missing",), id="service-id-missing"),
    pytest.param(SERVICES.replace(DB_ID, API_ID), 9, "services[1].service_id",
                 (f"{API_ID!r} is used more than once",), id="duplicate-service-id"),
    pytest.param(SERVICES.replace("8080\n", '8080\ntls_settings = { cert_verification_mode = "strict" }\n'), 13,
                 "services[1].tls_settings.cert_verification_mode", ("'strict'", "verify_full"),
                 id="bad-verification-mode"),
    pytest.param('services = "none"\n', 1, "services", ("array", "string 'none'"), id="services-not-array"),
    pytest.param('[[services]\n', 1, None, ("invalid TOML",), id="toml-syntax"),
    pytest.param(SERVICES + '\n[tunnels]\n"t1" = "ftp://proxy:21"\n', 19, "tunnels.t1",
                 ("'ftp://proxy:21'", "socks5://"), id="tunnel-bad-scheme"),
]


@pytest.mark.parametrize(("text", "line", "field", "texts"), BAD_SERVICES)
def test_bad_services_file(project: Path, text: str, line: int, field: str | None, texts: tuple[str, ...]) -> None:
    path = write(project, "vpc-services.toml", text)
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    check_error(info.value, path, line, field, *texts)


def test_unknown_key_in_a_service_warns(project: Path) -> None:
    write(project, "vpc-services.toml", SERVICES.replace("8080\n", '8080\ncolour = "blue"\n'))
    with pytest.warns(ConfigWarning, match=r"vpc-services\.toml:13: unknown key 'colour' in a service"):
        load_env(project / "wrangler.toml")


def test_unknown_top_level_key_warns(project: Path) -> None:
    write(project, "vpc-services.toml", 'servics = []\n' + SERVICES)
    with pytest.warns(ConfigWarning, match="unknown key 'servics'"):
        load_env(project / "wrangler.toml")


# -- tunnels --------------------------------------------------------------------------


def test_tunnels_table_routes_bindings(project: Path) -> None:
    other = "a0000000-0000-4000-8000-000000000000"
    write(project, "vpc-services.toml", SERVICES.replace(f'tunnel_id = "{TUNNEL}"\n', f'tunnel_id = "{other}"\n')
          + f'\n[tunnels]\n"{TUNNEL}" = "socks5h://user:secret@bastion.internal:1080"\n"{other}" = "direct"\n')
    env = load_env(project / "wrangler.toml")
    assert env.PRIVATE_API.tunnel == "socks5h://user:secret@bastion.internal:1080"
    assert env.DB.tunnel is None  # "direct" is the default transport
    assert env.tunnels == {TUNNEL: "socks5h://user:secret@bastion.internal:1080", other: "direct"}
    assert all(type(value) is str for value in env.tunnels.values())


@pytest.mark.parametrize("url", ["direct", "socks5://proxy:1080", "socks5h://u:p@proxy.internal:1080",
                                 "http://proxy.internal:3128", "https://proxy.internal", "http://[::1]:8080/"])
def test_valid_tunnels(url: str) -> None:
    assert check_tunnel(url) == url


@pytest.mark.parametrize(("url", "text"), [
    ("socks4://proxy:1080", "unsupported transport"),
    ("proxy:1080", "unsupported transport"),
    ("Direct", "unsupported transport"),
    ("socks5://:1080", "no valid host"),
    ("http://proxy:99999", "invalid port"),
    ("http://proxy:0", "invalid port"),
    ("http://proxy:x", "invalid port"),
    ("http://proxy/path", "path, query or fragment"),
    (1080, "got an integer"),
])
def test_invalid_tunnels(url: object, text: str) -> None:
    with pytest.raises(ConfigError, match=text):
        check_tunnel(url)


def test_tunnels_not_a_table(project: Path) -> None:
    path = write(project, "vpc-services.toml", 'tunnels = "direct"\n' + SERVICES)
    with pytest.raises(ConfigError) as info:
        read_services(path)
    check_error(info.value, path, 1, "tunnels", "got a string")


# -- Env ------------------------------------------------------------------------------


def test_unknown_binding_lists_the_configured_names(project: Path) -> None:
    env = load_env(project / "wrangler.toml")
    with pytest.raises(KeyError) as info:
        env["NOPE"]
    assert info.value.args[0] == "no binding 'NOPE'; configured: PRIVATE_API, DB"
    with pytest.raises(AttributeError, match="no binding 'NOPE'; configured: PRIVATE_API, DB"):
        env.NOPE  # noqa: B018
    assert "NOPE" not in env and "DB" in env
    assert getattr(env, "NOPE", None) is None


def test_env_pickles(project: Path) -> None:
    write(project, "vpc-services.toml", SERVICES + f'\n[tunnels]\n"{TUNNEL}" = "socks5://proxy.internal:1080"\n')
    env = load_env(project / "wrangler.toml")
    copy = pickle.loads(pickle.dumps(env))
    assert list(copy) == list(env)
    assert copy.PRIVATE_API.service == env.PRIVATE_API.service
    assert copy.DB.tunnel == "socks5://proxy.internal:1080"
    assert copy.services == env.services and copy.tunnels == env.tunnels
    assert (copy.path, copy.services_path, copy.environment) == (env.path, env.services_path, None)


def test_env_built_in_code() -> None:
    service = VPCService(ipv4="127.0.0.1", http_port=8080)
    env = Env([Binding("A", service), Binding("B", service)])
    assert list(env) == ["A", "B"] and env.A.service is service
    assert "A" in dir(env)
    assert repr(env) == "<Env: A, B>"
    with pytest.raises(ValueError, match="'A' is used more than once"):
        Env([Binding("A", service), Binding("A", service)])


@pytest.mark.parametrize("name", ["close", "path", "bindings", "services", "environment", "_bindings",
                                  "__dunder__"])
def test_a_binding_named_like_an_env_attribute_warns(project: Path, name: str) -> None:
    write(project, "wrangler.toml", WRANGLER_TOML + f'\n[[vpc_services]]\nbinding = "{name}"\nservice_id = "{DB_ID}"\n')
    with pytest.warns(ConfigWarning) as caught:
        env = load_env(project / "wrangler.toml")
    [warning] = caught
    assert str(warning.message) == (
        f"{project / 'wrangler.toml'}:14: binding {name!r} cannot be reached as env.{name} "
        f"(that is the Env's own attribute); use env[{name!r}]")
    assert warning.filename == __file__
    assert env[name].service.service_id == DB_ID
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copy = pickle.loads(pickle.dumps(env))  # warned once, when loaded
    assert copy[name].name == name


def test_a_warning_points_past_every_layer_of_the_package() -> None:
    """A call into the config layer from another layer (the CLI, the pytest
    plugin) is still inside the package: the warning points at its caller."""
    import vpc_requests
    from vpc_requests._config.sources import caller_level

    package = Path(vpc_requests.__file__).parent
    inside = compile("caller_level()", str(package / "_cli" / "calling.py"), "eval")
    assert eval(inside, {"caller_level": caller_level}) == 2
    # the twin: a caller outside the package is where it stops
    outside = compile("caller_level()", str(package.parent / "calling.py"), "eval")
    assert eval(outside, {"caller_level": caller_level}) == 1


def test_a_binding_named_like_an_env_attribute_warns_in_code() -> None:
    service = VPCService(ipv4="127.0.0.1")
    with pytest.warns(ConfigWarning, match=r"^binding 'close' cannot be reached as env.close .* use env\['close'\]$"):
        env = Env([Binding("close", service), Binding("OK", service)])
    assert env["close"].name == "close" and env.OK.name == "OK"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Env([Binding("closed", service), Binding("PATH", service)])  # no warning: not attributes


def test_env_copies_are_not_live(project: Path) -> None:
    env = load_env(project / "wrangler.toml")
    env.bindings.clear()
    env.services.clear()
    assert len(env.bindings) == 2 and len(env.services) == 2


# -- services file edits -------------------------------------------------------------------


def test_update_service_replaces_the_host_shape(project: Path) -> None:
    path = project / "vpc-services.toml"
    updated = update_service(path, "internal-api", ipv4="10.0.3.3")
    assert (updated.hostname, updated.ipv4, updated.ipv6, updated.tunnel_id) == (None, "10.0.3.3", None, TUNNEL)
    assert read_services(path).services[API_ID] == updated
    back = update_service(path, API_ID, hostname="api.company.local", resolver_ips=["10.0.0.53"])
    assert (back.hostname, back.ipv4, back.resolver_ips) == ("api.company.local", None, ("10.0.0.53",))
    dual = update_service(path, API_ID, ipv6="fd00::1", ipv4="10.0.0.1")
    assert (dual.hostname, dual.ipv4, dual.ipv6, dual.resolver_ips) == (None, "10.0.0.1", "fd00::1", ())
    v6 = update_service(path, API_ID, ipv6="fd00::2")  # any host field replaces the whole host
    assert (v6.ipv4, v6.ipv6) == (None, "fd00::2")
    ported = update_service(path, API_ID, http_port=8081)  # no host field: the host stays
    assert (ported.ipv6, ported.http_port) == ("fd00::2", 8081)


def test_update_service_still_refuses_two_host_shapes(project: Path) -> None:
    path = project / "vpc-services.toml"
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="give either hostname or ipv4/ipv6, not both"):
        update_service(path, "db-api", hostname="db.company.local", ipv4="10.0.0.1")
    with pytest.raises(ConfigError, match="only apply to a hostname service"):
        update_service(path, "internal-api", ipv4="10.0.0.1", resolver_ips=["10.0.0.53"])
    assert path.read_bytes() == before


# -- the TOML reader ----------------------------------------------------------------------


def test_before_python_3_11_toml_is_read_with_tomli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not tomlkit (several times slower): the tomli backport, which
    setup.cfg requires there."""
    import importlib
    import importlib.util
    import sys
    import types

    import vpc_requests._config.sources

    real = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    calls: list[str] = []

    def loads(text: str) -> dict[str, object]:
        calls.append(text)
        return real.loads(text)  # type: ignore[no-any-return]

    monkeypatch.setitem(sys.modules, "tomli", types.SimpleNamespace(loads=loads, TOMLDecodeError=ValueError))
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    sources_file = vpc_requests._config.sources.__file__
    spec = importlib.util.spec_from_file_location("vpc_requests._config._sources_on_3_10", sources_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.undo()

    assert module.parse_document("a = 1\n", "x.toml").data == {"a": 1} and calls == ["a = 1\n"]
    with pytest.raises(ConfigError, match=r"^x.toml:2: invalid TOML: "):
        module.parse_document("a = 1\nb = \n", "x.toml")
    setup = (Path(vpc_requests._config.sources.__file__).parents[2] / "setup.cfg").read_text()
    assert '\n    tomli>=1.1; python_version < "3.11"\n' in setup


# -- scale ------------------------------------------------------------------------------


def test_thousand_services_and_bindings(tmp_path: Path) -> None:
    """Timed in benchmarks/bench_config.py; here only that it loads."""
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1000)]
    services = "".join(
        f'[[services]]\nservice_id = "{sid}"\nname = "service-{i}"\n'
        + (f'host = {{ ipv4 = "10.1.{i // 250}.{i % 250 + 1}" }}\nhttp_port = {8000 + i}\n\n' if i % 2
           else f'host = {{ hostname = "api-{i}.company.local" }}\n\n')
        for i, sid in enumerate(ids))
    write(tmp_path, "vpc-services.toml", services)
    write(tmp_path, "wrangler.toml",
          "".join(f'[[vpc_services]]\nbinding = "API_{i}"\nservice_id = "{sid}"\n' for i, sid in enumerate(ids)))
    (tmp_path / "wrangler.jsonc").write_text(
        '{"vpc_services": [' + "".join(f'// {i}\n{{"binding": "API_{i}", "service_id": "{sid}"}},\n'
                                       for i, sid in enumerate(ids)) + "]}")
    env = load_env(tmp_path / "wrangler.toml")
    assert len(env) == 1000 and len(env.services) == 1000
    assert env.API_999.service.name == "service-999"
    assert env.API_999.service.http_port == 8999
    assert list(load_env(tmp_path / "wrangler.jsonc")) == list(env)


# -- misspelt keys in the services file (issue 9 §7) -----------------------------------


@pytest.mark.parametrize(("key", "meant"), [("http_prot", "http_port"), ("https_prot", "https_port"),
                                            ("hots", "host"), ("tls_setting", "tls_settings")])
def test_a_misspelt_routing_key_in_a_service_is_an_error(project: Path, key: str, meant: str) -> None:
    """Ignoring it would send the traffic elsewhere (http_prot = 8080 -> port 80)."""
    path = write(project, "vpc-services.toml", SERVICES.replace("http_port = 8080\n", f"{key} = 8080\n"))
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    check_error(info.value, path, 12, f"services[1].{key}", f"unknown key '{key}'", f"did you mean '{meant}'?")


@pytest.mark.parametrize("key", ["hostname", "ipv4"])
def test_a_host_field_outside_host_is_an_error(project: Path, key: str) -> None:
    path = write(project, "vpc-services.toml", SERVICES.replace("http_port = 8080\n", f'{key} = "10.0.0.9"\n'))
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    check_error(info.value, path, 12, f"services[1].{key}", "belongs inside the service's host table")


def test_a_misspelt_non_routing_key_only_warns_with_a_guess(project: Path) -> None:
    write(project, "vpc-services.toml", SERVICES.replace('name = "db-api"\n', 'name = "db-api"\nnmae = "x"\n'))
    with pytest.warns(ConfigWarning, match="unknown key 'nmae' in a service ignored; did you mean 'name'"):
        env = load_env(project / "wrangler.toml")
    assert env.DB.service.http_port == 8080


def test_a_misspelt_services_table_warns_with_a_guess(project: Path) -> None:
    write(project, "vpc-services.toml", f'[[service]]\nservice_id = "{API_ID}"\nhost = {{ ipv4 = "10.0.1.50" }}\n')
    with pytest.warns(ConfigWarning, match="unknown key 'service' ignored; .*did you mean 'services'"), \
            pytest.raises(ConfigError, match="does not define"):
        load_env(project / "wrangler.toml")
