"""Meta faults handled deliberately: what is retried, how often, and what is never sent twice."""

import pytest
import requests
import urllib3
from django.conf import settings
from django.db import transaction

from core.db.waiting import TransactionOpenWhileWaiting
from core.errors import UpstreamError
from meta import graph as meta_graph
from testing.meta import graph_messages_url

OK_READ = {"json": {"success": True}}
OK_SEND = {"json": {"messaging_product": "whatsapp", "messages": [{"id": "wamid.OK"}]}}
SEND = {"messaging_product": "whatsapp", "to": "628", "type": "text", "text": {"body": "hi"}}
NEVER_CONNECTED = requests.ConnectionError(
    urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))
)

TRANSIENT = {
    "http-500": {"status": 500, "json": {"error": {"message": "(#131000) Something went wrong", "code": 131000}}},
    "code-131000": {"status": 400, "json": {"error": {"message": "(#131000) Something went wrong", "code": 131000}}},
    "code-2": {"status": 400, "json": {"error": {"message": "Service temporarily unavailable", "code": 2}}},
    "read-timeout": {"body": requests.ReadTimeout("slow")},
    "refused": {"body": NEVER_CONNECTED},
    "connect-timeout": {"body": requests.ConnectTimeout("slow")},
    "not-json": {"status": 502, "body": "<html>Bad gateway</html>"},
}


@pytest.fixture
def number(phone_number):
    return phone_number


@pytest.mark.parametrize("failure", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_receipt_is_retried_through_transient_faults(number, meta, failure):
    url = graph_messages_url(number)
    meta.post(url, **failure)
    meta.post(url, **OK_READ)

    meta_graph.mark_read(number, "wamid.X")

    assert len(meta.calls) == 2


@pytest.mark.parametrize("failure", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_retries_stop_at_max_attempts_with_the_last_error(number, meta, settings, failure):
    settings.META_MAX_ATTEMPTS = 3
    meta.post(graph_messages_url(number), **failure)

    with pytest.raises(UpstreamError):
        meta_graph.mark_read(number, "wamid.X")
    assert len(meta.calls) == 3


def test_retries_stop_when_the_time_budget_is_spent(number, meta, settings, monkeypatch):
    settings.META_MAX_ATTEMPTS, settings.META_RETRY_BUDGET = 10, 0.3
    monkeypatch.setattr("meta.graph.client.BACKOFF_FIRST", 0.2)
    meta.post(graph_messages_url(number), **TRANSIENT["http-500"])

    with pytest.raises(UpstreamError):
        meta_graph.mark_read(number, "wamid.X")
    assert len(meta.calls) < 10


def throughput_refusal(code):
    return {"status": 400, "json": {"error": {"message": f"(#{code}) Rate limit", "code": code, "type": "OAuthException",
                                              "fbtrace_id": "AThroughput"}}}  # fmt: skip


@pytest.mark.parametrize(("code", "wait"), [(130429, 0.011), (131056, 0.066)])
def test_a_send_refused_for_throughput_is_sent_again_after_metas_wait(number, meta, monkeypatch, code, wait):
    """Meta did not take it, so sending again duplicates nothing; the wait is the limit's."""
    monkeypatch.setattr(meta_graph.client, "RETRY_AFTER", {130429: 0.011, 131056: 0.066})
    waits = []
    monkeypatch.setattr(meta_graph.client.time, "sleep", waits.append)
    meta.post(graph_messages_url(number), **throughput_refusal(code))
    meta.post(graph_messages_url(number), **OK_SEND)

    assert meta_graph.send_message(number, {"type": "text"}).wamid
    assert len(meta.calls) == 2 and waits == [wait]


@pytest.mark.parametrize(("code", "told"), [(131048, "spam rate limit"), (131049, "marketing cap")])
def test_a_send_refused_for_spam_or_the_marketing_cap_is_never_retried_and_says_why(number, meta, code, told):
    meta.post(graph_messages_url(number), **throughput_refusal(code))

    with pytest.raises(UpstreamError) as error:
        meta_graph.send_message(number, {"type": "text"})
    assert len(meta.calls) == 1
    assert error.value.upstream["code"] == code and told in error.value.message and "Not retried" in error.value.message
    assert error.value.meta_error["message"] == f"(#{code}) Rate limit"  # Meta's own, for /{version}/


def test_throughput_that_stays_refused_gives_up_within_the_attempts(number, meta):
    meta.post(graph_messages_url(number), **throughput_refusal(130429))

    with pytest.raises(UpstreamError) as error:
        meta_graph.mark_read(number, "wamid.X")
    assert error.value.upstream["code"] == 130429 and "throughput" in error.value.message
    assert len(meta.calls) == settings.META_MAX_ATTEMPTS


@pytest.mark.parametrize("failure", ["http-500", "code-131000", "read-timeout", "not-json"])
def test_a_send_meta_may_have_received_is_not_retried(number, meta, failure):
    meta.post(graph_messages_url(number), **TRANSIENT[failure])
    meta.post(graph_messages_url(number), **OK_SEND)

    with pytest.raises(UpstreamError):
        meta_graph.send_message(number, SEND)
    assert len(meta.calls) == 1


@pytest.mark.parametrize("failure", ["refused", "connect-timeout"])
def test_a_send_meta_never_received_is_retried(number, meta, failure):
    meta.post(graph_messages_url(number), **TRANSIENT[failure])
    meta.post(graph_messages_url(number), **OK_SEND)

    assert meta_graph.send_message(number, SEND).wamid == "wamid.OK"
    assert len(meta.calls) == 2


TEMPLATES_PAGE = {
    "data": [{"name": "order_shipped", "language": "en_US", "status": "APPROVED", "id": "1"}],
    "paging": {"cursors": {"before": "QVFIUb", "after": "QVFIUa"}, "next": "https://graph.facebook.com/..."},
}


@pytest.fixture
def waba_number(number):
    number.waba_id = "102290129340398"
    number.save(update_fields=["waba_id"])
    return number


def templates_url(number):
    return f"{settings.META_GRAPH_URL}/{number.waba_id}/message_templates"


def test_templates_page_with_metas_cursor_and_filters(waba_number, meta):
    meta.get(templates_url(waba_number), json=TEMPLATES_PAGE)

    page = meta_graph.message_templates(
        waba_number, after="QVFIUz", limit=2, filters={"status": "APPROVED", "access_token": "not passed on"}
    )

    assert page.templates == TEMPLATES_PAGE["data"]
    assert (page.after, page.before) == ("QVFIUa", None)  # no `previous`: this is the first page
    request = meta.calls[0].request
    assert request.params == {"status": "APPROVED", "limit": "2", "after": "QVFIUz"}
    assert request.headers["Authorization"] == f"Bearer {waba_number.access_token}"


def test_the_last_templates_page_has_no_next_cursor(waba_number, meta):
    meta.get(templates_url(waba_number), json={"data": [], "paging": {"cursors": {"after": "QVFIUa"}}})

    assert meta_graph.message_templates(waba_number).after is None


def test_templates_are_retried_through_transient_faults(waba_number, meta):
    meta.get(templates_url(waba_number), **TRANSIENT["http-500"])
    meta.get(templates_url(waba_number), json=TEMPLATES_PAGE)

    assert meta_graph.message_templates(waba_number).templates == TEMPLATES_PAGE["data"]
    assert len(meta.calls) == 2


def test_templates_of_a_number_without_waba_id_are_an_upstream_error(number, meta):
    with pytest.raises(UpstreamError):
        meta_graph.message_templates(number)
    assert len(meta.calls) == 0


def test_metas_whole_error_object_travels_with_the_upstream_error(number, meta):
    error = {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
             "error_subcode": 2494010, "fbtrace_id": "AbC"}  # fmt: skip
    meta.post(graph_messages_url(number), status=400, json={"error": error})

    with pytest.raises(UpstreamError) as failure:
        meta_graph.send_message(number, SEND)
    assert failure.value.meta_error == error


def test_templates_summary_is_asked_for_and_passed_on(waba_number, meta):
    summary = {"total_count": 31, "message_template_limit": 250}
    meta.get(templates_url(waba_number), json={**TEMPLATES_PAGE, "summary": summary})

    page = meta_graph.message_templates(waba_number, filters={"summary": "total_count,message_template_limit"})

    assert page.summary == summary
    assert meta.calls[0].request.params["summary"] == "total_count,message_template_limit"


def test_a_call_to_meta_inside_a_transaction_fails_loudly(number, meta):
    meta.post(graph_messages_url(number), **OK_READ)

    with transaction.atomic(), pytest.raises(TransactionOpenWhileWaiting):
        meta_graph.mark_read(number, "wamid.X")

    assert len(meta.calls) == 0
    meta_graph.mark_read(number, "wamid.X")  # outside one it goes through
    assert len(meta.calls) == 1
