"""The main job, ``vpc-requests demo``, really runs and shows the contract."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from vpc_requests._cli import demo


def rows(text: str) -> dict[str, list[str]]:
    """The table's rows by example name, split on runs of 2+ spaces."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 7 and cells[0] not in ("example",) and not cells[0].startswith("-"):
            table[cells[0]] = cells
    return table


def ports(text: str) -> tuple[str, str]:
    http = re.search(r"PRIVATE_API -> 127\.0\.0\.1:(\d+)", text)
    https = re.search(r"SECURE_API  -> 127\.0\.0\.1:(\d+)", text)
    assert http and https
    return http.group(1), https.group(1)


def test_demo_shows_what_the_services_saw() -> None:
    out = io.StringIO()
    assert demo.run_demo(out) == 0
    text = out.getvalue()
    table = rows(text)
    http_port, https_port = ports(text)
    assert table["Basic GET"] == ["Basic GET", "GET", "/users", "internal-api.company.local", "-", http_port, "200"]
    assert table["POST with body"][1:4] == ["POST", "/users", "internal-api.company.local"]
    assert table["HTTPS to an IP"] == ["HTTPS to an IP", "GET", "/api/data", "10.0.1.50", "(none)", https_port, "200"]
    assert table["URL port ignored"][3:6] == ["internal-api.company.local:8080", "-", http_port]
    assert table["HTTPS by name"][3:5] == ["internal-api.company.local", "internal-api.company.local"]
    assert table["Wrong cert name"][3] == "(nothing sent)"
    assert table["Wrong cert name"][6] == "tls_certificate_error"


def test_demo_fails_when_a_request_does_not_behave(monkeypatch: pytest.MonkeyPatch) -> None:
    # The failing twin: a certificate without the IP makes the IP example fail,
    # and the demo says so with its exit status.
    monkeypatch.setattr(demo, "NAMES", ("internal-api.company.local",))
    out = io.StringIO()
    assert demo.run_demo(out) == 1
    assert rows(out.getvalue())["HTTPS to an IP"][6] == "tls_certificate_error"


def test_demo_command_as_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vpc_requests", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert rows(done.stdout)["HTTPS to an IP"][4] == "(none)"
