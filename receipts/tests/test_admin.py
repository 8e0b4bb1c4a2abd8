"""The admin's "Mark selected inbound messages read": one Meta call per conversation, partial
failures reported and left unread, a no-op the second time, and only for staff allowed to."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import logged_in
from inbox.models import Conversation, Direction, Message, ReadVia, Role, Status
from testing.meta import graph_messages_url

pytestmark = pytest.mark.django_db(transaction=True)  # the action calls Meta from worker threads


@pytest.fixture
def reader(org, make_member):
    return logged_in(make_member(org, Role.AGENT))


@pytest.fixture
def viewer(org, make_member):
    """An agent whose operators took the mark-read permission away from them."""
    user = make_member(org, Role.AGENT, "intern")
    user.groups.clear()
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_conversation", "view_message"]))
    return logged_in(user)


@pytest.fixture
def two_conversations(phone_number, make_message):
    siti = [make_message(phone_number, contact="6281", contact_name="Siti") for _ in range(3)]
    budi = [make_message(phone_number, contact="6282", contact_name="Budi") for _ in range(2)]
    reply = make_message(phone_number, contact="6282", direction=Direction.OUTBOUND, status=Status.DELIVERED)
    return siti, budi, reply


def run_action(client, model, pks):
    return client.post(
        reverse(f"admin:inbox_{model}_changelist"),
        {"action": "mark_read", "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


def bar(response):
    return [str(m) for m in response.context["messages"]]


def test_one_meta_call_per_conversation_for_the_newest_selected_message(reader, two_conversations, meta_accepts_reads):
    siti, budi, reply = two_conversations

    response = run_action(reader, "message", [m.pk for m in (*siti, *budi, reply)])

    receipts = sorted(json.loads(c.request.body)["message_id"] for c in meta_accepts_reads.calls)
    assert receipts == sorted([siti[-1].wamid, budi[-1].wamid])
    assert not Message.objects.filter(status=Status.RECEIVED).exists()
    read = Message.objects.filter(direction=Direction.INBOUND)
    assert set(read.values_list("read_via", flat=True)) == {ReadVia.ADMIN}
    assert set(read.values_list("read_by_user", flat=True)) == {reader.user.pk}
    assert bar(response) == [
        "Marked 5 message(s) read in 2 conversation(s); skipped 1 outbound (only inbound messages can be read)."
    ]


def test_from_the_conversation_list(reader, two_conversations, meta_accepts_reads):
    response = run_action(reader, "conversation", Conversation.objects.values_list("pk", flat=True))

    assert len(meta_accepts_reads.calls) == 2
    assert "Marked 5 message(s) read in 2 conversation(s)" in bar(response)[0]


def test_a_failed_conversation_stays_unread_and_is_reported_with_metas_message(
    reader, phone_number, two_conversations, meta
):
    siti, budi, _ = two_conversations

    def answer(request):
        if json.loads(request.body)["message_id"] == budi[-1].wamid:
            return 400, {}, json.dumps({"error": {"message": "(#131047) Re-engagement message", "code": 131047}})
        return 200, {}, '{"success": true}'

    meta.add_callback("POST", graph_messages_url(phone_number), callback=answer)

    response = run_action(reader, "message", [m.pk for m in (*siti, *budi)])

    assert set(Message.objects.filter(contact_wa_id="6281").values_list("status", flat=True)) == {Status.READ}
    assert set(Message.objects.filter(contact_wa_id="6282", direction="inbound").values_list("status", flat=True)) == {
        Status.RECEIVED
    }
    assert bar(response) == [
        "Marked 3 message(s) read in 1 conversation(s); 1 conversation(s) failed and stay unread.",
        "Not read: Budi on +62 811 2922. WhatsApp said: (#131047) Re-engagement message",
    ]


def test_a_second_run_is_a_no_op(reader, two_conversations, meta_accepts_reads):
    siti, budi, _ = two_conversations
    run_action(reader, "message", [m.pk for m in (*siti, *budi)])

    response = run_action(reader, "message", [m.pk for m in (*siti, *budi)])

    assert len(meta_accepts_reads.calls) == 2
    assert bar(response) == ["Marked 0 message(s) read in 0 conversation(s); skipped 5 already read."]


def test_the_thread_button_reads_the_conversation(reader, two_conversations, meta_accepts_reads):
    conversation = Conversation.objects.get(contact_wa_id="6281")

    response = reader.post(reverse("admin:inbox_conversation_mark_read", args=[conversation.pk]), follow=True)

    assert response.status_code == 200
    assert len(meta_accepts_reads.calls) == 1
    assert not conversation.messages().filter(status=Status.RECEIVED).exists()
    assert "Marked 3 message(s) read in 1 conversation(s)" in bar(response)[0]


@pytest.mark.parametrize("object_id", [999999, 2**63, 10**30])  # unknown, past bigint, far past it
def test_the_button_for_a_conversation_that_does_not_exist_is_404(reader, two_conversations, meta, object_id):
    response = reader.post(reverse("admin:inbox_conversation_mark_read", args=[object_id]))

    assert response.status_code == 404
    assert len(meta.calls) == 0


def test_without_the_permission_there_is_no_action_and_the_button_is_403(viewer, two_conversations, meta):
    conversation = Conversation.objects.get(contact_wa_id="6281")

    changelist = viewer.get(reverse("admin:inbox_message_changelist"))
    thread = viewer.get(reverse("admin:inbox_conversation_change", args=[conversation.pk]))
    button = viewer.post(reverse("admin:inbox_conversation_mark_read", args=[conversation.pk]))
    forced = run_action(viewer, "message", Message.objects.values_list("pk", flat=True))

    assert changelist.status_code == 200
    assert "mark_read" not in changelist.content.decode()
    assert thread.status_code == 200 and b'id="mark-read"' not in thread.content
    assert button.status_code == 403
    assert forced.status_code == 200
    assert Message.objects.filter(status=Status.RECEIVED).count() == 5
    assert len(meta.calls) == 0


def test_the_button_needs_post_and_csrf(reader, two_conversations, meta):
    conversation = Conversation.objects.get(contact_wa_id="6281")
    url = reverse("admin:inbox_conversation_mark_read", args=[conversation.pk])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(reader.user)

    assert reader.get(url).status_code == 405
    assert strict.post(url).status_code == 403
    assert len(meta.calls) == 0


def test_the_action_costs_the_same_queries_at_10_and_200_messages(
    reader, phone_number, make_message, meta_accepts_reads, monkeypatch
):
    monkeypatch.setattr("receipts.admin.ADMIN_READ_CONCURRENCY", 1)  # every query on this connection
    counted = []
    for per_conversation in (5, 100):
        Message.objects.all().delete()
        for contact in ("6281", "6282"):
            for _ in range(per_conversation):
                make_message(phone_number, contact=contact)
        selected = list(Message.objects.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            response = reader.post(
                reverse("admin:inbox_message_changelist"), {"action": "mark_read", "_selected_action": selected}
            )
        assert response.status_code == 302
        assert Message.objects.filter(status=Status.READ).count() == 2 * per_conversation
        counted.append(len(queries))

    # Admin: session, user, 2 permission lookups, the user's memberships, the changelist's count and
    # filters, the selection; the service: 1 count, 1 newest message per conversation, the orgs'
    # webhook subscriptions once, then per conversation: claim it, lock its unread rows, update them
    # (plus BEGIN/COMMIT); the selection's orgs and one audit entry for them.
    # (24 when the subscriptions were looked up per conversation.)
    assert counted[0] == counted[1] == 23
