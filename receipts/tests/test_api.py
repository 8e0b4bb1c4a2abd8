"""POST /v1/{phone_number_id}/messages with `status: "read"`: the seed page's behaviour, end to end."""

import json

import pytest
import requests
from django.db import connection
from rest_framework import serializers

from conftest import assert_error
from inbox.models import Direction, Message, ReadVia, Status
from receipts.api import ReadReceiptOutSerializer
from testing.meta import graph_messages_url


def receipt(wamid, **extra):
    return {"messaging_product": "whatsapp", "status": "read", "message_id": wamid, **extra}


def post(api, phone_number, body):
    return api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")


def test_first_read_flips_the_message_and_answers_the_seed_shape(api, phone_number, make_message, meta_accepts_reads):
    message = make_message(phone_number)

    response = post(api, phone_number, receipt(message.wamid))

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "data": {"id": message.external_id, "object": "message", "status": "read", "message_id": message.wamid},
        "request_id": response["X-Request-Id"],
    }
    assert len(meta_accepts_reads.calls) == 1
    sent = meta_accepts_reads.calls[0].request
    assert json.loads(sent.body) == receipt(message.wamid)
    assert sent.headers["Authorization"] == f"Bearer {phone_number.access_token}"
    message.refresh_from_db()
    assert message.status == Status.READ
    assert message.read_at is not None
    assert message.read_via == ReadVia.API
    assert message.read_by_key.org_id == phone_number.org_id


def test_retry_answers_the_same_body_without_calling_meta(api, phone_number, make_message, meta_accepts_reads):
    message = make_message(phone_number)
    first = post(api, phone_number, receipt(message.wamid)).json()

    second = post(api, phone_number, receipt(message.wamid)).json()

    assert second["data"] == first["data"]
    assert second["request_id"] != first["request_id"]
    assert len(meta_accepts_reads.calls) == 1


def test_already_read_by_anyone_makes_no_call_even_with_typing(api, phone_number, make_message, meta):
    message = make_message(phone_number, status=Status.READ, read_via=ReadVia.ADMIN)

    response = post(api, phone_number, receipt(message.wamid, typing_indicator={"type": "text"}))

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "read"
    assert len(meta.calls) == 0


def test_typing_indicator_is_sent_upstream_only_when_asked(api, phone_number, make_message, meta_accepts_reads):
    with_typing, without_typing = make_message(phone_number, contact="1"), make_message(phone_number, contact="2")

    post(api, phone_number, receipt(with_typing.wamid, typing_indicator={"type": "text"}))
    post(api, phone_number, receipt(without_typing.wamid))

    bodies = [json.loads(call.request.body) for call in meta_accepts_reads.calls]
    assert bodies[0]["typing_indicator"] == {"type": "text"}
    assert "typing_indicator" not in bodies[1]


def test_earlier_unread_messages_of_the_conversation_are_read_too(api, phone_number, make_message, meta_accepts_reads):
    earlier = [make_message(phone_number, contact="621") for _ in range(3)]
    target = make_message(phone_number, contact="621")
    later = make_message(phone_number, contact="621")
    outbound = make_message(phone_number, contact="621", direction=Direction.OUTBOUND, status=Status.DELIVERED)
    other_contact = make_message(phone_number, contact="622", timestamp=earlier[0].timestamp)

    assert post(api, phone_number, receipt(target.wamid)).status_code == 200

    statuses = dict(Message.objects.values_list("pk", "status"))
    assert all(statuses[m.pk] == Status.READ for m in [*earlier, target])
    assert statuses[later.pk] == Status.RECEIVED
    assert statuses[outbound.pk] == Status.DELIVERED
    assert statuses[other_contact.pk] == Status.RECEIVED
    assert len(meta_accepts_reads.calls) == 1


def test_unknown_wamid_is_404(api, phone_number, meta):
    assert_error(post(api, phone_number, receipt("wamid.UNKNOWN")), 404, "resource_not_found", "message_id")
    assert len(meta.calls) == 0


def test_another_orgs_wamid_answers_exactly_like_an_unknown_one(api, phone_number, foreign_number, make_message, meta):
    foreign = make_message(foreign_number)

    unknown = assert_error(post(api, phone_number, receipt("wamid.UNKNOWN")), 404, "resource_not_found", "message_id")
    other = assert_error(post(api, phone_number, receipt(foreign.wamid)), 404, "resource_not_found", "message_id")

    assert {**other, "request_id": None} == {**unknown, "request_id": None}
    foreign.refresh_from_db()
    assert foreign.status == Status.RECEIVED
    assert len(meta.calls) == 0


def test_a_wamid_of_another_number_of_the_same_org_is_404(api, phone_number, second_number, make_message, meta):
    message = make_message(second_number)

    assert_error(post(api, phone_number, receipt(message.wamid)), 404, "resource_not_found", "message_id")
    assert len(meta.calls) == 0


def test_outbound_wamid_is_400(api, phone_number, make_message, meta):
    message = make_message(phone_number, direction=Direction.OUTBOUND)

    assert_error(post(api, phone_number, receipt(message.wamid)), 400, "invalid_field_value", "message_id")
    assert len(meta.calls) == 0


@pytest.mark.parametrize(
    "meta_status, meta_error",
    [
        (
            400,
            {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "error_data": {"messaging_product": "whatsapp", "details": "More than 24 hours have passed"},
                "fbtrace_id": "AbCdEf123",
            },
        ),
        (500, {"message": "(#131000) Something went wrong", "code": 131000, "fbtrace_id": "Zz9"}),
    ],
)
def test_meta_error_is_502_with_metas_code_and_the_message_stays_unread(
    api, phone_number, make_message, meta, meta_status, meta_error
):
    message = make_message(phone_number)
    meta.post(graph_messages_url(phone_number), status=meta_status, json={"error": meta_error})

    error = assert_error(post(api, phone_number, receipt(message.wamid)), 502, "whatsapp_upstream_error")

    assert error["type"] == "api_error"
    assert error["upstream"]["code"] == meta_error["code"]
    assert error["upstream"]["message"] == meta_error["message"]
    assert error["upstream"]["fbtrace_id"] == meta_error["fbtrace_id"]
    assert error["upstream"]["http_status"] == meta_status
    message.refresh_from_db()
    assert message.status == Status.RECEIVED
    assert message.read_at is None


def test_after_an_upstream_failure_a_retry_calls_meta_again(api, phone_number, make_message, meta):
    message = make_message(phone_number)
    url = graph_messages_url(phone_number)
    meta.post(url, status=400, json={"error": {"message": "(#131026) Message undeliverable", "code": 131026}})
    meta.post(url, json={"success": True})

    assert post(api, phone_number, receipt(message.wamid)).status_code == 502
    assert post(api, phone_number, receipt(message.wamid)).status_code == 200
    assert len(meta.calls) == 2


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.ConnectTimeout("slow")},
        {"body": requests.ConnectionError("refused")},
        {"body": "<html>oops</html>", "status": 200, "content_type": "text/html"},
        {"json": {"success": False}},
    ],
    ids=["timeout", "connection-refused", "not-json", "not-success"],
)
def test_unreachable_or_odd_meta_is_502(api, phone_number, make_message, meta, failure):
    message = make_message(phone_number)
    meta.post(graph_messages_url(phone_number), **failure)

    assert_error(post(api, phone_number, receipt(message.wamid)), 502, "whatsapp_upstream_error")
    message.refresh_from_db()
    assert message.status == Status.RECEIVED


@pytest.mark.parametrize(
    "body, status, code, param",
    [
        ({"messaging_product": "whatsapp", "status": "read"}, 400, "missing_required_field", "message_id"),
        ({"status": "read", "message_id": "wamid.X"}, 400, "missing_required_field", "messaging_product"),
        (receipt("wamid.X", messaging_product="sms"), 400, "invalid_field_value", "messaging_product"),
        (receipt("wamid.X", status="delivered"), 400, "invalid_field_value", "status"),
        (receipt(123), 400, "invalid_field_value", "message_id"),
        (receipt(""), 400, "invalid_field_value", "message_id"),
        (receipt("w" * 256), 400, "invalid_field_value", "message_id"),
        (receipt("wamid.X", typing_indicator={"type": "audio"}), 400, "invalid_field_value", "typing_indicator.type"),
        (receipt("wamid.X", typing_indicator="text"), 400, "invalid_field_value", "typing_indicator"),
        (receipt("wamid.X", typing_indicator={}), 400, "missing_required_field", "typing_indicator.type"),
        (receipt("wamid.X", type="text"), 400, "invalid_field_value", "type"),
        ({"messaging_product": "whatsapp"}, 400, "missing_required_field", "type"),
        ([receipt("wamid.X")], 400, "invalid_json", None),
        ("just a string", 400, "invalid_json", None),
    ],
)
def test_bad_bodies_are_400_with_the_field_named(api, phone_number, meta, body, status, code, param):
    assert_error(post(api, phone_number, body), status, code, param)
    assert len(meta.calls) == 0


def test_a_255_char_wamid_is_accepted_and_looked_up(api, phone_number, meta):
    assert_error(post(api, phone_number, receipt("w" * 255)), 404, "resource_not_found", "message_id")


def test_body_that_is_not_json_is_400(api, phone_number):
    response = api.generic(
        "POST", f"/v1/{phone_number.phone_number_id}/messages", "{not json", content_type="application/json"
    )
    assert_error(response, 400, "invalid_json")


def test_body_that_is_not_declared_json_is_415(api, phone_number):
    response = api.generic(
        "POST", f"/v1/{phone_number.phone_number_id}/messages", "status=read", content_type="text/plain"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_and_foreign_phone_number_ids_are_the_same_404(api, phone_number, foreign_number, meta):
    unknown = assert_error(post(api, foreign_number, receipt("wamid.X")), 404, "resource_not_found", "phone_number_id")
    foreign_number.phone_number_id = "123456789"
    other = assert_error(post(api, foreign_number, receipt("wamid.X")), 404, "resource_not_found", "phone_number_id")
    assert {**other, "request_id": None} == {**unknown, "request_id": None}


def test_retry_of_an_already_read_message_costs_2_queries_on_postgresql(
    api, phone_number, make_message, meta_accepts_reads, django_assert_num_queries
):
    message = make_message(phone_number)
    post(api, phone_number, receipt(message.wamid))

    # 1 API key + org (unique digest index) and, in the same statement on PostgreSQL, the org's
    # rate-limit window (an upsert; a statement of its own on SQLite); 2 message by wamid (unique
    # index) with its phone number.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        assert post(api, phone_number, receipt(message.wamid)).status_code == 200


def test_first_read_costs_10_queries_on_postgresql(
    api, phone_number, make_message, meta_accepts_reads, django_assert_num_queries
):
    for _ in range(5):
        make_message(phone_number)
    message = make_message(phone_number)

    # 1 API key + org with the rate-limit window (two statements on SQLite), 2 last_used_at (at most
    # once a minute), 3 message by wamid with its number, 4 claim it (conditional UPDATE), then Meta's
    # call with no transaction open, 5 SAVEPOINT, 6 lock the conversation's unread rows in pk order,
    # 7 UPDATE them, 8 the org's webhook subscriptions (for message.read), 9 RELEASE, 10 the audit entry.
    with django_assert_num_queries(10 if connection.vendor == "postgresql" else 11) as captured:
        assert post(api, phone_number, receipt(message.wamid)).status_code == 200
    locking = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locking) == (1 if connection.vendor == "postgresql" else 0)
    assert Message.objects.filter(status=Status.READ).count() == 6


def test_the_receipt_answer_is_what_its_documented_fields_give(phone_number, make_message):
    message = make_message(phone_number, status=Status.READ)
    answer = ReadReceiptOutSerializer(message)

    by_fields = serializers.Serializer.to_representation(answer, message)

    assert (
        answer.data
        == by_fields
        == {
            "id": message.external_id,
            "object": "message",
            "status": "read",
            "message_id": message.wamid,
        }
    )
