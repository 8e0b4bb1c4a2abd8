"""The delivery engine: tasks that attempt deliveries, and the sweeper.

The delivery rows are the source of truth; a task only says "look at this delivery now". Each
attempt is three steps, and only the middle one waits on the network, with no transaction open:
1. claim: one short transaction takes a lease on the delivery (if it is due, not leased, and its
   subscription has fewer than WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION attempts in flight) and logs
   the attempt;
2. send: POST the signed event to the subscriber;
3. settle: one short transaction records the answer, conditional on still holding the lease (the
   attempt number fences off a worker whose lease ran out), and schedules the retry or finishes.
A duplicate task finds nothing to claim; a lost one (a killed worker, a lost enqueue) is found by
the sweeper once its delivery is overdue or its lease has run out."""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from kirim import subscriber_http
from kirim.webhook_signing import kirim_signature, meta_signature, standard_webhooks_signature
from outbox.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    SweeperClock,
    WebhookSubscription,
)

logger = logging.getLogger("kirim.outbox")

JITTER = 0.2
LEASE_MARGIN = timedelta(seconds=5)  # beyond the request's own timeout: reading and settling
MAX_RETRY_AFTER = 24 * 3600  # a receiver's Retry-After is honoured up to a day
USER_AGENT = "Kirim-Webhooks/1"


@task()
def deliver(delivery_id):
    attempt_delivery(delivery_id)


@task()
def sweep(token):
    sweep_once(token)


def enqueue_new(delivery_ids):
    """Hand freshly committed deliveries to the queue. If this never runs (the process died just after
    the commit), the sweeper enqueues them once they are overdue."""
    for delivery_id in delivery_ids:
        deliver.enqueue(delivery_id)
    ensure_sweeper()


def _enqueue_at(delivery_id, when):
    deliver.using(run_after=when).enqueue(delivery_id)


def retry_delay(attempt, retry_after=None):
    """Seconds before the attempt after `attempt` (1-based), jittered ±20%; None when the schedule
    is spent. A receiver's Retry-After lengthens the wait, never shortens it."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempt > len(schedule):
        return None
    delay = schedule[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


@dataclass(frozen=True)
class Claim:
    delivery: Delivery
    attempt: DeliveryAttempt


BUSY = "busy"  # the subscription has its fill of attempts in flight


def attempt_delivery(delivery_id):
    """Make the next attempt of one delivery, if it is due and nobody else is making it."""
    claim = _claim(delivery_id)
    if claim is None or claim == BUSY:
        return claim
    delivery = claim.delivery
    subscription = delivery.subscription
    stopped = subscription.why_stopped(delivery.event_type)
    if stopped:
        _settle(claim, None, final=DeliveryStatus.FAILED, error=stopped)
        return claim
    body = delivery.event.body.encode()
    answer = subscriber_http.post(subscription.url, body, _headers(delivery, claim.attempt.number, body))
    _settle(claim, answer)
    return claim


def _claim(delivery_id):
    now = timezone.now()
    delivery = (
        Delivery.objects.select_related("subscription", "event")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .first()
    )
    if delivery is None:
        return None
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT) + LEASE_MARGIN
    with transaction.atomic():
        # The subscription's row lock makes "fewer than N in flight" hold across workers and hosts.
        WebhookSubscription.objects.select_for_update().filter(pk=delivery.subscription_id).exists()
        in_flight = Delivery.objects.filter(
            subscription_id=delivery.subscription_id, status=DeliveryStatus.PENDING, leased_until__gte=now
        ).count()
        if in_flight >= settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION:
            return BUSY  # left due: the attempt in flight hands it on when it settles (or the sweeper)
        number = delivery.attempts + 1
        taken = (
            Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .update(attempts=number, leased_until=lease)
        )
        if not taken:
            return None  # another worker claimed it between our read and this update
        attempt = DeliveryAttempt.objects.create(delivery=delivery, number=number, started_at=now)
    delivery.attempts, delivery.leased_until = number, lease
    return Claim(delivery, attempt)


def _headers(delivery, attempt_number, body):
    event = delivery.event
    secrets = delivery.subscription.signing_secrets()
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Kirim-Source": event.source,
        "X-Kirim-Event": event.type,
        "X-Kirim-Event-Id": event.external_id,
        "X-Kirim-Delivery-Id": delivery.external_id,
        "X-Kirim-Attempt": str(attempt_number),
        "X-Kirim-Signature": kirim_signature(secrets, timestamp, body),
        # Standard Webhooks: the id stays the same on every retry, so receivers can drop duplicates.
        "webhook-id": delivery.external_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_signature(secrets, delivery.external_id, timestamp, body),
        # On Kirim's own events too: a handler written for Meta's webhooks checks it before anything else.
        "X-Hub-Signature-256": meta_signature(secrets[0], body),
    }


RETRIED_STATUSES = {408, 429}


def _outcome(answer):
    """(final status or None to retry, disable the subscription?) for an answer."""
    code = answer.status_code
    if code is None or code in RETRIED_STATUSES or code >= 500 or 300 <= code < 400:
        return None, False
    if 200 <= code < 300:
        return DeliveryStatus.DELIVERED, False
    return DeliveryStatus.FAILED, code == 410


def _settle(claim, answer, *, final=None, error=""):
    delivery, attempt = claim.delivery, claim.attempt
    now = timezone.now()
    disable = False
    if answer is not None:
        final, disable = _outcome(answer)
        error = answer.error or (f"HTTP {answer.status_code}" if final != DeliveryStatus.DELIVERED else "")
    delay = None
    if final is None:
        delay = retry_delay(attempt.number, answer.retry_after)
        if delay is None:
            final = DeliveryStatus.DEAD
    changes = {"leased_until": None, "last_error": error[:300]}
    if answer is not None:
        changes["last_status_code"] = answer.status_code
    if final is None:
        changes["next_attempt_at"] = now + timedelta(seconds=delay)
    else:
        changes.update(status=final, finished_at=now, next_attempt_at=None)
    with transaction.atomic():
        if answer is not None:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                duration_ms=answer.duration_ms,
                status_code=answer.status_code,
                response_excerpt=answer.excerpt,
                error=answer.error[:300],
            )
        else:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(duration_ms=0, error=error[:300])
        held = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=attempt.number).update(
            **changes
        )
        if held and final is not None:
            _count_outcome(delivery.subscription_id, delivery.event_type, final, gone=disable, now=now)
    if not held:
        logger.warning("delivery %s attempt %d settled after its lease was taken over", delivery.external_id,
                       attempt.number)  # fmt: skip
        return
    logger.info(
        "delivery %s attempt %d: %s %s", delivery.external_id, attempt.number,
        answer.status_code if answer else "-", final or f"retry in {delay:.1f} s",
    )  # fmt: skip
    if final is None:
        _enqueue_at(delivery.pk, changes["next_attempt_at"])
    _hand_on(delivery.subscription_id)


def _count_outcome(subscription_id, event_type, final, *, gone, now):
    """Failures count per (subscription, event type): a delivered event ends its type's streak, a
    failed or dead one lengthens it, and the streak's limit stops that type alone, saying why, so a
    type the receiver refuses never stops the types it accepts. The subscription is disabled when
    every type it lists is stopped, or at once by a 410 Gone (the URL itself is gone)."""
    subscriptions = WebhookSubscription.objects.filter(pk=subscription_id)
    if final == DeliveryStatus.DELIVERED and not subscriptions.filter(failure_streaks__has_key=event_type).exists():
        return  # the usual success: no streak to end, no lock taken
    subscription = subscriptions.select_for_update().get()
    streaks, stopped = subscription.failure_streaks, subscription.disabled_events
    if final == DeliveryStatus.DELIVERED:
        del streaks[event_type]
    else:
        streaks[event_type] = streaks.get(event_type, 0) + 1
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if streaks.get(event_type, 0) >= limit and event_type not in stopped:
        stopped[event_type] = f"Disabled at {now:%Y-%m-%d %H:%M} UTC after {limit} failed deliveries in a row."
        logger.warning("subscription %s: %s disabled after %d failed deliveries in a row", subscription_id,
                       event_type, limit)  # fmt: skip
    if subscription.enabled and (gone or set(subscription.events) <= set(stopped)):
        subscription.enabled = False
        subscription.disabled_reason = f"Disabled at {now:%Y-%m-%d %H:%M} UTC: " + (
            "the URL answered 410 Gone." if gone else f"each event type failed {limit} deliveries in a row."
        )
    subscription.save(update_fields=["failure_streaks", "disabled_events", "enabled", "disabled_reason"])


def _hand_on(subscription_id):
    """An attempt of this subscription ended: enqueue its next due deliveries, as many as it may have
    in flight, since others may have been turned away while it had its fill (a duplicate task finds
    nothing to claim, so the queue never waits for the sweeper)."""
    now = timezone.now()
    waiting = (
        Delivery.objects.filter(
            subscription_id=subscription_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[: settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION]
    )
    for delivery_id in waiting:
        deliver.enqueue(delivery_id)


# The sweeper: one chain of `sweep` tasks, each scheduling the next. The clock row's token says which
# chain is the live one; whoever finds the clock overdue (the chain died with a worker) starts another.


def ensure_sweeper():
    now = timezone.now()
    interval = timedelta(seconds=settings.WEBHOOK_SWEEP_INTERVAL)
    token = uuid.uuid4().hex
    started = SweeperClock.objects.filter(due_at__lt=now - interval).update(token=token, due_at=now)
    if not started and not SweeperClock.objects.exists():
        SweeperClock.objects.create(token=token, due_at=now)
        started = 1
    if started:
        sweep.enqueue(token)


def sweep_once(token):
    """Re-enqueue deliveries that are overdue (their task was lost) or whose lease ran out (their
    worker died), then schedule the next sweep; a sweep whose token is stale does nothing."""
    now = timezone.now()
    interval = timedelta(seconds=settings.WEBHOOK_SWEEP_INTERVAL)
    next_token = uuid.uuid4().hex
    if not SweeperClock.objects.filter(token=token).update(token=next_token, due_at=now + interval):
        return 0
    orphaned = Q(leased_until__lt=now)
    overdue = Q(leased_until__isnull=True, next_attempt_at__lt=now - interval)
    ids = list(
        Delivery.objects.filter(orphaned | overdue, status=DeliveryStatus.PENDING).values_list("pk", flat=True)[:10000]
    )
    for delivery_id in ids:
        deliver.enqueue(delivery_id)
    if ids:
        logger.info("sweeper re-enqueued %d deliveries", len(ids))
    sweep.using(run_after=now + interval).enqueue(next_token)
    return len(ids)
