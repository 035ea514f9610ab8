"""Fork safety: a binding or adapter used in a parent and inherited by a
forked child (``os.fork``, multiprocessing's "fork" context, pre-fork
servers) never shares a pooled socket with the parent (:mod:`vpc_requests._util.forks`)."""

from __future__ import annotations

import json
import multiprocessing
import os
import traceback

import pytest
import requests

from vpc_requests import Binding, VPCService, VPCServiceAdapter
from vpc_requests._util import forks
from vpc_requests.testing import Reply, Seen

NAME = "internal-api.company.local"

# Python 3.12+ warns about fork() in a process with threads (the loopback
# service's); the child here only makes requests and leaves with os._exit.
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks:DeprecationWarning"
)

ROUNDS = 5
BURST = 30


def whoami(seen: Seen) -> Reply:
    """Answers the request's path and the client port it came from."""
    return Reply(200, {"Content-Type": "application/json"},
                 json.dumps({"path": seen.target, "port": seen.client_port}))


@pytest.fixture
def service(http_service):
    http_service.handler = whoami
    return http_service


class Clients:
    """A binding and a Session with a VPCServiceAdapter, for one service."""

    def __init__(self, port: int) -> None:
        service = VPCService(ipv4="127.0.0.1", http_port=port)
        self.binding = Binding("API", service)
        self.adapter = VPCServiceAdapter(service, binding="API")
        self.session = requests.Session()
        self.session.mount("http://", self.adapter)

    def both(self, who: str, i: int) -> list[dict[str, object]]:
        """One request through each; checks each got its own response."""
        answers = []
        for how, get in (("fetch", self.binding.fetch), ("session", self.session.get)):
            path = f"/{who}/{how}/{i}"
            answer = get(f"http://{NAME}{path}").json()
            assert answer["path"] == path, f"{who} sent {path} and got the answer to {answer['path']}"
            answers.append(answer)
        return answers

    def close(self) -> None:
        self.binding.close()
        self.session.close()


def ports(answers: list[dict[str, object]]) -> set[object]:
    return {a["port"] for a in answers}


def run_child(work, out_path: str) -> None:
    """In a forked child: run ``work()``, write its result (or traceback) as
    JSON, and leave without returning into the parent's test run."""
    try:
        result = {"ok": work()}
    except BaseException:
        result = {"error": traceback.format_exc()}
    try:
        with open(out_path, "w") as out:
            json.dump(result, out)
    finally:
        os._exit(0)


def test_parent_and_forked_child_interleave_on_their_own_sockets(service, tmp_path):
    clients = Clients(service.port)
    parent_before = clients.both("parent", -1)  # one pooled keep-alive socket each
    out = tmp_path / "child.json"
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()

    def child_work():
        answers = []
        for i in range(ROUNDS):  # strictly alternating with the parent
            assert os.read(to_child_r, 1) == b"g"
            answers += clients.both("child", i)
            os.write(to_parent_w, b"d")
        assert os.read(to_child_r, 1) == b"g"
        for i in range(ROUNDS, ROUNDS + BURST):  # at the same time as the parent
            answers += clients.both("child", i)
        return answers

    pid = os.fork()
    if pid == 0:
        run_child(child_work, str(out))
    try:
        parent = []
        for i in range(ROUNDS):
            parent += clients.both("parent", i)
            os.write(to_child_w, b"g")
            assert os.read(to_parent_r, 1) == b"d"
        os.write(to_child_w, b"g")
        for i in range(ROUNDS, ROUNDS + BURST):
            parent += clients.both("parent", i)
    finally:
        _, status = os.waitpid(pid, 0)
        for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
            os.close(fd)
    result = json.loads(out.read_text())
    assert "error" not in result, result.get("error")
    child = result["ok"]

    assert os.waitstatus_to_exitcode(status) == 0
    assert len(child) == len(parent) == 2 * (ROUNDS + BURST)
    # The child opened its own connections (one per pool) and never used the
    # parent's; the parent kept its keep-alive sockets throughout.
    assert ports(child).isdisjoint(ports(parent_before))
    assert len(ports(child)) == 2
    assert ports(parent) == ports(parent_before)
    assert ports(clients.both("parent", "after")) == ports(parent_before)
    seen_ports = {seen.client_port for seen in service.seen}
    assert seen_ports == ports(parent_before) | ports(child)
    clients.close()


def test_forks_generation_changes_only_in_the_child(tmp_path):
    before = forks.generation()
    out = tmp_path / "child.json"
    pid = os.fork()
    if pid == 0:
        run_child(forks.generation, str(out))
    os.waitpid(pid, 0)
    assert json.loads(out.read_text())["ok"] == before + 1
    assert forks.generation() == before


def _mp_child(clients: Clients, queue) -> None:
    try:
        answers = []
        for i in range(BURST):
            answers += clients.both("child", i)
        queue.put({"ok": answers})
    except BaseException:
        queue.put({"error": traceback.format_exc()})


def test_multiprocessing_fork_children_get_fresh_pools(service):
    clients = Clients(service.port)
    parent_before = clients.both("parent", -1)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_mp_child, args=(clients, queue)) for _ in range(2)]
    for child in children:
        child.start()
    parent = []
    for i in range(BURST):  # while the children run
        parent += clients.both("parent", i)
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    queue.close()
    queue.join_thread()

    for result in results:
        assert "error" not in result, result.get("error")
    first, second = (ports(result["ok"]) for result in results)
    assert len(first) == len(second) == 2
    assert first.isdisjoint(second)
    assert (first | second).isdisjoint(ports(parent_before))
    assert ports(parent) == ports(parent_before)
    clients.close()
