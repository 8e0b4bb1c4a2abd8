"""The outbox writer: events recorded in the transaction of their change, for the orgs that asked,
with only each org's items in Meta's own JSON."""

import copy
import json

import pytest
from django.db import transaction

from fakemeta import payloads
from inbox.models import Direction, Message, Status
from outbox.models import Delivery, Event, EventType
from outbox.tests.conftest import (
    CONTACT_NAME,
    HOOK_URL,
    MESSAGE_TEXT,
    handled_by_pywa,
    make_subscription,
    run_due,
    whatsapp_api_js_verifies,
)

CUSTOMER = "6281234567801"
SECOND_CUSTOMER = "6281234567802"


def inbound(phone_number_id, wamid, text=MESSAGE_TEXT, sender=CUSTOMER, name=CONTACT_NAME):
    return payloads.webhook(
        phone_number_id,
        messages=[payloads.text_message(wamid, sender, text, timestamp=1749416383)],
        contacts=[payloads.contact(sender, name)],
        waba_id="102290129340398",
    )


def test_meta_events_leave_in_metas_own_bytes_so_a_handler_that_re_encodes_them_verifies(
    phone_number, subscription, receiver, deliver
):
    """Meta writes non-ASCII as \\uXXXX and `/` as `\\/`; whatsapp-api-js hashes the body so re-encoded.
    Raw UTF-8 out made it refuse every event with an accent or an emoji (401: the event was lost)."""
    receiver.post(HOOK_URL, status=200)
    metas_bytes = payloads.encode(inbound(phone_number.phone_number_id, "wamid.ESCAPED"))

    assert deliver(None, raw=metas_bytes).status_code == 200
    run_due()

    request = receiver.calls[0].request
    assert request.body == metas_bytes  # all of it is this org's: Meta's payload, byte for byte
    signature = request.headers["X-Hub-Signature-256"]
    assert whatsapp_api_js_verifies(request.body, signature, subscription.secret)
    handle, handled = handled_by_pywa(subscription.secret, phone_number.phone_number_id)
    assert handle(request.body, signature) == ("ok", 200)
    assert [(m.text, m.from_user.name) for m in handled] == [(MESSAGE_TEXT, CONTACT_NAME)]


def test_a_status_reaches_subscribers_with_every_field_meta_sent_and_only_for_their_numbers(
    phone_number, foreign_number, other_org, subscription, make_message, receiver, deliver
):
    """pywa reads a status's contact unconditionally: without `contacts` its status handler never ran."""
    receiver.post(HOOK_URL, status=200)
    theirs = make_subscription(other_org, url="https://other.example.com/hook")
    delivered, failed = (make_message(phone_number, direction=Direction.OUTBOUND, status=Status.SENT) for _ in "ab")
    foreign = make_message(foreign_number, direction=Direction.OUTBOUND, status=Status.SENT)
    error = {"code": 131026, "title": "Message undeliverable", "message": f"Undeliverable to {CONTACT_NAME}",
             "error_data": {"details": MESSAGE_TEXT},
             "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}  # fmt: skip
    ours = payloads.webhook(phone_number.phone_number_id, waba_id="102290129340398", statuses=[
        payloads.status(delivered.wamid, "delivered", CUSTOMER,
                        biz_opaque_callback_data=f"kirim:{delivered.external_id}|crm-order-4411 ✓"),
        {**payloads.status(failed.wamid, "failed", SECOND_CUSTOMER, errors=[error]),
         "recipient_identity_key_hash": "DF2lS5v2W6x=", "a_field_of_2027": {"nested": [1, 2.5, None]}},
    ])  # fmt: skip
    payload = copy.deepcopy(ours)
    payload["a_top_field_of_2027"] = True
    payload["entry"][0]["a_field_of_2027"] = "entry"
    payload["entry"][0]["changes"][0]["value"]["a_field_of_2027"] = ["value"]
    their_change = payloads.webhook(foreign_number.phone_number_id, statuses=[
        payloads.status(foreign.wamid, "read", "6289999")])["entry"][0]["changes"][0]  # fmt: skip
    payload["entry"][0]["changes"].append(their_change)

    assert deliver(None, raw=payloads.encode(payload)).status_code == 200
    run_due()

    what_meta_would_have_sent_us = copy.deepcopy(payload)
    what_meta_would_have_sent_us["entry"][0]["changes"].pop()  # the other org's number
    value = what_meta_would_have_sent_us["entry"][0]["changes"][0]["value"]
    value["statuses"][0]["biz_opaque_callback_data"] = "crm-order-4411 ✓"  # the sender's own, Kirim's id out
    assert [c["user_id"] for c in value["contacts"]] == [payloads.user_id_of(CUSTOMER),
                                                         payloads.user_id_of(SECOND_CUSTOMER)]  # fmt: skip
    assert "pricing" in value["statuses"][0] and "errors" in value["statuses"][1]
    ours_out = Delivery.objects.get(subscription=subscription).event.body
    assert json.loads(ours_out) == what_meta_would_have_sent_us
    theirs_out = json.loads(Delivery.objects.get(subscription=theirs).event.body)
    assert theirs_out["entry"][0]["changes"] == [their_change]

    (request,) = [call.request for call in receiver.calls if call.request.url == HOOK_URL]
    handle, handled = handled_by_pywa(subscription.secret, phone_number.phone_number_id)
    assert handle(request.body, request.headers["X-Hub-Signature-256"]) == ("ok", 200)
    (status,) = handled  # pywa takes the first status of a webhook
    assert (status.id, status.from_user.bsuid, status.tracker) == (
        delivered.wamid, payloads.user_id_of(CUSTOMER), "crm-order-4411 ✓")  # fmt: skip
    assert (status.pricing.model, status.pricing.category) == ("PMP", "service")


def test_a_message_meta_delivers_again_beside_a_new_one_takes_its_contact_out_with_it(
    phone_number, subscription, deliver
):
    first = inbound(phone_number.phone_number_id, "wamid.FIRST")
    deliver(first)
    again = copy.deepcopy(first)
    value = again["entry"][0]["changes"][0]["value"]
    value["contacts"].append(payloads.contact(SECOND_CUSTOMER, "مريم 🌙"))
    value["messages"].append(payloads.text_message("wamid.SECOND", SECOND_CUSTOMER, "שלום 👋", timestamp=1749416390))

    deliver(again)

    announced = json.loads(Event.objects.order_by("pk").last().body)["entry"][0]["changes"][0]["value"]
    assert announced["contacts"] == [value["contacts"][1]]
    assert announced["messages"] == [value["messages"][1]]


def test_an_inbound_message_records_message_received_with_metas_own_json(phone_number, subscription, deliver):
    payload = inbound(phone_number.phone_number_id, "wamid.IN1")

    assert deliver(payload).status_code == 200

    event = Event.objects.get()
    assert event.type == EventType.MESSAGE_RECEIVED
    assert json.loads(event.body) == payload  # nothing of another org to remove: Meta's payload as sent
    delivery = Delivery.objects.get()
    assert (delivery.subscription, delivery.event, delivery.status) == (subscription, event, "pending")


def test_the_senders_contact_reaches_subscribers_as_kirim_matched_it(phone_number, subscription, deliver):
    """Meta's only contact, carrying only a business-scoped user id, belongs to a message `from` a
    number: Kirim stores its name, and the subscriber gets that same contact."""
    payload = inbound(phone_number.phone_number_id, "wamid.IN2")
    only_contact = {"profile": {"name": "Dewi"}, "user_id": "ID.1234567890"}
    payload["entry"][0]["changes"][0]["value"]["contacts"] = [only_contact]

    assert deliver(payload).status_code == 200

    (change,) = json.loads(Event.objects.get().body)["entry"][0]["changes"]
    assert change["value"]["contacts"] == [only_contact]
    assert Message.objects.get(wamid="wamid.IN2").contact_name == "Dewi"


def test_a_payload_with_two_orgs_numbers_gives_each_org_only_its_own_items(
    phone_number, foreign_number, subscription, other_org, deliver
):
    theirs = make_subscription(other_org, url="https://other.example.com/hook")
    ours_message = payloads.text_message("wamid.OURS", CUSTOMER, "for us", timestamp=1749416383)
    their_message = payloads.text_message("wamid.THEIRS", "6289999", "for them", timestamp=1749416384)
    ours_value = inbound(phone_number.phone_number_id, "x")["entry"][0]["changes"][0]["value"]
    ours_value["messages"] = [ours_message]
    their_value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1555", "phone_number_id": foreign_number.phone_number_id},
        "contacts": [payloads.contact("6289999", "Budi")],
        "messages": [their_message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "waba", "changes": [{"field": "messages", "value": ours_value},
                                       {"field": "messages", "value": their_value}]}
        ],
    }  # fmt: skip

    assert deliver(payload).status_code == 200

    ours = json.loads(Delivery.objects.get(subscription=subscription).event.body)
    theirs_body = json.loads(Delivery.objects.get(subscription=theirs).event.body)
    assert ours["entry"][0]["changes"] == [{"field": "messages", "value": ours_value}]
    assert theirs_body["entry"][0]["changes"] == [{"field": "messages", "value": their_value}]
    assert Delivery.objects.count() == 2


def test_statuses_record_message_status_without_messages(phone_number, subscription, make_message, deliver):
    sent = make_message(phone_number, direction=Direction.OUTBOUND, status=Status.SENT)
    payload = payloads.webhook(phone_number.phone_number_id, statuses=[payloads.status(sent.wamid, "read", CUSTOMER)])

    deliver(payload)

    event = Event.objects.get()
    assert event.type == EventType.MESSAGE_STATUS
    assert json.loads(event.body) == payload


@pytest.mark.parametrize("callers_own", ["crm-order-4411", None])
def test_a_status_reaches_subscribers_with_the_senders_callback_data_only(
    phone_number, subscription, make_message, deliver, callers_own
):
    sent = make_message(phone_number, direction=Direction.OUTBOUND, status=Status.SENT)
    echoed = f"kirim:{sent.external_id}|{callers_own or ''}"  # what Meta echoes of Kirim's send
    status = payloads.status(sent.wamid, "delivered", CUSTOMER, biz_opaque_callback_data=echoed)

    deliver(payloads.webhook(phone_number.phone_number_id, statuses=[status]))

    announced = json.loads(Event.objects.get().body)["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert announced.get("biz_opaque_callback_data") == callers_own
    assert announced["id"] == sent.wamid


def test_a_wamid_meta_delivers_twice_is_announced_once(phone_number, subscription, deliver):
    payload = inbound(phone_number.phone_number_id, "wamid.TWICE")
    deliver(payload)
    deliver(payload)

    assert Event.objects.filter(type=EventType.MESSAGE_RECEIVED).count() == 1


def test_only_subscribed_event_types_and_enabled_subscriptions_get_deliveries(org, phone_number, deliver):
    make_subscription(org, events=["message.read"])
    make_subscription(org, enabled=False)

    deliver(inbound(phone_number.phone_number_id, "wamid.NOBODY"))

    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_an_org_without_subscriptions_records_nothing(phone_number, deliver):
    deliver(inbound(phone_number.phone_number_id, "wamid.QUIET"))

    assert not Event.objects.exists()


def test_a_change_that_rolls_back_takes_its_event_with_it(phone_number, subscription, make_message):
    from django.utils import timezone

    from inbox.models import Message
    from receipts.services.bulk import messages_mark_read

    message = make_message(phone_number)
    # Read here only (no call to Meta, which never runs inside a transaction), in the caller's one.
    with pytest.raises(RuntimeError), transaction.atomic():
        messages_mark_read(messages=Message.objects.filter(pk=message.pk), via="batch",
                           receipt_cutoff=timezone.now(), mark_expired_locally=True)  # fmt: skip
        assert Event.objects.count() == 1  # recorded in the transaction...
        raise RuntimeError("the change fails after the read")

    assert not Event.objects.exists()  # ...and gone with it
    assert not Delivery.objects.exists()


def test_a_read_through_the_api_records_message_read_in_kirims_envelope(
    api, phone_number, subscription, make_message, meta_accepts_reads
):
    earlier = make_message(phone_number)
    message = make_message(phone_number)

    response = api.post(
        f"/v1/{phone_number.phone_number_id}/messages",
        {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid},
        format="json",
    )

    assert response.status_code == 200
    event = Event.objects.get()
    body = json.loads(event.body)
    assert body["id"] == event.external_id and body["id"].startswith("evt_")
    assert body["type"] == "message.read"
    assert body["data"]["message"] == {"id": message.external_id, "message_id": message.wamid}
    assert body["data"]["read_message_ids"] == sorted([earlier.wamid, message.wamid])
    assert body["data"]["read_via"] == "api"
    assert body["data"]["phone_number_id"] == phone_number.phone_number_id


def test_reading_a_read_message_again_records_no_second_event(
    api, phone_number, subscription, make_message, meta_accepts_reads
):
    message = make_message(phone_number)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    for _ in range(2):
        api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")

    assert Event.objects.count() == 1
