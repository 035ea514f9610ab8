"""Wrangler's rules for the Worker configuration (issue 10 §1), one test (or
pair) per row of the "Differences from wrangler" table (docs/configuration.rst). The rules are
workers-sdk ``packages/workers-utils/src/config/``: ``config-helpers.ts``,
``validation.ts``, ``validation-helpers.ts`` and ``../parse.ts``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from vpc_requests import ConfigError
from vpc_requests._config.config import ConfigWarning, load_env
from vpc_requests._config.sources import _toml, parse_document
from vpc_requests._config.wrangler import NetworkSpec, find_wrangler_file, read_worker

API_ID = "0199a1b2-0000-4000-8000-000000000001"
DB_ID = "0199a1b2-0000-4000-8000-000000000002"
TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
SERVICES = f"""\
[[services]]
service_id = "{API_ID}"
name = "internal-api"
host = {{ hostname = "internal-api.company.local" }}

[[services]]
service_id = "{DB_ID}"
name = "db-api"
host = {{ ipv4 = "10.0.1.50" }}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "vpc-services.toml").write_text(SERVICES)
    monkeypatch.delenv("CLOUDFLARE_ENV", raising=False)
    return tmp_path


@pytest.fixture
def quiet() -> Iterator[None]:
    """Any warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def wrangler(folder: Path, text: str, name: str = "wrangler.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def vpc(binding: str, service_id: str = API_ID) -> str:
    return f'[[vpc_services]]\nbinding = "{binding}"\nservice_id = "{service_id}"\n'


# -- discovery ------------------------------------------------------------------------


def test_discovery_sweeps_each_name_up_to_the_root_before_the_next(project: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """findWranglerConfig: a wrangler.json in a parent beats a wrangler.toml here."""
    child = project / "a" / "b"
    child.mkdir(parents=True)
    wrangler(child, vpc("TOML_HERE"))
    wrangler(project, json.dumps({"vpc_services": [{"binding": "JSON_ABOVE", "service_id": DB_ID}]}),
             "wrangler.json")
    monkeypatch.chdir(child)
    assert find_wrangler_file() == project / "wrangler.json"
    env = load_env()
    assert list(env) == ["JSON_ABOVE"]
    assert env.services_path == str(project / "vpc-services.toml")  # beside the file found


def test_discovery_prefers_jsonc_to_toml_and_finds_toml_alone(project: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    wrangler(project, vpc("TOML"))
    assert find_wrangler_file() == Path("wrangler.toml")
    wrangler(project, f'{{"vpc_services": [{{"binding": "JSONC", "service_id": "{API_ID}"}},]}}', "wrangler.jsonc")
    assert find_wrangler_file() == Path("wrangler.jsonc")
    assert list(load_env()) == ["JSONC"]


def test_discovery_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_wrangler_file() == Path("wrangler.toml") and not Path("wrangler.toml").exists()
    with pytest.raises(ConfigError, match="in the current directory or its parents"):
        load_env()


def test_an_explicit_path_is_taken_as_given(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unlike discovery, load_env("wrangler.toml") reads that file even when a wrangler.json is there."""
    monkeypatch.chdir(project)
    wrangler(project, vpc("TOML"))
    wrangler(project, json.dumps({"vpc_services": []}), "wrangler.json")
    assert list(load_env("wrangler.toml")) == ["TOML"]
    assert list(load_env()) == []


def test_a_deploy_redirect_is_not_followed(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Different: wrangler follows .wrangler/deploy/config.json; we read the user's file."""
    (project / ".wrangler" / "deploy").mkdir(parents=True)
    wrangler(project / ".wrangler" / "deploy", json.dumps({"configPath": "../../dist/wrangler.json"}),
             "config.json")
    wrangler(project, vpc("USER"))
    monkeypatch.chdir(project)
    assert list(load_env()) == ["USER"]


def test_any_other_extension_is_read_as_toml(project: Path) -> None:
    """Different: wrangler reads a config path with another extension as empty."""
    path = wrangler(project, vpc("API"), "worker.conf")
    assert list(load_env(path)) == ["API"]
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_env(wrangler(project, "{}", "worker.conf"))


# -- environments ------------------------------------------------------------------------


ENVS = vpc("TOP") + f"""
[env.staging]
vpc_services = [ {{ binding = "STAGING", service_id = "{DB_ID}" }}, {{ binding = "TOP", service_id = "{API_ID}" }} ]
"""


def test_cloudflare_env_selects_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch, quiet: None) -> None:
    path = wrangler(project, ENVS)
    monkeypatch.setenv("CLOUDFLARE_ENV", "staging")
    env = load_env(path)
    assert list(env) == ["STAGING", "TOP"] and env.environment == "staging"
    assert list(load_env(path, environment="")) == ["TOP"]  # "" is the top level, as --env ""
    monkeypatch.setenv("CLOUDFLARE_ENV", "")
    assert load_env(path).environment is None


def test_cloudflare_env_naming_no_environment_fails(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = wrangler(project, ENVS)
    monkeypatch.setenv("CLOUDFLARE_ENV", "prod")
    with pytest.raises(ConfigError, match="no environment 'prod'; defined: staging"):
        load_env(path)
    assert list(load_env(path, environment="staging")) == ["STAGING", "TOP"]  # the argument wins


def test_env_on_a_file_without_environments_warns_and_reads_the_top_level(project: Path) -> None:
    path = wrangler(project, vpc("TOP"))
    with pytest.warns(ConfigWarning, match='no environment found in configuration with name "staging"'):
        env = load_env(path, environment="staging")
    assert list(env) == ["TOP"] and env.environment is None


def test_env_missing_from_a_file_with_environments_fails(project: Path) -> None:
    with pytest.raises(ConfigError, match="no environment 'production'; defined: staging"):
        load_env(wrangler(project, ENVS), environment="production")


def test_an_environment_lacking_a_top_level_name_warns_per_name(project: Path) -> None:
    path = wrangler(project, vpc("TOP") + vpc("OTHER", DB_ID) + f"""
[env.staging]
vpc_services = [ {{ binding = "OTHER", service_id = "{DB_ID}" }} ]
""")
    with pytest.warns(ConfigWarning) as record:
        env = load_env(path, environment="staging")
    assert list(env) == ["OTHER"]
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert f"{path}:2: " in messages[0]
    assert 'vpc_services binding with name "TOP" at the top level, but not on "env.staging"' in messages[0]


def test_an_environment_with_every_top_level_name_is_quiet(project: Path, quiet: None) -> None:
    assert list(load_env(wrangler(project, ENVS), environment="staging")) == ["STAGING", "TOP"]


def test_an_invalid_top_level_entry_fails_while_an_environment_is_read(project: Path) -> None:
    path = wrangler(project, '[[vpc_services]]\nbinding = 5\nservice_id = "x"\n' + ENVS.split("\n", 4)[4])
    with pytest.raises(ConfigError) as info:
        load_env(path, environment="staging")
    assert info.value.field == "vpc_services[0].binding" and info.value.line == 2


# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_refused(project: Path, constant: str) -> None:
    path = wrangler(project, f'{{\n  "name": "NaN",\n  "limits": {{ "cpu_ms": {constant} }}\n}}', "wrangler.json")
    with pytest.raises(ConfigError) as info:
        load_env(path)
    assert info.value.line == 3 and f"{constant} is not a JSON value" in str(info.value)
    wrangler(project, '{\n  "name": "NaN",\n  "limits": { "cpu_ms": 1e400 }\n}', "wrangler.json")
    assert len(load_env(path)) == 0  # the twin: a large number is a number, as in JSON.parse


TOML_11 = f"""\
vpc_services = [
  {{
    binding = "API",
    service_id = "{API_ID}",
  }},
]
"""


def test_toml_1_1_inline_tables_depend_on_the_reader(project: Path) -> None:
    """Newlines and a trailing comma in an inline table (TOML 1.1): accepted
    where tomllib/tomli parses TOML 1.1 (tomllib from Python 3.15), else a
    ConfigError naming the line."""
    path = wrangler(project, TOML_11)
    assert tomlkit.parse(TOML_11)["vpc_services"][0]["binding"] == "API"  # the editor's reader accepts them
    try:
        _toml.loads(TOML_11)
    except _toml.TOMLDecodeError:
        with pytest.raises(ConfigError, match="invalid TOML") as info:
            load_env(path)
        assert info.value.line == 2
    else:  # pragma: no cover - a TOML 1.1 reader
        assert list(load_env(path)) == ["API"]
        assert parse_document(TOML_11, "w.toml").line_of(("vpc_services", 0, "binding")) == 3


def test_toml_1_1_layout_is_located_by_the_line_finder() -> None:
    """Whatever the reader, the line finder walks multi-line inline tables."""
    document = parse_document("", "w.toml")
    document.text = TOML_11
    assert document.line_of(("vpc_services", 0, "service_id")) == 4


# -- vpc_services entries ------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "field"), [
    ('binding = ""\nservice_id = "x"', "binding"),
    ('binding = "A"\nservice_id = ""', "service_id"),
])
def test_empty_strings_are_refused(project: Path, entry: str, field: str) -> None:
    """Different: wrangler's typeof check lets "" through."""
    with pytest.raises(ConfigError) as info:
        load_env(wrangler(project, f"[[vpc_services]]\n{entry}\n"))
    assert info.value.field == f"vpc_services[0].{field}"


def test_service_id_and_service_binds_by_id_and_warns(project: Path) -> None:
    """Same: wrangler warns that "service" is unexpected and uses service_id."""
    path = wrangler(project, vpc("A") + 'service = "db-api"\n')
    with pytest.warns(ConfigWarning, match=r"wrangler\.toml:4: unexpected field 'service' .*ignored"):
        env = load_env(path)
    assert env.A.service.service_id == API_ID


def test_service_by_name_alone_is_our_extension(project: Path, quiet: None) -> None:
    """Different: wrangler requires service_id; we also bind by name."""
    env = load_env(wrangler(project, '[[vpc_services]]\nbinding = "A"\nservice = "db-api"\n'))
    assert env.A.service.service_id == DB_ID
    with pytest.raises(ConfigError, match='string "service_id" field'):
        load_env(wrangler(project, '[[vpc_services]]\nbinding = "A"\n'))


def test_remote_of_any_type_is_accepted_with_a_warning(project: Path) -> None:
    """Same acceptance (validateVpcServiceBinding does not check remote), plus a warning."""
    path = wrangler(project, vpc("A") + 'remote = "yes"\n')
    with pytest.warns(ConfigWarning, match="remote should be a boolean, got string 'yes'"):
        assert list(load_env(path)) == ["A"]


def test_remote_boolean_is_quiet(project: Path, quiet: None) -> None:
    assert list(load_env(wrangler(project, vpc("A") + "remote = true\n"))) == ["A"]


# -- unknown keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["[[vpc_service]]", "[[vpc-services]]", "[[vpcServices]]", "[[VPC_SERVICES]]"])
def test_a_misspelt_top_level_key_names_vpc_services(project: Path, key: str) -> None:
    path = wrangler(project, f'name = "w"\n{key}\nbinding = "A"\nservice_id = "{API_ID}"\n')
    with pytest.warns(ConfigWarning) as record:
        env = load_env(path)
    assert len(env) == 0
    message = str(record[0].message)
    assert f"{path}:2: unexpected field {key.strip('[]')!r} in the top-level configuration" in message
    assert "did you mean 'vpc_services'?" in message


def test_a_misspelt_key_in_an_environment_warns_too(project: Path) -> None:
    path = wrangler(project, f'[env.dev]\nvpc_service = [{{ binding = "A", service_id = "{API_ID}" }}]\n')
    with pytest.warns(ConfigWarning, match="'vpc_service' in the env.dev configuration.*'vpc_services'"):
        load_env(path, environment="dev")


def test_an_unknown_key_far_from_any_warns_without_a_guess(project: Path) -> None:
    with pytest.warns(ConfigWarning) as record:
        load_env(wrangler(project, 'zzz_custom = 1\n'))
    assert "unexpected field 'zzz_custom'" in str(record[0].message)
    assert "did you mean" not in str(record[0].message)


REAL_WORKER = f"""\
"$schema" = "node_modules/wrangler/config-schema.json"
name = "my-worker"
main = "src/index.ts"
compatibility_date = "2025-09-01"
compatibility_flags = ["nodejs_compat"]
workers_dev = false
routes = [{{ pattern = "api.example.com", custom_domain = true }}]
keep_vars = true
send_metrics = false
upload_source_maps = true
account_id = "0123456789abcdef0123456789abcdef"

[vars]
LOG_LEVEL = "info"

[observability]
enabled = true

[placement]
mode = "smart"

[triggers]
crons = ["0 * * * *"]

[[kv_namespaces]]
binding = "CACHE"
id = "kv"

[[d1_databases]]
binding = "DB_SQL"
database_name = "d"
database_id = "x"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[[durable_objects.bindings]]
name = "ROOMS"
class_name = "Room"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Room"]

[[queues.producers]]
binding = "JOBS"
queue = "jobs"

[ai]
binding = "AI"

[assets]
directory = "./public"
binding = "ASSETS"

[[services]]
binding = "AUTH"
service = "auth-worker"

[secrets]
required = ["TOKEN"]

[[vpc_services]]
binding = "PRIVATE_API"
service_id = "{API_ID}"
remote = true

[[vpc_networks]]
binding = "OFFICE"
tunnel_id = "{TUNNEL}"

[dev]
port = 8787

[env.staging]
name = "my-worker-staging"
routes = []
vars = {{ LOG_LEVEL = "debug" }}
kv_namespaces = [{{ binding = "CACHE", id = "kv2" }}]
vpc_services = [{{ binding = "PRIVATE_API", service_id = "{DB_ID}" }}]
vpc_networks = [{{ binding = "OFFICE", network_id = "cf1:network" }}]
"""


def test_a_real_worker_configuration_loads_without_a_warning(project: Path, quiet: None) -> None:
    path = wrangler(project, REAL_WORKER)
    assert list(load_env(path)) == ["PRIVATE_API", "OFFICE"]  # vpc_networks load as NetworkBindings (issue 12)
    staging = load_env(path, environment="staging")
    assert staging.PRIVATE_API.service.service_id == DB_ID


# -- binding names are unique across kinds ------------------------------------------------


@pytest.mark.parametrize(("other", "field", "kind"), [
    ('[[kv_namespaces]]\nbinding = "API"\nid = "k"\n', "kv_namespaces[0]", "KV Namespace"),
    ('[vars]\nAPI = "x"\n', "vars.API", "Environment Variable"),
    ('[[durable_objects.bindings]]\nname = "API"\nclass_name = "C"\n', "durable_objects.bindings[0]",
     "Durable Object"),
    ('[[queues.producers]]\nbinding = "API"\nqueue = "q"\n', "queues.producers[0]", "Queue"),
    ('[[d1_databases]]\nbinding = "API"\ndatabase_id = "d"\n', "d1_databases[0]", "D1 Database"),
    ('[[r2_buckets]]\nbinding = "API"\nbucket_name = "b"\n', "r2_buckets[0]", "R2 Bucket"),
    ('[[services]]\nbinding = "API"\nservice = "w"\n', "services[0]", "Worker"),
    ('[ai]\nbinding = "API"\n', "ai", "AI"),
    ('[secrets]\nrequired = ["API"]\n', "secrets.required[0]", "Secret"),
    (f'[[vpc_networks]]\nbinding = "API"\ntunnel_id = "{TUNNEL}"\n', "vpc_networks[0]", "VPC Network"),
])
def test_a_name_shared_with_another_binding_kind_fails_naming_both(project: Path, other: str, field: str,
                                                                   kind: str) -> None:
    path = wrangler(project, vpc("API") + "\n" + other)
    with pytest.raises(ConfigError) as info:
        load_env(path)
    message = str(info.value)
    assert "binding name 'API' is used by both" in message
    assert "vpc_services[0] (VPC Service" in message
    assert f"{field} ({kind}" in message
    assert info.value.line is not None


def test_distinct_names_across_kinds_load(project: Path, quiet: None) -> None:
    path = wrangler(project, vpc("API") + '\n[vars]\nAPI_URL = "x"\n[[kv_namespaces]]\nbinding = "KV"\nid = "k"\n')
    assert list(load_env(path)) == ["API"]


def test_only_the_environment_read_is_checked_for_unique_names(project: Path) -> None:
    """As in wrangler (the check runs on the active environment): a clash
    at the top level does not fail an environment that has none."""
    text = (vpc("API") + '[vars]\nAPI = "x"\n\n[env.dev]\n'
            + f'vpc_services = [{{ binding = "API", service_id = "{API_ID}" }}]\n')
    path = wrangler(project, text)
    assert list(load_env(path, environment="dev")) == ["API"]
    with pytest.raises(ConfigError, match="used by both"):
        load_env(path)


def test_two_vpc_services_with_one_name_fail(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"'A' is used more than once \(first defined at line 2\)") as info:
        load_env(wrangler(project, vpc("A") + "\n" + vpc("A", DB_ID)))
    assert info.value.line == 6


# -- vpc_networks ------------------------------------------------------------------------------


def test_vpc_networks_parse_into_plain_data(project: Path, quiet: None) -> None:
    document = parse_document(f"""\
vpc_networks = [
  {{ binding = "OFFICE", tunnel_id = "{TUNNEL}" }},
  {{ binding = "MESH", network_id = "cf1:network", remote = true }},
]
""", "wrangler.toml")
    worker = read_worker(document)
    assert worker.networks == [NetworkSpec("OFFICE", TUNNEL, None, ("vpc_networks", 0)),
                               NetworkSpec("MESH", None, "cf1:network", ("vpc_networks", 1))]
    assert worker.services == [] and worker.environment is None


@pytest.mark.parametrize(("entry", "field", "text"), [
    (f'binding = "N"\ntunnel_id = "{TUNNEL}"\nnetwork_id = "cf1:network"', "network_id", "not both"),
    ('binding = "N"', "tunnel_id", '"tunnel_id" or a "network_id"'),
    ("binding = \"N\"\ntunnel_id = 5", "tunnel_id", "integer 5"),
    ('binding = "N"\nnetwork_id = ""', "network_id", "non-empty string"),
    (f'tunnel_id = "{TUNNEL}"', "binding", 'string "binding" field'),
])
def test_bad_vpc_networks(project: Path, entry: str, field: str, text: str) -> None:
    with pytest.raises(ConfigError, match=text) as info:
        load_env(wrangler(project, f"[[vpc_networks]]\n{entry}\n"))
    assert info.value.field == f"vpc_networks[0].{field}"
    assert info.value.line is not None


def test_vpc_networks_are_not_inherited(project: Path) -> None:
    path = wrangler(project, f'[[vpc_networks]]\nbinding = "N"\ntunnel_id = "{TUNNEL}"\n\n[env.dev]\nname = "d"\n')
    with pytest.warns(ConfigWarning, match='"vpc_networks" exists at the top level, but not on "env.dev"'):
        worker = read_worker(parse_document(path.read_text(), str(path)), "dev")
    assert worker.networks == []


def test_other_binding_kinds_are_not_validated(project: Path, quiet: None) -> None:
    """Different: wrangler would reject this file for its kv_namespaces; we
    read only what vpc_requests uses (names still count for uniqueness)."""
    assert list(load_env(wrangler(project, 'kv_namespaces = "oops"\n' + vpc("API")))) == ["API"]


def test_an_empty_env_table_counts_as_environments(project: Path) -> None:
    """wrangler: ``rawConfig.env`` is set, so an unknown name is an error, not a warning."""
    with pytest.raises(ConfigError, match="no environment 'dev'; defined: none"):
        load_env(wrangler(project, vpc("TOP") + "\n[env]\n"), environment="dev")
