"""What the database says about events out and the task workers, read when it is asked for: in
readiness's details and at each metrics scrape (core.health, core.metrics), the same on every host."""

from collections.abc import Iterator
from typing import TypedDict

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client.core import GaugeMetricFamily

from outbox.heartbeat import silent_after
from outbox.models import Delivery, DeliveryStatus, WebhookSubscription, WorkerHeartbeat


class Backlog(TypedDict):
    pending: int
    oldest_pending_age_seconds: float
    dead_letters: int
    disabled_subscriptions: int
    task_queue_depth: int


class Workers(TypedDict):
    alive: int
    silent: int
    youngest_beat_age_seconds: float | None


def backlog() -> Backlog:
    """Pending deliveries, the age of the oldest (seconds, 0 when none), dead letters kept, and
    subscriptions Kirim or the org disabled."""
    now = timezone.now()
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(n=Count("pk"), oldest=Min("created_at"))
    return {
        "pending": pending["n"],
        "oldest_pending_age_seconds": round((now - pending["oldest"]).total_seconds(), 3) if pending["oldest"] else 0,
        "dead_letters": Delivery.objects.filter(status=DeliveryStatus.DEAD).count(),
        "disabled_subscriptions": WebhookSubscription.objects.filter(enabled=False).count(),
        "task_queue_depth": queue_depth(),
    }


def queue_depth() -> int:
    """Tasks waiting for a worker in the task backend's queue."""
    if settings.TASKS_BACKEND == "rq":
        from django_rq import get_queue  # only installed as an app with the RQ backend

        return get_queue("default").count
    return DBTaskResult.objects.ready().count()


def workers() -> Workers:
    """The task workers by heartbeat: alive (beat lately) and silent (gone), and the youngest beat's age."""
    now = timezone.now()
    beats = list(WorkerHeartbeat.objects.values_list("beat_at", flat=True))
    alive = [beat for beat in beats if now - beat <= silent_after()]
    youngest = max(beats, default=None)
    return {
        "alive": len(alive),
        "silent": len(beats) - len(alive),
        "youngest_beat_age_seconds": round((now - youngest).total_seconds(), 3) if youngest else None,
    }


def metric_families() -> Iterator[GaugeMetricFamily]:
    facts, seen = backlog(), workers()
    yield GaugeMetricFamily("kirim_events_out_pending", "Deliveries waiting to be made", value=facts["pending"])
    yield GaugeMetricFamily(
        "kirim_events_out_oldest_pending_age_seconds", "Age of the oldest pending delivery (0 when none)",
        value=facts["oldest_pending_age_seconds"],
    )  # fmt: skip
    yield GaugeMetricFamily(
        "kirim_events_out_dead_letters", "Deliveries that spent every retry", value=facts["dead_letters"]
    )
    yield GaugeMetricFamily(
        "kirim_webhook_subscriptions_disabled", "Subscriptions disabled", value=facts["disabled_subscriptions"]
    )
    yield GaugeMetricFamily("kirim_task_queue_depth", "Tasks waiting for a worker", value=facts["task_queue_depth"])
    by_state = GaugeMetricFamily(
        "kirim_workers", "Task workers by heartbeat: alive, or silent (gone)", labels=["state"]
    )
    by_state.add_metric(["alive"], seen["alive"])
    by_state.add_metric(["silent"], seen["silent"])
    yield by_state
    youngest = seen["youngest_beat_age_seconds"]
    yield GaugeMetricFamily(
        "kirim_worker_heartbeat_age_seconds", "Age of the youngest task worker heartbeat (+Inf: none ever beat)",
        value=float("inf") if youngest is None else youngest,
    )  # fmt: skip
