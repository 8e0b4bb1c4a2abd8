"""Sending through POST /v1/{phone_number_id}/messages: validation, pass-through, stored rows,
Meta refusing."""

import json

import pytest

from inbox.models import Direction, Message, Status
from inbox.tests.sends import TO, meta_accepts_sends, send, text_body
from testing.meta import as_the_client_sent_it, graph_messages_url


def test_a_text_send_is_passed_through_and_stored_accepted(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    body = text_body(context={"message_id": "wamid.REPLYTO"})

    response = send(api, phone_number, body)

    assert response.status_code == 200
    data = response.json()["data"]
    row = Message.objects.get()
    assert {k: data[k] for k in ("id", "object", "direction", "status", "message_id", "to", "type")} == {
        "id": row.external_id, "object": "message", "direction": "outbound", "status": "accepted",
        "message_id": "wamid.SENT1", "to": TO, "type": "text",
    }  # fmt: skip
    assert data["created_at"]
    assert as_the_client_sent_it(json.loads(meta.calls[0].request.body)) == body
    assert meta.calls[0].request.headers["Authorization"] == f"Bearer {phone_number.access_token}"
    assert (row.direction, row.status, row.wamid, row.contact_wa_id, row.text) == (
        Direction.OUTBOUND, Status.ACCEPTED, "wamid.SENT1", TO, "Halo!",
    )  # fmt: skip
    assert row.payload == body


@pytest.mark.parametrize(
    "kind, content",
    [
        ("image", {"link": "https://example.com/a.jpg", "caption": "menu"}),
        ("document", {"id": "1003383421387256", "filename": "invoice.pdf"}),
        ("template", {"name": "order_update", "language": {"code": "id"}}),
        ("location", {"latitude": -6.2, "longitude": 106.8, "name": "Toko"}),
        ("reaction", {"message_id": "wamid.X", "emoji": "\U0001f44d"}),
        ("interactive", {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": []}}),
        ("contacts", [{"name": {"formatted_name": "Budi"}}]),
    ],
)
def test_other_types_pass_through(api, phone_number, meta, kind, content):
    meta_accepts_sends(meta, phone_number)
    body = {"messaging_product": "whatsapp", "to": TO, "type": kind, kind: content}

    assert send(api, phone_number, body).status_code == 200
    assert as_the_client_sent_it(json.loads(meta.calls[0].request.body)) == body


@pytest.mark.parametrize(
    "body, code, param",
    [
        ({"messaging_product": "whatsapp", "to": TO, "type": "text"}, "missing_required_field", "text"),
        (text_body(""), "invalid_field_value", "text.body"),
        (text_body("   "), "invalid_field_value", "text.body"),
        (text_body("x" * 4097), "invalid_field_value", "text.body"),
        (text_body(None), "missing_required_field", "text.body"),
        ({**text_body(), "text": "hi"}, "invalid_field_value", "text"),
        ({"messaging_product": "whatsapp", "to": TO, "type": "image", "image": {"caption": "x"}}, "missing_required_field", "image.id"),
        ({"messaging_product": "whatsapp", "to": TO, "type": "template", "template": {}}, "missing_required_field", "template.name"),
        ({"messaging_product": "whatsapp", "to": TO, "type": "contacts", "contacts": []}, "invalid_field_value", "contacts"),
        ({**text_body(), "type": "hologram"}, "invalid_field_value", "type"),
        ({**text_body(), "to": 6281234}, "invalid_field_value", "to"),
        ({k: v for k, v in text_body().items() if k != "to"}, "missing_required_field", "to"),
        ({**text_body(), "messaging_product": "sms"}, "invalid_field_value", "messaging_product"),
        ({**text_body(), "recipient_type": "group"}, "invalid_field_value", "recipient_type"),
        ({**text_body(), "context": {"message_id": 5}}, "invalid_field_value", "context.message_id"),
    ],
)  # fmt: skip
def test_what_meta_would_refuse_is_400_and_stores_nothing(api, phone_number, meta, body, code, param):
    response = send(api, phone_number, body)

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)
    assert not Message.objects.exists()
    assert len(meta.calls) == 0


def test_a_4096_character_text_is_fine(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    assert send(api, phone_number, text_body("x" * 4096)).status_code == 200


def test_meta_refusing_a_send_keeps_a_failed_row_and_answers_502(api, phone_number, meta):
    meta_error = {"message": "(#131030) Recipient phone number not in allowed list", "type": "OAuthException",
                  "code": 131030, "fbtrace_id": "AXy"}  # fmt: skip
    meta.post(graph_messages_url(phone_number), status=400, json={"error": meta_error})

    response = send(api, phone_number, text_body())

    assert response.status_code == 502
    assert response.json()["error"]["upstream"]["code"] == 131030
    row = Message.objects.get()
    assert row.status == Status.FAILED and row.wamid is None
    assert row.error["code"] == 131030 and row.error["fbtrace_id"] == "AXy"


def test_meta_answering_without_a_wamid_is_a_failed_send(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json={"messaging_product": "whatsapp", "messages": []})

    assert send(api, phone_number, text_body()).status_code == 502
    assert Message.objects.get().status == Status.FAILED


def test_a_nul_character_anywhere_in_the_body_is_400_naming_where(api, phone_number, meta):
    body = text_body()
    body["text"]["preview\x00"] = True
    response = send(api, phone_number, {**text_body(), "context": {"message_id": "wamid.\x00"}})
    nested = send(api, phone_number, body)

    assert response.json()["error"]["param"] == "context.message_id"
    assert nested.status_code == 400 and nested.json()["error"]["param"] == "text"
    assert not Message.objects.exists()
