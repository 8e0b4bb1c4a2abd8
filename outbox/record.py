"""The outbox writer: record an event and one delivery per subscription that wants it, in the
transaction of the change it reports. A change that rolls back takes its event with it; a process
that dies after the commit leaves pending deliveries that the sweeper finds. The deliveries are
handed to the task queue only once the transaction has committed."""

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeAlias

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import tracing
from outbox import delivery
from outbox.models import SOURCE_OF, Delivery, DeliveryStatus, Event, EventSource, WebhookSubscription

WITHDRAWN = "withdrawn: all it carried was deleted by its sender"

# {org_id: [subscriptions]} of those that want an event type: what wanting() finds.
SubscriptionsByOrg: TypeAlias = dict[int, list[WebhookSubscription]]
# (org id, event id, event type, subscription id): a delivery to create.
DeliveryRow: TypeAlias = tuple[int, int, str, int]


def subscriptions_of(org_ids: Iterable[int]) -> list[WebhookSubscription]:
    """The enabled subscriptions of these orgs, in one query, so a caller can skip building events
    that no one would receive; locked until the caller's transaction ends, so none is deleted under
    the deliveries it adds."""
    return WebhookSubscription.objects.filter(org_id__in=set(org_ids), enabled=True).lock_to_add()


def wanting(subscriptions: Iterable[WebhookSubscription], event_type: str) -> SubscriptionsByOrg:
    """{org_id: [subscriptions]} of those that want `event_type` and still get it."""
    wanted: SubscriptionsByOrg = {}
    for subscription in subscriptions:
        if event_type in subscription.events and not subscription.why_stopped(event_type):
            wanted.setdefault(subscription.org_id, []).append(subscription)
    return wanted


def events_record(
    event_type: str, bodies_by_org: Mapping[int, object], subscriptions_by_org: SubscriptionsByOrg | None = None
) -> list[Event]:
    """Record one `event_type` event per org in `bodies_by_org` ({org_id: body}), with its
    deliveries. Kirim's own events get the envelope here (`data` is the body given); Meta's keep
    Meta's JSON as given. Call inside the transaction of the change. Returns the events recorded."""
    if subscriptions_by_org is None:
        subscriptions_by_org = wanting(subscriptions_of(bodies_by_org), event_type)
    now = timezone.now()
    trace_parent = tracing.trace_parent()  # the delivery continues this trace
    events: list[Event] = []
    for org_id, body in bodies_by_org.items():
        if not subscriptions_by_org.get(org_id):
            continue
        event = Event(org_id=org_id, type=event_type, created_at=now, trace_parent=trace_parent)
        if SOURCE_OF[event_type] == EventSource.KIRIM:
            body = {"id": event.external_id, "type": event_type, "created_at": iso(now), "data": body}
        event.body = as_meta_writes_json(body)
        events.append(event)
    if not events:
        return []
    Event.objects.bulk_create(events)
    deliveries_create(
        [
            (event.org_id, event.pk, event.type, subscription.pk)
            for event in events
            for subscription in subscriptions_by_org[event.org_id]
        ],
        now,
    )
    return events


def deliveries_create(rows: Iterable[DeliveryRow], now: datetime) -> list[Delivery]:
    """A pending delivery for each (org id, event id, event type, subscription id), handed to the task
    queue once the transaction commits. Returns them."""
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            org_id=org_id,
            event_id=event_id,
            event_type=event_type,
            subscription_id=subscription_id,
            next_attempt_at=now,
            created_at=now,
        )
        for org_id, event_id, event_type, subscription_id in rows
    )
    org_ids = {d.org_id for d in deliveries}
    transaction.on_commit(lambda: delivery.enqueue_new(org_ids))
    return deliveries


def as_meta_writes_json(body: object) -> str:
    """An event's body as Meta writes its webhooks: compact, every non-ASCII character as a \\uXXXX
    escape (an emoji as its two UTF-16 halves), `/` as `\\/`. For Meta's own payloads these are Meta's
    bytes, so a handler that checks X-Hub-Signature-256 over its own re-encoding of the parsed body,
    as some do (whatsapp-api-js escapes non-ASCII before hashing), verifies it; Kirim's own events are
    written the same way. json.dumps writes `/` only as itself, inside strings: escaping each one
    changes no value."""
    return json.dumps(body, separators=(",", ":")).replace("/", "\\/")


def iso(moment: datetime) -> str:
    """A time as Kirim's events write it: ISO 8601 in UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


def pending_events_scrub(org_id: int, matching: Q, scrub: Callable[[Any], bool]) -> None:
    """Rewrite the org's events `matching` (a Q on the event) that a delivery still waits to send:
    `scrub(body)` takes out of the body what must not be sent (in place) and says whether anything is
    left to send; when nothing is, the waiting deliveries are withdrawn. Delivered ones are the
    subscriber's. Call inside the transaction of the change."""
    waiting = Event.objects.filter(matching, org_id=org_id, deliveries__status=DeliveryStatus.PENDING).distinct()
    for event in waiting.only("pk", "body"):
        body = json.loads(event.body)
        left = scrub(body)
        Event.objects.filter(pk=event.pk).update(body=as_meta_writes_json(body))
        if not left:
            Delivery.objects.filter(event_id=event.pk, status=DeliveryStatus.PENDING).update(
                status=DeliveryStatus.FAILED, last_error=WITHDRAWN, finished_at=timezone.now(), next_attempt_at=None
            )
