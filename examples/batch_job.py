"""A batch job through a VPC binding: fetch many items from a private service
on a thread pool, with a progress bar, as a Worker would with
``env.INVENTORY.fetch()``.

The job reads its binding the way wrangler does: ``wrangler.toml`` names the
binding, ``vpc-services.toml`` describes the service. To be runnable anywhere,
this example writes both files into a temporary directory, pointing at a
loopback service it starts; a real job passes its own files to ``load_env``
and its service is the real one.

Run: ``python examples/batch_job.py [--items 1000] [--concurrency 8]``
(``pip install 'vpc_requests[progress]'`` for a tqdm bar; without it a plain
progress line goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import vpc_requests
from vpc_requests.testing import PrivateService, Reply, Seen

SERVICE_ID = "0191dfd2-221b-7b5e-a4d8-7f3c05a0b1a1"
WRANGLER = f"""\
name = "inventory-worker"
main = "src/index.js"

[[vpc_services]]
binding = "INVENTORY"
service_id = "{SERVICE_ID}"
"""
SERVICES = """\
[[services]]
service_id = "{service_id}"
name = "inventory-api"
type = "http"
http_port = {port}
host = {{ ipv4 = "127.0.0.1", network = {{ tunnel_id = "office-tunnel" }} }}

[tunnels]
office-tunnel = "direct"   # this machine is inside the private network
"""


def inventory(seen: Seen) -> Reply:
    """The private service: ``GET /items/<id>`` answers the item."""
    item_id = int(seen.target.rsplit("/", 1)[1])
    return Reply.json({"id": item_id, "name": f"item-{item_id}", "host": seen.host})


@contextlib.contextmanager
def private_inventory() -> Iterator[tuple[vpc_requests.Env, PrivateService]]:
    """A running loopback service and the ``Env`` whose ``INVENTORY``
    binding reaches it, loaded from a wrangler.toml and a vpc-services.toml."""
    with PrivateService(handler=inventory, name="inventory") as service, \
            tempfile.TemporaryDirectory() as folder:
        Path(folder, "wrangler.toml").write_text(WRANGLER)
        Path(folder, "vpc-services.toml").write_text(
            SERVICES.format(service_id=SERVICE_ID, port=service.port))
        env = vpc_requests.load_env(Path(folder, "wrangler.toml"))
        yield env, service


def item_urls(count: int) -> Iterator[str]:
    """The work: a generator, so a job of millions of items stays small."""
    for item_id in range(count):
        yield f"http://inventory.internal.company.local/items/{item_id}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    with private_inventory() as (env, service):
        fetched = failed = id_sum = 0
        for result in env.INVENTORY.fetch_many(item_urls(args.items), concurrency=args.concurrency,
                                               progress=True, timeout=30):
            if isinstance(result, Exception):
                failed += 1
                print(f"failed: {result}", file=sys.stderr)
                continue
            id_sum += result.json()["id"]
            fetched += 1
        hosts = sorted({seen.host for seen in service.seen})
        print(f"INVENTORY: {fetched} items fetched, {failed} errors, sum of ids {id_sum}")
        print(f"the service saw Host {', '.join(map(str, hosts))}; at most "
              f"{service.max_concurrent} requests at a time, over {service.connections} connections")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
