"""Traces, recorded by OpenTelemetry's in-memory exporter: a signed Meta webhook's trace goes on into
the delivery of the event it caused, with the database spans of both; a read receipt's trace holds its
call to Meta and goes on into the delivery of its message.read; spans and log lines carry the ids."""

import json
import logging

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core import tracing
from core.logs import JsonFormatter
from outbox.tests.test_e2e import inbound, receiver, run_worker_until, subscribe  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.start(exporter=exporter)
    tracing.trace_queries(None, connection)  # this thread's connection is open already
    yield exporter
    tracing.stop()
    connection_created.disconnect(tracing.trace_queries)
    connection.execute_wrappers.remove(tracing.query_span)


def in_trace(finished, trace_id):
    return [span for span in finished if span.context.trace_id == trace_id]


def children(finished, parent):
    return [span for span in finished if span.parent is not None and span.parent.span_id == parent.context.span_id]


def test_a_meta_webhooks_trace_goes_on_into_the_delivery_of_its_event(spans, deliver, phone_number, receiver):  # noqa: F811
    subscribe(phone_number.org, receiver, events=["message.received"])
    answer = deliver(inbound(phone_number, "wamid.TRACED1"))
    assert answer.status_code == 200
    run_worker_until(lambda: receiver.received)

    finished = spans.get_finished_spans()
    (request,) = [span for span in finished if span.name == "POST webhooks/whatsapp"]
    assert request.kind == SpanKind.SERVER and request.attributes["http.response.status_code"] == 200
    assert request.attributes["kirim.request_id"] == answer.headers["X-Request-Id"]
    stored = [span for span in children(finished, request) if span.name == "db.query"]
    assert any("INSERT" in span.attributes["db.query.text"] for span in stored)

    (delivery,) = [span for span in finished if span.name == "deliver message.received"]
    assert delivery.context.trace_id == request.context.trace_id  # one trace, webhook to subscriber
    assert delivery.parent.span_id == request.context.span_id
    (post,) = [span for span in children(finished, delivery) if span.name == "subscriber POST"]
    assert post.attributes["http.response.status_code"] == 200
    settled = [span for span in children(finished, delivery) if span.name == "db.query"]
    assert any("UPDATE" in span.attributes["db.query.text"] for span in settled)
    assert any(span.name == "task deliver" for span in finished)  # the task run, its claim inside


def test_a_read_receipts_trace_holds_its_meta_call_and_goes_on_into_message_read(
    spans,
    api,
    phone_number,
    make_message,
    meta_accepts_reads,
    receiver,  # noqa: F811
    caplog,
):
    subscribe(phone_number.org, receiver, events=["message.read"])
    meta_accepts_reads.add_passthru(receiver.url)  # Meta is mocked; the subscriber is a real server
    caplog.set_level(logging.INFO, logger="kirim.requests")
    message = make_message(phone_number)
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    answer = api.post(f"/v1/{phone_number.phone_number_id}/messages", read, format="json")
    assert answer.status_code == 200
    run_worker_until(lambda: receiver.received)

    finished = spans.get_finished_spans()
    (request,) = [span for span in finished if span.kind == SpanKind.SERVER]
    (meta,) = [span for span in children(finished, request) if span.name == "meta mark_read"]
    assert meta.kind == SpanKind.CLIENT and meta.attributes["kirim.meta.outcome"] == "ok"
    assert meta.attributes["kirim.request_id"] == answer["X-Request-Id"]
    names = {span.name for span in in_trace(finished, request.context.trace_id)}
    assert {"meta mark_read", "db.query", "deliver message.read", "subscriber POST"} <= names

    (line,) = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "kirim.requests"]
    assert line["trace_id"] == format(request.context.trace_id, "032x")
    assert line["request_id"] == answer["X-Request-Id"]


def test_with_traces_off_no_span_is_made_and_events_carry_no_trace(deliver, phone_number, receiver):  # noqa: F811
    subscribe(phone_number.org, receiver, events=["message.received"])
    assert deliver(inbound(phone_number, "wamid.UNTRACED")).status_code == 200
    from outbox.models import Event

    assert Event.objects.get().trace_parent == ""
