"""What Meta tells a business beyond its messages, in Meta's documented shapes: prices on statuses,
the templates' status, category and quality, the number's quality and limit, account events; and what
a business asks of Meta: blocking users, sending to a business-scoped user id."""

import json
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import assert_error, logged_in
from fakemeta import payloads
from inbox.models import (
    AccountEvent,
    Contact,
    Conversation,
    ConversationPriceTally,
    Direction,
    Message,
    MessageTemplate,
    PriceTally,
    Role,
    Status,
)
from inbox.services import replies
from outbox.models import Event, EventType
from testing.meta import graph_messages_url

NUMBER = "106540352242922"  # the phone_number fixture's
WABA = "102290129340398"
USER = "6281234567890"
USER_ID = payloads.user_id_of(USER)


@pytest.fixture
def waba_number(phone_number):
    phone_number.waba_id = WABA
    phone_number.display_phone_number = "+62 811 0000 0001"
    phone_number.save()
    return phone_number


def statuses(*items):
    return payloads.webhook(NUMBER, statuses=items)


# --- Prices -----------------------------------------------------------------------------------------


def test_a_status_price_is_kept_once_and_shown_on_the_message(api, phone_number, make_message, deliver):
    sent = make_message(phone_number, contact=USER, direction=Direction.OUTBOUND, status=Status.ACCEPTED,
                        type="template", payload={"type": "template", "template": {"name": "order_update"}})  # fmt: skip
    now = time.time()

    deliver(statuses(payloads.status(sent.wamid, "sent", USER, timestamp=now, category="utility")))
    deliver(statuses(payloads.status(sent.wamid, "delivered", USER, timestamp=now, category="utility")))
    deliver(statuses(payloads.status(sent.wamid, "sent", USER, timestamp=now, category="utility")))  # again

    shown = api.get(f"/v1/{NUMBER}/messages/{sent.external_id}").json()["data"]
    assert shown["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    assert shown["status"] == "delivered"
    tally = PriceTally.objects.get()
    assert (tally.template_name, tally.category, tally.billable, tally.messages) == ("order_update", "utility", True, 1)
    conversation = ConversationPriceTally.objects.get()
    assert (conversation.contact_wa_id, conversation.messages, conversation.billable) == (USER, 1, 1)


def test_the_price_report_sums_by_category_template_and_conversation(api, phone_number, make_message, deliver):
    template = {"type": "template", "template": {"name": "order_update"}}
    sends = [
        (make_message(phone_number, contact=USER, direction=Direction.OUTBOUND, payload=template), "utility"),
        (make_message(phone_number, contact=USER, direction=Direction.OUTBOUND, payload=template), "utility"),
        (make_message(phone_number, contact="6289999", direction=Direction.OUTBOUND), "service"),
    ]
    deliver(statuses(*(payloads.status(m.wamid, "sent", m.contact_wa_id, category=c) for m, c in sends)))

    report = api.get("/v1/pricing").json()["data"]

    assert (report["messages"], report["billable"]) == (3, 2)
    assert report["by_category"] == [
        {"category": "utility", "pricing_type": "regular", "messages": 2, "billable": 2},
        {"category": "service", "pricing_type": "free_customer_service", "messages": 1, "billable": 0},
    ]
    assert report["by_template"][0] == {"template_name": "order_update", "category": "utility", "messages": 2,
                                        "billable": 2}  # fmt: skip
    assert report["by_conversation"][0] == {"phone_number_id": NUMBER, "contact": USER, "messages": 2, "billable": 2}
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert api.get("/v1/pricing", {"since": yesterday, "until": yesterday}).json()["data"]["messages"] == 0
    assert_error(api.get("/v1/pricing", {"since": "soon"}), 400, "invalid_field_value", "since")


def test_the_admin_price_report_shows_managers_the_sums(phone_number, make_message, deliver, make_member, org):
    sent = make_message(phone_number, contact=USER, direction=Direction.OUTBOUND)
    deliver(statuses(payloads.status(sent.wamid, "sent", USER, category="marketing")))

    manager = logged_in(make_member(org, Role.MANAGER))
    page = manager.get(reverse("admin:inbox_pricetally_changelist")).content.decode()
    assert "1 billable of 1 priced" in page and "marketing" in page
    agent = logged_in(make_member(org, Role.AGENT, "an-agent"))
    assert agent.get(reverse("admin:inbox_pricetally_changelist")).status_code == 403


# --- Templates, the number, the account ----------------------------------------------------------------


def template_change(field, value):
    return payloads.field_change(field, value, waba_id=WABA)


@pytest.fixture
def synced(waba_number):
    replies.templates_store(waba_number, [dict(t) for t in payloads.DEMO_TEMPLATES])
    return {t["name"]: t for t in payloads.DEMO_TEMPLATES}


def test_a_template_meta_disabled_leaves_the_picker_at_once(waba_number, synced, deliver, subscribed_as_meta):
    assert "order_update" in {t.name for t in replies.approved_templates(waba_number)}
    disabled = template_change("message_template_status_update", payloads.template_status(
        synced["order_update"], "DISABLED", reason="INCORRECT_CATEGORY",
        disable_info={"disable_date": "1751328000"}))  # fmt: skip

    deliver(disabled)

    assert "order_update" not in {t.name for t in replies.approved_templates(waba_number)}
    assert MessageTemplate.objects.get(name="order_update").status == "DISABLED"
    assert [json.loads(e.body) for e in Event.objects.filter(type=EventType.TEMPLATE_STATUS)] == [disabled]
    deliver(template_change("message_template_status_update", payloads.template_status(synced["order_update"],
                                                                                       "APPROVED")))  # fmt: skip
    assert "order_update" in {t.name for t in replies.approved_templates(waba_number)}


def test_a_templates_category_and_quality_follow_their_webhooks(waba_number, synced, deliver, subscribed_as_meta):
    deliver(template_change("template_category_update", payloads.template_category(synced["follow_up"], "UTILITY")))
    deliver(template_change("message_template_quality_update", payloads.template_quality(synced["follow_up"], "RED")))

    template = MessageTemplate.objects.get(name="follow_up")
    assert (template.category, template.quality_score) == ("UTILITY", "RED")
    assert Event.objects.filter(type=EventType.TEMPLATE_CATEGORY).count() == 1
    assert Event.objects.filter(type=EventType.TEMPLATE_QUALITY).count() == 1


def test_the_numbers_quality_and_limit_and_the_accounts_events_are_kept_for_managers(
    waba_number, deliver, subscribed_as_meta, make_member, org, other_org
):
    deliver(template_change("phone_number_quality_update", payloads.number_quality("+62 811 0000 0001", "FLAGGED",
                                                                                   "TIER_1K")))  # fmt: skip
    violation = payloads.account_update("ACCOUNT_VIOLATION", violation_info={"violation_type": "SCAM"})
    deliver(template_change("account_update", violation))

    waba_number.refresh_from_db()
    assert (waba_number.quality_event, waba_number.messaging_limit) == ("FLAGGED", "TIER_1K")
    assert list(AccountEvent.objects.values_list("org", "field", "event")) == [
        (org.pk, "phone_number_quality_update", "FLAGGED"), (org.pk, "account_update", "ACCOUNT_VIOLATION"),
    ]  # fmt: skip
    assert json.loads(Event.objects.get(type=EventType.ACCOUNT_UPDATE).body)["entry"][0]["changes"][0]["value"] == (
        violation
    )
    manager = logged_in(make_member(org, Role.MANAGER))
    assert "ACCOUNT_VIOLATION" in manager.get(reverse("admin:inbox_accountevent_changelist")).content.decode()
    assert "TIER_1K" in manager.get(reverse("admin:inbox_phonenumber_changelist")).content.decode()
    stranger = logged_in(make_member(other_org, Role.MANAGER, "stranger"))
    assert "ACCOUNT_VIOLATION" not in stranger.get(reverse("admin:inbox_accountevent_changelist")).content.decode()


# --- Blocking ---------------------------------------------------------------------------------------

MIXED = {
    "messaging_product": "whatsapp",
    "block_users": {
        "added_users": [{"input": USER, "wa_id": USER}],
        "failed_users": [{"input": "6280000", "errors": [{
            "message": "Failed to block/unblock this user", "code": 139100,
            "error_data": {"details": "User has not messaged the business in the last 24 hours"}}]}],
    },
    "error": {"message": "(#139100) Failed to block/unblock users", "type": "OAuthException", "code": 139100,
              "error_data": {"details": "Failed to block some users, see the block_users response list for details"},
              "fbtrace_id": "ABlock"},
}  # fmt: skip
BLOCK = {"messaging_product": "whatsapp", "block_users": [{"user": USER}, {"user": "6280000"}]}


@pytest.fixture
def graph_url(settings):
    return f"{settings.META_GRAPH_URL}/{NUMBER}/block_users"


def test_blocking_on_metas_surface_answers_metas_400_naming_each_user(api, phone_number, meta, graph_url):
    meta.post(graph_url, status=400, json=MIXED)

    answer = api.post(f"/v23.0/{NUMBER}/block_users", BLOCK, format="json")

    assert (answer.status_code, answer.json()) == (400, MIXED)
    assert json.loads(meta.calls[0].request.body) == BLOCK
    assert list(Contact.objects.values_list("contact_wa_id", "blocked")) == [(USER, True)]  # only whom Meta blocked


def test_blocking_on_v1_lists_the_users_that_failed_in_the_envelope(api, phone_number, meta, graph_url):
    meta.post(graph_url, status=400, json=MIXED)

    data = api.post(f"/v1/{NUMBER}/block_users", BLOCK, format="json").json()["data"]

    assert data["added_users"] == MIXED["block_users"]["added_users"]
    assert data["failed_users"][0]["errors"][0]["error_data"]["details"].startswith("User has not messaged")
    meta.delete(graph_url, json={"messaging_product": "whatsapp", "block_users": {"removed_users": [
        {"input": USER, "wa_id": USER}]}})  # fmt: skip
    unblocked = api.delete(f"/v1/{NUMBER}/block_users", {**BLOCK, "block_users": [{"user": USER}]}, format="json")
    assert unblocked.json()["data"]["removed_users"] == [{"input": USER, "wa_id": USER}]
    assert not Contact.objects.get(contact_wa_id=USER).blocked


def test_the_blocked_list_is_metas_on_both_surfaces(api, phone_number, meta, graph_url):
    page = {"data": [{"messaging_product": "whatsapp", "wa_id": USER, "user_id": USER_ID}],
            "paging": {"cursors": {"before": "B", "after": "A"}, "next": "https://graph.facebook.com/next"}}  # fmt: skip
    meta.get(graph_url, json=page)

    assert api.get(f"/v23.0/{NUMBER}/block_users").json() == page
    listed = api.get(f"/v1/{NUMBER}/block_users").json()
    assert (listed["data"], listed["has_more"], listed["next_cursor"]) == ([{"wa_id": USER, "user_id": USER_ID}],
                                                                           True, "A")  # fmt: skip


@pytest.mark.parametrize("body", [
    {"messaging_product": "whatsapp", "block_users": []},
    {"messaging_product": "whatsapp", "block_users": [{"user": USER, "user_id": USER_ID}]},
    {"messaging_product": "whatsapp", "block_users": ["6281"]},
    {"block_users": [{"user": USER}]},
])  # fmt: skip
def test_a_block_body_meta_would_refuse_is_refused_in_each_surfaces_shape(api, phone_number, meta, body):
    assert api.post(f"/v1/{NUMBER}/block_users", body, format="json").status_code == 400
    graph = api.post(f"/v23.0/{NUMBER}/block_users", body, format="json")
    assert graph.status_code == 400 and graph.json()["error"]["code"] == 100
    assert len(meta.calls) == 0


def test_another_orgs_number_cannot_block(api, foreign_number, meta):
    assert api.post(f"/v1/{foreign_number.phone_number_id}/block_users", BLOCK, format="json").status_code == 404
    assert len(meta.calls) == 0


def test_a_manager_blocks_from_the_conversation_and_the_contact_shows_blocked(
    phone_number, make_message, make_member, org, meta, graph_url
):
    make_message(phone_number, contact=USER)
    conversation = Conversation.objects.get(contact_wa_id=USER)
    page = reverse("admin:inbox_conversation_change", args=[conversation.pk])
    meta.post(graph_url, json={"messaging_product": "whatsapp", "block_users": {"added_users": [
        {"input": USER, "wa_id": USER}]}})  # fmt: skip
    agent = logged_in(make_member(org, Role.AGENT))
    assert 'id="block"' not in agent.get(page).content.decode()
    assert agent.post(reverse("admin:inbox_conversation_block", args=[conversation.pk])).status_code == 403

    manager = logged_in(make_member(org, Role.MANAGER, "a-manager"))
    manager.post(reverse("admin:inbox_conversation_block", args=[conversation.pk]), {"action": "block"})

    assert json.loads(meta.calls[0].request.body)["block_users"] == [{"user": USER}]
    assert 'id="blocked"' in agent.get(page).content.decode()


# --- Business-scoped user ids on the way out ------------------------------------------------------------


def test_a_send_by_recipient_is_passed_through_and_answers_the_user_id_as_meta_does(api, phone_number, meta):
    answered = {"messaging_product": "whatsapp", "contacts": [{"input": USER_ID, "user_id": USER_ID}],
                "messages": [{"id": "wamid.BYID"}]}  # fmt: skip
    meta.post(graph_messages_url(phone_number), json=answered)
    send = {"messaging_product": "whatsapp", "recipient": USER_ID, "type": "text", "text": {"body": "Halo"}}

    graph = api.post(f"/v23.0/{NUMBER}/messages", send, format="json")

    assert graph.json() == answered
    sent_to_meta = json.loads(meta.calls[0].request.body)
    assert sent_to_meta["recipient"] == USER_ID and "to" not in sent_to_meta
    message = Message.objects.get(wamid="wamid.BYID")
    assert (message.contact_wa_id, message.contact_user_id) == (USER_ID, USER_ID)
    meta.post(graph_messages_url(phone_number), json={**answered, "messages": [{"id": "wamid.BYID2"}]})
    on_v1 = api.post(f"/v1/{NUMBER}/messages", send, format="json").json()["data"]
    assert (on_v1["to"], on_v1["contact_user_id"]) == (USER_ID, USER_ID)


def test_a_send_names_a_recipient(api, phone_number, meta):
    nameless = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "Halo"}}
    assert_error(api.post(f"/v1/{NUMBER}/messages", nameless, format="json"), 400, "missing_required_field", "to")


def test_131062_is_explained_in_the_envelope_and_metas_own_on_its_surface(api, phone_number, meta):
    refusal = {"error": {"message": "(#131062) Business-scoped user ID recipients are not supported for this message",
                         "type": "OAuthException", "code": 131062, "fbtrace_id": "AUserId"}}  # fmt: skip
    meta.post(graph_messages_url(phone_number), status=400, json=refusal)
    send = {"messaging_product": "whatsapp", "recipient": USER_ID, "type": "text", "text": {"body": "Halo"}}

    error = assert_error(api.post(f"/v1/{NUMBER}/messages", send, format="json"), 502, "whatsapp_upstream_error")
    assert "business-scoped user id" in error["message"] and "`to`" in error["message"]
    assert error["upstream"]["code"] == 131062
    assert api.post(f"/v23.0/{NUMBER}/messages", send, format="json").json() == refusal


@pytest.mark.parametrize(("code", "told"), [(130429, "throughput"), (131056, "pair rate limit"),
                                            (131048, "spam rate limit"), (131049, "marketing cap")])  # fmt: skip
def test_each_throughput_code_has_its_own_message_on_v1(api, phone_number, meta, code, told):
    meta.post(graph_messages_url(phone_number), status=400,
              json={"error": {"message": f"(#{code}) Rate limit", "code": code}})  # fmt: skip
    send = {"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": "Halo"}}

    error = assert_error(api.post(f"/v1/{NUMBER}/messages", send, format="json"), 502, "whatsapp_upstream_error")
    assert told in error["message"] and error["upstream"]["code"] == code
