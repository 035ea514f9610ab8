"""Beyond one process: bindings and ``Env`` pickle and work in
``concurrent.futures.ProcessPoolExecutor`` workers (spawned and forked), and
the batch examples (thread pool, Dask cluster) run and fetch every item."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vpc_requests
from vpc_requests import Binding, VPCService

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAME = "internal-api.company.local"
SERVICE_ID = "0191dfd2-221b-7b5e-a4d8-7f3c05a0b1a1"


@pytest.fixture
def env(http_service, tmp_path):
    (tmp_path / "wrangler.toml").write_text(
        f'name = "worker"\n\n[[vpc_services]]\nbinding = "API"\nservice_id = "{SERVICE_ID}"\n')
    (tmp_path / "vpc-services.toml").write_text(
        f'[[services]]\nservice_id = "{SERVICE_ID}"\nname = "api"\ntype = "http"\n'
        f"http_port = {http_service.port}\n"
        'host = { ipv4 = "127.0.0.1", network = { tunnel_id = "t1" } }\n\n'
        '[tunnels]\nt1 = "direct"\n')
    return vpc_requests.load_env(tmp_path / "wrangler.toml")


def fetch_via_env(env: vpc_requests.Env, name: str, path: str) -> tuple[int, str, str]:
    """Runs in a worker process: a fetch through the unpickled ``Env``."""
    response = env[name].fetch(f"http://{NAME}{path}")
    return response.status_code, response.json()["path"], response.json()["host"]


def test_a_binding_pickles_with_its_settings(http_service):
    binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=http_service.port),
                      errors="response", pool_maxsize=4)
    binding.fetch(f"http://{NAME}/before")  # a used pool does not travel

    copy = pickle.loads(pickle.dumps(binding))

    assert copy == binding and copy is not binding
    assert copy.adapter is not binding.adapter and copy.adapter._pool_maxsize == 4
    assert copy.fetch(f"http://{NAME}/copy").json()["host"] == NAME


def test_an_env_pickles_with_its_bindings(env):
    copy = pickle.loads(pickle.dumps(env))

    assert list(copy) == ["API"] and copy.API == env.API
    assert copy.API.fetch(f"http://{NAME}/x").status_code == 200


def test_a_process_pool_of_spawned_workers(env, http_service):
    paths = [f"/spawned/{i}" for i in range(8)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        responses = list(pool.map(env.API.fetch, [f"http://{NAME}{p}" for p in paths]))
        via_env = list(pool.map(fetch_via_env, [env] * len(paths), ["API"] * len(paths), paths))

    assert [r.json()["path"] for r in responses] == paths
    assert all(r.status_code == 200 and r.json()["host"] == NAME for r in responses)
    assert via_env == [(200, p, NAME) for p in paths]
    assert len(http_service.seen) == 2 * len(paths)


# The loopback service's threads make this process multi-threaded; the
# forked workers only make requests (Python 3.12+ warns about such forks).
@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks:DeprecationWarning"
)
def test_a_process_pool_of_forked_workers_after_the_parent_used_the_binding(env, http_service):
    env.API.fetch(f"http://{NAME}/parent")
    parent_port = http_service.seen[-1].client_port
    paths = [f"/forked/{i}" for i in range(12)]
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        results = list(pool.map(fetch_via_env, [env] * len(paths), ["API"] * len(paths), paths))
        list(pool.map(env.API.fetch, [f"http://{NAME}/forked/bound"] * 4))

    assert results == [(200, p, NAME) for p in paths]
    worker_ports = {s.client_port for s in http_service.seen if s.target.startswith("/forked/")}
    assert parent_port not in worker_ports
    assert env.API.fetch(f"http://{NAME}/parent-again").status_code == 200
    assert http_service.seen[-1].client_port == parent_port


def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args],
                          capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def test_the_thread_pool_batch_example():
    done = run_example("batch_job.py", "--items", "300", "--concurrency", "6")

    assert "INVENTORY: 300 items fetched, 0 errors, sum of ids 44850" in done.stdout
    assert "the service saw Host inventory.internal.company.local;" in done.stdout
    at_most = int(re.search(r"at most (\d+) requests at a time", done.stdout).group(1))
    assert 1 <= at_most <= 6
    assert "300" in done.stderr  # the progress bar (or line) reached the end


def test_the_dask_batch_example():
    # Dask's own warnings off: on a loaded machine a worker's heartbeat may
    # race the cluster's shutdown, and Dask logs that as a warning with a
    # traceback ("Failed to communicate with scheduler during heartbeat").
    # Its errors stay, and so does any traceback of the example's own.
    done = run_example("dask_batch.py", "--items", "200", "--chunk", "50",
                       env={"DASK_LOGGING__DISTRIBUTED": "error"})

    assert ("INVENTORY on Dask: 200 items fetched in 4 chunks by 2 worker processes, 0 errors, "
            "sum of ids 19900") in done.stdout
