"""A number that assigns automatically: each new or reopened conversation nobody has goes to the next
agent of the org who has the inbox open, in turn, whichever host takes the webhook; and a contact
writing again into a resolved or snoozed conversation is passed on as `conversation.state_changed`."""

import itertools
import json
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import fire_at_once, logged_in, postgres_only
from fakemeta import payloads
from inbox.admin.live import live_cursor
from inbox.models import AuditAction, AuditEntry, Conversation, Membership, PhoneNumber, Role
from inbox.services.ingest import webhook_receive
from outbox.models import Event

pytestmark = pytest.mark.django_db

ROUND_ROBIN = {"type": "system", "name": "round robin"}
ROUNDS, AT_ONCE = 5, 8  # webhooks of new conversations on one number, at once, in rounds


@pytest.fixture
def round_robin(phone_number):
    PhoneNumber.objects.filter(pk=phone_number.pk).update(auto_assign=True)
    return phone_number


def present(user):
    """`user` opens the inbox: its page polls for changes."""
    answer = logged_in(user).get(reverse("admin:inbox_conversation_live"), {"since": live_cursor(timezone.now())})
    assert answer.status_code == 200
    return user


def write_in(deliver, number, contact, wamid):
    message = payloads.text_message(wamid, contact, "Halo")
    assert deliver(payloads.webhook(number.phone_number_id, messages=[message])).status_code == 200
    return Conversation.objects.get(phone_number=number, contact_wa_id=contact)


def assignee_of(conversation):
    conversation.refresh_from_db()
    return conversation.assignee.username if conversation.assignee_id else None


def events_of(kind):
    return [json.loads(e.body)["data"] for e in Event.objects.filter(type=kind).order_by("pk")]


def test_new_conversations_go_to_present_agents_in_turn_and_absent_ones_are_skipped(
    org, round_robin, make_member, deliver, subscribed_to_conversations
):
    make_member(org, Role.AGENT, "ayu")  # never opened the inbox
    present(make_member(org, Role.AGENT, "nadia"))
    present(make_member(org, Role.MANAGER, "rudi"))
    left = present(make_member(org, Role.AGENT, "zara"))
    Membership.objects.filter(user=left).update(last_seen_at=timezone.now() - timedelta(minutes=5))  # tab closed

    assigned = [assignee_of(write_in(deliver, round_robin, f"62811{n}", f"wamid.RR{n}")) for n in range(3)]

    assert assigned == ["nadia", "rudi", "nadia"]
    events = events_of("conversation.assigned")
    assert [(e["conversation"]["assignee"], e["by"], e["previous_assignee"]) for e in events] == [
        ("nadia", ROUND_ROBIN, None), ("rudi", ROUND_ROBIN, None), ("nadia", ROUND_ROBIN, None)
    ]  # fmt: skip
    entries = AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT).order_by("pk")
    assert [(e.actor, e.actor_user, e.actor_key, e.detail) for e in entries] == [
        ("Kirim (round robin)", None, None, "to nadia"), ("Kirim (round robin)", None, None, "to rudi"),
        ("Kirim (round robin)", None, None, "to nadia"),
    ]  # fmt: skip


def test_only_conversations_nobody_has_are_assigned_when_opened_or_reopened(
    org, round_robin, make_member, deliver, api
):
    present(make_member(org, Role.AGENT, "nadia"))
    present(make_member(org, Role.AGENT, "rudi"))
    siti = write_in(deliver, round_robin, "628111", "wamid.SITI1")
    write_in(deliver, round_robin, "628111", "wamid.SITI2")  # the same open conversation: no new turn
    assert assignee_of(siti) == "nadia"

    url = f"/v1/conversations/{siti.external_id}"
    api.patch(url, {"state": "resolved"}, format="json")
    write_in(deliver, round_robin, "628111", "wamid.SITI3")  # reopened, still nadia's
    assert assignee_of(siti) == "nadia"

    api.patch(url, {"state": "resolved", "assignee": None}, format="json")
    write_in(deliver, round_robin, "628111", "wamid.SITI4")  # reopened with nobody on it: the next turn
    assert assignee_of(siti) == "rudi"
    assert AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT, actor="Kirim (round robin)").count() == 2


def test_a_number_assigns_nothing_by_default_nor_with_nobody_present(org, phone_number, make_member, deliver):
    assert PhoneNumber.objects.get(pk=phone_number.pk).auto_assign is False
    present(make_member(org, Role.AGENT, "nadia"))
    assert assignee_of(write_in(deliver, phone_number, "628111", "wamid.OFF1")) is None

    PhoneNumber.objects.filter(pk=phone_number.pk).update(auto_assign=True)
    Membership.objects.update(last_seen_at=None)
    assert assignee_of(write_in(deliver, phone_number, "628112", "wamid.OFF2")) is None
    assert not AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT).exists()


def test_the_setting_is_on_the_numbers_admin_page(org, phone_number, make_member):
    manager = logged_in(make_member(org, Role.MANAGER))
    url = reverse("admin:inbox_phonenumber_change", args=[phone_number.pk])
    assert b'name="auto_assign"' in manager.get(url).content
    change = {"org": org.pk, "phone_number_id": phone_number.phone_number_id, "waba_id": "",
              "display_phone_number": phone_number.display_phone_number, "access_token": "",
              "read_receipt_policy": "manual", "auto_assign": "on"}  # fmt: skip
    assert manager.post(url, change).status_code == 302
    assert PhoneNumber.objects.get(pk=phone_number.pk).auto_assign is True


def test_a_contact_writing_again_reopens_and_tells_subscribers_as_a_change_by_hand_does(
    phone_number, deliver, api, subscribed_to_conversations
):
    siti = write_in(deliver, phone_number, "628111", "wamid.RE1")
    url = f"/v1/conversations/{siti.external_id}"
    api.patch(url, {"state": "resolved"}, format="json")
    write_in(deliver, phone_number, "628111", "wamid.RE2")
    api.patch(url, {"state": "snoozed", "snoozed_until": (timezone.now() + timedelta(hours=1)).isoformat()},
              format="json")  # fmt: skip
    write_in(deliver, phone_number, "628111", "wamid.RE3")
    write_in(deliver, phone_number, "628111", "wamid.RE4")  # open already: no change to tell

    by_hand, reopened, snoozed, woken = events_of("conversation.state_changed")
    assert (by_hand["previous_state"], by_hand["conversation"]["state"]) == ("open", "resolved")
    assert (snoozed["previous_state"], snoozed["conversation"]["state"]) == ("open", "snoozed")
    for event, previous in ((reopened, "resolved"), (woken, "snoozed")):
        assert event.keys() == by_hand.keys()
        assert (event["previous_state"], event["conversation"]["state"]) == (previous, "open")
        assert event["conversation"]["id"] == siti.external_id
        assert event["by"] == {"type": "system", "name": "inbound message"}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_hosts_assigning_at_once_take_turns_never_the_same_one_twice(org, round_robin, make_member):
    for name in ("nadia", "rudi"):
        present(make_member(org, Role.AGENT, name))
    contacts = itertools.count()

    def a_contact_writes_in():
        n = next(contacts)
        message = payloads.text_message(f"wamid.RACE{n}", f"6281{n:04d}", "Halo")
        return webhook_receive(payloads.encode(payloads.webhook(round_robin.phone_number_id, messages=[message])))

    for _ in range(ROUNDS):
        assert fire_at_once(AT_ONCE, a_contact_writes_in) == [[]] * AT_ONCE  # each applied whole

    counts = Counter(Conversation.objects.values_list("assignee__username", flat=True))
    assert counts == {"nadia": ROUNDS * AT_ONCE // 2, "rudi": ROUNDS * AT_ONCE // 2}
