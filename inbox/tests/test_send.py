"""Sending through POST /v1/{phone_number_id}/messages: validation, pass-through, stored rows, and
Idempotency-Key replays."""

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
import urllib3
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import fire_at_once, postgres_only
from inbox.models import ApiKey, Direction, EarlyStatus, IdempotencyRecord, Message, Status
from testing.meta import as_the_client_sent_it, graph_messages_url

TO = "6281234567890"


def text_body(text="Halo!", **extra):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "text",
            "text": {"body": text}, **extra}  # fmt: skip


def send(api, phone_number, body, **headers):
    return api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json", **headers)


def meta_accepts_sends(meta, phone_number, wamid="wamid.SENT1"):
    meta.post(
        graph_messages_url(phone_number),
        json={"messaging_product": "whatsapp", "contacts": [{"input": TO, "wa_id": TO}], "messages": [{"id": wamid}]},
    )


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


def test_a_replay_answers_the_first_response_without_a_second_send(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)

    first = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4411-confirm")
    again = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4411-confirm")

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again.json()["data"] == first.json()["data"]
    assert again.json()["request_id"] == again["X-Request-Id"] != first.json()["request_id"]
    assert Message.objects.count() == 1
    assert len(meta.calls) == 1


def test_a_failed_send_is_replayed_too(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), status=400, json={"error": {"message": "no", "code": 131030}})

    first = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")
    again = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == 502
    assert again.json()["error"]["upstream"] == first.json()["error"]["upstream"]
    assert len(meta.calls) == 1 and Message.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    send(api, phone_number, text_body("one"), HTTP_IDEMPOTENCY_KEY="k1")

    response = send(api, phone_number, text_body("two"), HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reuse"
    assert len(meta.calls) == 1


def test_a_key_still_in_flight_is_409(api, org, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")
    IdempotencyRecord.objects.update(state=IdempotencyRecord.State.IN_PROGRESS)

    response = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"


def test_keys_are_per_org_and_expire_after_24_hours(api, phone_number, foreign_number, other_org, meta):
    meta_accepts_sends(meta, phone_number, "wamid.A")
    meta_accepts_sends(meta, foreign_number, "wamid.B")
    send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="shared")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(org=other_org)[1]}")
    assert "Idempotent-Replayed" not in send(other, foreign_number, text_body(), HTTP_IDEMPOTENCY_KEY="shared")

    IdempotencyRecord.objects.filter(org=phone_number.org).update(expires_at=timezone.now() - timedelta(seconds=1))
    meta_accepts_sends(meta, phone_number, "wamid.C")
    fresh = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="shared")
    assert "Idempotent-Replayed" not in fresh
    assert Message.objects.count() == 3


def test_an_overlong_key_is_400(api, phone_number, meta):
    response = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.json()["error"]["param"] == "Idempotency-Key"


def test_validation_errors_do_not_burn_the_key(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    assert send(api, phone_number, text_body(""), HTTP_IDEMPOTENCY_KEY="k1").status_code == 400
    assert send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1").status_code == 200


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_with_one_key_make_one_row_and_one_meta_call(api_key_secret, phone_number, meta):
    def slow_accept(request):
        time.sleep(0.3)
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": "wamid.ONCE"}]})

    meta.add_callback("POST", graph_messages_url(phone_number), callback=slow_accept)
    lock = threading.Lock()

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        response = send(client, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="same-key")
        with lock:
            return response.status_code

    statuses = fire_at_once(12, post)

    assert len(meta.calls) == 1
    assert Message.objects.count() == 1
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}


def test_a_nul_character_anywhere_in_the_body_is_400_naming_where(api, phone_number, meta):
    body = text_body()
    body["text"]["preview\x00"] = True
    response = send(api, phone_number, {**text_body(), "context": {"message_id": "wamid.\x00"}})
    nested = send(api, phone_number, body)

    assert response.json()["error"]["param"] == "context.message_id"
    assert nested.status_code == 400 and nested.json()["error"]["param"] == "text"
    assert not Message.objects.exists()


def test_a_status_that_beats_its_send_is_applied_when_the_wamid_is_stored(api, phone_number, meta, settings):
    from django.test import Client

    from fakemeta import payloads

    def meta_answers_after_its_webhook(request):
        # Meta's "delivered" webhook reaches Kirim before Kirim has stored the wamid of this send.
        raw = payloads.encode(payloads.webhook(phone_number.phone_number_id,
                                               statuses=[payloads.status("wamid.EARLY", "delivered", TO)]))  # fmt: skip
        Client().post("/webhooks/whatsapp", raw, content_type="application/json",
                      HTTP_X_HUB_SIGNATURE_256=payloads.sign(raw, settings.META_APP_SECRET))  # fmt: skip
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": "wamid.EARLY"}]})

    meta.add_callback("POST", graph_messages_url(phone_number), callback=meta_answers_after_its_webhook)

    response = send(api, phone_number, text_body())

    assert response.json()["data"]["status"] == "delivered"
    assert Message.objects.get().status == Status.DELIVERED
    assert not EarlyStatus.objects.exists()


def test_the_price_of_statuses_that_beat_their_send_is_kept_when_the_wamid_is_stored(api, phone_number, meta, settings):
    from django.test import Client

    from fakemeta import payloads
    from inbox.models import PriceTally

    def meta_answers_after_its_webhook(request):
        # Meta's "sent" (priced, Meta's documented shape) and "read" (no price) beat Kirim's write of the wamid.
        priced, unpriced = (
            payloads.status("wamid.EARLY", "sent", TO, category="utility"),
            payloads.status("wamid.EARLY", "read", TO),
        )
        raw = payloads.encode(payloads.webhook(phone_number.phone_number_id, statuses=[priced, unpriced]))
        Client().post("/webhooks/whatsapp", raw, content_type="application/json",
                      HTTP_X_HUB_SIGNATURE_256=payloads.sign(raw, settings.META_APP_SECRET))  # fmt: skip
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": "wamid.EARLY"}]})

    meta.add_callback("POST", graph_messages_url(phone_number), callback=meta_answers_after_its_webhook)

    sent = send(api, phone_number, text_body()).json()["data"]

    shown = api.get(f"/v1/{phone_number.phone_number_id}/messages/{sent['id']}").json()["data"]
    assert shown["status"] == "read"
    assert shown["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    tally = PriceTally.objects.get()
    assert (tally.category, tally.pricing_type, tally.billable, tally.messages) == ("utility", "regular", True, 1)
    assert not EarlyStatus.objects.exists()


def deliver_status(settings, phone_number, status):
    from django.test import Client

    from fakemeta import payloads

    raw = payloads.encode(payloads.webhook(phone_number.phone_number_id, statuses=[status]))
    return Client().post("/webhooks/whatsapp", raw, content_type="application/json",
                         HTTP_X_HUB_SIGNATURE_256=payloads.sign(raw, settings.META_APP_SECRET))  # fmt: skip


def test_a_send_whose_answer_was_lost_is_unconfirmed_until_its_status_webhook_matches_it(
    api, phone_number, meta, settings
):
    from fakemeta import payloads

    meta.post(graph_messages_url(phone_number), body=requests.ReadTimeout("Meta took the message, then went quiet"))
    body = text_body(biz_opaque_callback_data="crm-order-4411")

    lost = send(api, phone_number, body, HTTP_IDEMPOTENCY_KEY="order-4411")

    assert lost.status_code == 202  # not failed: Meta may be delivering it
    assert lost.json()["data"]["status"] == "unconfirmed" and lost.json()["data"]["message_id"] is None
    echoed = json.loads(meta.calls[0].request.body)["biz_opaque_callback_data"]
    assert echoed == f"kirim:{lost.json()['data']['id']}|crm-order-4411"  # ours first, the caller's kept
    assert Message.objects.get().status == Status.UNCONFIRMED

    # Meta's status webhook carries no wamid Kirim knows, but echoes the callback data: matched by it.
    assert deliver_status(settings, phone_number, payloads.status(
        "wamid.LOST", "sent", TO, biz_opaque_callback_data=echoed)).status_code == 200  # fmt: skip
    completed = Message.objects.get()
    assert (completed.status, completed.wamid) == (Status.SENT, "wamid.LOST")
    assert not EarlyStatus.objects.exists()

    retry = send(api, phone_number, body, HTTP_IDEMPOTENCY_KEY="order-4411")
    assert retry.status_code == 200
    assert (retry.json()["data"]["status"], retry.json()["data"]["message_id"]) == ("sent", "wamid.LOST")
    assert len(meta.calls) == 1  # the retry answered what became of the send, and sent nothing
    assert send(api, phone_number, body, HTTP_IDEMPOTENCY_KEY="order-4411")["Idempotent-Replayed"] == "true"


AS_TYPED = "+62 812-3456-7890"  # TO as a client may write it; Meta answers its own form, TO
SURFACES = {  # a send's path, and where its answer carries Meta's wamid
    "v1": ("/v1/{}/messages", lambda answer: answer["data"]["message_id"]),
    "graph": ("/v23.0/{}/messages", lambda answer: answer["messages"][0]["id"]),
}


@pytest.mark.parametrize("surface", SURFACES)
def test_a_send_whose_status_webhook_came_before_metas_answer_answers_its_wamid(
    api, phone_number, meta, settings, surface
):
    from fakemeta import payloads

    def meta_answers_after_its_status_webhook(request):
        # Meta's `sent` reaches Kirim first; it echoes Kirim's id, so it gives the row its wamid itself.
        echoed = json.loads(request.body)["biz_opaque_callback_data"]
        deliver_status(settings, phone_number, payloads.status("wamid.RACED", "sent", TO,
                                                               biz_opaque_callback_data=echoed))  # fmt: skip
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "contacts": [{"input": AS_TYPED, "wa_id": TO}],
                                    "messages": [{"id": "wamid.RACED"}]})  # fmt: skip

    meta.add_callback("POST", graph_messages_url(phone_number), callback=meta_answers_after_its_status_webhook)
    path, wamid_of = SURFACES[surface]
    url = path.format(phone_number.phone_number_id)

    first, replayed = (
        api.post(url, text_body(to=AS_TYPED), format="json", HTTP_IDEMPOTENCY_KEY="order-4414") for _ in range(2)
    )

    assert first.status_code == replayed.status_code == 200, first.content
    assert wamid_of(first.json()) == wamid_of(replayed.json()) == "wamid.RACED"
    assert replayed["Idempotent-Replayed"] == "true" and len(meta.calls) == 1
    row = Message.objects.get()
    assert (row.wamid, row.status) == ("wamid.RACED", Status.SENT)  # the webhook's status kept: it is further
    assert row.contact_wa_id == TO  # Meta's form of the number, as a send that settled first keeps
    if surface == "v1":
        assert first.json()["data"]["status"] == "sent"


def test_a_send_meta_never_received_does_not_burn_its_key(api, phone_number, meta, settings):
    settings.META_MAX_ATTEMPTS = 1
    never_connected = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))
    )
    meta.post(graph_messages_url(phone_number), body=never_connected)

    unreachable = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4412")

    assert unreachable.status_code == 502
    assert Message.objects.get().status == Status.FAILED  # truly: it was never sent
    meta.replace("POST", graph_messages_url(phone_number),
                 json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.BACK"}]})  # fmt: skip

    back = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4412")

    assert back.status_code == 200 and "Idempotent-Replayed" not in back
    assert back.json()["data"]["message_id"] == "wamid.BACK"
    assert len(meta.calls) == 2
    assert send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4412").json()["data"]["message_id"] == (
        "wamid.BACK"
    )
    assert len(meta.calls) == 2


def test_a_key_whose_request_died_mid_send_is_taken_over_after_its_lease_without_sending_again(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4413")
    # As a worker killed during Meta's call leaves them: the key in progress, the message pending,
    # both leases run out.
    expired = timezone.now() - timedelta(seconds=1)
    IdempotencyRecord.objects.update(state=IdempotencyRecord.State.IN_PROGRESS, lease_expires_at=expired)
    Message.objects.update(status=Status.PENDING, wamid=None, claim_expires_at=expired)

    retry = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4413")

    assert retry.status_code == 202
    assert retry.json()["data"]["status"] == "unconfirmed"
    assert len(meta.calls) == 1  # Meta may have it: never a second call
    assert Message.objects.get().status == Status.UNCONFIRMED
