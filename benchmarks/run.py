"""All the benchmarks, in one run: ``python benchmarks/run.py [--quick]``.

Against a keep-alive loopback server in a separate process
(``benchmarks/server.py``), so the client is what is measured:

1. ``http``: per-request time of raw ``urllib3.PoolManager``, a plain
   ``requests.Session``, a Session with ``VPCServiceAdapter`` mounted, a
   ``binding.session()`` and ``Binding.fetch()``, in interleaved rounds (the
   order rotates each round); medians, and the per-round ratios
   adapter/plain, session/plain, fetch/plain, urllib3/plain and
   fetch/urllib3.
2. ``https``: the same over TLS, and the TLS handshakes each client makes per
   1,000 requests next to its pooled connections (they must be equal).
3. ``fetch_many``: throughput at concurrency 1, 4 and 16, against the fast
   server and one answering after 2 ms, next to a thread pool of plain
   ``Session.get`` calls; the server's peak of concurrent requests.
4. ``memory``: peak RSS of a process that ran 10,000 and one that ran
   100,000 requests through ``fetch_many`` (over a generator), above what
   it had after 1,000: flat means no per-request growth.
5. ``tracing``: what the OpenTelemetry hook costs with the instrumentation
   off (one attribute lookup per request), and plain, session and fetch with
   ``opentelemetry-instrumentation-requests`` on (when installed).
6. ``config``: ``load_env`` of 1,000 bindings (``benchmarks/bench_config.py``).

Times are medians over rounds; the machine's noise is in the spread of the
per-round ratios, printed as min..max. Numbers are measured, never asserted.

Options: ``--quick`` (fewer requests and rounds), ``--only SECTION ...``,
``--profile CLIENT`` (profile one client's requests with pyinstrument, else
cProfile, and stop).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import http.client
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import urllib3

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import vpc_requests  # noqa: E402 - after the sys.path line: run from the checkout
from vpc_requests import Binding, VPCService, VPCServiceAdapter  # noqa: E402

NAME = "internal-api.company.local"
SECTIONS = ("http", "https", "fetch_many", "memory", "tracing", "config")


# ------------------------------------------------------------------- server


class Server:
    """``benchmarks/server.py`` in a child process."""

    def __init__(self, *, tls: bool = False, delay: float = 0.0) -> None:
        self.tls = tls
        self._dir = tempfile.TemporaryDirectory(prefix="vpc-bench-")
        args = [sys.executable, str(HERE / "server.py"), "--delay", str(delay)]
        if tls:
            args += ["--tls", self._dir.name]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.ca = os.path.join(self._dir.name, "ca.pem") if tls else None
        self._stats: http.client.HTTPConnection | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def _control(self, path: str) -> dict[str, int]:
        # One persistent control connection, opened before any counting.
        if self._stats is None:
            if self.tls:
                context = ssl.create_default_context(cafile=self.ca)
                self._stats = http.client.HTTPSConnection("127.0.0.1", self.port, context=context)
            else:
                self._stats = http.client.HTTPConnection("127.0.0.1", self.port)
        self._stats.request("GET", path)
        return json.loads(self._stats.getresponse().read())

    def reset(self) -> None:
        self._control("/__reset")

    def stats(self) -> dict[str, int]:
        return self._control("/__stats")

    def close(self) -> None:
        if self._stats is not None:
            self._stats.close()
        self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()  # type: ignore[union-attr]
        self._dir.cleanup()

    def __enter__(self) -> Server:
        self._control("/__stats")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ clients


def service_for(server: Server) -> VPCService:
    ports = {"https_port": server.port} if server.tls else {"http_port": server.port}
    return VPCService(ipv4="127.0.0.1", **ports)


def clients(server: Server) -> dict[str, tuple[Callable[[], Any], Any]]:
    """name -> (one request, the object holding its pool)."""
    direct = f"{server.scheme}://127.0.0.1:{server.port}/items/1"
    routed = f"{server.scheme}://{NAME}/items/1"
    verify: Any = server.ca or True
    service = service_for(server)

    pool = urllib3.PoolManager(ca_certs=server.ca) if server.tls else urllib3.PoolManager()
    # verify= per request: REQUESTS_CA_BUNDLE in the environment would
    # override a Session's own verify.
    plain = requests.Session()
    adapted = requests.Session()
    adapter = VPCServiceAdapter(service, binding="BENCH")
    adapted.mount("http://", adapter)
    adapted.mount("https://", adapter)
    binding = Binding("BENCH", service)
    bound = Binding("BENCH", service).session()

    def fetch() -> Any:
        return binding.fetch(routed, verify=verify)

    return {
        "urllib3": (lambda: pool.request("GET", direct), pool),
        "plain": (lambda: plain.get(direct, verify=verify), plain.get_adapter(direct)),
        "adapter": (lambda: adapted.get(routed, verify=verify), adapter),
        "session": (lambda: bound.get(routed, verify=verify), bound.get_adapter(routed)),
        "fetch": (fetch, binding.adapter),
    }


def pooled_connections(holder: Any) -> int:
    """Connections a client's pools hold (idle ones are in the pools' queues)."""
    manager = holder if isinstance(holder, urllib3.PoolManager) else holder.poolmanager
    total = 0
    for key in manager.pools.keys():
        pool = manager.pools[key]
        total += sum(1 for conn in list(pool.pool.queue) if conn is not None and conn.sock is not None)
    return total


def per_request_us(call: Callable[[], Any], count: int) -> tuple[float, float]:
    """Wall-clock and CPU (this process) microseconds per request."""
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        call()
    return ((time.perf_counter() - started) / count * 1e6, (time.process_time() - cpu) / count * 1e6)


Times = dict[str, list[tuple[float, float]]]


def interleaved(named: dict[str, tuple[Callable[[], Any], Any]], rounds: int, count: int) -> Times:
    """Short blocks, the order rotating each round, so the machine's noise
    falls on every client alike."""
    names = list(named)
    for name in names:  # warm up: pools, caches
        per_request_us(named[name][0], min(count, 200))
    times: Times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            times[name].append(per_request_us(named[name][0], count))
    return times


def report_rounds(times: Times) -> None:
    print("  median us/request: wall (client CPU)")
    for name, values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"  {name:8s} {wall:7.1f} ({cpu:6.1f})")
    print("  ratios, median of the per-round ratios [quartiles]: wall; client CPU")
    for name, base in RATIOS:
        if name not in times or base not in times:
            continue
        parts = []
        for kind in (0, 1):
            ratios = sorted(a[kind] / b[kind] for a, b in zip(times[name], times[base]))
            low, mid, high = statistics.quantiles(ratios, n=4)
            parts.append(f"{mid:.3f} [{low:.3f}..{high:.3f}]")
        print(f"  {name + '/' + base:16s} {parts[0]};  {parts[1]}{RATIO_NOTES.get((name, base), '')}")


#: The ratios printed, as (client, baseline): targets in benchmarks/RESULTS.rst.
RATIOS = (
    ("adapter", "plain"), ("session", "plain"), ("fetch", "plain"), ("urllib3", "plain"),
    ("fetch", "urllib3"),
)
RATIO_NOTES = {
    ("urllib3", "plain"): "   (the floor: no requests at all)",
    ("fetch", "urllib3"): "   (fetch over the floor)",
}


# ----------------------------------------------------------------- sections


def section_http(args: argparse.Namespace) -> None:
    print(f"== http: {args.rounds} interleaved rounds x {args.requests} requests per client")
    with Server() as server:
        report_rounds(interleaved(clients(server), args.rounds, args.requests))


def section_https(args: argparse.Namespace) -> None:
    count = args.requests
    print(f"== https: {args.rounds} interleaved rounds x {count} requests per client")
    with Server(tls=True) as server:
        named = clients(server)
        report_rounds(interleaved(named, args.rounds, count))
        print("  TLS handshakes per 1,000 requests from 4 threads (fresh pools) vs pooled connections:")
        for name in named:
            fresh = clients(server)[name]
            server.reset()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                request = fresh[0]
                for _ in pool.map(lambda _: request(), range(1000)):  # noqa: B023 - used within the loop
                    pass
            seen = server.stats()
            print(f"  {name:8s} handshakes {seen['handshakes']:3d}  connections {seen['connections']:3d}"
                  f"  pooled {pooled_connections(fresh[1]):3d}")


def section_fetch_many(args: argparse.Namespace) -> None:
    for delay, count in ((0.0, args.batch), (0.002, args.batch_slow)):
        label = "fast server" if not delay else f"server answering after {delay * 1000:.0f} ms"
        print(f"== fetch_many: {count} requests, {label}")
        with Server(delay=delay) as server:
            service = service_for(server)
            urls = [f"http://{NAME}/items/{i}" for i in range(count)]
            direct = [f"http://127.0.0.1:{server.port}/items/{i}" for i in range(count)]
            for concurrency in (1, 4, 16):
                binding = Binding("BENCH", service)
                list(binding.fetch_many(urls[:50], concurrency=concurrency))  # warm up
                server.reset()
                started = time.perf_counter()
                failed = sum(isinstance(r, Exception) for r in binding.fetch_many(urls, concurrency=concurrency))
                seconds = time.perf_counter() - started
                seen = server.stats()
                assert not failed, f"{failed} fetches failed"

                session = requests.Session()
                session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))
                with concurrent.futures.ThreadPoolExecutor(concurrency) as executor:
                    list(executor.map(session.get, direct[:50]))
                    base_started = time.perf_counter()
                    list(executor.map(session.get, direct))
                    base = time.perf_counter() - base_started
                print(f"  concurrency {concurrency:2d}: {count / seconds:7.0f} req/s"
                      f"   (threads + Session.get: {count / base:7.0f} req/s)"
                      f"   server: peak {seen['max_concurrent']:2d} concurrent,"
                      f" {seen['connections']} new connections")
                binding.close()
                session.close()


def peak_rss_kib() -> int:
    """This process's peak resident memory. Linux: ``VmHWM`` (ru_maxrss
    would include the parent's peak from before the fork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def memory_child(count: int, port: int) -> None:
    """Run in a child process: peak RSS after 1,000 requests, then after ``count``."""
    binding = Binding("BENCH", VPCService(ipv4="127.0.0.1", http_port=port))

    def urls(n: int) -> Iterator[str]:
        for i in range(n):
            yield f"http://{NAME}/items/{i}"

    for result in binding.fetch_many(urls(1000), concurrency=4):
        assert not isinstance(result, Exception), result
    gc.collect()
    objects = len(gc.get_objects())
    base = peak_rss_kib()
    for result in binding.fetch_many(urls(count), concurrency=4):
        assert not isinstance(result, Exception), result
    gc.collect()
    peak = peak_rss_kib()
    print(json.dumps({"base_kib": base, "peak_kib": peak, "objects_after_warmup": objects,
                      "objects_after": len(gc.get_objects())}))


def section_memory(args: argparse.Namespace) -> None:
    sizes = args.memory
    print(f"== memory: peak RSS, fetch_many over a generator (concurrency 4), {' vs '.join(map(str, sizes))} requests")
    with Server() as server:
        for size in sizes:
            done = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(size), str(server.port)],
                capture_output=True, text=True, check=True,
            )
            found = json.loads(done.stdout.strip().splitlines()[-1])
            grown = found["peak_kib"] - found["base_kib"]
            print(f"  {size:7d} requests: peak RSS {found['peak_kib'] / 1024:6.1f} MiB,"
                  f" {grown / 1024:+5.1f} MiB over the RSS after 1,000;"
                  f" live objects {found['objects_after_warmup']} -> {found['objects_after']}")


def section_tracing(args: argparse.Namespace) -> None:
    """What tracing costs: without the instrumentation, the one check a
    request makes; with opentelemetry-instrumentation-requests on (SDK,
    spans to an in-memory exporter), fetch next to a binding's session."""
    import timeit

    from vpc_requests._transport.tracing import instrumented

    print("== tracing: opentelemetry-instrumentation-requests off, then on")
    calls = 1_000_000
    check_ns = min(timeit.repeat(instrumented, number=calls, repeat=5)) / calls * 1e9
    print(f"  off: the only work is instrumented(), one attribute lookup on Session.send:"
          f" {check_ns:.0f} ns per call (one per fetch and per adapter send)")
    try:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        print("  on: not measured (pip install opentelemetry-sdk opentelemetry-instrumentation-requests)")
        return
    with Server() as server:
        named = {name: client for name, client in clients(server).items() if name in ("plain", "session", "fetch")}
        off = interleaved(named, max(args.rounds // 4, 3), args.requests)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = RequestsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            on = interleaved(named, max(args.rounds // 4, 3), args.requests)
            spans = len(exporter.get_finished_spans())
        finally:
            instrumentor.uninstrument()
            provider.shutdown()
        print(f"  median us/request: off -> on (client CPU)   [{spans} spans exported]")
        for name in named:
            before = statistics.median(v[1] for v in off[name])
            after = statistics.median(v[1] for v in on[name])
            print(f"  {name:8s} {before:7.1f} -> {after:7.1f}   (+{after - before:.1f})")


def section_config(args: argparse.Namespace) -> None:
    print("== config: load_env of 1,000 bindings")
    script = HERE / "bench_config.py"
    if script.exists():
        done = subprocess.run([sys.executable, str(script), "1000", str(3 if args.quick else 7)],
                              capture_output=True, text=True)
        text = done.stdout if done.returncode == 0 else done.stdout + done.stderr
        print("\n".join(f"  {line}" for line in text.strip().splitlines()))
        return
    with tempfile.TemporaryDirectory() as folder:
        wrangler = Path(folder, "wrangler.toml")
        services = Path(folder, "vpc-services.toml")
        wrangler.write_text('name = "bench"\n' + "".join(
            f'[[vpc_services]]\nbinding = "B{i}"\nservice_id = "s{i}"\n' for i in range(1000)))
        services.write_text("".join(
            f'[[services]]\nservice_id = "s{i}"\ntype = "http"\nhost = {{ ipv4 = "10.0.{i // 250}.{i % 250 + 1}" }}\n'
            for i in range(1000)))
        times = []
        for _ in range(3 if args.quick else 7):
            started = time.perf_counter()
            vpc_requests.load_env(wrangler)
            times.append(time.perf_counter() - started)
        print(f"  load_env: median {statistics.median(times) * 1000:.1f} ms")


# ------------------------------------------------------------------ profile


def profile(args: argparse.Namespace) -> None:
    with Server() as server:
        call = clients(server)[args.profile][0]
        per_request_us(call, 200)
        try:
            import pyinstrument
        except ImportError:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(per_request_us, call, args.requests * 2)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            return
        sampler = pyinstrument.Profiler(interval=0.0001)
        with sampler:
            per_request_us(call, args.requests * 2)
        print(sampler.output_text(unicode=False, color=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vpc_requests benchmarks (see the module docstring)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--requests", type=int, help="requests per client per round (http)")
    parser.add_argument("--profile", choices=("urllib3", "plain", "adapter", "session", "fetch"))
    parser.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0
    args.rounds = args.rounds or (10 if args.quick else 40)
    args.requests = args.requests or (200 if args.quick else 500)
    args.batch = 2000 if args.quick else 10000
    args.batch_slow = 200 if args.quick else 800
    args.memory = (2000, 20000) if args.quick else (10000, 100000)
    if args.profile:
        profile(args)
        return 0
    try:
        from importlib.metadata import version

        ours = version("vpc_requests")
    except Exception:  # noqa: BLE001 - not installed: run from the checkout
        ours = "(checkout)"
    print(f"vpc_requests {ours} benchmarks: python {platform.python_version()},"
          f" requests {requests.__version__}, urllib3 {urllib3.__version__},"
          f" {platform.machine()} {os.cpu_count()} CPUs{' (quick)' if args.quick else ''}")
    started = time.perf_counter()
    for name in args.only:
        globals()[f"section_{name}"](args)
    print(f"(all in {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
