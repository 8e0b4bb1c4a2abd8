"""The live inbox's JSON answers (what changed since a cursor), the default order, search across every
message's text, and the exact queries of each answer."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inbox.admin.live import LIVE_OVERLAP, live_cursor
from inbox.models import Conversation, Direction, Message, Status


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    return client


def inbox_live(client, since):
    return client.get(reverse("admin:inbox_conversation_live"), {"since": live_cursor(since)})


def thread_live(client, conversation, since):
    return client.get(
        reverse("admin:inbox_conversation_thread_live", args=[conversation.pk]), {"since": live_cursor(since)}
    )


def test_the_inbox_answers_the_conversations_changed_since_its_cursor(staff, phone_number, make_message):
    make_message(phone_number, contact="6281", contact_name="Siti")
    Message.objects.update(updated_at=timezone.now() - timedelta(minutes=5))  # before the page opened
    opened_at = timezone.now()
    make_message(phone_number, contact="6282", contact_name="Budi", text="Is it ready?", timestamp=timezone.now())

    answer = inbox_live(staff, opened_at).json()

    budi = Conversation.objects.get(contact_wa_id="6282")
    assert [(c["id"], c["preview"], c["unread"]) for c in answer["conversations"]] == [(budi.pk, "← Is it ready?", 1)]
    assert answer["conversations"][0]["unread_badge"] == '<span class="unread-badge" title="1 unread">1</span>'
    assert answer["reload"] is False
    assert answer["cursor"] == live_cursor(Message.objects.get(contact_wa_id="6282").updated_at)


def test_a_read_elsewhere_moves_the_unread_count(staff, phone_number, make_message):
    message = make_message(phone_number, contact="6281")
    opened_at = timezone.now()
    Message.objects.filter(pk=message.pk).update(status=Status.READ, updated_at=timezone.now())

    answer = inbox_live(staff, opened_at).json()

    assert [(c["contact"], c["unread"], c["unread_badge"]) for c in answer["conversations"]] == [
        ("<strong>—</strong><br><small>+6281</small>", 0, "")
    ]


def test_nothing_changed_is_an_empty_answer_and_the_same_cursor(staff, phone_number, make_message):
    make_message(phone_number, contact="6281")
    Message.objects.update(updated_at=timezone.now() - LIVE_OVERLAP - timedelta(seconds=1))
    since = timezone.now() - timedelta(microseconds=1)

    answer = inbox_live(staff, since).json()

    assert answer == {"cursor": live_cursor(since), "reload": False, "conversations": []}


def test_the_thread_answers_its_new_messages_and_moved_ticks(staff, phone_number, make_message):
    make_message(phone_number, contact="6281", timestamp=timezone.now() - timedelta(hours=1))
    sent = make_message(phone_number, contact="6281", direction=Direction.OUTBOUND, status=Status.SENT)
    make_message(phone_number, contact="6282", text="another conversation")
    Message.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    opened_at = timezone.now()
    Message.objects.filter(pk=sent.pk).update(status=Status.READ, updated_at=timezone.now())
    new = make_message(phone_number, contact="6281", text="Thanks!", timestamp=timezone.now())
    conversation = Conversation.objects.get(contact_wa_id="6281")

    answer = thread_live(staff, conversation, opened_at).json()

    assert [(m["id"], m["status"]) for m in answer["messages"]] == [
        (sent.external_id, "read"),
        (new.external_id, "received"),
    ]
    assert 'class="tick tick-blue"' in answer["messages"][0]["tick"]
    assert (answer["window_open"], answer["unread"]) == (True, 2)


@pytest.mark.parametrize("since", ["", "yesterday", "2026-01-01T00:00:00"])
def test_a_bad_cursor_is_a_400_in_the_envelope(staff, phone_number, make_message, since):
    make_message(phone_number, contact="6281")
    conversation = Conversation.objects.get()

    for url in (reverse("admin:inbox_conversation_live"),
                reverse("admin:inbox_conversation_thread_live", args=[conversation.pk])):  # fmt: skip
        response = staff.get(url, {"since": since})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "since"


def test_an_unknown_conversation_is_a_404(staff, phone_number):
    response = staff.get(
        reverse("admin:inbox_conversation_thread_live", args=[999]), {"since": live_cursor(timezone.now())}
    )
    assert response.status_code == 404


def queries_of(client, url, params):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


def test_live_answers_cost_the_same_queries_at_10_and_200_messages(staff, phone_number, second_number, make_message):
    counts = []
    for per_conversation in (1, 20):
        opened_at = timezone.now()
        for n in range(10):
            for _ in range(per_conversation):
                make_message(phone_number if n % 2 else second_number, contact=f"62{n}", timestamp=timezone.now())
        conversation = Conversation.objects.first()
        since = {"since": live_cursor(opened_at)}
        counts.append((
            queries_of(staff, reverse("admin:inbox_conversation_live"), since),
            queries_of(staff, reverse("admin:inbox_conversation_thread_live", args=[conversation.pk]), since),
        ))  # fmt: skip
    # inbox: session, user, changed conversations (grouped changed messages), their rows with unread
    # counts and numbers; thread: session, user, the conversation with its unread count, its changed
    # messages, the contact's last inbound message (the reply window). The team inbox adds to the
    # inbox the conversations the team changed, the rows' labels and which rows are still in the
    # page's view; to the thread its new notes and its assignee. Both note the agent present for the
    # round robin: one conditional UPDATE, which writes only when the last was a while ago.
    assert counts == [(8, 8), (8, 8)]


def test_the_inbox_is_newest_activity_first_by_default(staff, phone_number, make_message):
    make_message(phone_number, contact="6281", contact_name="Siti")
    make_message(phone_number, contact="6282", contact_name="Budi")
    make_message(phone_number, contact="6281", contact_name="Siti")  # Siti writes again: she goes back on top

    response = staff.get(reverse("admin:inbox_conversation_changelist"))

    assert [c.contact_name for c in response.context["cl"].result_list] == ["Siti", "Budi"]


def test_search_finds_a_word_of_any_earlier_message(staff, phone_number, make_message):
    make_message(phone_number, contact="6281", contact_name="Siti", text="And do you deliver to Bandung?")
    make_message(phone_number, contact="6281", contact_name="Siti", text="Thanks!")
    make_message(phone_number, contact="6282", contact_name="Budi", text="Where is my order")
    make_message(phone_number, contact="6283", contact_name="Bandung Coffee", text="Halo")

    def found(term):
        response = staff.get(reverse("admin:inbox_conversation_changelist"), {"q": term})
        return [c.contact_name for c in response.context["cl"].result_list]

    assert found("bandung") == ["Bandung Coffee", "Siti"]
    assert found("my order") == ["Budi"]
    assert found("6282") == ["Budi"]
    assert found("Jakarta") == []
