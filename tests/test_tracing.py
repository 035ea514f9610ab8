"""Tests for :mod:`vpc_requests._transport.tracing`: with
``opentelemetry-instrumentation-requests`` on, ``Binding.fetch()`` and
``fetch_many`` get the client span and the ``traceparent`` header a session
request gets, and both paths carry the binding and the dialled origin; with
it off, nothing of it. The real OpenTelemetry SDK, an in-memory exporter,
real loopback services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from servers import closed_port

from vpc_requests import Binding, ProxyError, VPCService, mount
from vpc_requests._transport.tracing import BINDING_ATTRIBUTE, instrumented
from vpc_requests.testing import PrivateService, Reply, Seen, echo

NAME = "internal-api.company.local"
BINDING = "PRIVATE_API"
ORIGIN_ATTRIBUTES = (BINDING_ATTRIBUTE, "server.address", "server.port")


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider exporting to memory (the global provider is left alone)."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider, exporter
    tracer_provider.shutdown()


@pytest.fixture
def spans(provider: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[InMemorySpanExporter]:
    """requests instrumented for the test; the exporter of its spans."""
    tracer_provider, exporter = provider
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def untraced(provider: tuple[TracerProvider, InMemorySpanExporter]) -> InMemorySpanExporter:
    """The same exporter, requests not instrumented."""
    assert not instrumented()
    return provider[1]


@pytest.fixture(params=["http", "https"])
def service(request: pytest.FixtureRequest) -> PrivateService:
    return request.getfixturevalue(f"{request.param}_service")  # type: ignore[no-any-return]


@pytest.fixture
def binding(service: PrivateService) -> Iterator[Binding]:
    port = {"https_port" if service.tls else "http_port": service.port}
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", **port)) as made:
        yield made


def url(service: PrivateService, path: str = "/items/1") -> str:
    return f"{'https' if service.tls else 'http'}://{NAME}{path}"


def verify(service: PrivateService) -> Any:
    return service.ca_path if service.tls else True


def client_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]


def traceparent_of(span: ReadableSpan) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def instrumentation_attributes(span: ReadableSpan) -> dict[str, Any]:
    return {key: value for key, value in (span.attributes or {}).items() if key not in ORIGIN_ATTRIBUTES}


def test_fetch_gets_the_client_span_and_traceparent(
    spans: InMemorySpanExporter, service: PrivateService, binding: Binding
) -> None:
    response = binding.fetch(url(service), verify=verify(service))
    assert response.status_code == 200
    (span,) = client_spans(spans)
    assert span.name == "GET"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.requests"
    (seen,) = service.seen
    assert seen.header("traceparent") == traceparent_of(span)
    assert seen.host == NAME  # the binding's semantics are unchanged
    attributes = span.attributes or {}
    assert url(service) in attributes.values()
    assert 200 in attributes.values()
    assert attributes[BINDING_ATTRIBUTE] == BINDING
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == service.port


def test_twin_untraced_fetch_has_no_span_and_no_traceparent(
    untraced: InMemorySpanExporter, service: PrivateService, binding: Binding
) -> None:
    response = binding.fetch(url(service), verify=verify(service))
    assert response.status_code == 200
    assert untraced.get_finished_spans() == ()
    (seen,) = service.seen
    assert seen.header("traceparent") is None
    assert "traceparent" not in response.request.headers


def test_fetch_span_is_the_session_span(
    spans: InMemorySpanExporter, service: PrivateService, binding: Binding
) -> None:
    binding.fetch(url(service), verify=verify(service))
    with binding.session() as session:
        session.get(url(service), verify=verify(service))
    fetched, sent = client_spans(spans)
    assert (fetched.name, fetched.kind, fetched.status.status_code) == (sent.name, sent.kind, sent.status.status_code)
    assert instrumentation_attributes(fetched) == instrumentation_attributes(sent)
    assert {key: (fetched.attributes or {})[key] for key in ORIGIN_ATTRIBUTES} == {
        key: (sent.attributes or {})[key] for key in ORIGIN_ATTRIBUTES
    }
    first, second = service.seen
    assert first.header("traceparent") == traceparent_of(fetched)
    assert second.header("traceparent") == traceparent_of(sent)


def test_twin_plain_session_span_has_no_binding(
    spans: InMemorySpanExporter, http_service: PrivateService
) -> None:
    with requests.Session() as session:
        session.get(f"{http_service.url}/items/1")
    (span,) = client_spans(spans)
    assert BINDING_ATTRIBUTE not in (span.attributes or {})


def test_mounted_session_span_names_the_binding_and_origin(
    spans: InMemorySpanExporter, http_service: PrivateService
) -> None:
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        with requests.Session() as session:
            mount(session, api, hosts={NAME: api})
            assert session.get(f"http://{NAME}:8080/items/1").status_code == 200
    (span,) = client_spans(spans)
    attributes = span.attributes or {}
    assert attributes[BINDING_ATTRIBUTE] == BINDING
    assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", http_service.port)
    assert http_service.seen[0].header("traceparent") == traceparent_of(span)


def test_fetch_span_has_the_callers_span_as_parent(
    spans: InMemorySpanExporter, provider: tuple[TracerProvider, InMemorySpanExporter],
    service: PrivateService, binding: Binding,
) -> None:
    tracer = provider[0].get_tracer("job")
    with tracer.start_as_current_span("job") as job:
        binding.fetch(url(service), verify=verify(service))
    (span,) = client_spans(spans)
    assert span.parent is not None
    assert span.parent.span_id == job.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == job.get_span_context().trace_id


def test_one_span_for_a_redirect_chain_as_in_a_session(
    spans: InMemorySpanExporter, http_service: PrivateService
) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.target == "/start":
            return Reply.redirect("http://other.company.local/end")
        return echo(seen)

    http_service.handler = handler
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        fetched = api.fetch(f"http://{NAME}/start")
        with api.session() as session:
            sent = session.get(f"http://{NAME}/start")
    assert fetched.status_code == sent.status_code == 200
    assert len(fetched.history) == len(sent.history) == 1
    fetch_span, session_span = client_spans(spans)
    assert instrumentation_attributes(fetch_span) == instrumentation_attributes(session_span)
    # Every hop carries its chain's traceparent.
    hops = [seen.header("traceparent") for seen in http_service.seen]
    assert hops == [traceparent_of(fetch_span)] * 2 + [traceparent_of(session_span)] * 2
    assert fetched.history[0].status_code == 302


def test_fetch_error_span_as_a_session_error_span(spans: InMemorySpanExporter) -> None:
    port = closed_port()
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=port)) as api:
        with pytest.raises(ProxyError) as fetched:
            api.fetch(f"http://{NAME}/")
        with api.session() as session, pytest.raises(ProxyError) as sent:
            session.get(f"http://{NAME}/")
    assert fetched.value.code == sent.value.code == "connection_refused"
    fetch_span, session_span = client_spans(spans)
    assert fetch_span.status.status_code is session_span.status.status_code is StatusCode.ERROR
    assert instrumentation_attributes(fetch_span) == instrumentation_attributes(session_span)
    assert (fetch_span.attributes or {})["server.port"] == port


def test_errors_response_mode_spans_the_500(spans: InMemorySpanExporter) -> None:
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=closed_port()), errors="response") as api:
        response = api.fetch(f"http://{NAME}/")
    assert response.status_code == 500
    (span,) = client_spans(spans)
    assert 500 in (span.attributes or {}).values()


def test_fetch_keeps_its_hooks_and_elapsed_when_traced(
    spans: InMemorySpanExporter, http_service: PrivateService
) -> None:
    calls: list[int] = []

    def hook(response: requests.Response, **kwargs: Any) -> None:
        calls.append(response.status_code)

    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        response = api.fetch(f"http://{NAME}/", hooks={"response": [hook]})
    assert calls == [200]  # once, not once more by Session.send
    assert response.elapsed.total_seconds() > 0
    assert len(client_spans(spans)) == 1


def test_fetch_many_items_each_get_a_span_under_the_callers(
    spans: InMemorySpanExporter, provider: tuple[TracerProvider, InMemorySpanExporter],
    http_service: PrivateService,
) -> None:
    tracer = provider[0].get_tracer("job")
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        with tracer.start_as_current_span("batch") as batch:
            results = list(api.fetch_many([f"http://{NAME}/items/{i}" for i in range(6)], concurrency=3))
    assert [r.status_code for r in results] == [200] * 6  # type: ignore[union-attr]
    items = client_spans(spans)
    assert len(items) == 6
    assert {span.parent.span_id for span in items if span.parent} == {batch.get_span_context().span_id}
    sent = {seen.header("traceparent") for seen in http_service.seen}
    assert sent == {traceparent_of(span) for span in items}


def test_twin_untraced_fetch_many_has_no_spans(
    untraced: InMemorySpanExporter, http_service: PrivateService
) -> None:
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        results = list(api.fetch_many([f"http://{NAME}/items/{i}" for i in range(6)], concurrency=3))
    assert [r.status_code for r in results] == [200] * 6  # type: ignore[union-attr]
    assert untraced.get_finished_spans() == ()
    assert {seen.header("traceparent") for seen in http_service.seen} == {None}


def test_suppressed_instrumentation_leaves_the_callers_span_alone(
    spans: InMemorySpanExporter, provider: tuple[TracerProvider, InMemorySpanExporter],
    http_service: PrivateService,
) -> None:
    tracer = provider[0].get_tracer("job")
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        with tracer.start_as_current_span("job"), suppress_http_instrumentation():
            api.fetch(f"http://{NAME}/")
            with api.session() as session:
                session.get(f"http://{NAME}/")
    (job,) = spans.get_finished_spans()
    assert job.name == "job"
    assert not set(ORIGIN_ATTRIBUTES) & set(job.attributes or {})
    assert {seen.header("traceparent") for seen in http_service.seen} == {None}


def test_twin_the_same_caller_span_unsuppressed_gets_children(
    spans: InMemorySpanExporter, provider: tuple[TracerProvider, InMemorySpanExporter],
    http_service: PrivateService,
) -> None:
    tracer = provider[0].get_tracer("job")
    with Binding(BINDING, VPCService(ipv4="127.0.0.1", http_port=http_service.port)) as api:
        with tracer.start_as_current_span("job"):
            api.fetch(f"http://{NAME}/")
    assert len(client_spans(spans)) == 1
    job = [span for span in spans.get_finished_spans() if span.name == "job"][0]
    assert not set(ORIGIN_ATTRIBUTES) & set(job.attributes or {})


def test_instrumented_follows_instrument_and_uninstrument(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    instrumentor = RequestsInstrumentor()
    assert not instrumented()
    instrumentor.instrument(tracer_provider=provider[0])
    try:
        assert instrumented()
    finally:
        instrumentor.uninstrument()
    assert not instrumented()


def test_annotate_without_opentelemetry_loaded_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from vpc_requests._transport.routing import route
    from vpc_requests._transport.tracing import annotate

    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    annotate(BINDING, route(VPCService(ipv4="127.0.0.1"), f"http://{NAME}/"))  # no error, nothing to do
    assert trace.get_current_span().is_recording() is False

