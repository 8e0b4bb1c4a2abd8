"""Replying from the admin thread: text inside WhatsApp's 24-hour window, an approved template outside
it, a double submit sent once, the number's read-receipt policy, and the templates synced from Meta."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from conftest import logged_in
from fakemeta import payloads
from inbox.models import Conversation, Direction, Message, MessageTemplate, ReadVia, Role, Status
from inbox.services.replies import templates_store
from testing.meta import as_the_client_sent_it, graph_messages_url

WABA = "102290129340398"


@pytest.fixture
def agent(org, make_member):
    """An agent of the org, with the role's permissions as migrations grant them (reply among them)."""
    return logged_in(make_member(org, Role.AGENT))


@pytest.fixture
def number(phone_number):
    phone_number.waba_id = WABA
    phone_number.save(update_fields=["waba_id"])
    templates_store(phone_number, payloads.DEMO_TEMPLATES)
    return phone_number


def conversation_with(number, make_message, *, hours_ago):
    make_message(number, contact="6281", contact_name="Siti", text="Halo, do you deliver to Bandung?",
                 timestamp=timezone.now() - timedelta(hours=hours_ago))  # fmt: skip
    return Conversation.objects.get(contact_wa_id="6281")


def meta_accepts_send(meta, number, wamid="wamid.REPLY1"):
    meta.post(
        graph_messages_url(number),
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "6281", "wa_id": "6281"}],
            "messages": [{"id": wamid}],
        },
    )


def reply(client, conversation, **fields):
    return client.post(reverse("admin:inbox_conversation_reply", args=[conversation.pk]), fields, follow=True)


def sent_bodies(meta):
    """What Meta received; a send's body as Kirim's caller gave it (Kirim's id taken out)."""
    bodies = [json.loads(call.request.body) for call in meta.calls]
    return [as_the_client_sent_it(body) if "type" in body else body for body in bodies]


def bar(response):
    return [str(m) for m in response.context["messages"]]


def test_a_text_reply_inside_the_window_is_sent_and_shows_in_the_thread(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=2)
    meta_accepts_send(meta, number)

    response = reply(agent, conversation, token="t1", text="  Yes, we deliver to Bandung!  ")

    assert sent_bodies(meta) == [{"messaging_product": "whatsapp", "to": "6281", "type": "text",
                                  "text": {"body": "Yes, we deliver to Bandung!"}}]  # fmt: skip
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert (sent.status, sent.wamid, sent.text) == (Status.ACCEPTED, "wamid.REPLY1", "Yes, we deliver to Bandung!")
    assert f'data-id="{sent.external_id}" data-status="accepted"' in response.content.decode()
    assert Conversation.objects.get().last_message_text == "Yes, we deliver to Bandung!"


def test_a_double_submit_sends_once(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=2)
    meta_accepts_send(meta, number)

    reply(agent, conversation, token="same-form", text="On its way")
    second = reply(agent, conversation, token="same-form", text="On its way")

    assert len(meta.calls) == 1
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1
    assert bar(second) == ["That reply was already sent; it was not sent again."]


def test_outside_the_window_text_is_refused_and_the_page_says_why(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=25)

    page = agent.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()
    refused = reply(agent, conversation, token="t1", text="Hello again")

    assert "customer service window is closed" in page
    assert 'id="reply-text-input" rows="3"' in page and "disabled></textarea>" in page
    assert not meta.calls
    assert bar(refused)[0].startswith("Not sent: The contact's last message is more than 24 hours old")


def test_outside_the_window_an_approved_template_is_sent_with_its_parameters(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=30)
    template = MessageTemplate.objects.get(name="order_update")
    meta_accepts_send(meta, number)

    reply(agent, conversation, token="t1", template=template.pk, **{
        f"param-{template.pk}-header-1": "#4411", f"param-{template.pk}-body-1": "Siti",
        f"param-{template.pk}-body-2": "#4411",
    })  # fmt: skip

    assert sent_bodies(meta) == [{
        "messaging_product": "whatsapp", "to": "6281", "type": "template",
        "template": {"name": "order_update", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "#4411"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Siti"}, {"type": "text", "text": "#4411"}]},
        ]},
    }]  # fmt: skip
    assert Message.objects.get(direction=Direction.OUTBOUND).text == "Hi Siti, your order #4411 is on its way."


def test_named_parameters_go_by_name(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=30)
    template = MessageTemplate.objects.get(name="follow_up")
    meta_accepts_send(meta, number)

    reply(agent, conversation, token="t1", template=template.pk, **{f"param-{template.pk}-body-customer_name": "Siti"})

    assert sent_bodies(meta)[0]["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "customer_name", "text": "Siti"}]}
    ]


def test_the_picker_offers_only_approved_templates_it_can_fill(agent, number, make_message):
    conversation = conversation_with(number, make_message, hours_ago=30)

    page = agent.get(reverse("admin:inbox_conversation_change", args=[conversation.pk]))

    assert [t.name for t, _, _ in page.context["templates"]] == ["follow_up", "order_update"]


@pytest.mark.parametrize("name, fields, error", [
    ("welcome_draft", {}, "Not sent: Pick one of this number's approved templates."),
    ("promo_image", {}, "Not sent: Pick one of this number's approved templates."),
    ("order_update", {"body-1": "Siti"}, "Not sent: Fill in every parameter of the template: 1, 2."),
])  # fmt: skip
def test_a_template_that_cannot_be_sent_is_refused_before_meta(agent, number, make_message, meta, name, fields, error):
    conversation = conversation_with(number, make_message, hours_ago=30)
    template = MessageTemplate.objects.get(name=name)

    response = reply(agent, conversation, token="t1", template=template.pk,
                     **{f"param-{template.pk}-{k}": v for k, v in fields.items()})  # fmt: skip

    assert bar(response) == [error]
    assert not meta.calls


def test_meta_refusing_the_send_is_reported_and_kept_failed(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=1)
    meta.post(graph_messages_url(number), status=400,
              json={"error": {"message": "(#131026) Message undeliverable", "code": 131026}})  # fmt: skip

    response = reply(agent, conversation, token="t1", text="Hello")

    assert bar(response) == ["Not sent. WhatsApp said: (#131026) Message undeliverable"]
    assert Message.objects.get(direction=Direction.OUTBOUND).status == Status.FAILED


def test_replying_needs_the_permission(org, make_member, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=1)
    user = make_member(org, Role.AGENT, "intern")
    user.groups.clear()  # operators took the reply permission away
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_conversation"]))
    client = logged_in(user)

    page = client.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()
    refused = client.post(reverse("admin:inbox_conversation_reply", args=[conversation.pk]), {"text": "x"})

    assert 'id="reply"' not in page
    assert refused.status_code == 403
    assert not meta.calls


def test_on_reply_marks_the_conversation_read_before_sending(agent, number, make_message, meta):
    number.read_receipt_policy = "on_reply"
    number.save(update_fields=["read_receipt_policy"])
    conversation = conversation_with(number, make_message, hours_ago=1)
    newest = make_message(number, contact="6281", text="Hello?", timestamp=timezone.now())
    meta.post(graph_messages_url(number), json={"success": True})
    meta_accepts_send(meta, number)

    page = agent.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()
    assert not meta.calls  # opening the thread reads nothing under on_reply
    assert "Read receipts: on reply." in page
    reply(agent, conversation, token="t1", text="Yes!")

    bodies = sent_bodies(meta)
    assert bodies[0] == {"messaging_product": "whatsapp", "status": "read", "message_id": newest.wamid}
    assert bodies[1]["type"] == "text" and len(bodies) == 2
    inbound = Message.objects.filter(direction=Direction.INBOUND)
    assert {(m.status, m.read_via, m.read_by_user_id) for m in inbound} == {(Status.READ, ReadVia.ADMIN, agent.user.pk)}


def opened(client, conversation):
    return client.post(reverse("admin:inbox_conversation_opened", args=[conversation.pk])).json()


def test_on_open_sends_one_receipt_when_the_thread_opens(agent, number, make_message, meta):
    number.read_receipt_policy = "on_open"
    number.save(update_fields=["read_receipt_policy"])
    conversation = conversation_with(number, make_message, hours_ago=1)
    newest = make_message(number, contact="6281", text="Hello?", timestamp=timezone.now())
    meta.post(graph_messages_url(number), json={"success": True})

    page = agent.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()
    first, again = opened(agent, conversation), opened(agent, conversation)

    assert f'data-opened-url="{reverse("admin:inbox_conversation_opened", args=[conversation.pk])}"' in page
    assert (first["read"], again["read"]) == (2, 0)
    assert sent_bodies(meta) == [{"messaging_product": "whatsapp", "status": "read", "message_id": newest.wamid}]


def test_manual_and_on_reply_numbers_read_nothing_on_open(agent, number, make_message, meta):
    conversation = conversation_with(number, make_message, hours_ago=1)
    for policy in ("manual", "on_reply"):
        number.read_receipt_policy = policy
        number.save(update_fields=["read_receipt_policy"])
        assert opened(agent, conversation) == {"read": 0}
    assert not meta.calls
    assert Message.objects.get().status == Status.RECEIVED


def test_templates_sync_follows_metas_paging_and_forgets_deleted_ones(number, meta):
    MessageTemplate.objects.filter(name="follow_up").update(status="PAUSED")
    url = f"{settings.META_GRAPH_URL}/{WABA}/message_templates"
    first, rest = payloads.DEMO_TEMPLATES[0], payloads.DEMO_TEMPLATES[1]
    meta.get(url, json={"data": [first], "paging": {"cursors": {"after": "A1"}, "next": f"{url}?after=A1"}})
    meta.get(url, json={"data": [rest], "paging": {"cursors": {"before": "A1"}}})

    call_command("sync_templates", "--org", number.org.slug)

    assert [c.request.params.get("after") for c in meta.calls] == [None, "A1"]
    assert all(c.request.headers["Authorization"] == f"Bearer {number.access_token}" for c in meta.calls)
    assert {(t.name, t.status) for t in MessageTemplate.objects.all()} == {
        ("order_update", "APPROVED"), ("follow_up", "APPROVED")
    }  # fmt: skip


def test_another_orgs_conversation_is_a_404_for_every_inbox_url(agent, foreign_number, make_message, meta):
    make_message(foreign_number, contact="6289", timestamp=timezone.now())
    foreign = Conversation.objects.get()

    posts = [agent.post(reverse(f"admin:inbox_conversation_{name}", args=[foreign.pk]), {"text": "x", "token": "t"})
             for name in ("reply", "opened")]  # fmt: skip
    live = agent.get(
        reverse("admin:inbox_conversation_thread_live", args=[foreign.pk]), {"since": "2026-01-01T00:00:00+00:00"}
    )
    inbox = agent.get(reverse("admin:inbox_conversation_live"), {"since": "2026-01-01T00:00:00+00:00"})

    assert [r.status_code for r in (*posts, live)] == [404, 404, 404]
    assert inbox.json()["conversations"] == []
    assert not meta.calls


def test_storing_templates_costs_the_same_queries_for_3_and_60(number, django_assert_num_queries):
    def listed(count):
        return [{**payloads.DEMO_TEMPLATES[0], "id": str(n), "name": f"order_update_{n}"} for n in range(count)]

    for count in (3, 60):
        # SAVEPOINT, one upsert, one DELETE of the templates Meta no longer lists, RELEASE (it was an
        # update_or_create per template).
        with django_assert_num_queries(4):
            result = templates_store(number, listed(count))
        assert result.stored == count
        assert MessageTemplate.objects.filter(waba_id=WABA).count() == count


def test_templates_sync_from_the_number_list(org, make_member, number, second_number, meta):
    agent = logged_in(make_member(org, Role.MANAGER))
    second_number.waba_id = WABA  # the same business account: synced once
    second_number.save(update_fields=["waba_id"])
    meta.get(f"{settings.META_GRAPH_URL}/{WABA}/message_templates", json={"data": [payloads.DEMO_TEMPLATES[1]]})

    response = agent.post(reverse("admin:inbox_phonenumber_changelist"), follow=True,
                          data={"action": "sync_templates", "_selected_action": [number.pk, second_number.pk]})  # fmt: skip

    assert bar(response) == [f"WABA {WABA}: 1 template(s) synced, 1 approved, 3 no longer on Meta removed."]
    assert len(meta.calls) == 1


def typing(client, conversation):
    return client.post(reverse("admin:inbox_conversation_typing", args=[conversation.pk]))


def test_the_typing_bubble_rides_on_a_read_receipt_of_the_newest_message(agent, number, make_message, meta):
    number.typing_indicator = True
    number.save(update_fields=["typing_indicator"])
    conversation = conversation_with(number, make_message, hours_ago=1)
    newest = make_message(number, contact="6281", text="Hello?", timestamp=timezone.now())
    meta.post(graph_messages_url(number), json={"success": True})

    page = agent.get(reverse("admin:inbox_conversation_change", args=[conversation.pk])).content.decode()
    first, again = typing(agent, conversation).json(), typing(agent, conversation).json()

    assert f'data-typing-url="{reverse("admin:inbox_conversation_typing", args=[conversation.pk])}"' in page
    assert first == again == {"typing": True}
    expected = {"messaging_product": "whatsapp", "status": "read", "message_id": newest.wamid,
                "typing_indicator": {"type": "text"}}  # fmt: skip
    assert sent_bodies(meta) == [expected, expected]  # read already the second time: the bubble alone again
    assert set(Message.objects.values_list("status", "read_via")) == {(Status.READ, ReadVia.ADMIN)}


def test_no_typing_bubble_when_the_number_has_it_off_or_the_window_is_closed(agent, number, make_message, meta):
    closed = conversation_with(number, make_message, hours_ago=30)

    page = agent.get(reverse("admin:inbox_conversation_change", args=[closed.pk])).content.decode()
    off = typing(agent, closed).json()
    number.typing_indicator = True
    number.save(update_fields=["typing_indicator"])
    outside_window = typing(agent, closed).json()

    assert "data-typing-url" not in page
    assert off == outside_window == {"typing": False}
    assert not meta.calls
