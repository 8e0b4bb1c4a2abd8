"""The admin inbox: conversations, threads, write-only secrets, and query counts that do not grow."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import logged_in
from inbox.models import ApiKey, Conversation, Direction, Membership, PhoneNumber, Role, Status
from testing.meta import meta_confirms_number


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    return client


def test_the_inbox_lists_conversations_newest_first_with_unread_counts(staff, phone_number, make_message):
    make_message(phone_number, contact="6281", contact_name="Siti")
    make_message(phone_number, contact="6282", contact_name="Budi")
    make_message(phone_number, contact="6282", contact_name="Budi")
    make_message(phone_number, contact="6283", contact_name="Ayu", status=Status.READ)

    response = staff.get(reverse("admin:inbox_conversation_changelist"))

    rows = list(response.context["cl"].result_list)
    assert [c.contact_name for c in rows] == ["Ayu", "Budi", "Siti"]
    assert [c.unread for c in rows] == [0, 2, 1]
    assert b'<span class="unread-badge" title="2 unread">2</span>' in response.content


@pytest.mark.parametrize(
    "params, expected",
    [({"unread": "yes"}, {"Budi"}), ({"unread": "no"}, {"Ayu"}), ({"q": "Budi"}, {"Budi"}),
     ({"q": "6283"}, {"Ayu"}), ({"q": "where is"}, {"Budi"}), ({"last_direction__exact": "outbound"}, {"Ayu"})],
)  # fmt: skip
def test_inbox_filters_and_search(staff, phone_number, make_message, params, expected):
    make_message(phone_number, contact="6282", contact_name="Budi", text="where is my order")
    make_message(phone_number, contact="6283", contact_name="Ayu", status=Status.READ)
    make_message(phone_number, contact="6283", direction=Direction.OUTBOUND)

    response = staff.get(reverse("admin:inbox_conversation_changelist"), params)

    assert {c.contact_name for c in response.context["cl"].result_list} == expected


def test_the_thread_shows_a_chat_with_ticks(staff, phone_number, make_message):
    make_message(phone_number, contact="6281", text="Halo?")
    make_message(phone_number, contact="6281", direction=Direction.OUTBOUND, status=Status.READ, text="Halo juga")
    make_message(phone_number, contact="6281", direction=Direction.OUTBOUND, status=Status.DELIVERED, text="Ada lagi?")
    conversation = Conversation.objects.get()

    html = staff.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()

    assert html.index("Halo?") < html.index("Halo juga") < html.index("Ada lagi?")
    bubbles = re.findall(r'class="bubble (\w+)" data-id="msg_\w+" data-status="(\w+)"', html)
    assert bubbles == [("inbound", "received"), ("outbound", "read"), ("outbound", "delivered")]
    # The symbol is for the eye; screen readers hear the status in words.
    assert (
        '<span class="tick tick-blue" title="read"><span aria-hidden="true">✓✓</span>'
        '<span class="visually-hidden">read</span></span>'
    ) in html
    assert '<span class="tick tick-grey" title="delivered"><span aria-hidden="true">✓✓</span>' in html
    assert 'id="mark-read"' in html


def page_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["superuser", "agent"])
def test_inbox_and_thread_queries_do_not_grow_with_messages(
    who, staff, org, make_member, phone_number, second_number, make_message
):
    client = staff if who == "superuser" else logged_in(make_member(org, Role.AGENT))
    counts = []
    for per_conversation in (1, 20):  # 10 and then 200 messages over 10 conversations
        for n in range(10):
            for _ in range(per_conversation):
                make_message(phone_number if n % 2 else second_number, contact=f"62{n}")
        conversation = Conversation.objects.first()
        counts.append(
            (
                page_queries(client, reverse("admin:inbox_conversation_changelist")),
                page_queries(client, reverse("admin:inbox_conversation_change", args=[conversation.pk])),
                page_queries(client, reverse("admin:inbox_message_changelist")),
            )
        )

    assert counts[0] == counts[1]
    # inbox: session, user, count (capped), page with unread counts, org and number filter choices;
    # thread: session, user, conversation with its unread count, its messages, its number, the
    # contact's last inbound message (the reply window; no WABA id, so no templates), the contact
    # (saved name, blocked); message list:
    # session, user, count, page, number filter choices. Staff other than superusers add their
    # permissions (2 queries) and their memberships (1). The team inbox adds to the inbox the page's
    # labels (prefetched) and the label filter's choices; to the thread the conversation's notes and
    # labels, the org's labels, saved replies and agents, and the conversation's assignee; Kirim's
    # contact record (saved name, blocked).
    assert counts[0] == {"superuser": (8, 13, 5), "agent": (11, 16, 8)}[who]


def test_the_access_token_is_write_only(staff, phone_number, meta):
    url = reverse("admin:inbox_phonenumber_change", args=[phone_number.pk])

    html = staff.get(url).content.decode()
    listing = staff.get(reverse("admin:inbox_phonenumber_changelist")).content.decode()
    kept = staff.post(url, {"org": phone_number.org_id, "phone_number_id": phone_number.phone_number_id,
                            "display_phone_number": "+62 811 1", "waba_id": "", "access_token": "",
                            "read_receipt_policy": "manual"})  # fmt: skip

    assert phone_number.access_token not in html and phone_number.access_token not in listing
    assert 'type="password"' in html
    assert kept.status_code == 302
    assert PhoneNumber.objects.get().access_token == phone_number.access_token
    meta_confirms_number(meta, phone_number.phone_number_id, token="EAAG-rotated")
    staff.post(url, {"org": phone_number.org_id, "phone_number_id": phone_number.phone_number_id,
                     "display_phone_number": "+62 811 1", "waba_id": "", "access_token": "EAAG-rotated",
                     "read_receipt_policy": "manual"})  # fmt: skip
    assert PhoneNumber.objects.get().access_token == "EAAG-rotated"


def test_an_api_key_is_shown_once_and_its_digest_never(staff, org, phone_number):
    created = staff.post(
        reverse("admin:inbox_apikey_add"),
        {"org": org.pk, "name": "crm", "expires_at": "", "scopes": ["media", "messages:read"]},
    )

    secret = created.context["secret"]
    key = ApiKey.for_secret(secret)
    assert (key.name, key.org, key.scopes) == ("crm", org, "messages:read media")
    assert created.content.decode().count(secret) == 1
    for url in (reverse("admin:inbox_apikey_change", args=[key.pk]), reverse("admin:inbox_apikey_changelist")):
        html = staff.get(url).content.decode()
        assert secret not in html and key.digest not in html
    assert "_messages" not in staff.cookies  # never parked in the message storage


def test_revoking_a_key_makes_it_401(staff, org, phone_number, api, api_key_secret):
    key = ApiKey.for_secret(api_key_secret)

    staff.post(reverse("admin:inbox_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})

    response = api.get("/v1/me")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_operators_give_staff_an_org_and_a_role_in_the_admin(staff, org):
    siti = User.objects.create_user("siti", password="pw", is_staff=True)

    staff.post(reverse("admin:inbox_membership_add"), {"user": siti.pk, "org": org.pk, "role": "agent"})
    membership = Membership.objects.get(user=siti)
    staff.post(reverse("admin:inbox_membership_change", args=[membership.pk]), {"role": "manager"})
    assert list(siti.groups.values_list("name", flat=True)) == ["Kirim managers"]
    staff.post(reverse("admin:inbox_membership_delete", args=[membership.pk]), {"post": "yes"})

    assert not Membership.objects.exists()
    assert not siti.groups.exists()  # no org, no role: the user's role groups go with the membership


@pytest.mark.parametrize("query", ["status=%00", "direction__exact=in%00bound", "q=%00"])
def test_a_nul_in_a_filter_or_the_search_is_a_400_not_a_500(staff, phone_number, make_message, query):
    """PostgreSQL refuses a NUL in a query: Django's admin answered its 500 page."""
    make_message(phone_number)

    assert staff.get(f"{reverse('admin:inbox_message_changelist')}?{query}").status_code == 400


def test_an_action_on_rows_that_are_not_ids_is_a_400_not_a_500(staff, phone_number, make_message):
    make_message(phone_number)
    selection = {"action": "mark_read", "_selected_action": ["abc"]}

    assert staff.post(reverse("admin:inbox_message_changelist"), selection).status_code == 400
