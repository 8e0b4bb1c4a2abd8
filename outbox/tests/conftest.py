"""Fixtures of the outbox's tests: subscriptions, a subscriber mocked by `responses` behind DNS that
resolves to a public address, a way to run every due delivery without a worker, and what Meta-style
webhook handlers make of a delivery."""

import hashlib
import hmac

import pytest
import pywa
import responses
from django.db.models import Q
from django.utils import timezone

from outbox.delivery import attempt_delivery
from outbox.models import Delivery, DeliveryStatus, EventType, Receiver, WebhookSubscription

HOOK_URL = "https://hooks.example.com/kirim"
ALL_EVENTS = [t.value for t in EventType]

# Every event test writes as people do: accents, emoji (astral ones, two UTF-16 halves once escaped,
# and a joined sequence), right-to-left Arabic and Hebrew, and a `/` that Meta escapes.
CONTACT_NAME = "Zoë Ñúñez 👩🏽‍💻 مريم"
MESSAGE_TEXT = "Café ☕ à 5/6 €, ¿qué tal? 🎉 שלום עולם، مرحبا"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    """Every host resolves to a public documentation address, unless a test says otherwise."""

    def resolve(host, port):
        return {"93.184.215.14"}

    monkeypatch.setattr("outbox.subscriber_http.resolve", resolve)
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


def whatsapp_api_js_verifies(body, signature, secret):
    """Whether whatsapp-api-js 6.3.0 accepts X-Hub-Signature-256 `signature` on `body`: it hashes the
    body as text with every UTF-16 code unit outside `\\0-~` written as a lowercase `\\uXXXX` escape
    (its `escapeUnicode`), Meta's own encoding, not the bytes as they came."""
    units = body.decode().encode("utf-16-be")
    escaped = "".join(
        chr(unit) if unit <= 0x7E else f"\\u{unit:04x}"
        for unit in (int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2))
    )
    expected = hmac.new(secret.encode(), escaped.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, f"sha256={expected}")


def handled_by_pywa(app_secret, phone_id):
    """pywa 4.5.0's webhook handling for number `phone_id`, as a Django app wires it: `handle(body,
    signature)` checks the signature and runs its message and status handlers, which append what they
    were given to `handled`. Returns (handle, handled)."""
    wa = pywa.WhatsApp(phone_id=phone_id, token="unused", server=None, verify_token="unused", app_secret=app_secret)
    handled = []
    wa.add_handlers(
        pywa.handlers.MessageHandler(lambda _, message: handled.append(message)),
        pywa.handlers.MessageStatusHandler(lambda _, status: handled.append(status)),
    )

    def handle(body, signature):
        refused = wa.webhook_update_validator(body, signature)
        return refused or wa.webhook_update_handler(body)

    return handle, handled
