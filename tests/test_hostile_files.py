"""Hostile configuration files (issue 9 §4): each is a :class:`ConfigError`
naming the file (and the line where it can be found), quickly, never a
traceback or a hang. "Quickly" is not timed here: the inputs are ones that
took minutes (quadratic JSONC stripping) or never returned (a FIFO), so
finishing under pytest-timeout is the check; each has a well-formed twin."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vpc_requests import ConfigError
from vpc_requests._config.config import load_env
from vpc_requests._config.sources import MAX_CONFIG_BYTES, parse_document, read_config_text, strip_jsonc
from vpc_requests._config.wrangler import find_wrangler_file

API_ID = "0199a1b2-0000-4000-8000-000000000001"
SERVICES = f'[[services]]\nservice_id = "{API_ID}"\nname = "api"\nhost = {{ ipv4 = "10.0.1.50" }}\n'
BINDING = f'[[vpc_services]]\nbinding = "API"\nservice_id = "{API_ID}"\n'


def error_of(path: Path | str, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_document(text, str(path))
    return info.value


# -- JSONC comment stripping is linear --------------------------------------------


def test_fifty_thousand_unterminated_comment_openers_after_valid_json() -> None:
    """Minutes with the old regex (each ``/*`` scanned to the end)."""
    exc = error_of("wrangler.jsonc", '{"vpc_services": []}\n' + "/* " * 50_000)
    assert exc.path == "wrangler.jsonc" and exc.line == 2
    assert "unterminated /* comment" in str(exc)


def test_fifty_thousand_comment_openers_inside_an_unterminated_string() -> None:
    exc = error_of("wrangler.jsonc", '{"a": "x\n' + "/* " * 50_000)
    assert exc.line == 1 and "invalid JSON" in str(exc)


def test_fifty_thousand_closed_comments_are_stripped() -> None:
    """The twin: as many well-formed comments and trailing commas load."""
    text = '{"vpc_services": [' + "/* c */ 1, " * 50_000 + "// end\n],}"
    document = parse_document(text, "wrangler.jsonc")
    assert document.data == {"vpc_services": [1] * 50_000}
    assert len(strip_jsonc(text)) == len(text)


# -- nesting and numbers beyond what Python parses ---------------------------------


@pytest.mark.parametrize(("name", "text", "line"), [
    ("wrangler.json", '{"a":\n' + "[" * 100_000, 2),
    ("wrangler.toml", 'name = "w"\na = ' + "[" * 100_000, None),
    ("wrangler.toml", 'name = "w"\na = ' + "{ b = " * 100_000, None),
])
def test_deep_nesting_is_a_config_error(name: str, text: str, line: int | None) -> None:
    exc = error_of(name, text)
    assert exc.path == name and exc.line == line
    assert "nested too deeply" in str(exc)


def test_deep_but_readable_nesting_loads() -> None:
    data = parse_document('{"a": ' + "[" * 50 + "]" * 50 + "}", "w.json").data
    depth = 0
    value = data["a"]
    while value:
        value, depth = value[0], depth + 1
    assert depth == 49


@pytest.mark.parametrize(("name", "text"), [
    ("wrangler.json", '{"s": "' + "1" * 5000 + '",\n"a": ' + "9" * 100_000 + "}"),
    ("wrangler.toml", 's = "' + "1" * 5000 + '"\na = ' + "9" * 100_000 + "\n"),
])
def test_a_hundred_thousand_digit_integer_is_a_config_error(name: str, text: str) -> None:
    exc = error_of(name, text)
    assert exc.path == name and exc.line == 2, str(exc)
    assert "a number with more than" in str(exc)


@pytest.mark.parametrize("name", ["wrangler.json", "wrangler.toml"])
def test_a_long_but_convertible_integer_loads(name: str) -> None:
    digits = "9" * 4000
    text = f'{{"a": {digits}}}' if name.endswith(".json") else f"a = {digits}\n"
    assert parse_document(text, name).data["a"] == int(digits)


# -- files that are not files ---------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "wrangler.toml").write_text(BINDING)
    (tmp_path / "vpc-services.toml").write_text(SERVICES)
    return tmp_path


@pytest.mark.parametrize("which", ["wrangler.toml", "vpc-services.toml"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(project: Path, which: str) -> None:
    (project / which).unlink()
    os.mkfifo(project / which)
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    assert info.value.path == str(project / which)
    assert "not a regular file (a FIFO (named pipe))" in str(info.value)


def test_a_device_is_refused_without_reading_it(project: Path) -> None:
    device = "/dev/zero" if os.path.exists("/dev/zero") else os.devnull
    with pytest.raises(ConfigError, match="not a regular file"):
        load_env(device)
    with pytest.raises(ConfigError, match="not a regular file") as info:
        load_env(project / "wrangler.toml", services=device)
    assert info.value.path == device


def test_a_directory_is_refused(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a regular file \(a directory\)"):
        load_env(project / "wrangler.toml", services=project)


@pytest.mark.parametrize("which", ["wrangler.toml", "vpc-services.toml"])
def test_a_file_over_the_cap_is_refused_before_reading(project: Path, which: str) -> None:
    """A sparse file: refused by its size, so nothing of it is read."""
    with open(project / which, "r+b") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    assert info.value.path == str(project / which)
    assert "larger than the 32 MiB limit" in str(info.value)
    assert str(MAX_CONFIG_BYTES + 1) in str(info.value)


def test_the_regular_files_twin_loads(project: Path) -> None:
    assert load_env(project / "wrangler.toml").API.service.ipv4 == "10.0.1.50"


def test_a_file_just_under_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("a = 1\n" + "#" * (MAX_CONFIG_BYTES - 7) + "\n")
    assert len(read_config_text(path)) == MAX_CONFIG_BYTES


def test_discovery_skips_a_directory_named_like_the_file(tmp_path: Path) -> None:
    (tmp_path / "wrangler.json").mkdir()
    (tmp_path / "wrangler.toml").write_text(BINDING)
    assert find_wrangler_file(tmp_path) == tmp_path / "wrangler.toml"


# -- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(("bom", "name"), [(b"\xff\xfe", "UTF-16 LE"), (b"\xfe\xff", "UTF-16 BE"),
                                           (b"\xff\xfe\x00\x00", "UTF-32 LE")])
def test_other_byte_order_marks_are_refused_as_wrangler_does(tmp_path: Path, bom: bytes, name: str) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_bytes(bom + BINDING.encode("utf-16-le"))
    with pytest.raises(ConfigError) as info:
        load_env(path)
    assert f"{name} byte order mark" in str(info.value) and info.value.line == 1


@pytest.mark.parametrize("name", ["wrangler.toml", "wrangler.jsonc"])
def test_a_utf8_byte_order_mark_is_stripped_as_wrangler_does(project: Path, name: str) -> None:
    path = project / name
    json_text = f'{{"vpc_services": [{{"binding": "API", "service_id": "{API_ID}"}}]}}'
    text = BINDING if name.endswith(".toml") else json_text
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert list(load_env(path)) == ["API"]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    path.write_bytes(b'name = "w"\nx = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_env(path)
    assert info.value.line == 2


def test_crlf_is_read_as_newlines_and_kept_for_editing(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_bytes(b"a = 1\r\nb = 2\r\n")
    assert read_config_text(path) == "a = 1\nb = 2\n"
    assert read_config_text(path, newline="") == "a = 1\r\nb = 2\r\n"


def test_python_recursion_limit_is_left_as_it_was() -> None:
    limit = sys.getrecursionlimit()
    error_of("w.json", "[" * 100_000)
    assert sys.getrecursionlimit() == limit


@pytest.mark.parametrize("url", ["http://u:s3cret@[::1", "socks5://ops:s3cret@[::1:1080"])
def test_a_malformed_ipv6_tunnel_url_is_a_config_error_without_the_password(project: Path, url: str) -> None:
    path = project / "vpc-services.toml"
    path.write_text(SERVICES + f'\n[tunnels]\n"t1" = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_env(project / "wrangler.toml")
    assert info.value.path == str(path) and info.value.line == 7
    assert info.value.field == "tunnels.t1"
    assert "s3cret" not in str(info.value)
