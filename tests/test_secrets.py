"""A tunnel URL's password never appears in anything printable (issue 9,
section 5): not in the error for a malformed URL, not in ``repr``/``str`` of
the objects that hold the URL (binding, adapter, pool manager, pool keys,
dialer, transport), not in a failure through the tunnel, not in log records
at DEBUG, not in what the CLI prints. One redaction,
:func:`vpc_requests._transport.tunnels.redact_url`, is used everywhere.

Every check scans for the password in its raw, percent-encoded and
percent-decoded forms, and the scan has a twin that finds it where it is.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import requests
from servers import ConnectProxy, Socks5Server, closed_port

from vpc_requests import Binding, ConfigError, ProxyError, VPCService, VPCServiceAdapter
from vpc_requests._cli.cli import main
from vpc_requests._config.services_file import read_services
from vpc_requests._transport.connection import Dialer
from vpc_requests._transport.tunnels import describe_transport, parse_tunnel, probe_tunnel, redact_url
from vpc_requests.testing import PrivateService

SECRET = "Pa55-w0rd"  # noqa: S105 - the value every scan looks for
TOKEN = "tok-3141592"  # noqa: S105 - a user name alone, which may be a token
#: the secret as a URL may carry it: raw, and "%61" for its "a"
ENCODED = "P%61" + SECRET[2:]
FORMS = (SECRET, ENCODED, "P%2561" + SECRET[2:])

NAME = "internal-api.company.local"
API_ID = "0199a1b2-0000-4000-8000-000000000001"
TUNNEL_ID = "0e0e0e0e-0000-4000-8000-000000000000"

#: Transport URLs that are not valid, each with the password in it.
MALFORMED = (
    f"http:/ops:{SECRET}@proxy.example:3128",  # one slash
    f"socks5h//ops:{SECRET}@proxy.example",  # no colon
    f"ops:{SECRET}@proxy.example:1080",  # no scheme at all
    f"http:ops:{SECRET}@proxy.example",  # no slashes
    f"http://ops:{SECRET}@[::1",  # unclosed bracket: ValueError in urllib
    f"http://ops:{SECRET}@[not-an-ip]:3128",  # bracketed non-IP: ValueError in urllib
    f"http://ops:{SECRET}@proxy.example:99999",  # port out of range
    f"http://ops:{SECRET}@proxy.example:0",
    f"http://ops:{SECRET}@proxy.example/path",  # a path
    f"http://ops:{SECRET}@proxy.example?q=1",
    f"ftp://ops:{SECRET}@proxy.example",  # unsupported scheme
    f" http://ops:{SECRET}@proxy.example",  # leading space
    f"http://ops:{SECRET}@",  # no host
    f"http://ops:{SECRET}@proxy example",  # space in the host
    f"socks5h://ops:{SECRET}@[fe80::1%25eth0]:1080",  # zone id
    f"http://ops:{ENCODED}@proxy.example/x",  # percent-encoded
    f"http://ops:{SECRET}:{SECRET}@proxy.example/x",  # a colon in the password
    f"http://ops:a@{SECRET}@proxy.example/x",  # an @ in the password
    f"http://{TOKEN}@proxy.example/x",  # a lone user name
)


def leaks(texts: Iterable[object]) -> list[str]:
    """The secrets found in ``texts`` (each taken as ``str`` and ``repr``)."""
    found = []
    for text in texts:
        for shown in (str(text), repr(text)):
            found.extend(s for s in (*FORMS, TOKEN) if s in shown)
    return found


def exception_texts(exc: BaseException) -> list[object]:
    """Everything printable of an exception: str, repr, args, a full
    traceback with its chain, and the same after a pickle round trip."""
    copy = pickle.loads(pickle.dumps(exc))
    return [
        exc, exc.args, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        copy, copy.args, vars(exc),
    ]


def log_texts(caplog: pytest.LogCaptureFixture) -> list[object]:
    formatter = logging.Formatter("%(name)s %(message)s")
    texts: list[object] = []
    for record in caplog.records:
        texts.extend([formatter.format(record), record.args, record.msg])
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    return texts


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_twin_the_scan_finds_each_form_where_it_is() -> None:
    for form in (*FORMS, TOKEN):
        assert form in leaks([f"http://ops:{form}@h"])
    assert leaks(["http://ops:***@h"]) == []


# ------------------------------------------------------------ redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("http://ops:pw@proxy:3128", "http://ops:***@proxy:3128"),
    ("http:/ops:pw@proxy:3128", "http:/ops:***@proxy:3128"),
    ("socks5h//u:pw@h", "socks5h//u:***@h"),
    ("u:pw@h:1080", "u:***@h:1080"),
    ("http://tok@h", "http://***@h"),
    ("http://u:p@ss@h", "http://u:***@h"),
    ("http://u:p/ss@h", "http://u:***@h"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["http://proxy:3128", "socks5h://[::1]:1080", "direct", "not a url"])
def test_twin_redact_url_keeps_a_url_without_userinfo(url: str) -> None:
    assert redact_url(url) == url


# ---------------------------------------------------- malformed URLs


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_tunnel_is_a_config_error_without_the_secret(
    url: str, debug: pytest.LogCaptureFixture
) -> None:
    service = VPCService(ipv4="10.0.1.50", http_port=8080)
    attempts = (
        lambda: parse_tunnel(url),
        lambda: describe_transport(url),
        lambda: probe_tunnel(url, 0.1),
        lambda: Dialer(service, url),
        lambda: VPCServiceAdapter(service, binding="API", tunnel=url),
        lambda: Binding("API", service, tunnel=url),
    )
    for attempt in attempts:
        with pytest.raises(ConfigError) as info:
            attempt()
        assert type(info.value) is ConfigError  # never a bare ValueError
        assert info.value.field == "tunnel"
        assert "***@" in str(info.value)  # it says which URL, redacted
        assert leaks(exception_texts(info.value)) == []
    assert leaks(log_texts(debug)) == []


def test_a_non_string_tunnel_is_not_echoed() -> None:
    for value in (f"http://ops:{SECRET}@h".encode(), [f"http://ops:{SECRET}@h"]):
        with pytest.raises(ConfigError) as info:
            parse_tunnel(value)  # type: ignore[arg-type]
        assert leaks(exception_texts(info.value)) == []


@pytest.mark.parametrize("tunnels", [
    f'[tunnels]\nt = ["http://ops:{SECRET}@h:1"]\n',
    f'[tunnels]\nt = {{ url = "http://ops:{SECRET}@h:1" }}\n',
    f'tunnels = "http://ops:{SECRET}@h:1"\n',
    f'tunnels = ["http://ops:{SECRET}@h:1"]\n',
])
def test_a_services_file_never_echoes_a_tunnel_that_is_not_a_string(tmp_path: Path, tunnels: str) -> None:
    path = tmp_path / "vpc-services.toml"
    path.write_text(tunnels)
    with pytest.raises(ConfigError) as info:
        read_services(path)
    assert "tunnels" in str(info.value)
    assert leaks(exception_texts(info.value)) == []


def test_twin_a_services_file_error_names_the_tunnel_it_refuses(tmp_path: Path) -> None:
    path = tmp_path / "vpc-services.toml"
    path.write_text('[tunnels]\nt = ["x"]\n')
    with pytest.raises(ConfigError, match=r"tunnels\.t.*list \(not a string\)"):
        read_services(path)


# ----------------------------------------------- well-formed URLs in use


@pytest.fixture
def service() -> Iterator[PrivateService]:
    with PrivateService() as server:
        yield server


def _objects(binding: Binding, session: requests.Session) -> list[object]:
    """Every object on the way that holds the tunnel URL."""
    adapter = session.get_adapter(f"http://{NAME}/")
    assert isinstance(adapter, VPCServiceAdapter)
    manager = adapter.poolmanager
    texts: list[object] = [binding, adapter, manager, manager.connection_pool_kw, list(manager.pools.keys())]
    texts.extend(manager.pools.get(key) for key in manager.pools.keys())
    dialer = manager.connection_pool_kw["vpc_dialer"]
    texts.extend([dialer, dialer.transport, describe_transport(dialer.tunnel)])
    return texts


@pytest.mark.parametrize("password", [SECRET, ENCODED])
def test_http_tunnel_with_a_password_works_and_shows_it_nowhere(
    service: PrivateService, debug: pytest.LogCaptureFixture, password: str
) -> None:
    decoded = SECRET
    with ConnectProxy({("127.0.0.1", service.port): ("127.0.0.1", service.port)},
                      credentials=("ops", decoded)) as proxy:
        url = f"http://ops:{password}@127.0.0.1:{proxy.port}"
        binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=service.port), tunnel=url)
        with binding.session() as session:
            assert session.get(f"http://{NAME}/").status_code == 200  # the password was used
            assert "ops:***@" in repr(_objects(binding, session))
            assert leaks(_objects(binding, session)) == []
        binding.close()
    assert leaks(log_texts(debug)) == []
    assert any("ops:***@" in str(text) for text in log_texts(debug))  # the tunnel is logged, redacted


def test_twin_a_rejected_password_fails_and_the_failure_shows_it_nowhere(
    service: PrivateService, debug: pytest.LogCaptureFixture
) -> None:
    with ConnectProxy({("127.0.0.1", service.port): ("127.0.0.1", service.port)},
                      credentials=("ops", "the-right-one")) as proxy:
        url = f"http://ops:{SECRET}@127.0.0.1:{proxy.port}"
        binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=service.port), tunnel=url)
        with binding.session() as session:
            with pytest.raises(ProxyError) as info:
                session.get(f"http://{NAME}/")
            assert "rejected the URL's credentials" in str(info.value)
            assert leaks([*exception_texts(info.value), *_objects(binding, session)]) == []
        binding.close()
    assert leaks(log_texts(debug)) == []


@pytest.mark.parametrize("scheme", ["http", "https", "socks5", "socks5h"])
def test_unreachable_tunnel_failure_shows_no_secret(scheme: str, debug: pytest.LogCaptureFixture) -> None:
    url = f"{scheme}://ops:{SECRET}@127.0.0.1:{closed_port()}"
    binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=8080, https_port=8443), tunnel=url)
    for target in (f"http://{NAME}/", f"https://{NAME}/"):
        with pytest.raises(ProxyError) as info:
            binding.fetch(target, timeout=2)
        assert info.value.code == "connection_refused"
        assert f"{scheme}://ops:***@127.0.0.1:" in str(info.value)
        assert leaks(exception_texts(info.value)) == []
    ok, detail = probe_tunnel(url, 2)
    assert not ok and leaks([detail]) == []
    binding.close()
    assert leaks(log_texts(debug)) == []


def test_socks_rejecting_the_password_shows_no_secret(
    service: PrivateService, debug: pytest.LogCaptureFixture
) -> None:
    with Socks5Server({(NAME, service.port): ("127.0.0.1", service.port)},
                      credentials=("ops", "the-right-one")) as socks:
        url = f"socks5h://ops:{SECRET}@127.0.0.1:{socks.port}"
        binding = Binding("API", VPCService(hostname=NAME, http_port=service.port), tunnel=url)
        with pytest.raises(ProxyError) as info:
            binding.fetch(f"http://{NAME}/")
        assert "username/password were rejected" in str(info.value)
        ok, detail = probe_tunnel(url, 2)
        assert not ok and "rejected" in detail
        assert leaks([*exception_texts(info.value), detail, binding]) == []
        binding.close()
    assert leaks(log_texts(debug)) == []


def test_a_lone_user_name_is_treated_as_a_token(service: PrivateService) -> None:
    with ConnectProxy({("127.0.0.1", service.port): ("127.0.0.1", service.port)}) as proxy:
        url = f"http://{TOKEN}@127.0.0.1:{proxy.port}"
        binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=service.port), tunnel=url)
        with binding.session() as session:
            assert session.get(f"http://{NAME}/").status_code == 200
            assert leaks(_objects(binding, session)) == []
        binding.close()


# ------------------------------------------------------------------- CLI


def _project(folder: Path, tunnel: str, port: int) -> None:
    (folder / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "{API_ID}"\nname = "api"\nhttp_port = {port}\n'
        f'host = {{ ipv4 = "127.0.0.1", network = {{ tunnel_id = "{TUNNEL_ID}" }} }}\n'
        f'\n[tunnels]\n"{TUNNEL_ID}" = "{tunnel}"\n'
    )
    (folder / "wrangler.toml").write_text(f'[[vpc_services]]\nbinding = "API"\nservice_id = "{API_ID}"\n')


COMMANDS = (
    ("bindings",), ("bindings", "--json"), ("check", "--timeout", "2"), ("service", "list"),
    ("service", "get", "api"), ("fetch", "API", f"http://{NAME}/", "--timeout", "2"),
)


@pytest.mark.parametrize("url", [u for u in MALFORMED if '"' not in u and "\\" not in u])
def test_cli_never_prints_a_malformed_tunnels_secret(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    debug: pytest.LogCaptureFixture,
) -> None:
    _project(tmp_path, url, 8080)
    monkeypatch.chdir(tmp_path)
    for command in COMMANDS:
        assert main(list(command)) == 2, command
        out, err = capsys.readouterr()
        assert "vpc-services.toml" in err and "***@" in err
        assert leaks([out, err]) == [], command
    assert leaks(log_texts(debug)) == []


def test_cli_never_prints_a_working_tunnels_secret(
    service: PrivateService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], debug: pytest.LogCaptureFixture,
) -> None:
    with ConnectProxy({("127.0.0.1", service.port): ("127.0.0.1", service.port)},
                      credentials=("ops", SECRET)) as proxy:
        _project(tmp_path, f"http://ops:{SECRET}@127.0.0.1:{proxy.port}", service.port)
        monkeypatch.chdir(tmp_path)
        for command in COMMANDS:
            assert main(list(command)) == 0, (command, capsys.readouterr())
            out, err = capsys.readouterr()
            assert leaks([out, err]) == [], command
    assert leaks(log_texts(debug)) == []


def test_twin_cli_shows_a_down_tunnel_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, f"http://ops:{SECRET}@127.0.0.1:{closed_port()}", 8080)
    monkeypatch.chdir(tmp_path)
    assert main(["fetch", "API", f"http://{NAME}/", "--timeout", "2"]) == 1
    out, err = capsys.readouterr()
    assert "ProxyError: connection_refused" in err and "ops:***@127.0.0.1" in err
    assert leaks([out, err]) == []
    assert main(["check", "--timeout", "2"]) != 0
    out, err = capsys.readouterr()
    assert "ops:***@127.0.0.1" in out + err
    assert leaks([out, err]) == []


def test_cli_as_a_process_prints_no_secret(tmp_path: Path) -> None:
    _project(tmp_path, f"http:/ops:{SECRET}@proxy.example:3128", 8080)
    for command in (("bindings",), ("check",)):
        done = subprocess.run([sys.executable, "-m", "vpc_requests", *command], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert "http:/ops:***@proxy.example:3128" in done.stderr
        assert leaks([done.stdout, done.stderr]) == []
