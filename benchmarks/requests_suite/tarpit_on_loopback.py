"""pytest plugin: requests' TARPIT (10.255.255.1, a private address this
machine must never dial) becomes a loopback listener whose accept queue is
full, so connect timeouts are tested on loopback only (both runs)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# BacklogFull lives with our own test servers (tests/servers/).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from servers import BacklogFull  # noqa: E402


@pytest.fixture(autouse=True)
def _tarpit_on_loopback(request, monkeypatch):  # type: ignore[no-untyped-def]
    module = request.module
    if not hasattr(module, "TARPIT"):
        yield
        return
    with BacklogFull() as tarpit:
        monkeypatch.setattr(module, "TARPIT", f"http://127.0.0.1:{tarpit.port}")
        yield
