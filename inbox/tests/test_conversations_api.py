"""/v1/conversations: list with filters and cursor pages, get, change (state, assignee, labels), notes;
another org's conversation answers exactly like a missing one; changes reach subscribers as events."""

import json
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from conftest import assert_error
from inbox.models import Conversation, ConversationCycle, Label, Note, Role
from outbox.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversations(phone_number, second_number, make_message):
    """Three of the org's conversations, Siti's the newest."""
    make_message(second_number, contact="6281200000003", contact_name="Ayu")
    make_message(phone_number, contact="6281200000002", contact_name="Budi")
    make_message(phone_number, contact="6281200000001", contact_name="Siti")
    return {c.contact_name: c for c in Conversation.objects.all()}


@pytest.fixture
def foreign_conversation(foreign_number, make_message):
    make_message(foreign_number, contact="6281200000009", contact_name="Elsewhere")
    return Conversation.objects.get(phone_number=foreign_number)


@pytest.fixture
def agent(org, make_member):
    return make_member(org, Role.AGENT, "nadia")


def events_of(kind):
    return [json.loads(e.body) for e in Event.objects.filter(type=kind).order_by("pk")]


def test_the_list_pages_newest_activity_first_with_a_cursor(api, conversations):
    first = api.get("/v1/conversations", {"limit": 2}).json()
    assert [c["contact"]["name"] for c in first["data"]] == ["Siti", "Budi"]
    assert first["has_more"] is True
    rest = api.get("/v1/conversations", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [c["contact"]["name"] for c in rest["data"]] == ["Ayu"]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    siti = first["data"][0]
    assert siti["id"].startswith("cnv_") and siti["object"] == "conversation"
    assert (siti["state"], siti["assignee"], siti["labels"]) == ("open", None, [])


def test_the_list_filters_by_state_assignee_label_number_and_contact(
    api, org, agent, conversations, second_number, foreign_conversation
):
    siti, budi = conversations["Siti"], conversations["Budi"]
    vip = Label.objects.create(org=org, name="vip")
    api.patch(f"/v1/conversations/{siti.external_id}", {"assignee": "nadia", "labels": ["vip"]}, format="json")
    api.patch(f"/v1/conversations/{budi.external_id}", {"state": "resolved"}, format="json")

    def names(**query):
        answer = api.get("/v1/conversations", query)
        assert answer.status_code == 200, answer.content
        return [c["contact"]["name"] for c in answer.json()["data"]]

    assert names(state="resolved") == ["Budi"]
    assert names(state="open") == ["Siti", "Ayu"]
    assert names(assignee="nadia") == ["Siti"]
    assert names(assignee="none") == ["Budi", "Ayu"]
    assert names(label=vip.name) == ["Siti"]
    assert names(phone_number_id=second_number.phone_number_id) == ["Ayu"]
    assert names(contact="6281200000002") == ["Budi"]
    assert names(contact="6281200000009") == []  # another org's contact
    assert_error(api.get("/v1/conversations", {"state": "closed"}), 400, "invalid_field_value", "state")
    page = api.get("/v1/conversations", {"limit": 1}).json()
    other_filter = api.get("/v1/conversations", {"limit": 1, "state": "open", "cursor": page["next_cursor"]})
    assert_error(other_filter, 400, "invalid_field_value", "cursor")


def test_another_orgs_conversation_answers_exactly_like_a_missing_one(api, conversations, foreign_conversation):
    missing = "cnv_01HXYZABCDEFGHJKMNPQRSTVWX"
    for method, suffix, body in (("get", "", None), ("patch", "", {"state": "resolved"}),
                                 ("post", "/notes", {"body": "hello"})):  # fmt: skip
        answers = [
            getattr(api, method)(f"/v1/conversations/{cid}{suffix}", body, format="json")
            for cid in (foreign_conversation.external_id, missing, "not-an-id")
        ]
        errors = [assert_error(answer, 404, "resource_not_found", "id") for answer in answers]
        assert len({(e["message"], e["type"]) for e in errors}) == 1
    foreign_conversation.refresh_from_db()
    assert foreign_conversation.state == "open" and not Note.objects.exists()


def test_patch_changes_state_assignee_and_labels_and_tells_subscribers(
    api, org, agent, conversations, subscribed_to_conversations
):
    siti = conversations["Siti"]
    Label.objects.create(org=org, name="billing")
    until = timezone.now() + timedelta(hours=2)
    answer = api.patch(
        f"/v1/conversations/{siti.external_id}",
        {"state": "snoozed", "snoozed_until": until.isoformat(), "assignee": "nadia", "labels": ["billing"]},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    data = answer.json()["data"]
    assert (data["state"], data["assignee"], data["labels"]) == ("snoozed", "nadia", ["billing"])
    assert data["snoozed_until"].startswith(until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))

    [assigned] = events_of("conversation.assigned")
    assert assigned["type"] == "conversation.assigned" and assigned["id"].startswith("evt_")
    assert assigned["data"]["conversation"]["id"] == siti.external_id
    assert assigned["data"]["conversation"]["assignee"] == "nadia"
    assert assigned["data"]["previous_assignee"] is None
    assert assigned["data"]["by"]["type"] == "api_key"
    [changed] = events_of("conversation.state_changed")
    assert (changed["data"]["previous_state"], changed["data"]["conversation"]["state"]) == ("open", "snoozed")

    unassigned = api.patch(f"/v1/conversations/{siti.external_id}", {"assignee": None}, format="json")
    assert unassigned.json()["data"]["assignee"] is None
    assert len(events_of("conversation.assigned")) == 2


def test_bad_changes_are_refused_and_change_nothing(api, other_org, make_member, conversations):
    siti = conversations["Siti"]
    make_member(other_org, Role.AGENT, "outsider")
    url = f"/v1/conversations/{siti.external_id}"
    assert_error(api.patch(url, {"assignee": "outsider", "state": "resolved"}, format="json"),
                 400, "invalid_field_value", "assignee")  # fmt: skip
    assert_error(api.patch(url, {"labels": ["nope"]}, format="json"), 400, "invalid_field_value", "labels")
    assert_error(api.patch(url, {"state": "snoozed"}, format="json"), 400, "invalid_field_value", "snoozed_until")
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert_error(api.patch(url, {"state": "snoozed", "snoozed_until": past}, format="json"),
                 400, "invalid_field_value", "snoozed_until")  # fmt: skip
    assert_error(api.patch(url, {"state": "done"}, format="json"), 400, "invalid_field_value", "state")
    assert_error(api.patch(url, {}, format="json"), 400, "invalid_field_value", "state")
    assert_error(api.patch(url, "[]", content_type="application/json"), 400, "invalid_json")
    siti.refresh_from_db()
    assert (siti.state, siti.assignee_id) == ("open", None)


def test_a_note_is_stored_told_to_subscribers_and_never_sent(api, conversations, subscribed_to_conversations, meta):
    siti = conversations["Siti"]
    answer = api.post(f"/v1/conversations/{siti.external_id}/notes", {"body": "VIP, be kind"}, format="json")
    assert answer.status_code == 201, answer.content
    note = answer.json()["data"]
    assert (note["object"], note["body"], note["author"]) == ("note", "VIP, be kind", None)
    assert Note.objects.get().conversation == siti
    [event] = events_of("conversation.note_added")
    assert event["data"]["note"]["id"] == note["id"]
    assert len(meta.calls) == 0  # nothing went to WhatsApp
    assert_error(api.post(f"/v1/conversations/{siti.external_id}/notes", {"body": "  "}, format="json"),
                 400, "invalid_field_value", "body")  # fmt: skip
    assert_error(api.post(f"/v1/conversations/{siti.external_id}/notes", {}, format="json"),
                 400, "missing_required_field", "body")  # fmt: skip


def test_a_key_without_the_manage_scope_reads_but_cannot_change(api, conversations):
    from inbox.models import ApiKey

    ApiKey.objects.update(scopes="messages:read")
    siti = conversations["Siti"]
    assert api.get(f"/v1/conversations/{siti.external_id}").status_code == 200
    assert_error(api.patch(f"/v1/conversations/{siti.external_id}", {"state": "resolved"}, format="json"),
                 403, "insufficient_scope")  # fmt: skip
    assert_error(api.post(f"/v1/conversations/{siti.external_id}/notes", {"body": "x"}, format="json"),
                 403, "insufficient_scope")  # fmt: skip


def test_resolving_keeps_the_cycle_and_a_new_inbound_message_reopens(api, conversations, phone_number, make_message):
    siti = conversations["Siti"]
    api.patch(f"/v1/conversations/{siti.external_id}", {"state": "resolved"}, format="json")
    [cycle] = ConversationCycle.objects.all()
    assert cycle.conversation == siti and cycle.opened_at is not None
    make_message(phone_number, contact="6281200000001", contact_name="Siti", timestamp=timezone.now())
    again = api.get(f"/v1/conversations/{siti.external_id}").json()["data"]
    assert again["state"] == "open"
    siti.refresh_from_db()
    assert siti.opened_at is not None and siti.opened_at > cycle.opened_at  # a new cycle began


@pytest.mark.parametrize("path", ["one statement", "steps"])
def test_metas_webhook_reopens_a_resolved_conversation_on_either_path(api, phone_number, deliver, path, monkeypatch):
    """PostgreSQL's one statement and the steps upsert conversations alike: a new message from the
    contact reopens a resolved conversation and starts its next cycle; an older one delivered late
    does neither."""
    from conftest import ON_POSTGRES
    from fakemeta import payloads

    if path == "one statement" and not ON_POSTGRES:
        pytest.skip("PostgreSQL's one statement")
    if path == "steps":
        monkeypatch.setattr("inbox.services.ingest_one_statement.INBOUND_IN_ONE_STATEMENT.run", lambda *args: None)
    now = timezone.now().timestamp()

    def write(wamid, seconds_ago):
        message = payloads.text_message(wamid, "6281200000001", "Halo", timestamp=now - seconds_ago)
        body = payloads.webhook(phone_number.phone_number_id, messages=[message],
                                contacts=[payloads.contact("6281200000001", "Siti")])  # fmt: skip
        assert deliver(body).status_code == 200
        return Conversation.objects.get()

    first = write("wamid.FIRST", 600)
    assert first.external_id.startswith("cnv_") and first.opened_at is not None
    api.patch(f"/v1/conversations/{first.external_id}", {"state": "resolved"}, format="json")
    assert write("wamid.LATE", 900).state == "resolved"  # older than the last activity: no reopening
    again = write("wamid.AGAIN", 10)
    assert (again.state, again.external_id) == ("open", first.external_id)
    assert again.opened_at > first.opened_at
