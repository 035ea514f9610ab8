"""Every example in examples/ runs and shows what it claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Each example with a line its output must contain. The batch examples are
# run (with their own checks) by tests/test_distributed.py.
EXPECTED = {
    "basic_get.py": "Host internal-api.company.local, on port",
    "post_with_body.py": "status 201",
    "https_ip.py": "SNI (none: IP literal)",
    "legacy_script.py": "mount(): [200, 200]",
    "tcp_forward.py": "driver got: order 2: 1 item, 9.50",
}


def test_every_example_is_covered() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.py")}
    covered = set(EXPECTED) | {"batch_job.py", "dask_batch.py"}
    assert on_disk <= covered, f"examples without a test: {sorted(on_disk - covered)}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[name] in done.stdout
    assert "Traceback" not in done.stderr
