"""Meta's own API at Kirim (/{version}/...): Meta's answers and errors over the same services as /v1/."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from inbox.models import Direction, Message, Status
from inbox.tests.graph_surface import (
    META_REFUSAL,
    META_SENT,
    SEND,
    assert_meta_error,
    messages_url,
    read_body,
)
from testing.meta import as_the_client_sent_it, graph_messages_url


@pytest.mark.parametrize("version", ["v13.0", "v14.0", "v23.0", "v27.0"])
def test_a_read_receipt_answers_success_true_on_any_version(
    api, phone_number, make_message, meta_accepts_reads, version
):
    message = make_message(phone_number)

    response = api.post(messages_url(phone_number, version), read_body(message.wamid), format="json")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    message.refresh_from_db()
    assert message.status == Status.READ
    assert json.loads(meta_accepts_reads.calls[0].request.body)["message_id"] == message.wamid


def test_a_retried_receipt_answers_the_same_without_calling_meta(api, phone_number, make_message, meta_accepts_reads):
    message = make_message(phone_number)

    answers = [api.post(messages_url(phone_number), read_body(message.wamid), format="json") for _ in range(2)]

    assert [a.json() for a in answers] == [{"success": True}] * 2
    assert len(meta_accepts_reads.calls) == 1


def test_typing_goes_to_meta_and_a_null_typing_indicator_is_none(api, phone_number, make_message, meta_accepts_reads):
    typing, plain = make_message(phone_number), make_message(phone_number, contact="6281200000002")

    api.post(messages_url(phone_number), read_body(typing.wamid, typing_indicator={"type": "text"}), format="json")
    api.post(messages_url(phone_number), read_body(plain.wamid, typing_indicator=None), format="json")

    sent = [json.loads(call.request.body) for call in meta_accepts_reads.calls]
    assert sent[0]["typing_indicator"] == {"type": "text"}
    assert "typing_indicator" not in sent[1]


def test_a_send_answers_metas_shape_and_keeps_the_row(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json=META_SENT)

    response = api.post(messages_url(phone_number), SEND, format="json")

    assert response.status_code == 200
    assert response.json() == META_SENT
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert (message.wamid, message.status, message.contact_wa_id) == ("wamid.SENT1", Status.ACCEPTED, "6281234567801")


TEMPLATE_SEND = {"messaging_product": "whatsapp", "to": "+62 812-3456-7801", "type": "template",
                 "template": {"name": "promo_image", "language": {"code": "en_US"}}}  # fmt: skip


@pytest.mark.parametrize("message_status", ["accepted", "held_for_quality_assessment"])
def test_metas_message_status_is_passed_on_as_meta_gave_it(api, phone_number, meta, message_status):
    paced = {**META_SENT, "messages": [{"id": "wamid.SENT1", "message_status": message_status}]}
    meta.post(graph_messages_url(phone_number), json=paced)
    headers = {"HTTP_IDEMPOTENCY_KEY": "promo-1"}

    first, replayed = (api.post(messages_url(phone_number), TEMPLATE_SEND, format="json", **headers) for _ in range(2))

    assert first.json() == replayed.json() == paced
    assert Message.objects.get().message_status == message_status
    on_v1 = api.get(f"/v1/{phone_number.phone_number_id}/messages/{Message.objects.get().external_id}")
    assert on_v1.json()["data"]["message_status"] == message_status


def test_a_send_answers_metas_message_status_on_v1_too_and_null_when_meta_gave_none(api, phone_number, meta):
    meta.post(
        graph_messages_url(phone_number),
        json={**META_SENT, "messages": [{"id": "wamid.PACED", "message_status": "accepted"}]},
    )
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    v1_url = f"/v1/{phone_number.phone_number_id}/messages"

    paced, plain = (api.post(v1_url, body, format="json").json()["data"] for body in (TEMPLATE_SEND, SEND))

    assert (paced["message_id"], paced["message_status"]) == ("wamid.PACED", "accepted")
    assert (plain["message_id"], plain["message_status"]) == ("wamid.SENT1", None)


@pytest.mark.parametrize("prefix", ["/v23.0", "/v1"])
def test_null_is_accepted_where_meta_accepts_it_and_passed_on(api, phone_number, meta, prefix):
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    body = {**SEND, "context": None, "recipient_type": None, "image": None}

    response = api.post(f"{prefix}/{phone_number.phone_number_id}/messages", body, format="json")

    assert response.status_code == 200, response.content
    assert as_the_client_sent_it(json.loads(meta.calls[0].request.body)) == body


def test_an_idempotency_key_replays_metas_answer_exactly_with_one_send(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-4411"}

    first, again = (api.post(messages_url(phone_number), SEND, format="json", **headers) for _ in range(2))

    assert first.json() == again.json() == META_SENT
    assert again["Idempotent-Replayed"] == "true"
    assert len(meta.calls) == 1


def test_the_same_key_on_v1_and_on_metas_shape_is_no_second_send(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-4411"}
    api.post(f"/v1/{phone_number.phone_number_id}/messages", SEND, format="json", **headers)

    response = api.post(messages_url(phone_number), SEND, format="json", **headers)

    assert_meta_error(response, 422, 100)
    assert len(meta.calls) == 1


def test_unknown_and_foreign_wamids_are_131009_with_the_same_body(
    api, phone_number, foreign_number, make_message, meta
):
    foreign = make_message(foreign_number)

    unknown = api.post(messages_url(phone_number), read_body("wamid.NOPE"), format="json")
    other = api.post(messages_url(phone_number), read_body(foreign.wamid), format="json")

    for response in (unknown, other):
        error = assert_meta_error(response, 400, 131009)
        assert error["fbtrace_id"] == response["X-Request-Id"]
    strip = lambda r: {k: v for k, v in r.json()["error"].items() if k != "fbtrace_id"}
    assert strip(unknown) == strip(other)
    assert len(meta.calls) == 0


def test_an_outbound_wamid_is_131009(api, phone_number, make_message, meta):
    outbound = make_message(phone_number, direction=Direction.OUTBOUND)

    assert_meta_error(api.post(messages_url(phone_number), read_body(outbound.wamid), format="json"), 400, 131009)


def test_unknown_and_foreign_numbers_are_metas_missing_object(api, phone_number, foreign_number, meta):
    for number_id in ("106540352249999", foreign_number.phone_number_id):
        response = api.post(f"/v23.0/{number_id}/messages", SEND, format="json")
        assert_meta_error(response, 400, 100, subcode=33)


@pytest.mark.parametrize(
    "body", [{**SEND, "to": None}, {**SEND, "text": {"body": ""}}, {"messaging_product": "whatsapp"}, ["a list"]]
)
def test_bad_bodies_are_code_100_naming_the_field(api, phone_number, meta, body):
    error = assert_meta_error(api.post(messages_url(phone_number), body, format="json"), 400, 100)
    assert error["type"] == "OAuthException"
    assert len(meta.calls) == 0


@pytest.mark.parametrize(("raw", "content_type"), [("{not json", "application/json"), ("a=1", "text/plain")])
def test_a_body_that_is_not_json_is_code_100(api, phone_number, raw, content_type):
    response = api.post(messages_url(phone_number), raw, content_type=content_type)

    assert_meta_error(response, 400, 100)


@pytest.mark.parametrize("authorization", [None, "Bearer kirim_live_wrong", "Bearer EAAG-a-meta-token"])
def test_a_bad_key_is_190(phone_number, authorization):
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.post(messages_url(phone_number), SEND, format="json", **headers)

    assert_meta_error(response, 401, 190)


def test_metas_refusal_passes_on_as_meta_gave_it_and_the_row_fails(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), status=400, json={"error": META_REFUSAL})

    response = api.post(messages_url(phone_number), SEND, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": META_REFUSAL}
    assert Message.objects.get(direction=Direction.OUTBOUND).status == Status.FAILED


def test_meta_unreachable_is_a_transient_code_2(api, phone_number, make_message, meta):
    message = make_message(phone_number)
    meta.post(graph_messages_url(phone_number), status=502, body="<html>Bad gateway</html>")

    error = assert_meta_error(api.post(messages_url(phone_number), read_body(message.wamid), format="json"), 503, 2)

    assert error["is_transient"] is True


def test_the_rate_limit_is_80007_with_retry_after(api, phone_number, make_message, meta_accepts_reads, settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    message = make_message(phone_number)
    api.post(messages_url(phone_number), read_body(message.wamid), format="json")

    limited = api.post(messages_url(phone_number), read_body(message.wamid), format="json")

    assert_meta_error(limited, 429, 80007)
    assert 1 <= int(limited["Retry-After"]) <= 60


# Queries: the same services as /v1/, so the same counts --------------------------------------------


def test_a_read_retry_costs_what_it_costs_on_v1(api, phone_number, make_message, meta_accepts_reads,
                                                 django_assert_num_queries):  # fmt: skip
    message = make_message(phone_number)
    api.post(messages_url(phone_number), read_body(message.wamid), format="json")

    # key + org with the rate-limit window (one statement on PostgreSQL, two on SQLite), the message
    # by wamid with its number: as receipts/tests/test_api.py counts for /v1/.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        assert api.post(messages_url(phone_number), read_body(message.wamid), format="json").status_code == 200


def test_a_send_costs_what_it_costs_on_v1(api, phone_number, meta, django_assert_num_queries):
    wamids = iter(["wamid.V1", "wamid.GRAPH"])
    meta.add_callback(
        "POST",
        graph_messages_url(phone_number),
        lambda _: (200, {}, json.dumps({**META_SENT, "messages": [{"id": next(wamids)}]})),
    )
    v1_url = f"/v1/{phone_number.phone_number_id}/messages"
    api.get("/v1/me")  # the key's first use of the minute writes last_used_at: not part of either send
    with CaptureQueriesContext(connection) as on_v1:
        api.post(v1_url, SEND, format="json")

    with django_assert_num_queries(len(on_v1.captured_queries)):
        assert api.post(messages_url(phone_number), SEND, format="json").status_code == 200


def test_the_surface_has_its_own_openapi_document_and_docs_page(client, db):
    schema = client.get("/v1/graph/openapi.json").json()
    docs = client.get("/v1/graph/docs")

    assert set(schema["paths"]) == {
        "/{version}/{phone_number_id}/messages",
        "/{version}/{phone_number_id}/media",
        "/{version}/{phone_number_id}/block_users",
        "/{version}/{waba_id}/message_templates",
        "/{version}/{media_id}",
        "/{version}/{media_id}/content",
    }
    assert not any(path.startswith("/{version}") for path in client.get("/v1/openapi.json").json()["paths"])
    assert docs.status_code == 200 and b"graph/openapi.json" in docs.content
