"""The WhatsApp Business app on the same number, and the message changes Meta reports: echoes, the
business's edits and deletions from the phone, the user's own edits and deletions, history, the app's
contacts. Payloads in Meta's documented shapes (fakemeta.payloads builds them)."""

import json
import time
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from conftest import logged_in
from fakemeta import payloads
from inbox.models import Contact, Conversation, Direction, Message, Role, Status, WebhookEvent
from inbox.services import replies
from outbox.models import Delivery, DeliveryStatus, Event, EventType
from outbox.record import WITHDRAWN

NUMBER = "106540352242922"  # the phone_number fixture's
BUSINESS = "6281100002922"
USER = "6281234567890"


def echoes(*items):
    return payloads.field_change("smb_message_echoes", payloads.echoes(*items, name="Ayu"), phone_number_id=NUMBER,
                                 display_phone_number=BUSINESS)  # fmt: skip


def from_user(*messages):
    return payloads.webhook(NUMBER, messages=messages, contacts=[payloads.contact(USER, "Ayu")])


def ago(minutes):
    return time.time() - minutes * 60


def bodies_of(event_type):
    return [json.loads(body) for body in Event.objects.filter(type=event_type).values_list("body", flat=True)]


def test_an_echo_is_an_outbound_message_of_its_conversation_sent_from_the_app(
    phone_number, deliver, subscribed_as_meta
):
    sent = payloads.echo("wamid.ECHO1", USER, "Your order is ready", business_number=BUSINESS)

    assert deliver(echoes(sent)).status_code == 200

    message = Message.objects.get(wamid="wamid.ECHO1")
    assert (message.direction, message.status, message.sent_from_app) == (Direction.OUTBOUND, Status.SENT, True)
    assert (message.contact_wa_id, message.text, message.payload) == (USER, "Your order is ready", sent)
    conversation = Conversation.objects.get(phone_number=phone_number, contact_wa_id=USER)
    assert (conversation.last_direction, conversation.last_message_text) == ("outbound", "Your order is ready")
    assert [body["entry"][0]["changes"][0] for body in bodies_of(EventType.MESSAGE_ECHO)] == [
        echoes(sent)["entry"][0]["changes"][0]
    ]
    # Meta delivers at least once: the same echo again is neither stored nor passed on twice.
    deliver(echoes(sent))
    assert Message.objects.filter(wamid="wamid.ECHO1").count() == 1
    assert len(bodies_of(EventType.MESSAGE_ECHO)) == 1


def test_an_echo_neither_opens_nor_extends_the_reply_window_and_is_never_unread(phone_number, deliver, make_message):
    old = make_message(phone_number, contact=USER, timestamp=timezone.now() - timedelta(hours=25))
    deliver(echoes(payloads.echo("wamid.ECHO2", USER, "Are you still there?", business_number=BUSINESS)))

    conversation = Conversation.objects.get(phone_number=phone_number, contact_wa_id=USER)
    window = replies.reply_window(conversation)
    assert window.last_inbound_at == old.timestamp and not window.is_open
    assert not Message.objects.unread_inbound().filter(wamid="wamid.ECHO2").exists()


def test_the_business_edits_and_deletes_from_the_phone(phone_number, deliver, subscribed_as_meta):
    deliver(echoes(payloads.echo("wamid.ECHO3", USER, "Open at 9", business_number=BUSINESS, timestamp=ago(3))))
    edited = payloads.edit(
        "wamid.EDIT3", "wamid.ECHO3", "Open at 10", timestamp=ago(2), **{"from": BUSINESS, "to": USER}
    )

    deliver(echoes(edited))

    message = Message.objects.get(wamid="wamid.ECHO3")
    assert message.text == "Open at 10" and message.payload["text"] == {"body": "Open at 10"}
    assert [e["text"] for e in message.edits] == ["Open at 9"] and message.edited_at is not None
    assert not Message.objects.filter(wamid="wamid.EDIT3").exists()  # an edit is no message of its own
    assert bodies_of(EventType.MESSAGE_ECHO)[-1]["entry"][0]["changes"][0]["value"]["message_echoes"] == [edited]

    deliver(echoes(payloads.revoke("wamid.DEL3", "wamid.ECHO3", **{"from": BUSINESS, "to": USER})))

    message.refresh_from_db()
    assert (message.text, message.payload, message.edits) == ("", {}, None) and message.deleted_at is not None


def test_a_user_edit_keeps_the_earlier_text_and_shows_the_edit(phone_number, deliver, api, subscribed_as_meta):
    deliver(from_user(payloads.text_message("wamid.U1", USER, "I want 2 lattes", timestamp=ago(3))))
    edited = payloads.edit("wamid.UEDIT1", "wamid.U1", "I want 3 lattes", timestamp=ago(2), **{"from": USER})

    deliver(from_user(edited))

    shown = api.get(f"/v1/{NUMBER}/messages").json()["data"]
    assert [(m["message_id"], m["text"]) for m in shown] == [("wamid.U1", "I want 3 lattes")]
    assert shown[0]["edits"][0]["text"] == "I want 2 lattes" and shown[0]["edited_at"]
    passed_on = [m["id"] for body in bodies_of(EventType.MESSAGE_RECEIVED)
                 for m in body["entry"][0]["changes"][0]["value"]["messages"]]  # fmt: skip
    assert passed_on == ["wamid.U1", "wamid.UEDIT1"]


SECRET = "my card pin is 4321"


def test_a_revoked_message_is_found_nowhere(phone_number, deliver, api, subscribed_as_meta, make_member, org):
    """The user deletes a message for everyone: its text leaves the API, the admin's thread and its
    search, Meta's payload on the row, the raw webhooks kept, and events not yet delivered; a marker
    stays where it was."""
    deliver(from_user(payloads.text_message("wamid.PIN", USER, SECRET, timestamp=ago(3))))
    deliver(from_user(payloads.edit("wamid.PINEDIT", "wamid.PIN", f"{SECRET}!", timestamp=ago(2), **{"from": USER})))
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 2  # both not delivered yet

    deliver(from_user(payloads.revoke("wamid.PINDEL", "wamid.PIN", timestamp=ago(1), **{"from": USER})))

    message = Message.objects.get(wamid="wamid.PIN")
    assert message.deleted_at is not None and (message.text, message.payload, message.edits) == ("", {}, None)
    api_answer = api.get(f"/v1/{NUMBER}/messages/{message.external_id}").content.decode()
    assert "4321" not in api_answer and json.loads(api_answer)["data"]["deleted_at"]
    agent = logged_in(make_member(org, Role.AGENT))
    conversation = Conversation.objects.get(phone_number=phone_number, contact_wa_id=USER)
    page = agent.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()
    assert "4321" not in page and "This message was deleted" in page
    found = agent.get(reverse("admin:inbox_conversation_changelist"), {"q": "4321"}).content.decode()
    assert "Ayu" not in found
    assert [b for b in WebhookEvent.objects.values_list("body", flat=True) if "4321" in b] == []
    assert not any("4321" in body for body in Event.objects.values_list("body", flat=True))
    # The message's own event had nothing else: its delivery is withdrawn. The revoke itself is passed on.
    withdrawn = Delivery.objects.filter(status=DeliveryStatus.FAILED)
    assert list(withdrawn.values_list("last_error", flat=True)) == [WITHDRAWN, WITHDRAWN]
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1


def test_a_revoke_leaves_a_delivered_event_alone_and_withdraws_only_what_waits(
    phone_number, deliver, subscribed_as_meta
):
    deliver(from_user(payloads.text_message("wamid.GONE", USER, SECRET, timestamp=ago(3)),
                      payloads.text_message("wamid.STAYS", USER, "see you", timestamp=ago(3))))  # fmt: skip

    deliver(from_user(payloads.revoke("wamid.GONEDEL", "wamid.GONE", **{"from": USER})))

    first = Event.objects.filter(type=EventType.MESSAGE_RECEIVED).order_by("pk").first()
    assert "4321" not in first.body and "see you" in first.body  # rewritten, still to be delivered
    assert first.deliveries.get().status == DeliveryStatus.PENDING


def history(*chunks):
    return payloads.field_change("history", {"history": list(chunks)}, phone_number_id=NUMBER,
                                 display_phone_number=BUSINESS)  # fmt: skip


def test_history_in_two_chunks_out_of_order_fills_the_conversation_once(phone_number, deliver, make_message):
    deliver(from_user(payloads.text_message("wamid.H3", USER, "third, came live", timestamp=ago(30))))
    first = payloads.history_message("wamid.H1", USER, "first", timestamp=ago(50))
    second = payloads.history_message("wamid.H2", BUSINESS, "second", timestamp=ago(40), status="DELIVERED")
    third = payloads.history_message("wamid.H3", USER, "third, came live", timestamp=ago(30))

    deliver(history(payloads.history_chunk({USER: [second, third]}, chunk_order=2, progress=100)))
    deliver(history(payloads.history_chunk({USER: [first]}, chunk_order=1, progress=50)))
    deliver(history(payloads.history_chunk({USER: [first]}, chunk_order=1, progress=50)))  # again

    thread = Message.objects.filter(phone_number=phone_number, contact_wa_id=USER).order_by("timestamp")
    assert [(m.wamid, m.direction, m.status) for m in thread] == [
        ("wamid.H1", "inbound", "read"), ("wamid.H2", "outbound", "delivered"), ("wamid.H3", "inbound", "received"),
    ]  # fmt: skip
    assert thread.get(wamid="wamid.H2").sent_from_app
    assert Conversation.objects.get(contact_wa_id=USER).last_message_text == "third, came live"


def test_the_apps_contacts_name_the_contact(phone_number, deliver, make_message, subscribed_as_meta):
    make_message(phone_number, contact=USER, contact_name="")
    synced = payloads.field_change(
        "smb_app_state_sync",
        {"state_sync": [payloads.state_sync_contact(f"+{USER}", "Ayu Lestari"),
                        payloads.state_sync_contact("6289999999999", "Budi", action="remove")]},
        phone_number_id=NUMBER, display_phone_number=BUSINESS,
    )  # fmt: skip

    deliver(synced)

    assert Contact.objects.get(phone_number=phone_number, contact_wa_id=USER).saved_name == "Ayu Lestari"
    assert Contact.objects.get(contact_wa_id="6289999999999").saved_name == ""
    assert Conversation.objects.get(contact_wa_id=USER).contact_name == "Ayu Lestari"
    assert bodies_of(EventType.CONTACT_SYNC) == [synced]


def test_erasing_a_contact_also_empties_earlier_texts_and_the_saved_name(api, phone_number, deliver):
    deliver(from_user(payloads.text_message("wamid.E1", USER, SECRET, timestamp=ago(3))))
    deliver(from_user(payloads.edit("wamid.E1EDIT", "wamid.E1", "changed my mind", timestamp=ago(2), **{"from": USER})))
    synced = [payloads.state_sync_contact(USER, "Ayu Lestari")]
    deliver(payloads.field_change("smb_app_state_sync", {"state_sync": synced}, phone_number_id=NUMBER))
    assert Message.objects.get(wamid="wamid.E1").edits[0]["text"] == SECRET

    assert api.delete(f"/v1/{NUMBER}/contacts/{USER}").status_code == 200

    assert Message.objects.get(wamid="wamid.E1").edits is None
    assert Contact.objects.get(contact_wa_id=USER).saved_name == ""
