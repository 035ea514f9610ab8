"""How long :func:`vpc_requests.load_env` takes for a large configuration:
N services and N bindings (default 1,000), in TOML and in JSONC.

Run: ``python benchmarks/bench_config.py [N] [ROUNDS]``. Prints the median
load time per format, and the share of it spent parsing the files.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path

from vpc_requests._config.config import load_env
from vpc_requests._config.wrangler import strip_jsonc


def service_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def write_files(folder: Path, count: int) -> None:
    """``wrangler.toml``, ``wrangler.jsonc`` and ``vpc-services.toml`` with
    ``count`` services (hostname and IP ones alternating) and bindings."""
    services = []
    for i in range(count):
        services.append("[[services]]")
        services.append(f'service_id = "{service_id(i)}"')
        services.append(f'name = "service-{i}"')
        services.append('type = "http"')
        if i % 2:
            services.append(f"http_port = {8000 + i % 1000}")
            services.append(f'host = {{ ipv4 = "10.0.{i // 250 % 256}.{i % 250 + 1}", '
                            f'network = {{ tunnel_id = "tunnel-{i % 10}" }} }}')
        else:
            services.append(f'host = {{ hostname = "api-{i}.company.local", '
                            f'resolver_network = {{ tunnel_id = "tunnel-{i % 10}" }} }}')
        services.append("")
    services.append("[tunnels]")
    services.extend(f'tunnel-{t} = "direct"' for t in range(10))
    (folder / "vpc-services.toml").write_text("\n".join(services) + "\n")
    toml = ['name = "big-worker"', ""]
    for i in range(count):
        toml += ["[[vpc_services]]", f'binding = "API_{i}"', f'service_id = "{service_id(i)}"', ""]
    (folder / "wrangler.toml").write_text("\n".join(toml))
    entries = ",\n".join(
        f'    // binding {i}\n    {{ "binding": "API_{i}", "service_id": "{service_id(i)}" }}'
        for i in range(count))
    (folder / "wrangler.jsonc").write_text(
        '{\n  "name": "big-worker", // https://example.invalid/not-a-comment-in-a-string\n'
        f'  "vpc_services": [\n{entries},\n  ],\n}}\n')


def median_seconds(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(count: int = 1000, rounds: int = 7) -> None:
    with tempfile.TemporaryDirectory() as name, warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = Path(name)
        write_files(folder, count)
        services = folder / "vpc-services.toml"
        parse = median_seconds(lambda: tomllib.loads(services.read_text()), rounds)
        print(f"{count} services + {count} bindings, median of {rounds} rounds")
        print(f"  parse vpc-services.toml alone (tomllib):  {parse * 1000:7.1f} ms")
        for wrangler in ("wrangler.toml", "wrangler.jsonc"):
            path = folder / wrangler
            env = load_env(path)
            assert len(env) == count, len(env)
            seconds = median_seconds(functools.partial(load_env, path), rounds)
            print(f"  load_env({wrangler}):{' ' * (16 - len(wrangler))}{seconds * 1000:7.1f} ms")
        text = (folder / "wrangler.jsonc").read_text()
        jsonc = median_seconds(lambda: json.loads(strip_jsonc(text)), rounds)
        print(f"  strip + parse wrangler.jsonc alone:       {jsonc * 1000:7.1f} ms")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
