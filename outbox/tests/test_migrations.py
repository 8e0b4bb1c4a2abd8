"""The outbox's migrations on subscriptions that exist when they run."""

import pytest

from outbox.models import Delivery, EventType, WebhookSubscription
from outbox.record import events_record
from testing.migrations import migrate, migrate_to_latest

BEFORE_RECEIVERS = [("outbox", "0003_grant_managers")]


@pytest.mark.django_db(transaction=True)
def test_existing_subscriptions_keep_the_events_they_list_and_get_the_receiver_that_parses_them(org):
    old = migrate(BEFORE_RECEIVERS).get_model("outbox", "WebhookSubscription").objects
    reads_too = old.create(org_id=org.pk, url="https://crm.example.com/all", consecutive_failures=23,
                           events=["message.read", "message.received", "message.status"])  # fmt: skip
    metas_only = old.create(org_id=org.pk, url="https://crm.example.com/meta", events=["message.received"])
    disabled = old.create(org_id=org.pk, url="https://crm.example.com/gone", events=["message.status"], enabled=False,
                          disabled_reason="410 Gone")  # fmt: skip

    migrate_to_latest()

    now = {s.url: s for s in WebhookSubscription.objects.all()}
    assert [(now[s.url].receiver, now[s.url].events) for s in (reads_too, metas_only)] == [
        ("kirim", ["message.read", "message.received", "message.status"]),
        ("meta", ["message.received"]),
    ]
    assert now[reads_too.url].failure_streaks == {}  # 23 across types: no type is disabled sooner than before
    assert (now[disabled.url].enabled, now[disabled.url].disabled_reason) == (False, "410 Gone")
    events_record(EventType.MESSAGE_READ, {org.pk: {}})
    assert [d.subscription.url for d in Delivery.objects.all()] == [reads_too.url]
