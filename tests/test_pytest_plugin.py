"""Tests for :mod:`vpc_requests.pytest_plugin`: its fixtures, used the way a
user's suite uses them, run by pytest's own ``pytester`` in a subprocess
(which loads tests/loopback_guard like every subprocess of this suite)."""

from __future__ import annotations

import ssl
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from vpc_requests import VPCService
from vpc_requests.pytest_plugin import as_service
from vpc_requests.testing import PrivateService

pytest_plugins = ["pytester"]

#: Whether pytest loads the plugin by itself (``pip install -e .`` with this
#: setup.cfg); if not, the runs ask for it with ``-p`` (asking for it both
#: ways would register it twice).
def _pytest11() -> list[str]:
    found = entry_points()
    if hasattr(found, "select"):  # Python 3.10 and later
        group = found.select(group="pytest11")
    else:  # Python 3.9: a dict of groups
        group = found.get("pytest11", ())  # type: ignore[attr-defined]
    return [ep.value for ep in group]


AUTOLOADED = "vpc_requests.pytest_plugin" in _pytest11()
WITH_PLUGIN = [] if AUTOLOADED else ["-p", "vpc_requests.pytest_plugin"]
WITHOUT_PLUGIN = ["-p", "no:vpc_requests"] if AUTOLOADED else []
COMMON = ["-p", "no:cacheprovider", "-W", "error"]

PLAIN = '''
from vpc_requests import ProxySSLError

WRANGLER = """
    vpc_services = [
      { binding = "API", service_id = "api" },
    ]
"""


def test_host_comes_from_the_url(vpc_env, vpc_private_service):
    env = vpc_env(WRANGLER, services={"api": vpc_private_service})
    assert env.API.fetch("http://internal-api.company.local/users").status_code == 200
    seen = vpc_private_service.seen[0]
    assert (seen.host, seen.target) == ("internal-api.company.local", "/users")


def test_twin_asserts_the_wrong_host(vpc_env, vpc_private_service):
    env = vpc_env(WRANGLER, services={"api": vpc_private_service})
    env.API.fetch("http://internal-api.company.local/users")
    assert vpc_private_service.seen[0].host == "127.0.0.1"
'''

TLS = '''
import pytest

from vpc_requests import ProxySSLError

JSONC = """
{
  // by the service's name, in an environment
  "env": {"staging": {"vpc_services": [{"binding": "SECURE", "service": "secure"}]}}
}
"""


def test_sni_and_host_over_tls(vpc_env, vpc_private_tls_service, vpc_ca):
    env = vpc_env(JSONC, services={"secure": vpc_private_tls_service}, environment="staging")
    response = env.SECURE.fetch("https://internal-api.company.local/x", verify=vpc_private_tls_service.ca_path)
    assert response.json()["sni"] == "internal-api.company.local"
    assert vpc_private_tls_service.ca is vpc_ca


def test_a_name_the_certificate_lacks_is_refused(vpc_env, vpc_private_tls_service):
    env = vpc_env(JSONC, services={"secure": vpc_private_tls_service}, environment="staging")
    with pytest.raises(ProxySSLError) as refused:
        env.SECURE.fetch("https://elsewhere.company.local/x", verify=vpc_private_tls_service.ca_path)
    assert refused.value.code == "tls_certificate_error"
    assert vpc_private_tls_service.seen == []
'''


def test_fixtures_pass_and_the_wrong_host_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest_subprocess(*COMMON, *WITH_PLUGIN)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*test_twin_asserts_the_wrong_host*",
        "*AssertionError: assert 'internal-api.company.local' == '127.0.0.1'*",
    ])


def test_tls_fixtures_and_a_jsonc_snippet_with_an_environment(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tls=TLS)
    result = pytester.runpytest_subprocess(*COMMON, *WITH_PLUGIN)
    result.assert_outcomes(passed=2)


def test_without_the_plugin_the_fixtures_are_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest_subprocess(*COMMON, *WITHOUT_PLUGIN)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'vpc_env' not found*"])


# ------------------------------------------------- the services it writes


def test_a_private_service_becomes_its_loopback_address_and_port() -> None:
    plain = PrivateService(port=8080)
    assert as_service("api", plain) == VPCService(service_id="api", name="api", ipv4="127.0.0.1", http_port=8080)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls = PrivateService(tls=True, host="::1", port=8443, ssl_context=context)
    assert as_service("db", tls) == VPCService(service_id="db", name="db", ipv6="::1", https_port=8443)


def test_a_vpc_service_takes_the_key_as_its_id() -> None:
    given = VPCService(hostname="db.internal", http_port=5000, name="database")
    assert as_service("db", given) == given.replace(service_id="db")
    assert as_service("db", VPCService(ipv4="127.0.0.1")).name == "db"


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match=r"services\['api'\] should be a PrivateService or a VPCService, not str"):
        as_service("api", "http://127.0.0.1:8080")  # type: ignore[arg-type]


def test_loading_the_plugin_imports_neither_h11_nor_trustme() -> None:
    # Every pytest run of every user loads it: the fixtures import them when used.
    check = "import sys, {0}; print(sorted({{'h11', 'trustme'}} & set(sys.modules)))"
    plugin = subprocess.run([sys.executable, "-c", check.format("vpc_requests.pytest_plugin")],
                            check=True, capture_output=True, text=True, timeout=60)
    assert plugin.stdout.strip() == "[]"
    # the twin: the private services themselves do need h11
    testing = subprocess.run([sys.executable, "-c", check.format("vpc_requests.testing")],
                             check=True, capture_output=True, text=True, timeout=60)
    assert testing.stdout.strip() == "['h11']"
