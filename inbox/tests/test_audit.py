"""The audit log: each action leaves one entry naming its actor (staff user, API key or the command
line), its target and the client's address; managers see their org's entries, agents none, operators
every org's. Notes, assignments, states and labels are recorded by inbox.services.teaminbox, whichever
door (the API, the admin) made them."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from conftest import STAFF_PASSWORD, logged_in
from inbox.models import ApiKey, AuditAction, AuditEntry, Conversation, Note, Role
from inbox.tests.test_replies import conversation_with, reply
from orgs.audit import COMMAND_LINE, audit_record
from testing.meta import graph_messages_url, meta_confirms_number


def only_entry(action):
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, entries
    return entries[0]


@pytest.fixture
def manager(org, make_member):
    return logged_in(make_member(org, Role.MANAGER))


def test_a_read_receipt_over_the_api_is_recorded_once_with_its_key(api, api_key_secret, phone_number, make_message,
                                                                   meta_accepts_reads):  # fmt: skip
    message = make_message(phone_number)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    for _ in range(2):  # the repeat reads nothing: nothing more to record
        assert api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json").status_code == 200
    entry = only_entry(AuditAction.MARK_READ)
    key = ApiKey.for_secret(api_key_secret)
    assert (entry.org, entry.actor_key, entry.actor_user, entry.target) == (
        phone_number.org,
        key,
        None,
        message.external_id,
    )
    assert key.external_id in entry.actor and entry.address == "127.0.0.1"


def test_marking_read_and_replying_in_the_admin_are_recorded_with_the_staff_user(
    org, make_member, phone_number, make_message, meta
):
    agent_user = make_member(org, Role.AGENT)
    agent = logged_in(agent_user)
    conversation = conversation_with(phone_number, make_message, hours_ago=2)
    meta.post(graph_messages_url(phone_number), json={"success": True})
    agent.post(reverse("admin:inbox_message_changelist"), {"action": "mark_read",
               "_selected_action": list(conversation.messages().values_list("pk", flat=True))})  # fmt: skip
    read = only_entry(AuditAction.MARK_READ)
    assert (read.actor_user, read.actor, read.org) == (agent_user, agent_user.username, org)

    meta.replace("POST", graph_messages_url(phone_number), json={"messaging_product": "whatsapp",
                 "contacts": [{"input": "6281", "wa_id": "6281"}], "messages": [{"id": "wamid.REPLY1"}]})  # fmt: skip
    reply(agent, Conversation.objects.get(), token="t1", text="Yes")
    replied = only_entry(AuditAction.REPLY)
    assert replied.actor_user == agent_user and replied.target.startswith("msg_")


def test_keys_created_rotated_and_revoked_are_recorded(org, manager, api, api_key_secret):
    manager.post(reverse("admin:inbox_apikey_add"), {"org": org.pk, "name": "crm", "scopes": ["media"]})
    created = only_entry(AuditAction.KEY_CREATED)
    assert created.actor == manager.user.username and created.detail == "media"

    old = ApiKey.for_secret(api_key_secret)
    assert api.post("/v1/me/rotate_key").status_code == 201
    rotated = only_entry(AuditAction.KEY_ROTATED)
    assert (rotated.actor_key, rotated.target) == (old, old.external_id)

    manager.post(reverse("admin:inbox_apikey_changelist"), {"action": "revoke", "_selected_action": [old.pk]})
    revoked = only_entry(AuditAction.KEY_REVOKED)
    assert (revoked.actor_user, revoked.target) == (manager.user, old.external_id)


def test_commands_record_their_actions_as_the_command_line(org, monkeypatch, meta):
    call_command("create_api_key", "--org", org.slug, stdout=io.StringIO())
    monkeypatch.setattr("sys.stdin", io.StringIO(STAFF_PASSWORD + "\n"))
    call_command("add_member", "--org", org.slug, "--username", "siti", "--role", "agent", "--password-stdin",
                 stdout=io.StringIO())  # fmt: skip
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-new")
    meta_confirms_number(meta, "1065403522", token="EAAG-new")
    call_command("add_phone_number", "--org", org.slug, "--phone-number-id", "1065403522", stdout=io.StringIO())
    for action in (AuditAction.KEY_CREATED, AuditAction.MEMBER_ADDED, AuditAction.TOKEN_CHANGED):
        entry = only_entry(action)
        assert (entry.actor, entry.actor_user, entry.actor_key, entry.address) == (COMMAND_LINE, None, None, "")
    assert only_entry(AuditAction.MEMBER_ADDED).target == "siti"


def test_a_token_changed_in_the_admin_is_recorded(org, manager, phone_number, meta):
    meta_confirms_number(meta, phone_number.phone_number_id, token="EAAG-rotated")
    change = {"org": org.pk, "phone_number_id": phone_number.phone_number_id, "display_phone_number": "+62",
              "waba_id": "", "access_token": "EAAG-rotated", "read_receipt_policy": "manual"}  # fmt: skip
    manager.post(reverse("admin:inbox_phonenumber_change", args=[phone_number.pk]), change)
    entry = only_entry(AuditAction.TOKEN_CHANGED)
    assert (entry.actor_user, entry.target) == (manager.user, phone_number.phone_number_id)
    assert "EAAG" not in entry.detail


def test_subscription_changes_are_recorded(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    created = api.post("/v1/webhook_subscriptions", {"url": "http://127.0.0.1:9/hook", "events": ["message.read"]},
                       format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    subscription_id = created.json()["data"]["id"]
    api.post(f"/v1/webhook_subscriptions/{subscription_id}/rotate_secret")
    api.delete(f"/v1/webhook_subscriptions/{subscription_id}")
    entries = AuditEntry.objects.filter(action=AuditAction.SUBSCRIPTION_CHANGED).order_by("pk")
    assert [(e.target, e.detail) for e in entries] == [
        (subscription_id, "created"), (subscription_id, "secret rotated"), (subscription_id, "deleted")
    ]  # fmt: skip


def test_managers_see_their_orgs_entries_agents_none_operators_all(org, other_org, make_member):
    audit_record(None, AuditAction.KEY_CREATED, org=org, target="ours")
    audit_record(None, AuditAction.KEY_CREATED, org=other_org, target="THEIRS")
    url = reverse("admin:inbox_auditentry_changelist")

    manager_page = logged_in(make_member(org, Role.MANAGER)).get(url).content.decode()
    assert "ours" in manager_page and "THEIRS" not in manager_page
    assert logged_in(make_member(org, Role.AGENT)).get(url).status_code == 403
    operator_page = logged_in(User.objects.create_superuser("operator", password="pw")).get(url).content.decode()
    assert "ours" in operator_page and "THEIRS" in operator_page
    entry = AuditEntry.objects.get(target="THEIRS")
    change_url = reverse("admin:inbox_auditentry_change", args=[entry.pk])
    assert logged_in(User.objects.get(username=f"manager-{org.slug}")).get(change_url).status_code == 404


def team_changes(action):
    return list(AuditEntry.objects.filter(action=action))


def test_notes_and_assignments_over_the_api_are_recorded_once_with_the_key(
    org, api, api_key_secret, phone_number, make_message, make_member
):
    nadia = make_member(org, Role.AGENT, "nadia")
    conversation = conversation_with(phone_number, make_message, hours_ago=2)
    url = f"/v1/conversations/{conversation.external_id}"
    for _ in range(2):  # the repeat changes nothing: nothing more to record
        assert api.patch(url, {"assignee": "nadia"}, format="json").status_code == 200
    assert api.post(f"{url}/notes", {"body": "Called her back"}, format="json").status_code == 201

    key = ApiKey.for_secret(api_key_secret)
    [assigned], [noted] = team_changes(AuditAction.ASSIGNMENT), team_changes(AuditAction.NOTE)
    for entry in (assigned, noted):
        assert (entry.org, entry.actor_key, entry.actor_user, entry.target) == (
            org,
            key,
            None,
            conversation.external_id,
        )
        assert key.external_id in entry.actor and entry.address == "127.0.0.1"
    assert assigned.detail == f"to {nadia.username}"
    assert noted.detail == Note.objects.get().external_id and "Called" not in noted.detail


def test_notes_and_assignments_in_the_admin_are_recorded_once_with_the_staff_user(
    org, other_org, phone_number, make_message, make_member
):
    nadia = make_member(org, Role.AGENT, "nadia")
    agent = logged_in(nadia)
    conversation = conversation_with(phone_number, make_message, hours_ago=2)
    for page, fields in (
        ("assign", {"me": "1"}),
        ("note", {"body": "Refund approved"}),
        ("state", {"state": "resolved"}),
    ):
        agent.post(reverse(f"admin:inbox_conversation_{page}", args=[conversation.pk]), fields)

    for action in (AuditAction.ASSIGNMENT, AuditAction.NOTE, AuditAction.STATE_CHANGED):
        [entry] = team_changes(action)
        assert (entry.org, entry.actor_user, entry.actor, entry.actor_key) == (org, nadia, "nadia", None)
        assert entry.target == conversation.external_id and entry.address == "127.0.0.1"
    assert team_changes(AuditAction.STATE_CHANGED)[0].detail == "open to resolved"

    url = reverse("admin:inbox_auditentry_changelist")
    elsewhere = logged_in(make_member(other_org, Role.MANAGER)).get(url)
    assert elsewhere.status_code == 200 and conversation.external_id not in elsewhere.content.decode()
    assert logged_in(make_member(other_org, Role.AGENT)).get(url).status_code == 403
    assert conversation.external_id in logged_in(make_member(org, Role.MANAGER)).get(url).content.decode()
