"""The team inbox in the admin, request by request: views, assignment and its permission, states and
their cycles, labels, notes, a saved reply's attachment, media through Kirim's proxy, the contact page
and the reports, each scoped to the staff member's org."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from conftest import logged_in
from inbox.models import (
    ROLE_GROUPS,
    Conversation,
    ConversationCycle,
    ConversationState,
    Direction,
    Label,
    Note,
    Role,
    SavedReply,
)
from testing.meta import as_the_client_sent_it, graph_messages_url

pytestmark = pytest.mark.django_db

IMAGE_ID = "880011"


@pytest.fixture
def nadia(org, make_member):
    return logged_in(make_member(org, Role.AGENT, "nadia"))


@pytest.fixture
def rudi(org, make_member):
    return logged_in(make_member(org, Role.AGENT, "rudi"))


@pytest.fixture
def maya(org, make_member):
    return logged_in(make_member(org, Role.MANAGER, "maya"))


@pytest.fixture
def chats(phone_number, second_number, foreign_number, make_message):
    """Siti writes to both of the org's numbers (an image on the first); Budi once; another org's contact too."""
    now = timezone.now()
    make_message(phone_number, contact="6281", contact_name="Siti", type="image", text="This one?",
                 payload={"type": "image", "image": {"id": IMAGE_ID, "mime_type": "image/jpeg"}},
                 timestamp=now - timedelta(minutes=9))  # fmt: skip
    make_message(second_number, contact="6281", contact_name="Siti R.", timestamp=now - timedelta(minutes=8))
    make_message(phone_number, contact="6282", contact_name="Budi", timestamp=now - timedelta(minutes=7))
    make_message(foreign_number, contact="6281", contact_name="Siti elsewhere", timestamp=now - timedelta(minutes=6))
    return {
        "siti": Conversation.objects.get(phone_number=phone_number, contact_wa_id="6281"),
        "siti2": Conversation.objects.get(phone_number=second_number, contact_wa_id="6281"),
        "budi": Conversation.objects.get(phone_number=phone_number, contact_wa_id="6282"),
        "foreign": Conversation.objects.get(phone_number=foreign_number),
    }


def listed(client, **query):
    response = client.get(reverse("admin:inbox_conversation_changelist"), query)
    assert response.status_code == 200
    return [c.contact_name for c in response.context["cl"].result_list]


def post(client, name, conversation, **fields):
    return client.post(reverse(f"admin:inbox_conversation_{name}", args=[conversation.pk]), fields)


def test_views_mine_unassigned_open_and_resolved(nadia, rudi, chats):
    assert listed(nadia) == ["Budi", "Siti R.", "Siti"]  # the landing: Open
    post(nadia, "assign", chats["siti"], me="1")
    post(rudi, "state", chats["budi"], state="resolved")
    assert listed(nadia, view="mine") == ["Siti"]
    assert listed(rudi, view="mine") == []
    assert listed(rudi, view="unassigned") == ["Siti R."]
    assert listed(rudi) == ["Siti R.", "Siti"]
    assert listed(rudi, view="resolved") == ["Budi"]
    assert listed(rudi, view="all") == ["Budi", "Siti R.", "Siti"]


def test_assignment_takes_a_member_of_the_org_only(nadia, other_org, make_member, chats, org):
    outsider = make_member(other_org, Role.AGENT, "outsider")
    post(nadia, "assign", chats["siti"], assignee=outsider.pk)
    chats["siti"].refresh_from_db()
    assert chats["siti"].assignee_id is None
    rudi_user = make_member(org, Role.AGENT, "rudi")
    post(nadia, "assign", chats["siti"], assignee=rudi_user.pk)
    chats["siti"].refresh_from_db()
    assert chats["siti"].assignee == rudi_user


def test_an_agent_without_the_manage_permission_is_refused(nadia, chats):
    Group.objects.get(name=ROLE_GROUPS[Role.AGENT]).permissions.remove(Permission.objects.get(codename="manage"))
    for name, fields in (("assign", {"me": "1"}), ("state", {"state": "resolved"}), ("note", {"body": "x"}),
                         ("labels", {})):  # fmt: skip
        assert post(nadia, name, chats["siti"], **fields).status_code == 403
    actions = nadia.get(reverse("admin:inbox_conversation_changelist")).context["action_form"].fields["action"]
    assert "assign_to_me" not in dict(actions.choices)
    chats["siti"].refresh_from_db()
    assert (chats["siti"].assignee_id, chats["siti"].state) == (None, "open") and not Note.objects.exists()


def test_another_orgs_conversation_answers_404_on_every_team_page(nadia, chats):
    for name in ("assign", "state", "labels", "note"):
        assert post(nadia, name, chats["foreign"], me="1", state="resolved", body="x").status_code == 404
    for name in ("contact", "media"):
        url = reverse(f"admin:inbox_conversation_{name}", args=[chats["foreign"].pk])
        assert nadia.get(url).status_code == 404


def test_list_actions_assign_and_resolve_keep_a_cycle(nadia, chats):
    changelist = reverse("admin:inbox_conversation_changelist")
    ids = [chats["siti"].pk, chats["budi"].pk]
    nadia.post(changelist, {"action": "assign_to_me", "_selected_action": ids})
    nadia.post(changelist, {"action": "resolve", "_selected_action": ids})
    assert set(Conversation.objects.filter(pk__in=ids).values_list("state", "assignee__username")) == {
        ("resolved", "nadia")
    }
    assert ConversationCycle.objects.count() == 2
    assert listed(nadia) == ["Siti R."]


def test_a_snooze_needs_a_future_time_and_ends_by_itself(nadia, chats):
    post(nadia, "state", chats["siti"], state="snoozed")
    chats["siti"].refresh_from_db()
    assert chats["siti"].state == "open"  # refused: no time given
    soon = timezone.localtime() + timedelta(hours=1)
    post(nadia, "state", chats["siti"], state="snoozed", snoozed_until=soon.strftime("%Y-%m-%dT%H:%M"))
    assert listed(nadia, view="snoozed") == ["Siti"]
    assert "Siti" not in listed(nadia)
    Conversation.objects.filter(pk=chats["siti"].pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    assert "Siti" in listed(nadia)  # its time came: open again


def test_labels_are_the_orgs_own_and_filter_the_list(nadia, org, other_org, chats):
    vip = Label.objects.create(org=org, name="vip")
    theirs = Label.objects.create(org=other_org, name="theirs")
    post(nadia, "labels", chats["siti"], labels=[vip.pk, theirs.pk])
    assert list(chats["siti"].labels.all()) == [vip]
    assert listed(nadia, labels__id__exact=vip.pk) == ["Siti"]


def test_a_note_shows_in_the_thread_apart_from_messages_and_nothing_is_sent(nadia, chats, meta):
    post(nadia, "note", chats["siti"], body="Regular customer <b>VIP</b>")
    page = nadia.get(reverse("admin:inbox_conversation_change", args=[chats["siti"].pk])).content.decode()
    assert 'class="bubble note"' in page and "Private note · nadia" in page
    assert "Regular customer &lt;b&gt;VIP&lt;/b&gt;" in page
    assert len(meta.calls) == 0


def test_a_saved_replys_attachment_is_uploaded_and_sent_with_its_text(nadia, org, phone_number, chats, meta):
    saved = SavedReply.objects.create(org=org, name="Catalogue", body="Hi {{contact_name}}, our catalogue",
                                      attachment=b"%PDF-1.4 catalogue", attachment_name="catalogue.pdf",
                                      attachment_type="application/pdf")  # fmt: skip
    page = nadia.get(reverse("admin:inbox_conversation_change", args=[chats["siti"].pk])).content.decode()
    assert 'data-text="Hi Siti, our catalogue"' in page
    meta.post(f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/media", json={"id": "990001"})
    meta.post(graph_messages_url(phone_number), json={"messaging_product": "whatsapp",
              "contacts": [{"input": "6281", "wa_id": "6281"}], "messages": [{"id": "wamid.DOC1"}]})  # fmt: skip
    post(nadia, "reply", chats["siti"], token="t1", text="Hi Siti, our catalogue", saved_reply=saved.pk)
    upload, send = meta.calls
    assert b"catalogue.pdf" in upload.request.body
    assert as_the_client_sent_it(json.loads(send.request.body)) == {
        "messaging_product": "whatsapp", "to": "6281", "type": "document",
        "document": {"id": "990001", "caption": "Hi Siti, our catalogue", "filename": "catalogue.pdf"},
    }  # fmt: skip
    # The agent's reply is the cycle's first response, for the reports.
    chats["siti"].refresh_from_db()
    assert chats["siti"].first_responder.username == "nadia"


def test_media_comes_through_kirim_with_the_token_kept_server_side(nadia, phone_number, chats, meta):
    media_url = f"{settings.META_GRAPH_URL}/{IMAGE_ID}"
    meta.get(media_url, json={"url": f"{settings.META_GRAPH_URL}/_media/{IMAGE_ID}", "mime_type": "image/jpeg"})
    meta.get(f"{settings.META_GRAPH_URL}/_media/{IMAGE_ID}", body=b"\xff\xd8jpeg bytes", content_type="image/jpeg")
    page = nadia.get(reverse("admin:inbox_conversation_change", args=[chats["siti"].pk])).content.decode()
    message = chats["siti"].messages().get(type="image")
    url = f"{reverse('admin:inbox_conversation_media', args=[chats['siti'].pk])}?message={message.external_id}"
    assert f'src="{url}"' in page.replace("&amp;", "&")
    response = nadia.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"\xff\xd8jpeg bytes"
    assert all(c.request.headers["Authorization"] == f"Bearer {phone_number.access_token}" for c in meta.calls)
    assert phone_number.access_token not in page and settings.META_GRAPH_URL not in page
    budi_message = chats["budi"].messages().get()
    assert nadia.get(f"{url.split('?')[0]}?message={budi_message.external_id}").status_code == 404  # no media


def test_the_contact_page_lists_their_conversations_in_the_org_only(nadia, chats):
    page = nadia.get(reverse("admin:inbox_conversation_contact", args=[chats["siti"].pk]))
    assert page.status_code == 200
    rows = page.context["contact_conversations"]
    assert {c.pk for c, _ in rows} == {chats["siti"].pk, chats["siti2"].pk}
    assert page.context["names"] == ["Siti", "Siti R."]
    assert "Siti elsewhere" not in page.content.decode()


def test_the_report_is_for_managers_and_counts_what_happened(nadia, maya, chats, make_message, phone_number):
    siti = chats["siti"]
    opened = timezone.now() - timedelta(minutes=30)
    Conversation.objects.filter(pk=siti.pk).update(opened_at=opened, first_response_at=opened + timedelta(minutes=5),
                                                   first_responder=nadia.user)  # fmt: skip
    post(maya, "state", siti, state="resolved")
    make_message(phone_number, contact="6282", direction=Direction.OUTBOUND, timestamp=timezone.now())
    assert nadia.get(reverse("admin:inbox_conversation_reports")).status_code == 403
    response = maya.get(reverse("admin:inbox_conversation_reports"))
    assert response.status_code == 200
    report = response.context["report"]
    [agent] = [row for row in report.agents() if row["agent"] == "nadia"]
    assert (agent["responses"], agent["first_response"]) == (1, "5 min")
    [resolver] = [row for row in report.agents() if row["agent"] == "maya"]
    assert resolver["resolved"] == 1 and resolver["resolution"] == "30 min"
    today = report.rows()[-1]
    assert (today["in"], today["out"], today["resolved"]) == (3, 1, 1)
    assert b"<svg" in response.content and b"http" not in response.content.split(b"<svg")[1].split(b"</svg>")[0]


def test_resolved_then_new_inbound_reopens_with_a_new_cycle(nadia, chats, make_message, phone_number):
    post(nadia, "state", chats["budi"], state="resolved")
    make_message(phone_number, contact="6282", contact_name="Budi", timestamp=timezone.now())
    chats["budi"].refresh_from_db()
    assert chats["budi"].state == ConversationState.OPEN and chats["budi"].opened_at is not None


def test_past_hours_are_counted_once_and_kept(maya, org, phone_number, make_message):
    from inbox.models import HourlyMessageCount

    two_days_ago = timezone.localtime() - timedelta(days=2)
    for direction in (Direction.INBOUND, Direction.INBOUND, Direction.OUTBOUND):
        make_message(phone_number, contact="6283", direction=direction, timestamp=two_days_ago)
    make_message(phone_number, contact="6283", timestamp=timezone.now())
    url = reverse("admin:inbox_conversation_reports")
    counts = {r["day"]: (r["in"], r["out"]) for r in maya.get(url).context["report"].rows()}
    assert counts[two_days_ago.date()] == (2, 1) and counts[timezone.localdate()] == (1, 0)
    kept = HourlyMessageCount.objects.get(org=org, hour=two_days_ago.replace(minute=0, second=0, microsecond=0))
    assert (kept.inbound, kept.outbound) == (2, 1)
    kept_hours = HourlyMessageCount.objects.filter(org=org).count()
    assert kept_hours >= 24 * 6  # every past hour of the week but the last two, kept (empty ones too)
    make_message(phone_number, contact="6283", timestamp=two_days_ago)  # late, into a kept hour: not recounted
    again = {r["day"]: (r["in"], r["out"]) for r in maya.get(url).context["report"].rows()}
    assert again == counts and HourlyMessageCount.objects.filter(org=org).count() == kept_hours
