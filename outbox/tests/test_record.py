"""The outbox writer: events recorded in the transaction of their change, for the orgs that asked,
with only each org's items in Meta's own JSON."""

import json

import pytest
from django.db import transaction

from fakemeta import payloads
from inbox.models import Direction, Message, Status
from outbox.models import Delivery, Event, EventType
from outbox.tests.conftest import make_subscription

CUSTOMER = "6281234567801"


def inbound(phone_number_id, wamid, text="Halo", sender=CUSTOMER):
    return payloads.webhook(
        phone_number_id,
        messages=[payloads.text_message(wamid, sender, text, timestamp=1749416383)],
        contacts=[payloads.contact(sender, "Dewi")],
        waba_id="102290129340398",
    )


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
    from receipts.services import messages_mark_read

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
