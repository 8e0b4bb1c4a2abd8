"""Failed webhook events are listed and retried by operators (the command and the admin), and kept for
their own retention."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from fakemeta import payloads
from inbox.models import Conversation, Message, WebhookEvent
from inbox.tests.webhook_payloads import BAD_ITEMS, PHONE_NUMBER_ID, good_messages


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


@pytest.fixture
def failed_by_a_bug(phone_number, deliver, break_inbound_storing):
    """An event a bug stopped whole: kept, marked with the error, nothing applied."""
    with break_inbound_storing(KeyError("a bug")):
        assert deliver(payloads.webhook(PHONE_NUMBER_ID, messages=good_messages())).status_code == 200
    event = WebhookEvent.objects.get()
    assert "KeyError" in event.error and not Message.objects.exists()
    return event


def test_reprocess_webhooks_lists_then_applies_failed_events(failed_by_a_bug):
    listed = run("reprocess_webhooks", "--list")
    assert f"event {failed_by_a_bug.pk} received" in listed and "KeyError" in listed
    assert "1 failed event(s)." in listed
    assert not Message.objects.exists()

    assert "Reprocessed 1 event(s): 1 applied whole." in run("reprocess_webhooks")

    assert Message.objects.count() == 3 and Conversation.objects.count() == 3
    event = WebhookEvent.objects.get()
    assert (event.error, event.failed_items, event.attempts) == ("", [], 2)
    assert not WebhookEvent.objects.failed().exists()
    assert "0 failed event(s)." in run("reprocess_webhooks", "--list")


def test_reprocess_webhooks_fails_while_an_item_still_cannot_be_stored(phone_number, deliver):
    body, _, _ = BAD_ITEMS["lone-surrogate"]
    deliver(None, raw=body.encode())

    with pytest.raises(CommandError, match="1 event"):
        run("reprocess_webhooks")

    assert Message.objects.count() == 3  # applied once, not twice
    assert WebhookEvent.objects.get().attempts == 2


def test_an_event_whose_worker_died_is_reprocessed_after_a_while(phone_number):
    body = json.dumps(payloads.webhook(PHONE_NUMBER_ID, messages=good_messages()))
    fresh = WebhookEvent.objects.create(body=body)
    stale = WebhookEvent.objects.create(body=body)
    WebhookEvent.objects.filter(pk=stale.pk).update(received_at=timezone.now() - timedelta(minutes=10))

    assert list(WebhookEvent.objects.failed()) == [stale]  # the fresh one may still be in flight
    run("reprocess_webhooks")

    assert Message.objects.count() == 3
    assert WebhookEvent.objects.get(pk=stale.pk).processed_at is not None
    assert WebhookEvent.objects.get(pk=fresh.pk).processed_at is None


def test_purge_expired_keeps_failed_events_for_their_own_retention(failed_by_a_bug, settings):
    settings.WEBHOOK_EVENTS_KEEP_DAYS = 1
    settings.WEBHOOK_FAILED_EVENTS_KEEP_DAYS = 10
    old_applied = WebhookEvent.objects.create(body="{}", processed_at=timezone.now())
    old_failed = WebhookEvent.objects.create(body="{}", processed_at=timezone.now(), error="x: y")
    ancient_failed = WebhookEvent.objects.create(body="{}", processed_at=timezone.now(), error="x: y")
    WebhookEvent.objects.filter(pk__in=[old_applied.pk, old_failed.pk]).update(
        received_at=timezone.now() - timedelta(days=5)
    )
    WebhookEvent.objects.filter(pk=ancient_failed.pk).update(received_at=timezone.now() - timedelta(days=11))

    output = run("purge_expired")

    assert "1 webhook events, 1 failed webhook events" in output
    assert "2 failed webhook event(s) kept for `reprocess_webhooks`" in output
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {failed_by_a_bug.pk, old_failed.pk}


@pytest.fixture
def superuser_client(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def test_operators_list_failed_events_in_the_admin_and_reprocess_them(failed_by_a_bug, superuser_client):
    applied = WebhookEvent.objects.create(body="{}", processed_at=timezone.now())

    page = superuser_client.get("/admin/inbox/webhookevent/?state=failed")

    assert page.status_code == 200
    assert f"/admin/inbox/webhookevent/{failed_by_a_bug.pk}/change/" in page.text
    assert f"/admin/inbox/webhookevent/{applied.pk}/change/" not in page.text
    assert "KeyError" in page.text
    detail = superuser_client.get(f"/admin/inbox/webhookevent/{failed_by_a_bug.pk}/change/")
    assert detail.status_code == 200 and "wamid.GOOD0" in detail.text

    answer = superuser_client.post(
        "/admin/inbox/webhookevent/",
        {"action": "reprocess", "_selected_action": [failed_by_a_bug.pk]},
        follow=True,
    )

    assert "Reprocessed 1 event(s); 1 applied whole." in answer.text
    assert Message.objects.count() == 3
    assert not WebhookEvent.objects.failed().exists()


def test_staff_who_are_not_operators_do_not_see_webhook_events(failed_by_a_bug, django_user_model):
    staff = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)

    assert client.get("/admin/inbox/webhookevent/").status_code == 403
    assert "webhookevent" not in client.get("/admin/").text
