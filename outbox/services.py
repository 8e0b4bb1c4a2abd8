"""Managing events out: subscriptions (create, change, delete, rotate the secret) and replays. The API
and the admin both call these; the URL guard runs here, whoever asks."""

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import InvalidField
from orgs.models import Org
from outbox import record
from outbox.models import (
    ASKED_FOR_BY_NAME,
    OLD_SECRET_SIGNS_FOR,
    RECEIVES,
    Delivery,
    DeliveryStatus,
    Event,
    EventType,
    Receiver,
    WebhookSubscription,
    new_secret,
)
from outbox.subscriber_http import UnsafeUrl, check_url

BULK_REPLAY_MAX = 1000
DELETE_BATCH = 1000  # deliveries deleted per transaction: locks held for milliseconds, not for the whole job


def url_check(url: str) -> str:
    """The URL as Kirim will call it, or InvalidField saying why not."""
    try:
        check_url(url)
    except UnsafeUrl as error:
        raise InvalidField("url", str(error)) from None
    return url


def events_check(events: Iterable[str]) -> list[str]:
    unknown = [e for e in events if e not in EventType.values]
    if unknown or not events:
        raise InvalidField("events", f"`events` must list one or more of: {', '.join(EventType.values)}.")
    return sorted(set(events))


def receiver_check(receiver: str | None, events: list[str] | None) -> tuple[str, list[str]]:
    """(receiver, events) as they will be kept. A `meta` receiver, a handler written for Meta's
    webhooks, gets only the events in Meta's JSON; it is what a subscription is unless it names a
    `kirim` receiver or lists one of Kirim's own events (asking for more). Listing no events
    subscribes to all its receiver parses but Meta's fields asked for by name (ASKED_FOR_BY_NAME)."""
    if receiver is None:
        kirims_own = events and set(events) - set(RECEIVES[Receiver.META])
        receiver = Receiver.KIRIM if kirims_own else Receiver.META
    if events is None:
        return receiver, [t for t in RECEIVES[receiver] if t not in ASKED_FOR_BY_NAME]
    events = events_check(events)
    unparsed = sorted(set(events) - set(RECEIVES[receiver]))
    if unparsed:
        raise InvalidField(
            "events",
            f"A `meta` receiver gets Meta's webhook JSON only ({', '.join(RECEIVES[receiver])}): "
            f"{', '.join(unparsed)} comes in Kirim's envelope, which Meta's handlers refuse. Subscribe a URL "
            'that reads it with `"receiver": "kirim"`.',
        )
    return receiver, events


def subscription_create(
    *,
    org: Org,
    url: str,
    events: list[str] | None = None,
    receiver: str | None = None,
    description: str = "",
    enabled: bool = True,
) -> WebhookSubscription:
    """A new subscription, with its secret (returned here; show it once)."""
    receiver, events = receiver_check(receiver, events)
    return WebhookSubscription.objects.create(
        org=org, url=url_check(url), receiver=receiver, events=events, description=description, enabled=enabled
    )


def subscription_update(subscription: WebhookSubscription, **changes: Any) -> WebhookSubscription:
    """Change url, receiver, events, description or enabled. Enabling re-enables what Kirim disabled
    (the subscription, its stopped event types) and ends the failure streaks; `enabled` sent again for
    a subscription with nothing disabled (a client that PATCHes the whole object) leaves the streaks
    the worker is counting. Only the changed columns are written: the worker updates the enabled
    state and the streaks on its own, and a save from a copy read earlier would undo that. Whether
    anything was disabled is the database's to say, for the same reason."""
    if "url" in changes:
        changes["url"] = url_check(changes["url"])
    if "receiver" in changes or "events" in changes:
        receiver, events = changes.get("receiver", subscription.receiver), changes.get("events", subscription.events)
        changes["receiver"], changes["events"] = receiver_check(receiver, events)
    cleared = {"disabled_reason": "", "failure_streaks": {}, "disabled_events": {}}
    anything_disabled = Q(enabled=False) | ~Q(disabled_events={})
    if changes.get("enabled") and WebhookSubscription.objects.filter(anything_disabled, pk=subscription.pk).update(
        **cleared
    ):
        for name, value in cleared.items():
            setattr(subscription, name, value)
    for name, value in changes.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=[*changes, "updated_at"])
    return subscription


def subscription_rotate_secret(subscription: WebhookSubscription) -> WebhookSubscription:
    """A new secret; the old one keeps signing beside it for 24 hours, so receivers can switch."""
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = timezone.now() + OLD_SECRET_SIGNS_FOR
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return subscription


def subscription_delete(subscription: WebhookSubscription) -> None:
    """Delete a subscription and its deliveries: there is nowhere left to send them. Disabled first, so
    workers stop sending and ingestion stops adding; then its deliveries in batches, each locking the
    subscription before them as the workers do (the lock order of SubscriptionQuerySet), so neither
    waits on the other in a circle; last the row, with any delivery added meanwhile. Called again
    after it stopped midway, it finishes the job."""
    subscriptions = WebhookSubscription.objects.filter(pk=subscription.pk)
    reason = f"Disabled at {timezone.now():%Y-%m-%d %H:%M} UTC: being deleted."
    subscriptions.update(enabled=False, disabled_reason=reason)
    deliveries = Delivery.objects.filter(subscription_id=subscription.pk)
    _deliveries_delete_in_batches(deliveries, first=subscriptions.lock_to_work)
    with transaction.atomic():
        subscriptions.lock_to_delete()
        _deliveries_delete(deliveries)
        subscriptions.delete()


def _deliveries_delete_in_batches(deliveries: QuerySet[Delivery], *, first: Callable[[], object] | None = None) -> int:
    """Delete these deliveries DELETE_BATCH at a time, each batch a short transaction that calls
    `first` (a lock to take before the deliveries') at its start. Returns how many."""
    total = 0
    while True:
        with transaction.atomic():
            if first is not None:
                first()
            deleted = _deliveries_delete(deliveries, DELETE_BATCH)
        total += deleted
        if deleted < DELETE_BATCH:
            return total


def _deliveries_delete(deliveries: QuerySet[Delivery], limit: int | None = None) -> int:
    """Delete these deliveries (at most `limit`) and their attempts, inside the caller's transaction:
    the deliveries locked first, in primary-key order, the one order every deleter of them shares.
    Returns how many."""
    pks = deliveries.select_for_update().order_by("pk").values_list("pk", flat=True)
    locked = list(pks[:limit] if limit else pks)
    Delivery.objects.filter(pk__in=locked).delete()
    return len(locked)


def deliveries_replay(deliveries: Iterable[Delivery]) -> list[Delivery]:
    """Send these deliveries' events again: a new delivery each (a new `webhook-id`, so receivers that
    drop duplicates take it), to the same subscription, unless it has been deleted meanwhile. Returns
    the new deliveries."""
    with transaction.atomic():
        subscription_ids = {d.subscription_id for d in deliveries}
        alive = {s.pk for s in WebhookSubscription.objects.filter(pk__in=subscription_ids).lock_to_add()}
        rows = [
            (d.org_id, d.event_id, d.event_type, d.subscription_id) for d in deliveries if d.subscription_id in alive
        ]
        return record.deliveries_create(rows, timezone.now())


def deliveries_purge(now: datetime | None = None) -> tuple[int, int]:
    """Delete finished deliveries (dead letters included) past WEBHOOK_DELIVERIES_KEEP_DAYS, DELETE_BATCH
    at a time, and the events no delivery needs any more. Returns (deliveries, events) deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_DELIVERIES_KEEP_DAYS)
    finished = Delivery.objects.exclude(status=DeliveryStatus.PENDING).filter(finished_at__lt=cutoff)
    deliveries = _deliveries_delete_in_batches(finished)
    events = Event.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).delete()[0]
    return deliveries, events
