"""Tests for :mod:`vpc_requests._bindings.batch`: ``Binding.fetch_many`` and
``run_fetch_many`` (the ``fetch-many`` command's job), against real loopback
services."""

from __future__ import annotations

import gc
import io
import itertools
import json
import logging
import signal
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from helpers import ctrl_c_raises
from servers import ScriptedServer, read_head

from vpc_requests import (
    AbortController,
    AbortError,
    Binding,
    ProxyError,
    RoutingError,
    VPCService,
)
from vpc_requests._bindings import batch
from vpc_requests._cli.jobs import run_fetch_many
from vpc_requests.testing import Reply, Seen

NAME = "internal-api.company.local"


def url(i: object, **query: object) -> str:
    extra = "&".join(f"{k}={v}" for k, v in query.items())
    return f"http://{NAME}/items/{i}" + (f"?{extra}" if extra else "")


def answer(seen: Seen) -> Reply:
    """Body: the request's method, path and body; ``?delay=`` waits first."""
    query = parse_qs(urlsplit(seen.target).query)
    delay = float(query.get("delay", ["0"])[0])
    path = urlsplit(seen.target).path
    return Reply(200, {"Content-Type": "text/plain"}, f"{seen.method} {path} {seen.body.decode()}".strip(),
                 delay=delay)


@pytest.fixture
def service(http_service):
    http_service.handler = answer
    return http_service


@pytest.fixture
def binding(service, make_binding):
    return make_binding(service, name="API")


def batch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vpc_requests-fetch_many")]


def new_threads(before: set[threading.Thread], service) -> set[threading.Thread]:
    """Threads started since ``before``, other than the service's own."""
    return {t for t in set(threading.enumerate()) - before if not t.name.startswith(service.name)}


def paths(service) -> list[str]:
    return [urlsplit(seen.target).path for seen in service.seen]


# ---------------------------------------------------------------- results


def test_results_come_in_input_order(binding, service):
    # Early items are the slowest: they finish last but come out first.
    urls = [url(i, delay=0.01 * (8 - i)) for i in range(8)]

    results = list(binding.fetch_many(urls, concurrency=8))

    assert [r.text for r in results] == [f"GET /items/{i}" for i in range(8)]
    assert all(isinstance(r, requests.Response) and r.status_code == 200 for r in results)
    assert sorted(paths(service)) == sorted(f"/items/{i}" for i in range(8))


def test_items_may_be_urls_requests_and_fetch_arguments(binding, service):
    items = [
        url(0),
        {"url": url(1), "method": "POST", "body": "one", "headers": {"X-Item": "1"}},
        requests.Request("PUT", url(2), data="two"),
        requests.Request("DELETE", url(3)).prepare(),
    ]

    results = list(binding.fetch_many(items, concurrency=2))

    assert [r.text for r in results] == ["GET /items/0", "POST /items/1 one", "PUT /items/2 two",
                                         "DELETE /items/3"]
    seen = {urlsplit(s.target).path: s for s in service.seen}
    assert seen["/items/1"].header("X-Item") == "1"
    assert seen["/items/1"].host == NAME


def test_fetch_arguments_apply_to_every_item_and_items_override_them(binding, service):
    items = [url(0), {"url": url(1), "method": "PUT"}]

    results = list(binding.fetch_many(items, method="POST", body="x", headers={"X-All": "yes"}))

    assert [r.text for r in results] == ["POST /items/0 x", "PUT /items/1 x"]
    assert all(s.header("X-All") == "yes" for s in service.seen)


def test_one_bad_item_never_stops_the_batch(service):
    # A service with only http: an https URL is refused by the binding.
    binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=service.port))
    items = [url(0), f"https://{NAME}/refused", url(2), 42, {"method": "GET"},
             {"url": url(5, delay=2), "timeout": 0.2}, url(6)]

    results = list(binding.fetch_many(items, concurrency=3))

    assert results[0].text == "GET /items/0"
    assert isinstance(results[1], RoutingError) and "https" in str(results[1])
    assert results[2].text == "GET /items/2"
    assert isinstance(results[3], TypeError)
    assert isinstance(results[4], TypeError) and "'url'" in str(results[4])
    assert isinstance(results[5], ProxyError) and isinstance(results[5], requests.ReadTimeout)
    assert results[5].code == "connection_read_timeout"
    assert results[6].text == "GET /items/6"
    assert "/refused" not in paths(service)  # refused before anything was sent
    binding.close()


def test_an_unreachable_service_fails_each_item(service):
    from servers import closed_port

    binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=closed_port()))

    results = list(binding.fetch_many([url(i) for i in range(3)], concurrency=2))

    assert all(isinstance(r, ProxyError) and r.code == "connection_refused" for r in results)
    assert all(isinstance(r, requests.ConnectionError) for r in results)


def test_empty_input_yields_nothing_and_starts_no_thread(binding):
    before = set(threading.enumerate())
    assert list(binding.fetch_many([], concurrency=4)) == []
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True, "4"])
def test_concurrency_is_checked_at_the_call(binding, concurrency):
    with pytest.raises(ValueError, match="concurrency"):
        binding.fetch_many([url(0)], concurrency=concurrency)


# ------------------------------------------------------ concurrency, pools


def test_in_flight_never_exceeds_concurrency(binding, service):
    list(binding.fetch_many([url(i) for i in range(40)], concurrency=3))

    assert 1 <= service.max_concurrent <= 3


def test_a_slow_service_sees_exactly_concurrency_requests_at_once(binding, service):
    results = list(binding.fetch_many([url(i, delay=0.2) for i in range(8)], concurrency=4))

    assert all(r.status_code == 200 for r in results)
    assert service.max_concurrent == 4


def test_the_pool_grows_to_concurrency_so_no_connection_is_thrown_away(binding, service, caplog):
    # The adapter's default pool keeps 10 connections; 16 in flight need 16.
    caplog.set_level(logging.WARNING, logger="urllib3")
    for _ in range(2):
        results = list(binding.fetch_many([url(i, delay=0.2) for i in range(16)], concurrency=16))
        assert all(r.status_code == 200 for r in results)

    assert service.max_concurrent == 16
    assert service.connections == 16  # the second batch opened none
    assert binding.adapter._pool_maxsize == 16
    assert "pool is full" not in caplog.text


def test_growing_the_pool_keeps_its_connections(binding, service):
    binding.fetch(url(0))
    [pool] = [binding.adapter.poolmanager.pools[k] for k in binding.adapter.poolmanager.pools.keys()]

    binding.adapter.ensure_pool_maxsize(32)
    binding.fetch(url(1))
    binding.adapter.ensure_pool_maxsize(4)  # never shrinks

    assert [binding.adapter.poolmanager.pools[k] for k in binding.adapter.poolmanager.pools.keys()] == [pool]
    assert pool.pool.maxsize == 32
    assert service.connections == 1
    assert len({s.client_port for s in service.seen}) == 1


# --------------------------------------------------------------- laziness


def test_the_input_is_read_lazily(binding):
    pulled = []

    def items():
        for i in itertools.count():  # endless: must never be materialised
            pulled.append(i)
            yield url(i)

    concurrency = 3
    results = binding.fetch_many(items(), concurrency=concurrency)
    assert pulled == []  # nothing before the first result is asked for
    for consumed in range(1, 21):
        result = next(results)
        assert result.text == f"GET /items/{consumed - 1}"
        assert len(pulled) - consumed <= 2 * concurrency
    results.close()
    assert len(pulled) <= 20 + 2 * concurrency
    assert batch_threads() == []


# ---------------------------------------------------------------- stopping


def seen_items(service) -> set[int]:
    return {int(p.rsplit("/", 1)[1]) for p in paths(service)}


def assert_stopped_cleanly(before, service, pulled: list[int], consumed: int, concurrency: int) -> None:
    """No thread of the batch left; the service saw only items read before
    the stop: those consumed and those done or in flight in the window."""
    assert batch_threads() == []
    assert new_threads(before, service) == set()
    time.sleep(0.1)  # room for a request that should not be sent
    assert seen_items(service) <= set(pulled)
    assert len(pulled) <= consumed + 2 * concurrency + 1
    assert len(seen_items(service)) <= consumed + 2 * concurrency


def counting(pulled: list[int], count: int = 1000, **query: object):
    for i in range(count):
        pulled.append(i)
        yield url(i, **query)


def test_closing_the_generator_stops_the_batch(binding, service):
    before = set(threading.enumerate())
    pulled: list[int] = []
    results = binding.fetch_many(counting(pulled, delay=0.2), concurrency=4)

    first = next(results)
    results.close()

    assert first.text == "GET /items/0"
    assert_stopped_cleanly(before, service, pulled, 1, 4)
    # Counted once the server has recorded what was already on the wire at
    # the stop (assert_stopped_cleanly waits for that): from here on only
    # the fetch below may arrive.
    seen_at_stop = len(service.seen)
    binding.fetch(url("after"))  # the pool still works
    assert len(service.seen) == seen_at_stop + 1


def test_leaving_a_for_loop_stops_the_batch(binding, service):
    before = set(threading.enumerate())
    pulled: list[int] = []
    for i, _ in enumerate(binding.fetch_many(counting(pulled, delay=0.05), concurrency=4)):
        if i == 2:
            break

    assert_stopped_cleanly(before, service, pulled, 3, 4)


def test_keyboard_interrupt_in_the_consumer_stops_the_batch(binding, service):
    before = set(threading.enumerate())
    pulled: list[int] = []
    consumed = 0

    with pytest.raises(KeyboardInterrupt):
        for _ in binding.fetch_many(counting(pulled, delay=0.05), concurrency=4):
            consumed += 1
            if consumed == 3:
                raise KeyboardInterrupt

    assert_stopped_cleanly(before, service, pulled, consumed, 4)


def test_keyboard_interrupt_in_a_with_block_stops_the_batch_at_once(binding, service, monkeypatch):
    """The results held in a variable outlive a plain ``for``; a ``with``
    block stops the batch when an exception leaves it: no request starts
    after, no worker thread is left."""
    before = set(threading.enumerate())
    pulled: list[int] = []
    started: list[float] = []
    fetch = binding.fetch

    def recording_fetch(*args, **kwargs):
        started.append(time.monotonic())
        return fetch(*args, **kwargs)

    monkeypatch.setattr(binding, "fetch", recording_fetch)
    consumed = 0
    with pytest.raises(KeyboardInterrupt):
        with binding.fetch_many(counting(pulled, delay=0.05), concurrency=4) as results:
            for _ in results:
                consumed += 1
                if consumed == 3:
                    raise KeyboardInterrupt
    stopped = time.monotonic()
    assert batch_threads() == []  # at once, not when `results` is dropped

    pulled_at_stop = len(pulled)
    assert_stopped_cleanly(before, service, pulled, consumed, 4)
    assert len(pulled) == pulled_at_stop and started and max(started) < stopped
    assert next(results, None) is None  # still referenced, finished


def test_a_with_block_left_normally_or_by_break_stops_the_batch(binding, service):
    with binding.fetch_many([url(0), url(1)]) as results:
        assert [r.text for r in results] == ["GET /items/0", "GET /items/1"]
    before = set(threading.enumerate())
    pulled: list[int] = []
    with binding.fetch_many(counting(pulled, delay=0.05), concurrency=2) as results:
        assert next(results).text == "GET /items/0"
    assert_stopped_cleanly(before, service, pulled, 1, 2)
    results.close()  # idempotent


def test_the_results_are_generator_compatible(binding):
    from collections.abc import Generator

    results = binding.fetch_many([url(0), url(1), url(2)])
    assert isinstance(results, Generator) and iter(results) is results
    assert results.send(None).text == "GET /items/0"
    assert next(results).text == "GET /items/1"
    with pytest.raises(ValueError, match="thrown"):
        results.throw(ValueError("thrown"))
    assert batch_threads() == []
    assert list(results) == []


def test_keyboard_interrupt_from_a_response_hook_stops_the_batch(binding, service):
    before = set(threading.enumerate())
    pulled: list[int] = []

    def hook(response, **kwargs):
        if response.url.endswith("/items/5"):
            response.close()  # fetch() leaves a response whose hook raised unclosed
            raise KeyboardInterrupt
        return response

    got = []
    with pytest.raises(KeyboardInterrupt):
        for result in binding.fetch_many(counting(pulled), concurrency=4, hooks={"response": hook}):
            got.append(result.text)

    # In order, and stopped at once: some of items 0-4 may not have come yet.
    assert got == [f"GET /items/{i}" for i in range(len(got))] and len(got) <= 5
    assert_stopped_cleanly(before, service, pulled, 6, 4)


def test_keyboard_interrupt_from_a_hook_does_not_wait_for_earlier_items(binding, service):
    # Item 0 would take 60 s; item 1's hook raises: the batch stops at once.
    before = set(threading.enumerate())

    def hook(response, **kwargs):
        response.close()
        raise KeyboardInterrupt

    items = [url(0, delay=60), {"url": url(1), "hooks": {"response": hook}}]
    with pytest.raises(KeyboardInterrupt):
        list(binding.fetch_many(items, concurrency=2))

    assert batch_threads() == [] and new_threads(before, service) == set()


def test_keyboard_interrupt_while_reading_the_input_stops_the_batch(binding, service):
    before = set(threading.enumerate())
    pulled: list[int] = []

    def items():
        yield from counting(pulled, 6)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(binding.fetch_many(items(), concurrency=2))

    assert_stopped_cleanly(before, service, pulled, 6, 2)


def test_ctrl_c_while_waiting_for_results_stops_the_batch(binding, service):
    # A real SIGINT for the main thread, sent when the service sees item 3,
    # while the main thread is blocked waiting inside fetch_many.
    assert threading.current_thread() is threading.main_thread()
    main = threading.main_thread().ident
    sent = threading.Event()
    trigger: list[int] = []

    def handler(seen: Seen) -> Reply:
        # Item 3 or any later one: on a loaded machine the SIGINT must be
        # sent even if item 3's own exchange went wrong.
        item = seen.target.split("?", 1)[0].rsplit("/", 1)[-1]
        if item.isdigit() and int(item) >= 3 and not sent.is_set():
            trigger.append(int(item))
            sent.set()
            signal.pthread_kill(main, signal.SIGINT)
        return answer(seen)

    service.handler = handler
    before = set(threading.enumerate())
    pulled: list[int] = []

    # A KeyboardInterrupt raised while the main thread runs a __del__ (the
    # garbage of an earlier test, collected at a random moment) is swallowed
    # as "unraisable": collect it now and let no collection run meanwhile.
    # ctrl_c_raises: a run started in the background inherits SIGINT ignored.
    gc.collect()
    gc.disable()
    try:
        with ctrl_c_raises(), pytest.raises(KeyboardInterrupt):
            for _ in binding.fetch_many(counting(pulled, 40, delay=0.05), concurrency=2):
                pass
    finally:
        gc.enable()

    assert sent.is_set()
    assert_stopped_cleanly(before, service, pulled, trigger[0] + 1, 2)


def test_an_abort_signal_stops_the_batch(binding, service):
    before = set(threading.enumerate())
    pulled: list[int] = []
    controller = AbortController()
    got = []

    with pytest.raises(AbortError) as caught:
        for result in binding.fetch_many(counting(pulled, delay=0.05), concurrency=4,
                                         signal=controller.signal):
            got.append(result)
            if len(got) == 3:
                controller.abort("enough")

    assert caught.value.reason == "enough"
    assert len(got) == 3
    assert_stopped_cleanly(before, service, pulled, 3, 4)


def test_an_abort_from_another_thread_interrupts_requests_in_flight(binding, service):
    # Every request would take 30 s: only the abort can end the batch soon.
    before = set(threading.enumerate())
    controller = AbortController()

    def handler(seen: Seen) -> Reply:
        if seen.target.startswith("/items/2?"):
            controller.abort("stop")  # from the service's thread
        return answer(seen)

    service.handler = handler
    pulled: list[int] = []

    with pytest.raises(AbortError):
        list(binding.fetch_many(counting(pulled, 10, delay=30), concurrency=3, signal=controller.signal))

    assert_stopped_cleanly(before, service, pulled, 0, 3)
    # Items 3-5 may have been read and queued, but no worker was free before
    # the abort, and none started after it.
    assert set(pulled) <= {0, 1, 2, 3, 4, 5}
    assert 2 in seen_items(service) and seen_items(service) <= {0, 1, 2}


def test_an_aborted_signal_sends_nothing(binding, service):
    controller = AbortController()
    controller.abort()

    with pytest.raises(AbortError):
        list(binding.fetch_many([url(0), url(1)], signal=controller.signal))

    assert service.seen == []
    assert batch_threads() == []


def test_an_item_with_its_own_signal_fails_alone(binding, service):
    aborted = AbortController()
    aborted.abort("this one")
    items = [url(0), {"url": url(1), "signal": aborted.signal}, url(2)]

    results = list(binding.fetch_many(items, concurrency=2))

    assert results[0].text == "GET /items/0" and results[2].text == "GET /items/2"
    assert isinstance(results[1], AbortError) and results[1].reason == "this one"


# ---------------------------------------------------------------- progress


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError


def test_plain_progress_lines_show_count_rate_and_eta(binding, capsys, monkeypatch, no_tqdm):
    monkeypatch.setattr(batch, "PROGRESS_INTERVAL", 0.0)  # a line per result

    results = list(binding.fetch_many([url(i) for i in range(4)] + [f"https://{NAME}/x"], progress=True))

    assert len(results) == 5
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("API: 1/5 (20%), ") and "req/s" in lines[0] and "ETA 0:00:" in lines[0]
    assert lines[-1].startswith("API: 5/5 (100%), ") and "done in 0:00:" in lines[-1]
    assert lines[-1].endswith("1 error")


def test_plain_progress_without_a_length_has_no_eta(binding, capsys, monkeypatch, no_tqdm):
    monkeypatch.setattr(batch, "PROGRESS_INTERVAL", 0.0)

    list(binding.fetch_many((url(i) for i in range(3)), progress=True))

    err = capsys.readouterr().err
    assert "API: 3, " in err and "ETA" not in err and "done in" in err


def test_plain_progress_is_periodic(binding, capsys, monkeypatch, no_tqdm):
    monkeypatch.setattr(batch, "PROGRESS_INTERVAL", 3600.0)

    list(binding.fetch_many([url(i) for i in range(3)], progress=True))

    # No interval has passed: only the final line.
    assert capsys.readouterr().err.count("API: ") == 1


def test_progress_uses_tqdm_when_installed(binding, capsys):
    before = set(threading.enumerate())

    list(binding.fetch_many([url(i) for i in range(6)] + [f"https://{NAME}/x"], progress=True))

    err = capsys.readouterr().err
    assert "API" in err and "7/7" in err and "errors=1" in err
    assert {t for t in set(threading.enumerate()) - before if not t.name.startswith("http-service")} == set()


def test_plain_progress_after_a_stop_says_stopped_not_done(binding, capsys, no_tqdm):
    with binding.fetch_many([url(i) for i in range(10)], concurrency=2, progress=True) as results:
        next(results)
        next(results)

    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("API: 2/10 (20%), ") and "stopped after 2 of 10 in 0:00:" in last
    assert "done" not in last


def test_tqdm_progress_after_a_stop_says_stopped_not_done(binding, capsys):
    with binding.fetch_many([url(i) for i in range(10)], concurrency=2, progress=True) as results:
        next(results)

    err = capsys.readouterr().err
    assert "1/10" in err and err.strip().endswith("API: stopped after 1 of 10")


def test_tqdm_progress_that_completes_says_nothing_of_a_stop(binding, capsys):
    list(binding.fetch_many([url(i) for i in range(3)], progress=True))
    assert "stopped" not in capsys.readouterr().err


def test_total_gives_a_generator_an_eta(binding, capsys, monkeypatch, no_tqdm):
    monkeypatch.setattr(batch, "PROGRESS_INTERVAL", 0.0)

    list(binding.fetch_many((url(i) for i in range(3)), progress=True, total=3))

    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("API: 1/3 (33%), ") and "ETA 0:00:" in lines[0]
    assert lines[-1].startswith("API: 3/3 (100%), ") and "done in" in lines[-1]


def test_no_progress_by_default(binding, capsys):
    list(binding.fetch_many([url(0)]))
    assert capsys.readouterr().err == ""


# ------------------------------------------------------- run_fetch_many


def test_run_fetch_many_writes_json_lines_in_input_order(binding, service):
    lines = [
        url(0) + "\n",
        "\n",
        "# a comment\n",
        json.dumps({"url": url(1), "method": "POST", "headers": {"X-A": "b"}, "body": "hi"}) + "\n",
        f"https://{NAME}/refused\n",
        "{not json\n",
        json.dumps({"url": 5}) + "\n",
        url(2, delay=0.05),
    ]
    out = io.StringIO()

    status = run_fetch_many(binding, iter(lines), out, concurrency=3)

    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1
    assert [r["index"] for r in records] == list(range(6))
    assert records[0] == {"index": 0, "url": url(0), "status": 200, "body": "GET /items/0"}
    assert records[1] == {"index": 1, "url": url(1), "status": 200, "body": "POST /items/1 hi"}
    assert records[2]["url"] == f"https://{NAME}/refused"
    assert records[2]["error"]["type"] == "RoutingError" and records[2]["error"]["code"] is None
    assert records[3]["error"]["type"] == "ValueError" and records[3]["url"] is None
    assert records[4]["error"]["type"] == "ValueError"
    assert records[5]["status"] == 200 and "headers" not in records[5]
    [posted] = [s for s in service.seen if s.method == "POST"]
    assert posted.header("X-A") == "b"


def test_run_fetch_many_counts_a_file_for_total_and_eta(binding, tmp_path, capsys, monkeypatch, no_tqdm):
    monkeypatch.setattr(batch, "PROGRESS_INTERVAL", 0.0)
    path = tmp_path / "urls.txt"
    path.write_text("# urls\n" + "".join(url(i) + "\n\n" for i in range(4)))

    with open(path) as lines:
        status = run_fetch_many(binding, lines, io.StringIO(), progress=True)

    assert status == 0
    lines_out = capsys.readouterr().err.strip().splitlines()
    assert lines_out[0].startswith("API: 1/4 (25%), ") and "ETA" in lines_out[0]
    assert lines_out[-1].startswith("API: 4/4 (100%), ") and "done in" in lines_out[-1]


def test_run_fetch_many_from_a_stream_has_no_total(binding, capsys, monkeypatch, no_tqdm):
    monkeypatch.setattr(batch, "PROGRESS_INTERVAL", 0.0)

    run_fetch_many(binding, iter([url(0) + "\n", url(1) + "\n"]), io.StringIO(), progress=True)

    err = capsys.readouterr().err
    assert "API: 2, " in err and "ETA" not in err and "/" not in err.split("req/s")[0]


def test_run_fetch_many_lines_give_only_the_request(binding, service):
    """Input lines are data: they may give the request (url, method,
    headers, body, json, params), never how it is fetched."""
    lines = [
        json.dumps({"url": url(0), "verify": False}),
        json.dumps({"url": url(1), "json": {"k": 1}, "params": {"q": "v"}, "method": "PATCH"}),
        json.dumps({"url": url(2), "timeout": 0.001, "allow_redirects": False, "hooks": {}}),
        json.dumps({"url": url(3), "stream": True}),
        url(4),
    ]
    out = io.StringIO()

    status = run_fetch_many(binding, lines, out, concurrency=2, timeout=10)

    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1 and [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert records[0]["url"] == url(0) and records[0]["error"]["type"] == "ValueError"
    assert records[0]["error"]["message"] == (
        "key 'verify' not allowed in an input line; a line may give only url, method, headers, body, json, params")
    assert records[1]["status"] == 200 and records[1]["body"] == 'PATCH /items/1 {"k": 1}'
    assert "keys 'timeout', 'allow_redirects', 'hooks' not allowed" in records[2]["error"]["message"]
    assert "key 'stream' not allowed" in records[3]["error"]["message"]
    assert records[4]["status"] == 200
    assert sorted(paths(service)) == ["/items/1", "/items/4"]
    assert [s.target for s in service.seen if s.method == "PATCH"] == ["/items/1?q=v"]


def test_fetch_many_items_in_code_may_still_give_any_fetch_argument(binding, service):
    [result] = binding.fetch_many([{"url": url(0, delay=0.5), "timeout": 0.05}])
    assert isinstance(result, requests.Timeout)


def test_run_fetch_many_reports_proxy_error_codes_and_headers(service):
    from servers import closed_port

    down = Binding("DOWN", VPCService(ipv4="127.0.0.1", http_port=closed_port()))
    out = io.StringIO()
    assert run_fetch_many(down, [url(0)], out) == 1
    [record] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["error"]["code"] == "connection_refused"
    assert record["error"]["message"].startswith("ProxyError: connection_refused")

    up = Binding("UP", VPCService(ipv4="127.0.0.1", http_port=service.port))
    out = io.StringIO()
    assert run_fetch_many(up, [url(0), url(1)], out, include_headers=True) == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["headers"]["Content-Type"] == "text/plain"


def test_run_fetch_many_base64_for_binary_bodies(binding, service):
    service.handler = lambda seen: Reply(200, {"Content-Type": "application/octet-stream"}, b"\xff\xfe\x00")
    out = io.StringIO()

    assert run_fetch_many(binding, [url(0)], out) == 0

    assert json.loads(out.getvalue())["body_base64"] == "//4A"


def test_streamed_results_are_read_after_the_batch_moved_on(binding, service):
    results = binding.fetch_many([url(i) for i in range(6)], concurrency=2, stream=True)
    kept = [next(results) for _ in range(3)]
    results.close()  # stops the batch: kept bodies are unaffected

    assert [r.raw.read().decode() for r in kept] == [f"GET /items/{i}" for i in range(3)]
    for response in kept:
        response.close()
    assert batch_threads() == []


def stalled_body(sock, stop) -> None:
    """Answers 10 bytes of a 100-byte body, then stalls."""
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    stop.wait(10)


def test_a_streamed_item_with_its_own_signal_can_be_aborted_while_read():
    controller = AbortController()
    with ScriptedServer(stalled_body) as server:
        binding = Binding("API", VPCService(ipv4="127.0.0.1", http_port=server.port))
        items = [url(0), {"url": url(1), "signal": controller.signal}]
        first, second = binding.fetch_many(items, stream=True, timeout=10)
        first.close()

        timer = threading.Timer(0.05, controller.abort, args=("late",))
        timer.start()
        with pytest.raises(AbortError):
            second.content  # noqa: B018 - blocks until the abort
        timer.join()
        second.close()
        binding.close()
