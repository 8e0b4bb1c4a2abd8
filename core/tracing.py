"""Traces with OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (OpenTelemetry's own
variables configure the exporter: OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, ...).

Spans: each request (and Meta's webhooks, served in front of Django), each database query, each call
to Meta, each task run and each delivery to a subscriber. Every span carries Kirim's request id when
there is one. An event out carries the trace that recorded it (`Event.trace_parent`, W3C's
traceparent), so the delivery continues the trace of the Meta webhook or the read that caused it.
Off, every hook is one flag test."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.http import HttpRequest
from opentelemetry import context, trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from core import logs

_tracer = None  # set by start(): tracing is on
CLIENT, SERVER = trace.SpanKind.CLIENT, trace.SpanKind.SERVER


def on() -> bool:
    return _tracer is not None


def start(*, exporter: SpanExporter | None = None, service_name: str = "kirim") -> TracerProvider:
    """Record spans and export them: to OTLP over HTTP (OTEL_EXPORTER_OTLP_ENDPOINT), in batches, or
    to `exporter` as each span ends (tests' in-memory exporter)."""
    global _tracer
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracer = provider.get_tracer("kirim")
    logs.current_trace_id = current_trace_id
    connection_created.connect(trace_queries)  # connections opened from now on (tests add theirs)
    return provider


def stop() -> None:
    """Tracing off again (tests)."""
    global _tracer
    _tracer = None
    logs.current_trace_id = logs.no_trace


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def span(
    name: str, *, parent: str | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL, **attributes: Any
) -> AbstractContextManager[trace.Span | None]:
    """A span around a block, child of the current one (or of `parent`, a traceparent string); a
    no-op when tracing is off."""
    if _tracer is None:
        return nullcontext(None)
    return _span(_tracer, name, parent, kind, attributes)


@contextmanager
def _span(
    tracer: trace.Tracer, name: str, parent: str | None, kind: trace.SpanKind, attributes: dict[str, Any]
) -> Iterator[trace.Span]:
    parent_context = extract({"traceparent": parent}) if parent else None
    request_id = logs.request_id.get()
    if request_id:
        attributes["kirim.request_id"] = request_id
    # An exception's message may quote a body or Meta's answer: a span keeps its type only (the logs' rule).
    with tracer.start_as_current_span(
        name, context=parent_context, kind=kind, attributes=attributes,
        record_exception=False, set_status_on_exception=False,
    ) as current:  # fmt: skip
        try:
            yield current
        except BaseException as error:
            current.set_status(trace.StatusCode.ERROR, type(error).__name__)
            raise


def trace_parent() -> str:
    """The current span as W3C's traceparent, to carry on a row; "" when there is none."""
    if _tracer is None:
        return ""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def request_span(request: HttpRequest) -> Iterator[Callable[[str | None, int], None]]:
    """The server span of a request, continuing a caller's traceparent; yields a callable that names it
    by route and status once they are known."""
    if _tracer is None:
        yield lambda route, status: None
        return
    incoming = extract({"traceparent": request.META.get("HTTP_TRACEPARENT", "")})
    token = context.attach(incoming)
    try:
        method = request.method or ""
        with _span(_tracer, method, None, SERVER, {"http.request.method": method}) as current:

            def finish(route: str | None, status: int) -> None:
                current.update_name(f"{request.method} {route or 'unmatched'}")
                current.set_attribute("http.route", route or "unmatched")
                current.set_attribute("http.response.status_code", status)
                if status >= 500:
                    current.set_status(trace.StatusCode.ERROR)

            yield finish
    finally:
        context.detach(token)


def query_span(execute: Callable[..., Any], sql: str, params: Any, many: bool, context_: dict[str, Any]) -> Any:
    """Django's execute_wrapper: a span around each database query (its SQL, never its parameters)."""
    if _tracer is None:
        return execute(sql, params, many, context_)
    connection = context_["connection"]
    with span("db.query", kind=trace.SpanKind.CLIENT, **{"db.system": connection.vendor, "db.query.text": sql[:2000]}):
        return execute(sql, params, many, context_)


def trace_queries(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created's receiver: the new connection's queries get spans."""
    if query_span not in connection.execute_wrappers:
        connection.execute_wrappers.append(query_span)
