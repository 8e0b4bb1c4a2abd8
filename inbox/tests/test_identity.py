"""Meta's 2026 payloads: contacts known by business-scoped user id and/or phone number, conversations
that go on through a username or a new id, group messages in the group's conversation (and read
alone), statuses that skip `delivered`, and `played`. Each is stored and readable through the API and
the admin."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client

from inbox.models import Conversation, Direction, Message, Status, WebhookEvent
from inbox.tests import meta_2026 as meta_payloads
from testing.meta import graph_messages_url


def read_back(api, phone_number, message):
    """The message through the API: in its conversation's list and by its id."""
    listed = api.get(f"/v1/{phone_number.phone_number_id}/messages", {"contact": message.contact_wa_id}).json()
    one = api.get(f"/v1/{phone_number.phone_number_id}/messages/{message.external_id}").json()["data"]
    assert message.external_id in [m["id"] for m in listed["data"]]
    return one


@pytest.fixture
def staff(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("staff", "s@example.com", "pw"))
    return client


def shown_in_admin(staff, conversation, text):
    listing = staff.get("/admin/inbox/conversation/", {"q": conversation.contact_wa_id})
    thread = staff.get(f"/admin/inbox/conversation/{conversation.pk}/change/")
    assert listing.status_code == 200 and thread.status_code == 200
    assert conversation.contact_wa_id in listing.text
    assert text in thread.text


def test_a_contact_with_only_a_business_scoped_id(phone_number, deliver, api, staff):
    assert deliver(meta_payloads.only_a_business_scoped_id()).status_code == 200

    message = Message.objects.get()
    assert (message.contact_wa_id, message.contact_user_id) == (meta_payloads.USER_ID, meta_payloads.USER_ID)
    conversation = Conversation.objects.get()
    assert (conversation.contact_wa_id, conversation.contact_user_id, conversation.contact_name) == (
        meta_payloads.USER_ID, meta_payloads.USER_ID, "Sheena Nelson",
    )  # fmt: skip
    answer = read_back(api, phone_number, message)
    assert answer["from"] == answer["contact"] == answer["contact_user_id"] == meta_payloads.USER_ID
    assert answer["text"] == "Hi, is the shop open?"
    shown_in_admin(staff, conversation, "Hi, is the shop open?")


def test_a_conversation_goes_on_when_the_user_adopts_a_username(phone_number, deliver, api, staff):
    deliver(meta_payloads.with_number_and_user_id())

    assert deliver(meta_payloads.username_adopted()).status_code == 200

    conversation = Conversation.objects.get()
    assert (conversation.contact_wa_id, conversation.contact_user_id) == (meta_payloads.PHONE, meta_payloads.USER_ID)
    assert conversation.last_message_text == "After my username"
    after = Message.objects.get(wamid="wamid.AFTER")
    assert after.contact_wa_id == meta_payloads.PHONE and after.contact_user_id == meta_payloads.USER_ID
    assert read_back(api, phone_number, after)["contact"] == meta_payloads.PHONE
    shown_in_admin(staff, conversation, "After my username")


def test_a_conversation_goes_on_after_user_changed_user_id(phone_number, deliver, api, staff):
    deliver(meta_payloads.only_a_business_scoped_id())
    deliver(meta_payloads.user_changed_user_id())

    assert deliver(meta_payloads.from_the_new_user_id()).status_code == 200

    conversation = Conversation.objects.get()
    assert conversation.contact_wa_id == meta_payloads.USER_ID  # its key stays
    assert conversation.contact_user_id == meta_payloads.NEW_USER_ID
    assert list(conversation.messages().order_by("timestamp").values_list("wamid", "type")) == [
        ("wamid.BSUIDONLY", "text"), ("wamid.SYSTEM", "system"), ("wamid.NEWID", "text"),
    ]  # fmt: skip
    system = Message.objects.get(wamid="wamid.SYSTEM")
    assert read_back(api, phone_number, system)["content"]["system"]["user_id"] == meta_payloads.NEW_USER_ID
    shown_in_admin(staff, conversation, "Writing from my new id")


def test_a_group_message_lives_in_the_groups_conversation(phone_number, deliver, api, staff):
    deliver(meta_payloads.with_number_and_user_id())  # the same person writes to the business alone too

    assert deliver(meta_payloads.group_message()).status_code == 200

    message = Message.objects.get(wamid="wamid.GROUP1")
    assert (message.contact_wa_id, message.group_id) == (meta_payloads.GROUP_ID, meta_payloads.GROUP_ID)
    assert message.contact_name == "Pablo Morales"
    group = Conversation.objects.get(contact_wa_id=meta_payloads.GROUP_ID)
    assert group.contact_user_id == "" and group.last_message_text == "Who brings the cake?"
    assert Conversation.objects.get(contact_wa_id=meta_payloads.PHONE).last_message_text == "Before my username"
    answer = read_back(api, phone_number, message)
    assert (answer["from"], answer["group_id"], answer["contact"]) == (
        meta_payloads.PHONE, meta_payloads.GROUP_ID, meta_payloads.GROUP_ID,
    )  # fmt: skip
    shown_in_admin(staff, group, "Who brings the cake?")


@pytest.fixture
def voice_note(phone_number, make_message):
    return make_message(
        phone_number, contact=meta_payloads.USER_ID, direction=Direction.OUTBOUND, status=Status.SENT, text="🎤"
    )


def test_a_played_status_is_stored_above_read(voice_note, deliver, api, phone_number, staff):
    assert deliver(meta_payloads.status(voice_note.wamid, "played")).status_code == 200
    deliver(meta_payloads.status(voice_note.wamid, "read", timestamp=meta_payloads.at(10)))  # late: changes nothing

    voice_note.refresh_from_db()
    assert voice_note.status == Status.PLAYED
    assert read_back(api, phone_number, voice_note)["status"] == "played"
    listing = api.get(f"/v1/{phone_number.phone_number_id}/messages", {"status": "played"}).json()["data"]
    assert [m["id"] for m in listing] == [voice_note.external_id]
    assert "played" in staff.get("/admin/inbox/message/?status=played").text


def test_statuses_may_skip_delivered(voice_note, deliver):
    deliver(meta_payloads.status(voice_note.wamid, "read"))
    deliver(meta_payloads.status(voice_note.wamid, "delivered", timestamp=meta_payloads.at(10)))

    voice_note.refresh_from_db()
    assert voice_note.status == Status.READ


def test_nothing_requires_wa_id_in_any_2026_payload(phone_number, deliver, voice_note):
    for payload in (
        meta_payloads.only_a_business_scoped_id(),
        meta_payloads.username_adopted(),
        meta_payloads.user_changed_user_id(),
        meta_payloads.from_the_new_user_id(),
        meta_payloads.status(voice_note.wamid, "delivered"),
    ):
        assert "wa_id" not in json.dumps(payload) and '"from"' not in json.dumps(payload)
        assert deliver(payload).status_code == 200
    assert not WebhookEvent.objects.failed().exists()
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 4


# --- A receipt for a group message reads only that message --------------------------------------


@pytest.fixture
def group_unread(phone_number, deliver):
    deliver(meta_payloads.group_message("wamid.GROUP1", "first", timestamp=meta_payloads.at(20)))
    deliver(meta_payloads.group_message("wamid.GROUP2", "second", timestamp=meta_payloads.at(21)))
    return Message.objects.get(wamid="wamid.GROUP1"), Message.objects.get(wamid="wamid.GROUP2")


def test_a_receipt_for_a_group_message_calls_meta_once_and_reads_only_it(
    api, phone_number, group_unread, meta_accepts_reads
):
    earlier, later = group_unread
    receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": later.wamid}

    assert api.post(f"/v1/{phone_number.phone_number_id}/messages", receipt, format="json").status_code == 200
    assert api.post(f"/v1/{phone_number.phone_number_id}/messages", receipt, format="json").status_code == 200

    assert len(meta_accepts_reads.calls) == 1
    assert json.loads(meta_accepts_reads.calls[0].request.body)["message_id"] == later.wamid
    assert Message.objects.get(pk=later.pk).status == Status.READ
    assert Message.objects.get(pk=earlier.pk).status == Status.RECEIVED


def test_batch_read_sends_each_group_message_its_own_receipt(phone_number, group_unread, meta_accepts_reads):
    out = io.StringIO()
    # One worker runs in the test's thread, inside its transaction.
    call_command(
        "batch_read", "--phone-number-id", phone_number.phone_number_id, "--concurrency", "1",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    receipts = sorted(json.loads(call.request.body)["message_id"] for call in meta_accepts_reads.calls)
    assert receipts == ["wamid.GROUP1", "wamid.GROUP2"]
    assert not Message.objects.filter(status=Status.RECEIVED).exists()


def test_the_admins_mark_read_on_a_group_message_reads_only_it(phone_number, group_unread, meta_accepts_reads, staff):
    earlier, later = group_unread

    staff.post("/admin/inbox/message/", {"action": "mark_read", "_selected_action": [later.pk]}, follow=True)

    assert [json.loads(c.request.body)["message_id"] for c in meta_accepts_reads.calls] == [later.wamid]
    assert graph_messages_url(phone_number) == meta_accepts_reads.calls[0].request.url
    assert Message.objects.get(pk=later.pk).status == Status.READ
    assert Message.objects.get(pk=earlier.pk).status == Status.RECEIVED
