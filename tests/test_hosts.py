"""vpc_requests._model.hosts: host:port bracketing and IP-literal checks."""

from __future__ import annotations

import pytest

from vpc_requests._model.hosts import DEFAULT_PORTS, host_port, ip_literal, ip_text, is_ip


@pytest.mark.parametrize(("host", "shown"), [("::1", "[::1]:443"), ("fe80::1%eth0", "[fe80::1%eth0]:443")])
def test_host_port_brackets_ipv6(host: str, shown: str) -> None:
    assert host_port(host, 443) == shown


@pytest.mark.parametrize("host", ["10.0.0.1", "api.internal", "bücher.example"])
def test_host_port_leaves_ipv4_and_names_alone(host: str) -> None:
    # no brackets, and an internationalised name is not IDNA-encoded here
    assert host_port(host, 80) == f"{host}:80"


@pytest.mark.parametrize(("host", "text"), [
    ("10.0.0.1", "10.0.0.1"), ("[::1]", "::1"), ("FE80:0::1%eth0", "fe80::1"), ("2001:db8:0:0::1", "2001:db8::1"),
])
def test_ip_literals_are_recognised_and_canonical(host: str, text: str) -> None:
    assert is_ip(host)
    assert ip_literal(host) is not None
    assert ip_text(host) == text


@pytest.mark.parametrize("host", ["api.internal", "[api.internal]", "10.0.0.256", "::1]", "", "localhost"])
def test_names_are_not_ip_literals(host: str) -> None:
    assert not is_ip(host)
    assert ip_literal(host) is None
    with pytest.raises(ValueError, match="is not an IP address"):
        ip_text(host)


def test_default_ports_are_read_only() -> None:
    assert dict(DEFAULT_PORTS) == {"http": 80, "https": 443}
    with pytest.raises(TypeError):
        DEFAULT_PORTS["ftp"] = 21  # type: ignore[index]
