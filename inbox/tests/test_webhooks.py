"""Meta's webhooks in: signatures, verification, every payload shape Meta documents, at-least-once
and out-of-order delivery, and bounded work per payload."""

import json

import pytest
from django.db import connection
from django.test import Client

from conftest import assert_error
from fakemeta import payloads
from inbox.models import Conversation, Direction, Message, Status, WebhookEvent
from inbox.tests.webhook_payloads import CUSTOMER, documented_status, inbound_value, meta_payload, statuses_value
from testing.webhooks import WEBHOOK_URL as URL

# Shaped as the examples in Meta's webhook reference for each message type.
DOCUMENTED_INBOUND = {
    "text": (
        {"from": CUSTOMER, "id": "wamid.TEXT", "timestamp": "1749416383", "type": "text",
         "text": {"body": "Does it come in another color?"}},
        "Does it come in another color?",
    ),
    "image": (
        {"from": CUSTOMER, "id": "wamid.IMAGE", "timestamp": "1744344496", "type": "image",
         "image": {"caption": "Black jacket", "mime_type": "image/jpeg",
                   "sha256": "SfInY0s7ZBSWkGzq5GhbMbDbhk0NdjtpKSfIp2hN2ak=", "id": "1003383421387256"}},
        "Black jacket",
    ),
    "reaction": (
        {"from": CUSTOMER, "id": "wamid.REACTION", "timestamp": "1744344496", "type": "reaction",
         "reaction": {"message_id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1QjJGRjI1RjY", "emoji": "\U0001f44d"}},
        "\U0001f44d",
    ),
    "interactive": (
        {"context": {"from": "15550783881", "id": "wamid.ASKED"}, "from": CUSTOMER, "id": "wamid.BUTTONREPLY",
         "timestamp": "1744344496", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"id": "change-button", "title": "Change"}}},
        "Change",
    ),
    "list_reply": (
        {"from": CUSTOMER, "id": "wamid.LISTREPLY", "timestamp": "1744344496", "type": "interactive",
         "interactive": {"type": "list_reply",
                         "list_reply": {"id": "priority", "title": "Priority shipping", "description": "1 day"}}},
        "Priority shipping",
    ),
    "button": (
        {"context": {"from": "15550783881", "id": "wamid.TEMPLATE"}, "from": CUSTOMER, "id": "wamid.QUICKREPLY",
         "timestamp": "1744344496", "type": "button", "button": {"payload": "Unsubscribe", "text": "Stop promotions"}},
        "Stop promotions",
    ),
    "location": (
        {"from": CUSTOMER, "id": "wamid.LOCATION", "timestamp": "1744344496", "type": "location",
         "location": {"address": "1 Hacker Way, Menlo Park, CA 94025", "latitude": 37.483,
                      "longitude": -122.148, "name": "Main Campus"}},
        "Main Campus, 1 Hacker Way, Menlo Park, CA 94025",
    ),
    "contacts": (
        {"from": CUSTOMER, "id": "wamid.CONTACTS", "timestamp": "1744344496", "type": "contacts",
         "contacts": [{"name": {"first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara J. Johnson"},
                       "phones": [{"phone": "+1 (415) 555-0123", "wa_id": "14155550123", "type": "MOBILE"}]}]},
        "Barbara J. Johnson",
    ),
    "unsupported": (
        {"from": CUSTOMER, "id": "wamid.UNSUPPORTED", "timestamp": "1744344496", "type": "unsupported",
         "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                     "error_data": {"details": "Message type is currently not supported."}}],
         "unsupported": {"type": "edit"}},
        "",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", DOCUMENTED_INBOUND)
def test_documented_inbound_messages_are_stored(phone_number, deliver, kind):
    message, summary = DOCUMENTED_INBOUND[kind]

    assert deliver(meta_payload(inbound_value(message))).status_code == 200

    row = Message.objects.get()
    assert row.wamid == message["id"]
    assert row.direction == Direction.INBOUND and row.status == Status.RECEIVED
    assert row.phone_number == phone_number and row.org == phone_number.org
    assert row.contact_wa_id == CUSTOMER and row.contact_name == "Kerry Fisher"
    assert row.type == message["type"]
    assert row.text == summary
    assert row.payload == message
    assert int(row.timestamp.timestamp()) == int(message["timestamp"])
    assert WebhookEvent.objects.get().processed_at is not None


def test_the_same_webhook_twice_stores_one_row(phone_number, deliver):
    payload = meta_payload(inbound_value(DOCUMENTED_INBOUND["text"][0]))

    assert deliver(payload).status_code == 200
    assert deliver(payload).status_code == 200

    assert Message.objects.count() == 1
    assert WebhookEvent.objects.count() == 2  # both deliveries are kept raw


def test_a_repeated_wamid_does_not_undo_a_read(phone_number, deliver):
    payload = meta_payload(inbound_value(DOCUMENTED_INBOUND["text"][0]))
    deliver(payload)
    Message.objects.update(status=Status.READ)

    deliver(payload)

    assert Message.objects.get().status == Status.READ


@pytest.mark.parametrize(
    "payload",
    [
        meta_payload({**inbound_value(DOCUMENTED_INBOUND["text"][0]), "metadata": {"phone_number_id": "999999999"}}),
        meta_payload(statuses_value(documented_status("wamid.NOBODY", "delivered"))),
        meta_payload(statuses_value(documented_status("wamid.NOBODY", "deleted"))),
        meta_payload(inbound_value({"from": CUSTOMER, "id": "wamid.NEWKIND", "timestamp": "x", "type": "hologram"})),
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "account_update", "value": {}}]}]},
        [1, 2, 3],
    ],
    ids=[
        "unknown-number",
        "unknown-wamid",
        "unknown-status",
        "unknown-type",
        "other-object",
        "other-field",
        "not-object",
    ],
)
def test_well_signed_payloads_we_cannot_use_are_acknowledged_and_kept(phone_number, deliver, payload):
    response = deliver(payload)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert json.loads(event.body) == payload
    assert event.processed_at is not None


def test_unknown_types_are_stored_with_their_payload(phone_number, deliver):
    deliver(meta_payload(inbound_value({"from": CUSTOMER, "id": "wamid.NEW", "timestamp": "1", "type": "hologram"})))
    assert Message.objects.get().type == "hologram"


def test_a_well_signed_body_that_is_not_json_is_acknowledged_and_kept(db, deliver):
    assert deliver(None, raw=b"{not json").status_code == 200
    assert WebhookEvent.objects.get().body == "{not json"


def test_a_bug_while_applying_still_acknowledges_and_keeps_the_event(phone_number, deliver, break_inbound_storing):
    with break_inbound_storing(KeyError("surprise")):
        assert deliver(meta_payload(inbound_value(DOCUMENTED_INBOUND["text"][0]))).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.processed_at is None and "surprise" in event.error


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "md5=abc", "sha256=" + "0" * 64, "wrong-secret", "altered"],
)
def test_bad_signatures_are_rejected_and_nothing_is_stored(phone_number, settings, signature, caplog):
    body = json.dumps(meta_payload(inbound_value(DOCUMENTED_INBOUND["text"][0]))).encode()
    headers = {}
    if signature == "wrong-secret":
        headers["HTTP_X_HUB_SIGNATURE_256"] = payloads.sign(body, "not-the-app-secret")
    elif signature == "altered":
        headers["HTTP_X_HUB_SIGNATURE_256"] = payloads.sign(body, settings.META_APP_SECRET)
        body = body.replace(b"another color", b"another colour")
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature

    response = Client().post(URL, body, content_type="application/json", **headers)

    assert response.status_code == 401
    assert not Message.objects.exists() and not WebhookEvent.objects.exists()
    assert "security" in caplog.text


def test_verification_echoes_the_challenge_for_the_right_token(settings):
    response = Client().get(
        URL,
        {
            "hub.mode": "subscribe",
            "hub.verify_token": settings.META_WEBHOOK_VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": "TOKEN", "hub.challenge": "1"},
    {"hub.challenge": "1"},
])  # fmt: skip
def test_verification_refuses_a_wrong_token_or_mode(settings, params):
    params = {k: settings.META_WEBHOOK_VERIFY_TOKEN if v == "TOKEN" else v for k, v in params.items()}
    response = Client().get(URL, params)
    assert response.status_code == 403
    assert b"1" not in response.content


def test_a_100_message_payload_costs_a_fixed_number_of_queries(
    phone_number, make_message, deliver, django_assert_num_queries
):
    outbound = [make_message(phone_number, direction=Direction.OUTBOUND, status=Status.ACCEPTED) for _ in range(100)]
    messages = [payloads.text_message(f"wamid.BULK{n}", f"62812{n:04d}", f"hello {n}") for n in range(100)]
    value = {
        **inbound_value(messages[0]),
        "messages": messages,
        "statuses": [documented_status(m.wamid, ("sent", "delivered", "read")[n % 3]) for n, m in enumerate(outbound)],
    }

    # 1 SAVEPOINT, 2 numbers with whether their orgs have webhook subscriptions (none: no lookup of
    # them), 3 the conversations that know the senders' user ids, 4 bulk INSERT messages (5-7:
    # SQLite's variable limit splits it in four), 8 upsert their conversations, 9-11 one UPDATE per
    # status reached, 12-15 the prices: lock the messages not priced yet, give each its pricing, add
    # them to the tallies by template and by conversation, 16 which wamids are known (the others are
    # kept for their sends), 17 keep the event, 18 RELEASE.
    with django_assert_num_queries(15 if connection.vendor == "postgresql" else 18):
        assert deliver(meta_payload(value)).status_code == 200

    assert Message.objects.filter(direction=Direction.INBOUND).count() == 100
    assert Message.objects.filter(direction=Direction.OUTBOUND, status=Status.READ).count() == 33


@pytest.mark.parametrize("method", ["put", "patch", "delete", "head"])
def test_only_post_and_get_the_others_405_in_the_envelope(db, method):
    response = getattr(Client(), method)(URL)

    assert response["Allow"] == "GET, POST"
    if method != "head":  # no body at all
        assert_error(response, 405, "method_not_allowed")


def test_nul_characters_from_meta_are_replaced_not_a_500(phone_number, deliver):
    message = {**DOCUMENTED_INBOUND["text"][0], "text": {"body": "ha\x00lo"}}

    assert deliver(meta_payload(inbound_value(message))).status_code == 200
    assert Message.objects.get().text == "ha\ufffdlo"


def test_conversations_follow_the_newest_message_whatever_the_arrival_order(phone_number, deliver):
    newer = payloads.text_message("wamid.NEW", CUSTOMER, "newer", timestamp=2_000_000_000)
    older = payloads.text_message("wamid.OLD", CUSTOMER, "older", timestamp=1_900_000_000)
    deliver(meta_payload(inbound_value(newer)))
    deliver(meta_payload(inbound_value(older, name="")))

    conversation = Conversation.objects.get()
    assert (conversation.contact_wa_id, conversation.contact_name) == (CUSTOMER, "Kerry Fisher")
    assert conversation.last_message_text == "newer"
    assert int(conversation.last_message_at.timestamp()) == 2_000_000_000
