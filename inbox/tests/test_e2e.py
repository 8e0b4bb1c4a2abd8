"""End to end over HTTP: the Meta stand-in posts signed webhooks to a live Kirim, which lists,
reads and sends through the stand-in."""

import pytest
import requests

from conftest import wait_for
from fakemeta import payloads
from inbox.models import WebhookEvent
from outbox.tests.conftest import CONTACT_NAME, MESSAGE_TEXT, handled_by_pywa

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kirim(live_server, api_key_secret, phone_number):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key_secret}"
    session.base = f"{live_server.url}/v1/{phone_number.phone_number_id}/messages"
    return session


def test_an_inbound_webhook_is_listed_unread_then_a_receipt_reads_it(kirim, meta_stand_in, phone_number):
    arrived = requests.post(
        f"{meta_stand_in.url}/_stand_in/inbound",
        json={"phone_number_id": phone_number.phone_number_id, "from": "6281200000042", "name": "Dewi", "text": "Halo"},
        timeout=10,
    ).json()
    assert arrived["kirim_status"] == 200

    unread = kirim.get(kirim.base, params={"status": "received"}, timeout=10).json()["data"]
    assert [(m["message_id"], m["text"], m["contact_name"]) for m in unread] == [(arrived["wamid"], "Halo", "Dewi")]

    receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": arrived["wamid"]}
    assert kirim.post(kirim.base, json=receipt, timeout=10).json()["data"]["status"] == "read"

    assert kirim.get(kirim.base, params={"status": "received"}, timeout=10).json()["data"] == []
    assert [r["body"] for r in meta_stand_in.state.requests] == [receipt]


def test_a_send_is_accepted_and_its_statuses_come_back_by_webhook(kirim, meta_stand_in):
    body = {"messaging_product": "whatsapp", "to": "6281200000042", "type": "text", "text": {"body": "Siap!"}}

    sent = kirim.post(kirim.base, json=body, headers={"Idempotency-Key": "e2e-1"}, timeout=10).json()["data"]
    assert sent["status"] == "accepted" and sent["message_id"].startswith("wamid.")

    def delivered():
        return kirim.get(f"{kirim.base}/{sent['id']}", timeout=10).json()["data"]["status"] == "delivered"

    assert wait_for(lambda: delivered() and len(meta_stand_in.state.webhooks_posted) == 2)
    assert meta_stand_in.state.webhooks_posted == [200, 200]
    replay = kirim.post(kirim.base, json=body, headers={"Idempotency-Key": "e2e-1"}, timeout=10)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(meta_stand_in.state.requests) == 1


def test_the_stand_in_speaks_metas_2026_shapes_which_pywas_handlers_take(kirim, meta_stand_in, phone_number, settings):
    """Before, pywa's message handler never ran on the stand-in's messages (KeyError: 'user_id') and its
    status handler never ran on statuses without `contacts`."""
    customer = "6281200000042"
    arrived = requests.post(f"{meta_stand_in.url}/_stand_in/inbound", json={
        "phone_number_id": phone_number.phone_number_id, "from": customer, "name": CONTACT_NAME, "text": MESSAGE_TEXT,
    }, timeout=10).json()  # fmt: skip
    send = {"messaging_product": "whatsapp", "to": customer, "type": "text", "text": {"body": MESSAGE_TEXT}}
    sent = kirim.post(kirim.base, json=send, timeout=10).json()["data"]
    assert wait_for(lambda: len(meta_stand_in.state.webhooks_posted) == 3)

    handle, handled = handled_by_pywa(settings.META_APP_SECRET, phone_number.phone_number_id)
    for event in WebhookEvent.objects.order_by("pk"):  # what the stand-in posted, as it posted it
        body = event.body.encode()
        assert handle(body, payloads.sign(body, settings.META_APP_SECRET)) == ("ok", 200)

    message, *statuses = handled
    user_id = payloads.user_id_of(customer)
    assert (message.id, message.text, message.from_user.name, message.from_user.bsuid, message.from_user.wa_id) == (
        arrived["wamid"], MESSAGE_TEXT, CONTACT_NAME, user_id, customer)  # fmt: skip
    assert [(s.id, s.status, s.from_user.bsuid, s.from_user.wa_id) for s in statuses] == [
        (sent["message_id"], "sent", user_id, customer), (sent["message_id"], "delivered", user_id, customer)]  # fmt: skip
    pricing = {(s.pricing.billable, s.pricing.model, s.pricing.category, s.pricing.type) for s in statuses}
    assert pricing == {(False, "PMP", "service", "free_customer_service")}  # a reply in the service window
