"""Tests for ``service pull`` and ``service diff`` (:mod:`vpc_requests._config.pull`,
:func:`vpc_requests._config.services_file.replace_services`): the real ``cloudflare``
SDK against a loopback stand-in of the API (:mod:`api_server`), found through
``CLOUDFLARE_BASE_URL`` as the SDK reads it. Every failure leaves the services
file byte-identical, and the token appears nowhere."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_server import CloudflareAPI, Fault, envelope_error
from servers import closed_port

from vpc_requests import VPCService
from vpc_requests._cli.cli import main
from vpc_requests._config.pull import (
    CloudflareAPIError,
    MissingExtraError,
    diff_services,
    fetch_services,
    make_client,
    plan_changes,
    pull_services,
    resolve_account_id,
)
from vpc_requests._config.services_file import read_services, replace_services
from vpc_requests._errors import ConfigError

ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "tok-Zq8vW3xY9pL2mN7r"  # distinctive, so a leak anywhere is found
TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
API_ID, DB_ID, OLD_ID, NEW_ID, V6_ID = (f"0199a1b2-0000-4000-8000-00000000000{i}" for i in range(1, 6))
STAMP = "2025-06-01T10:00:00Z"


def api_object(service_id: str, name: str, host: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A service as ``GET .../connectivity/directory/services`` returns it
    (the SDK's ``InfraHTTPServiceConfig``: every field the API sends)."""
    return {"service_id": service_id, "type": "http", "name": name, "host": host,
            "created_at": STAMP, "updated_at": STAMP, **fields}


def hostname_host(hostname: str, *resolvers: str) -> dict[str, Any]:
    network: dict[str, Any] = {"tunnel_id": TUNNEL}
    if resolvers:
        network["resolver_ips"] = list(resolvers)
    return {"hostname": hostname, "resolver_network": network}


# The account: a hostname service with resolvers, an IPv4 service on 8080
# with verify_ca, a dual-stack one: five services make three pages of two.
ACCOUNT_SERVICES = [
    api_object(API_ID, "internal-api", hostname_host("internal-api.company.local", "10.0.0.53"),
               https_port=443, tls_settings={"cert_verification_mode": "verify_full"}),
    api_object(DB_ID, "db-api", {"ipv4": "10.0.1.50", "network": {"tunnel_id": TUNNEL}}, http_port=8080,
               tls_settings={"cert_verification_mode": "verify_ca"}),
    api_object(NEW_ID, "reports", hostname_host("reports.company.local"), http_port=80, https_port=8443),
    api_object(V6_ID, "dual", {"ipv4": "10.0.1.51", "ipv6": "fd00::51", "network": {"tunnel_id": TUNNEL}}),
    api_object("0199a1b2-0000-4000-8000-000000000006", "metrics", hostname_host("metrics.company.local"),
               http_port=9090, future_field={"the API": "may add fields"}),
]

# The local file: internal-api as the account has it, db-api outdated (port
# 80), a service the account no longer has, comments and [tunnels] to keep.
LOCAL = f"""\
# The account's VPC services (keep this comment).

# The main API.
[[services]]
service_id = "{API_ID}"  # from the dashboard
type = "http"
name = "internal-api"
https_port = 443
tls_settings = {{ cert_verification_mode = "verify_full" }}
created_at = "{STAMP}"
updated_at = "{STAMP}"
[services.host]
hostname = "internal-api.company.local"
resolver_network = {{ tunnel_id = "{TUNNEL}", resolver_ips = ["10.0.0.53"] }}

# The database API.
[[services]]
service_id = "{DB_ID}"
type = "http"
name = "db-api"
http_port = 80   # the port (keep this comment)
host = {{ ipv4 = "10.0.1.50", network = {{ tunnel_id = "{TUNNEL}" }} }}
created_at = "{STAMP}"
updated_at = "2025-01-01T00:00:00Z"

# Retired last month.
[[services]]
service_id = "{OLD_ID}"
name = "legacy"
host = {{ hostname = "legacy.company.local" }}

# How this machine reaches each tunnel.
[tunnels]
"{TUNNEL}" = "socks5h://bastion.internal:1080"
"""


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareAPI]:
    """The stand-in API with :data:`ACCOUNT_SERVICES`, and the environment
    the SDK and the CLI read: base URL, token, no account id."""
    with CloudflareAPI(ACCOUNT_SERVICES, account_id=ACCOUNT, token=TOKEN) as server:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", server.base_url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL",
                     "CLOUDFLARE_API_USER_SERVICE_KEY", "CLOUDFLARE_CUSTOM_HEADERS"):
            monkeypatch.delenv(name, raising=False)
        yield server


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``vpc-services.toml`` holding :data:`LOCAL`, in the current directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "vpc-services.toml"
    path.write_bytes(LOCAL.encode())
    return path


def run(*argv: str) -> int:
    return main(list(argv))


def account_services() -> list[VPCService]:
    return [VPCService.from_api(obj) for obj in ACCOUNT_SERVICES]


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text


# -- fetching through the SDK ---------------------------------------------------------


def test_fetch_reads_every_page_with_the_token(api: CloudflareAPI) -> None:
    services = fetch_services(ACCOUNT)
    assert services == account_services()
    assert [s.to_api() for s in services][:4] == ACCOUNT_SERVICES[:4]  # as the API sent them
    assert api.pages_served() == ["1", "2", "3", "4"]  # 2 + 2 + 1, then the empty page that ends it
    assert {seen.authorization for seen in api.seen} == {f"Bearer {TOKEN}"}
    assert {seen.path for seen in api.seen} == {
        f"/client/v4/accounts/{ACCOUNT}/connectivity/directory/services"}


def test_the_token_alone_authenticates(api: CloudflareAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK would send a global key from the environment instead of the token.
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "ops@example.com")
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "global-key")
    assert fetch_services(ACCOUNT) == account_services()
    for seen in api.seen:
        assert seen.authorization == f"Bearer {TOKEN}"
        assert "x-auth-email" not in seen.headers and "x-auth-key" not in seen.headers


def test_fetch_with_a_wrong_token_quotes_the_api(api: CloudflareAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-token")
    with pytest.raises(CloudflareAPIError) as caught:
        fetch_services(ACCOUNT)
    assert caught.value.status == 403
    assert "Authentication error (code 10000)" in str(caught.value)
    assert "CLOUDFLARE_API_TOKEN" in str(caught.value)
    assert len(api.seen) == 1  # a 403 is not retried


def test_an_unknown_account_is_named(api: CloudflareAPI) -> None:
    with pytest.raises(CloudflareAPIError, match="answered 404: Could not route .* check the account id 'nope'"):
        fetch_services("nope")


def test_a_5xx_is_retried_by_the_sdk(api: CloudflareAPI) -> None:
    # Retry-After-Ms is the SDK's own knob for the wait: short, and nothing faked.
    api.faults.append(Fault(503, envelope_error(10001, "Service unavailable"), {"retry-after-ms": "1"}))
    assert fetch_services(ACCOUNT) == account_services()
    assert [seen.status for seen in api.seen][:2] == [503, 200]
    assert api.pages_served()[:2] == ["1", "1"]  # the same page, asked again


def test_a_5xx_that_lasts_is_an_error_after_the_retries(api: CloudflareAPI) -> None:
    for _ in range(2):
        api.faults.append(Fault(500, envelope_error(10002, "Internal error"), {"retry-after-ms": "1"}))
    with make_client(max_retries=1) as client, pytest.raises(CloudflareAPIError) as caught:
        fetch_services(ACCOUNT, client=client)
    assert caught.value.status == 500
    assert str(caught.value) == ("the Cloudflare API answered 500: Internal error (code 10002); "
                                 "try again later")
    assert [seen.status for seen in api.seen] == [500, 500]  # the first try and one retry


def test_an_unreachable_api_is_one_clear_error(api: CloudflareAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{port}/client/v4")
    with make_client(max_retries=0) as client, pytest.raises(CloudflareAPIError) as caught:
        fetch_services(ACCOUNT, client=client)
    assert caught.value.status is None
    assert f"cannot reach the Cloudflare API at http://127.0.0.1:{port}/client/v4/" in str(caught.value)
    assert api.seen == []


def test_a_missing_token_is_named_before_any_request(api: CloudflareAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(CloudflareAPIError, match="CLOUDFLARE_API_TOKEN is not set"):
        fetch_services(ACCOUNT)
    assert api.seen == []


def test_a_service_that_cannot_load_is_named(api: CloudflareAPI) -> None:
    api.services.append(api_object("bad-1", "broken", {"hostname": "https://x.company.local",
                                                       "resolver_network": {"tunnel_id": TUNNEL}}))
    with pytest.raises(ConfigError) as caught:
        fetch_services(ACCOUNT)
    assert "the account's service broken (bad-1) cannot be loaded at host.hostname" in str(caught.value)
    assert "contains a URL scheme" in str(caught.value)


# -- the account id --------------------------------------------------------------------


def test_account_id_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrangler = tmp_path / "wrangler.toml"
    wrangler.write_text('account_id = "from-file"\n[env.staging]\naccount_id = "from-staging"\n[env.dev]\n')
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    assert resolve_account_id(None, wrangler_file=wrangler) == "from-file"
    assert resolve_account_id(None, wrangler_file=wrangler, environment="staging") == "from-staging"
    assert resolve_account_id(None, wrangler_file=wrangler, environment="dev") == "from-file"  # inherited
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "from-env")
    assert resolve_account_id(None, wrangler_file=wrangler) == "from-env"
    assert resolve_account_id("given", wrangler_file=wrangler) == "given"


def test_no_account_id_lists_the_three_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    (tmp_path / "wrangler.toml").write_text('name = "w"\n')
    with pytest.raises(ConfigError, match="give --account-id ID, set CLOUDFLARE_ACCOUNT_ID, or put account_id"):
        resolve_account_id(None, wrangler_file=tmp_path / "wrangler.toml")
    (tmp_path / "wrangler.json").write_text('{"account_id": 7}')
    with pytest.raises(ConfigError, match=r"wrangler.json:1: account_id: must be a non-empty string, got 7"):
        resolve_account_id(None, wrangler_file=tmp_path / "wrangler.json")


# -- replace_services: the edit ------------------------------------------------------------


def test_replace_keeps_comments_tunnels_and_order(local: Path) -> None:
    before = replace_services(local, account_services())
    assert list(before.services) == [API_ID, DB_ID, OLD_ID]
    text = local.read_text()
    after = read_services(local)
    assert list(after.services) == [API_ID, DB_ID, NEW_ID, V6_ID, "0199a1b2-0000-4000-8000-000000000006"]
    assert list(after.services.values()) == account_services()
    assert after.tunnels == {TUNNEL: "socks5h://bastion.internal:1080"}
    for kept in ("# The account's VPC services (keep this comment).", "# The main API.",
                 f'service_id = "{API_ID}"  # from the dashboard', "# The database API.",
                 "http_port = 8080   # the port (keep this comment)", "# How this machine reaches each tunnel."):
        assert kept in text
    assert "legacy" not in text and "# Retired last month." not in text
    # new tables go after the last service, before [tunnels] and its comment
    assert text.index('name = "db-api"') < text.index('name = "reports"') < text.index('name = "metrics"')
    assert text.index('name = "metrics"') < text.index("# How this machine reaches each tunnel.")


def test_replace_refuses_a_broken_file_and_leaves_it(local: Path) -> None:
    local.write_bytes(LOCAL.encode().replace(b"http_port = 80 ", b"http_port = 0 "))
    original = local.read_bytes()
    with pytest.raises(ConfigError, match="http_port"):
        replace_services(local, account_services())
    assert local.read_bytes() == original


def test_replace_writes_nothing_when_nothing_changed(local: Path) -> None:
    replace_services(local, account_services())
    text, stat = local.read_bytes(), local.stat()
    replace_services(local, account_services())
    assert local.read_bytes() == text
    assert local.stat().st_ino == stat.st_ino  # not even rewritten with the same text


def test_replace_into_a_missing_file_and_to_empty(tmp_path: Path) -> None:
    path = tmp_path / "vpc-services.toml"
    replace_services(path, account_services())
    assert list(read_services(path).services.values()) == account_services()
    assert path.read_text().startswith("# VPC Services for vpc_requests")
    replace_services(path, [])
    assert read_services(path).services == {}


def test_replace_refuses_services_without_or_with_twice_an_id(tmp_path: Path) -> None:
    path = tmp_path / "vpc-services.toml"
    with pytest.raises(ConfigError, match="needs a service_id"):
        replace_services(path, [VPCService(hostname="a.local")])
    twice = VPCService(hostname="a.local", service_id="x")
    with pytest.raises(ConfigError, match="'x' is given more than once"):
        replace_services(path, [twice, twice])
    assert not path.exists()


def test_replace_a_json_file_keeps_its_shape(tmp_path: Path) -> None:
    path = tmp_path / "services.json"
    old = api_object(OLD_ID, "legacy", hostname_host("legacy.company.local"))
    path.write_text(json.dumps({"success": True, "result": [ACCOUNT_SERVICES[1] | {"http_port": 80}, old],
                                "result_info": {"count": 2, "total_count": 2}}))
    replace_services(path, account_services())
    data = json.loads(path.read_text())
    assert data["result"] == [ACCOUNT_SERVICES[1], *ACCOUNT_SERVICES[:1], *ACCOUNT_SERVICES[2:4],
                              {k: v for k, v in ACCOUNT_SERVICES[4].items() if k != "future_field"}]
    assert data["result_info"] == {"count": 5, "total_count": 5}


def test_replace_a_json_file_with_comments_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "services.jsonc"
    path.write_text("// hand-written\n[]\n")
    with pytest.raises(ConfigError, match="cannot edit a JSON services file that has comments"):
        replace_services(path, account_services())
    assert path.read_text() == "// hand-written\n[]\n"


# -- the plan ------------------------------------------------------------------------------


def test_plan_lists_create_update_delete() -> None:
    local = read_services_text(LOCAL)
    plan = plan_changes(local, account_services())
    assert [(c.action, c.service.service_id) for c in plan.changes] == [
        ("update", DB_ID), ("delete", OLD_ID), ("create", NEW_ID), ("create", V6_ID),
        ("create", "0199a1b2-0000-4000-8000-000000000006")]
    update = plan.changes[0]
    assert update.fields() == [("http_port", 80, 8080),
                               ("tls_settings.cert_verification_mode", None, "verify_ca"),
                               ("updated_at", "2025-01-01T00:00:00Z", STAMP)]
    assert update.describe() == (f"~ db-api ({DB_ID}): http_port 80 -> 8080, tls_settings.cert_verification_mode "
                                 f"(none) -> 'verify_ca', updated_at '2025-01-01T00:00:00Z' -> '{STAMP}'")
    assert plan.summary() == "3 to create, 1 to update, 1 to delete"


def test_plan_of_equal_sides_is_empty() -> None:
    services = account_services()
    plan = plan_changes({s.service_id: s for s in services if s.service_id}, services)
    assert plan.changes == ()
    assert plan.summary() == "0 to create, 0 to update, 0 to delete"


def read_services_text(text: str) -> dict[str, VPCService]:
    return {key: VPCService.from_api(obj) for key, obj in
            ((obj["service_id"], obj) for obj in _toml_services(text))}


def _toml_services(text: str) -> list[dict[str, Any]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the package's own dependency before 3.11
        import tomli as tomllib

    return list(tomllib.loads(text)["services"])


# -- pull_services / diff_services -----------------------------------------------------------


def test_pull_then_diff_is_empty(api: CloudflareAPI, local: Path) -> None:
    assert diff_services(local, ACCOUNT).summary() == "3 to create, 1 to update, 1 to delete"
    plan = pull_services(local, ACCOUNT)
    assert plan.summary() == "3 to create, 1 to update, 1 to delete"
    assert diff_services(local, ACCOUNT).changes == ()


def test_pull_dry_run_writes_nothing(api: CloudflareAPI, local: Path) -> None:
    plan = pull_services(local, ACCOUNT, dry_run=True)
    assert plan.summary() == "3 to create, 1 to update, 1 to delete"
    assert local.read_bytes() == LOCAL.encode()


# -- the command line ------------------------------------------------------------------------


def test_cli_pull(api: CloudflareAPI, local: Path, capsys: pytest.CaptureFixture[str],
                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert run("service", "pull", "--account-id", ACCOUNT) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"~ db-api ({DB_ID}): http_port 80 -> 8080, tls_settings.cert_verification_mode (none) -> 'verify_ca', "
        f"updated_at '2025-01-01T00:00:00Z' -> '{STAMP}'",
        f"- legacy ({OLD_ID})",
        f"+ reports ({NEW_ID})",
        f"+ dual ({V6_ID})",
        "+ metrics (0199a1b2-0000-4000-8000-000000000006)",
        f"Pulled account {ACCOUNT} into vpc-services.toml: 3 created, 1 updated, 1 deleted",
    ]
    assert err == ""
    assert list(read_services(local).services.values()) == account_services()
    assert_no_token(out, err, caplog.text, local.read_text())
    assert run("service", "pull", "--account-id", ACCOUNT) == 0  # again: nothing to do
    assert capsys.readouterr().out == f"vpc-services.toml already holds the 5 services of account {ACCOUNT}\n"


def test_cli_pull_with_a_wrong_token_leaves_the_file(api: CloudflareAPI, local: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-" + TOKEN)
    assert run("service", "pull", "--account-id", ACCOUNT) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"vpc-requests: error: the Cloudflare API answered 403: Authentication error (code 10000); "
                   f"check that CLOUDFLARE_API_TOKEN is valid and may read the Connectivity Directory of "
                   f"account {ACCOUNT}\n")
    assert local.read_bytes() == LOCAL.encode()
    assert_no_token(out, err, caplog.text)


def test_cli_an_api_message_quoting_the_token_is_redacted(api: CloudflareAPI, local: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    api.faults.append(Fault(400, envelope_error(6003, f"Invalid request headers: token {TOKEN} malformed")))
    assert run("service", "diff", "--account-id", ACCOUNT) == 2
    err = capsys.readouterr().err
    assert "Invalid request headers: token *** malformed (code 6003)" in err
    assert_no_token(err)


def test_cli_pull_dry_run(api: CloudflareAPI, local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("service", "pull", "--dry-run", "--account-id", ACCOUNT) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"- legacy ({OLD_ID})"
    assert out[-1] == "dry run: 3 to create, 1 to update, 1 to delete in vpc-services.toml; nothing written"
    assert local.read_bytes() == LOCAL.encode()


def test_cli_pull_keeps_a_certificates_table(api: CloudflareAPI, local: Path) -> None:
    table = '\n[certificates]\n"ca-1" = { ca = "certs/ca.pem" }  # the CA\n'
    local.write_text(LOCAL + table)
    assert run("service", "pull", "--account-id", ACCOUNT) == 0
    assert table in local.read_text()


def test_cli_pull_a_service_that_cannot_load_leaves_the_file(api: CloudflareAPI, local: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    api.services.append(api_object("bad-1", "broken", {"ipv4": "10.0.0.256", "network": {"tunnel_id": TUNNEL}}))
    assert run("service", "pull", "--account-id", ACCOUNT) == 2
    err = capsys.readouterr().err
    assert "the account's service broken (bad-1) cannot be loaded at host.ipv4" in err
    assert local.read_bytes() == LOCAL.encode()


def test_cli_account_id_from_the_wrangler_file(api: CloudflareAPI, local: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    Path("wrangler.toml").write_text(f'name = "w"\naccount_id = "{ACCOUNT}"\n')
    assert run("service", "diff") == 1
    assert capsys.readouterr().out.splitlines()[:2] == ["--- vpc-services.toml", f"+++ account {ACCOUNT}"]


def test_cli_account_id_from_the_environment(api: CloudflareAPI, local: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    assert run("service", "pull") == 0
    assert run("service", "diff") == 0


def test_cli_without_an_account_id(api: CloudflareAPI, local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("service", "pull") == 2
    assert "no account id: give --account-id ID" in capsys.readouterr().err
    assert api.seen == []


def test_cli_diff_exit_status(api: CloudflareAPI, local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("service", "diff", "--account-id", ACCOUNT) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "--- vpc-services.toml"
    assert out[1] == f"+++ account {ACCOUNT}"
    assert out[2].startswith(f"~ db-api ({DB_ID}): http_port 80 -> 8080")
    assert out[3:] == [f"- legacy ({OLD_ID})", f"+ reports ({NEW_ID})", f"+ dual ({V6_ID})",
                       "+ metrics (0199a1b2-0000-4000-8000-000000000006)"]
    assert local.read_bytes() == LOCAL.encode()
    assert run("service", "pull", "--account-id", ACCOUNT) == 0
    capsys.readouterr()
    assert run("service", "diff", "--account-id", ACCOUNT) == 0
    assert capsys.readouterr().out == ""


def test_cli_missing_extra_says_what_to_install(local: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setitem(sys.modules, "cloudflare", None)  # import cloudflare -> ImportError
    with pytest.raises(MissingExtraError):
        make_client()
    assert run("service", "pull", "--account-id", ACCOUNT) == 2
    assert capsys.readouterr().err == (
        "vpc-requests: error: service pull and service diff need the Cloudflare SDK, which is not installed; "
        "run: pip install 'vpc_requests[cloudflare]'\n")
    assert local.read_bytes() == LOCAL.encode()


def test_pull_a_tcp_service(api: CloudflareAPI, local: Path) -> None:
    tcp = {"service_id": "0199a1b2-0000-4000-8000-000000000007", "type": "tcp", "name": "orders-db",
           "tcp_port": 5432, "app_protocol": "postgresql",
           "host": hostname_host("orders-db.company.local"), "created_at": STAMP, "updated_at": STAMP}
    api.services.append(tcp)
    assert run("service", "pull", "--account-id", ACCOUNT) == 0
    assert read_services(local).services[tcp["service_id"]].to_api() == tcp
    assert run("service", "diff", "--account-id", ACCOUNT) == 0
