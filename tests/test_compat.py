"""A requests without the adapter hooks we rely on is refused at import."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import requests.adapters
{patch}
try:
    import vpc_requests
except ImportError as exc:
    print("refused:", exc)
else:
    print("imported")
"""


def run(patch: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(patch=patch)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_old_requests_is_refused_with_a_clear_message() -> None:
    out = run("del requests.adapters.HTTPAdapter.build_connection_pool_key_attributes")
    assert out.startswith("refused: vpc_requests needs requests >= 2.32.3")
    assert "pip install -U 'requests>=2.32.3'" in out


def test_current_requests_is_accepted() -> None:
    assert run("") == "imported\n"


# --- vpc_requests._compat: private names of requests and urllib3, each the
# same as the public way (the test of each is its twin with the public way).


def test_response_headers_equal_requests_own() -> None:
    from requests.structures import CaseInsensitiveDict
    from urllib3 import HTTPHeaderDict

    from vpc_requests._compat import response_headers

    fields = HTTPHeaderDict()
    fields.add("Set-Cookie", "a=1")
    fields.add("set-cookie", "b=2")
    fields.add("Content-Type", "application/json")
    made = response_headers(fields)
    assert type(made) is CaseInsensitiveDict
    assert list(made.items()) == list(CaseInsensitiveDict(fields).items())
    assert made["SET-COOKIE"] == "a=1, b=2"


def test_twin_response_headers_of_a_plain_mapping_take_the_public_way() -> None:
    from vpc_requests._compat import response_headers

    made = response_headers({"X-One": "1"})
    assert made["x-one"] == "1"
    assert "x-two" not in made


def test_header_items_and_copy_equal_the_public_way() -> None:
    from requests.structures import CaseInsensitiveDict

    from vpc_requests._compat import copy_headers, header_items

    headers = CaseInsensitiveDict({"Accept": "*/*", "X-Key": "v"})
    assert list(header_items(headers)) == list(headers.items())
    copy = copy_headers(headers)
    assert copy == headers and copy is not headers
    copy["X-Key"] = "changed"
    assert headers["x-key"] == "v"  # a copy, not a view


def test_twin_header_items_of_a_dict_are_its_items() -> None:
    from vpc_requests._compat import header_items

    assert list(header_items({"a": "1"})) == [("a", "1")]
