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
