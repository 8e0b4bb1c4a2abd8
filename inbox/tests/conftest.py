"""Fixtures only the inbox's tests use."""

import pytest

from inbox.tests.graph_surface import WABA_ID
from outbox.models import EventType, Receiver, WebhookSubscription


@pytest.fixture
def waba(phone_number):
    """The `phone_number` fixture's number in a WhatsApp Business Account."""
    phone_number.waba_id = WABA_ID
    phone_number.save(update_fields=["waba_id"])
    return phone_number


@pytest.fixture
def subscribed_as_meta(org):
    """A handler written for Meta's webhooks that asked for every type Meta's JSON comes in."""
    return WebhookSubscription.objects.create(
        org=org, url="https://hooks.example.com/meta", receiver=Receiver.META,
        events=[t for t in EventType.values if t != EventType.MESSAGE_READ],
    )  # fmt: skip


@pytest.fixture
def subscribed_to_conversations(org):
    """An integrator following the team's work: assignments, states and notes."""
    events = [EventType.CONVERSATION_ASSIGNED, EventType.CONVERSATION_STATE_CHANGED, EventType.CONVERSATION_NOTE_ADDED]
    return WebhookSubscription.objects.create(org=org, url="https://crm.example.com/hook", events=events)
