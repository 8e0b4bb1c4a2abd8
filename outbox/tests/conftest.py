"""Fixtures of the outbox's tests: subscriptions, a subscriber mocked by `responses` behind DNS that
resolves to a public address, and a way to run every due delivery without a worker."""

import pytest
import responses
from django.db.models import Q
from django.utils import timezone

from outbox.delivery import attempt_delivery
from outbox.models import Delivery, DeliveryStatus, EventType, Receiver, WebhookSubscription

HOOK_URL = "https://hooks.example.com/kirim"
ALL_EVENTS = [t.value for t in EventType]


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    """Every host resolves to a public documentation address, unless a test says otherwise."""

    def resolve(host, port):
        return {"93.184.215.14"}

    monkeypatch.setattr("kirim.subscriber_http.resolve", resolve)
    return resolve


@pytest.fixture(autouse=True)
def quick_schedule(settings):
    """The real schedule's length with no waiting (tests move `next_attempt_at` themselves)."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0.0] * 7


def make_subscription(org, url=HOOK_URL, events=None, receiver=Receiver.KIRIM, **fields):
    return WebhookSubscription.objects.create(org=org, url=url, events=events or ALL_EVENTS, receiver=receiver,
                                              **fields)  # fmt: skip


@pytest.fixture
def subscription(org):
    return make_subscription(org)


@pytest.fixture
def receiver():
    """The subscriber's URL, mocked: register its answers with receiver.post(HOOK_URL, ...)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run_due(max_rounds=50):
    """Attempt every due delivery, as workers would, until none is due; returns attempts made."""
    made = 0
    for _ in range(max_rounds):
        now = timezone.now()
        due = list(
            Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .values_list("pk", flat=True)
        )
        if not due:
            return made
        for pk in due:
            made += attempt_delivery(pk) is not None
    return made
