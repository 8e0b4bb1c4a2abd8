"""A send's status webhook that comes before Meta's answer to the send, or instead of it: applied, its
price kept, and the send answered with its wamid."""

import json

import pytest
import requests

from inbox.models import EarlyStatus, Message, Status
from inbox.tests.sends import TO, send, text_body
from testing.meta import graph_messages_url


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
