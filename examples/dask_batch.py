"""The batch of ``batch_job.py``, spread over a Dask cluster: the item ids are
cut into chunks, and each chunk runs on a worker process as
``env.INVENTORY.fetch_many(...)``.

The ``Env`` (bindings, services, tunnels) pickles: it is scattered to the
workers once, and each worker process builds its own connection pools from it.
Here the cluster is a ``LocalCluster`` of two worker processes; on a real
cluster only the scheduler address changes (``Client("tcp://scheduler:8786")``
instead of ``LocalCluster``), and the workers must be where the binding's
service is reachable (inside the private network, or through the tunnels
of the services file).

Run: ``python examples/dask_batch.py [--items 1000] [--chunk 250]``
(``pip install 'vpc_requests[dask]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CONCURRENCY = 4  # fetches in flight per worker process


def fetch_chunk(env, binding: str, start: int, stop: int) -> dict[str, int]:
    """On a worker: fetch items ``start`` .. ``stop - 1`` through ``env[binding]``."""
    urls = (f"http://inventory.internal.company.local/items/{i}" for i in range(start, stop))
    fetched = failed = id_sum = 0
    for result in env[binding].fetch_many(urls, concurrency=CONCURRENCY, timeout=30):
        if isinstance(result, Exception):
            failed += 1
        else:
            fetched += 1
            id_sum += result.json()["id"]
    return {"pid": os.getpid(), "fetched": fetched, "failed": failed, "id_sum": id_sum}


def main(argv: list[str] | None = None) -> int:
    from dask.distributed import Client, LocalCluster

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from batch_job import private_inventory  # the same service and config files

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=250)
    args = parser.parse_args(argv)

    with private_inventory() as (env, service):
        # A real cluster: Client("tcp://scheduler:8786"), nothing else changes.
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
            [shared_env] = client.scatter([env], broadcast=True)
            futures = [
                client.submit(fetch_chunk, shared_env, "INVENTORY", start, min(start + args.chunk, args.items))
                for start in range(0, args.items, args.chunk)
            ]
            results = client.gather(futures)
        fetched = sum(r["fetched"] for r in results)
        failed = sum(r["failed"] for r in results)
        id_sum = sum(r["id_sum"] for r in results)
        workers = len({r["pid"] for r in results} - {os.getpid()})
        print(f"INVENTORY on Dask: {fetched} items fetched in {len(results)} chunks by {workers} "
              f"worker processes, {failed} errors, sum of ids {id_sum}")
        print(f"the service saw at most {service.max_concurrent} requests at a time "
              f"(2 workers x {CONCURRENCY} in flight)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
