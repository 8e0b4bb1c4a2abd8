"""The delivery engine: tasks that attempt deliveries, how they are handed out, and the sweeper.

The delivery rows are the source of truth; a task only says "attempt this delivery now", and a
delivery has at most one task at a time, named in its `task_id`. `dispatch` hands tasks out: an org
has at most WEBHOOK_MAX_IN_FLIGHT_PER_ORG deliveries with a task (queued or running), a subscription
at most WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION, and the rest wait in the database, oldest due first.
So an org's backlog (a replay, a slow receiver, a burst) holds that many places in the queue and that
many workers, however deep it is, and the queue never holds more than one task per delivery.

Each attempt is three steps, and only the middle one waits on the network, with no transaction open:
1. claim: one short transaction takes a lease on the delivery (if it is due, not leased, and still
   this task's) and logs the attempt;
2. send: POST the signed event to the subscriber;
3. settle: one short transaction records the answer, conditional on still holding the lease (the
   attempt number and the task fence off a worker whose lease ran out), and schedules the retry or
   finishes; the task's slot goes to the org's next due delivery.
A task that finds nothing to claim gives its slot on the same way. The sweeper queues the retries
that came due, frees the slots of tasks that died (a killed worker, a database restart), and trims
the queue's finished rows."""

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import task
from django_tasks.base import TaskContext, TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from core import metrics, tracing
from meta.signing import kirim_signature, meta_signature, standard_webhooks_signature
from orgs.models import Org
from outbox import subscriber_http
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
FINISHED_TASKS_KEPT = timedelta(minutes=10)  # the deliveries and their attempts are the record
TRIM_BATCH = 10000  # finished task rows deleted per sweep, so a sweep stays short


class WorkerLost(Exception):
    """What a task row says when its worker stopped mid-task: killed, or cut off from the database
    in the middle of recording how the task ended."""


@task(takes_context=True)
def deliver(context: TaskContext, delivery_id: int) -> None:
    with tracing.span("task deliver"):
        attempt_delivery(delivery_id, task_id=context.task_result.id)


@task()
def sweep(token: str) -> None:
    with tracing.span("task sweep"):
        sweep_once(token)


def enqueue_new(org_ids: Iterable[int]) -> None:
    """Hand these orgs' freshly committed deliveries to the queue, as their slots allow. If this never
    runs (the process died just after the commit), the sweeper does it."""
    dispatch(org_ids)
    ensure_sweeper()


def dispatch(org_ids: Iterable[int]) -> int:
    """Give each org's next due deliveries a task, oldest due first, as many as the org and each of its
    subscriptions have free slots. Returns how many were queued."""
    return sum(_dispatch_org(org_id) for org_id in sorted(set(org_ids)))


def _dispatch_org(org_id: int) -> int:
    now = timezone.now()
    waiting = Delivery.objects.filter(
        _lease_free(now), org_id=org_id, status=DeliveryStatus.PENDING, task_id="", next_attempt_at__lte=now
    ).order_by("next_attempt_at", "pk")
    # No lock when there is nothing to hand out: how most attempts end, and every event of an org
    # whose slots are full. Whoever frees a slot hands it out afterwards, so no delivery is forgotten.
    if not waiting.exists() or _slots_held(org_id).total() >= settings.WEBHOOK_MAX_IN_FLIGHT_PER_ORG:
        return 0
    with transaction.atomic():
        # One dispatcher per org at a time, on any host, so the slots are counted right. NO KEY: rows
        # pointing at the org (deliveries, messages) are still written meanwhile.
        list(Org.objects.select_for_update(no_key=True).filter(pk=org_id).values_list("pk"))
        holding = _slots_held(org_id)
        free = settings.WEBHOOK_MAX_IN_FLIGHT_PER_ORG - holding.total()
        if free <= 0:
            return 0
        due: list[tuple[datetime | None, int]] = []  # due ones: never None
        for subscription_id in WebhookSubscription.objects.filter(org_id=org_id).values_list("pk", flat=True):
            room = min(free, settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION - holding[subscription_id])
            if room > 0:
                due += waiting.filter(subscription_id=subscription_id).values_list("next_attempt_at", "pk")[:room]
        oldest = [pk for _, pk in sorted(due)[:free]]
        # Locked without waiting (a delivery being deleted is skipped): while the org is held, this
        # transaction waits for nothing, so it cannot deadlock.
        chosen = Delivery.objects.select_for_update(skip_locked=True).filter(pk__in=oldest).values_list("pk", flat=True)
        queued = 0
        for delivery_id in chosen:
            # Queued inside the transaction: in the database queue the task and its delivery's task_id
            # commit together; a task RQ starts sooner waits at its claim for this row's lock.
            task_id = deliver.enqueue(delivery_id).id
            queued += Delivery.objects.filter(pk=delivery_id).update(task_id=task_id, queued_at=now)
    return queued


def _slots_held(org_id: int) -> Counter[int]:
    """{subscription id: deliveries with a task} of this org."""
    held = Delivery.objects.filter(org_id=org_id, status=DeliveryStatus.PENDING).exclude(task_id="")
    return Counter(held.values_list("subscription_id", flat=True))


def _lease_free(now: datetime) -> Q:
    return Q(leased_until__isnull=True) | Q(leased_until__lt=now)


def _lease_length() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_TIMEOUT) + LEASE_MARGIN


def retry_delay(attempt: int, retry_after: float | None = None) -> float | None:
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
    task_id: str | None  # the task making the attempt (None: called directly, as tests do)


def attempt_delivery(delivery_id: int, task_id: str | None = None) -> Claim | None:
    """Make the next attempt of one delivery, if it is due, nobody else is making it and (for a task)
    it is still this task's. A task that finds nothing to claim gives its slot on."""
    claim = _claim(delivery_id, task_id)
    if claim is None:
        if task_id and Delivery.objects.filter(pk=delivery_id, task_id=task_id).update(task_id="", queued_at=None):
            dispatch(Delivery.objects.filter(pk=delivery_id).values_list("org_id", flat=True))
        return None
    delivery = claim.delivery
    # The trace of what caused the event (Meta's webhook, a read) goes on into its delivery.
    attributes: dict[str, Any] = {
        "kirim.delivery.attempt": claim.attempt.number,
        "kirim.event.type": delivery.event_type,
    }
    with tracing.span(f"deliver {delivery.event_type}", parent=delivery.event.trace_parent, **attributes):
        subscription = delivery.subscription
        stopped = subscription.why_stopped(delivery.event_type)
        if stopped:
            _settle(claim, None, final=DeliveryStatus.FAILED, error=stopped)
            return claim
        body = delivery.event.body.encode()
        with tracing.span("subscriber POST", kind=tracing.CLIENT) as span:
            answer = subscriber_http.post(subscription.url, body, _headers(delivery, claim.attempt.number, body))
            if span is not None and answer.status_code is not None:
                span.set_attribute("http.response.status_code", answer.status_code)
        _settle(claim, answer)
    return claim


def _claim(delivery_id: int, task_id: str | None = None) -> Claim | None:
    now = timezone.now()
    with transaction.atomic():
        # Locked before it is looked at: a task RQ starts before the transaction that queued it has
        # committed waits here for that commit, and then sees its own task_id.
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("subscription", "event")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if (
            delivery is None
            or (delivery.leased_until is not None and delivery.leased_until >= now)  # another attempt is on it
            or (task_id is not None and delivery.task_id != task_id)  # the sweeper gave its slot away
        ):
            return None
        delivery.attempts += 1
        delivery.leased_until = now + _lease_length()
        Delivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts, leased_until=delivery.leased_until)
        attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now)
    return Claim(delivery, attempt, task_id)


def _headers(delivery: Delivery, attempt_number: int, body: bytes) -> dict[str, str]:
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


def _outcome(answer: subscriber_http.Answer) -> tuple[DeliveryStatus | None, bool]:
    """(final status or None to retry, disable the subscription?) for an answer."""
    code = answer.status_code
    if code is None or code in RETRIED_STATUSES or code >= 500 or 300 <= code < 400:
        return None, False
    if 200 <= code < 300:
        return DeliveryStatus.DELIVERED, False
    return DeliveryStatus.FAILED, code == 410


def _settle(
    claim: Claim,
    answer: subscriber_http.Answer | None,
    *,
    final: DeliveryStatus | None = None,
    error: str = "",
) -> None:
    delivery, attempt = claim.delivery, claim.attempt
    now = timezone.now()
    disable = False
    if answer is not None:
        final, disable = _outcome(answer)
        error = answer.error or (f"HTTP {answer.status_code}" if final != DeliveryStatus.DELIVERED else "")
    delay = retry_at = None
    if final is None:  # so there was an answer
        delay = retry_delay(attempt.number, answer.retry_after if answer is not None else None)
        if delay is None:
            final = DeliveryStatus.DEAD
        else:
            retry_at = now + timedelta(seconds=delay)
    changes: dict[str, object] = {"leased_until": None, "last_error": error[:300]}
    held = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=attempt.number)
    if claim.task_id is not None:
        held = held.filter(task_id=claim.task_id)
        changes.update(task_id="", queued_at=None)  # the slot goes to the org's next due delivery
    if answer is not None:
        changes["last_status_code"] = answer.status_code
    if final is None:
        changes["next_attempt_at"] = retry_at
    else:
        changes.update(status=final, finished_at=now, next_attempt_at=None)
    with transaction.atomic():
        WebhookSubscription.objects.filter(pk=delivery.subscription_id).lock_to_work()  # before the delivery's
        if answer is not None:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                duration_ms=answer.duration_ms,
                status_code=answer.status_code,
                response_excerpt=answer.excerpt,
                error=answer.error[:300],
            )
        else:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(duration_ms=0, error=error[:300])
        settled = held.update(**changes)
        if settled and final is not None:
            _count_outcome(delivery.subscription_id, delivery.event_type, final, gone=disable, now=now)
    if not settled:
        logger.warning("delivery %s attempt %d settled after its lease was taken over", delivery.external_id,
                       attempt.number)  # fmt: skip
        return
    _count_attempt(delivery, final, now)
    logger.info(
        "delivery %s attempt %d: %s %s", delivery.external_id, attempt.number,
        answer.status_code if answer else "-", final or f"retry in {delay:.1f} s",
    )  # fmt: skip
    dispatch([delivery.org_id])  # a retry waits in the database too, for a slot once it is due


def _count_attempt(delivery: Delivery, final: DeliveryStatus | None, now: datetime) -> None:
    """The attempt in the metrics: its outcome, and for a delivered event the time since it happened."""
    lag = (now - delivery.event.created_at).total_seconds() if final == DeliveryStatus.DELIVERED else None
    metrics.event_delivery(delivery.event_type, final or "retry", lag)


def _count_outcome(subscription_id: int, event_type: str, final: DeliveryStatus, *, gone: bool, now: datetime) -> None:
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


# The sweeper: one chain of `sweep` tasks, each scheduling the next. The clock row's token says which
# chain is the live one; whoever finds the clock overdue (the chain died with a worker) starts another.


def ensure_sweeper() -> None:
    now = timezone.now()
    interval = timedelta(seconds=settings.WEBHOOK_SWEEP_INTERVAL)
    token = uuid.uuid4().hex
    started = SweeperClock.objects.filter(due_at__lt=now - interval).update(token=token, due_at=now)
    if not started and not SweeperClock.objects.exists():
        SweeperClock.objects.create(token=token, due_at=now)
        started = 1
    if started:
        sweep.enqueue(token)


def sweep_once(token: str) -> int:
    """Free the slots of tasks that died, give the deliveries that came due their tasks, trim the
    queue's finished rows, then schedule the next sweep; a sweep whose token is stale does nothing.
    Returns how many deliveries it queued."""
    now = timezone.now()
    interval = timedelta(seconds=settings.WEBHOOK_SWEEP_INTERVAL)
    next_token = uuid.uuid4().hex
    if not SweeperClock.objects.filter(token=token).update(token=next_token, due_at=now + interval):
        return 0
    _tidy_task_rows(now)
    freed = _free_dead_slots(now, interval)
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, task_id="", next_attempt_at__lte=now)
    queued = dispatch(due.values_list("org_id", flat=True).distinct())
    if freed or queued:
        logger.info("sweeper freed %d slot(s) of dead tasks and queued %d delivery(ies)", freed, queued)
    sweep.using(run_after=now + interval).enqueue(next_token)
    return queued


def _free_dead_slots(now: datetime, interval: timedelta) -> int:
    """Deliveries whose task will never run or finish give up their slot: their lease ran out (the
    worker died mid-attempt, or could not settle), or they were queued a sweep ago and their task is
    neither queued nor running any more (it failed before its claim, or the queue lost it)."""
    holding = Delivery.objects.filter(status=DeliveryStatus.PENDING).exclude(task_id="")
    freed = holding.filter(leased_until__lt=now).update(task_id="", queued_at=None, leased_until=None)
    unclaimed = holding.filter(leased_until__isnull=True, queued_at__lt=now - interval)
    for delivery_id, task_id in unclaimed.values_list("pk", "task_id"):
        if not _task_alive(task_id, now):
            freed += Delivery.objects.filter(pk=delivery_id, task_id=task_id).update(task_id="", queued_at=None)
    return freed


def _task_alive(task_id: str, now: datetime) -> bool:
    try:
        result = deliver.get_backend().get_result(task_id)
    except TaskResultDoesNotExist:
        return False
    if result.status == TaskResultStatus.RUNNING:
        return result.started_at is not None and result.started_at >= now - _lease_length()
    return result.status == TaskResultStatus.READY


def _tidy_task_rows(now: datetime) -> None:
    """The database queue's rows of these tasks: one RUNNING longer than any attempt may (its worker
    was killed, or lost the database while recording the end) is marked failed; finished ones go
    after FINISHED_TASKS_KEPT. RQ keeps its own house (result TTLs, its registry of abandoned jobs)."""
    backend = deliver.get_backend()
    if not isinstance(backend, DatabaseBackend):
        return
    rows = DBTaskResult.objects.filter(
        backend_name=backend.alias, task_path__in=[deliver.module_path, sweep.module_path]
    )
    rows.running().filter(started_at__lt=now - _lease_length()).update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
        traceback=WorkerLost.__doc__,
    )
    finished = rows.finished().filter(finished_at__lt=now - FINISHED_TASKS_KEPT)
    DBTaskResult.objects.filter(pk__in=list(finished.values_list("pk", flat=True)[:TRIM_BATCH])).delete()
