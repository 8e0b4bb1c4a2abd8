"""Events out under one org's backlog: do another org's events still arrive at once?

Three `manage.py db_worker` processes on PostgreSQL. Org `bench-replay` bulk-replays 10,000 deliveries
a minute (`POST /v1/webhook_deliveries/replay`, 1,000 at a time) for three minutes, to a receiver
that takes 1 s to answer each. Meanwhile org `bench-live` gets Meta webhooks, 2 a second, each a
`message.received` event for its own receiver: for each, the time from Kirim's 200 to Meta to that
receiver holding the event. Every second the database queue is counted: deliver tasks queued or
running, the most for any one delivery, pending deliveries, and the task table's rows.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/fairness.py

Goals (issue 23): the live org's events arrive within 2 s at p95 in every minute, and the queue never
holds more than one task per pending delivery. Receivers and workers are on loopback; the run stops
by itself after --minutes (and at most 60 s more for the last live events).
"""

import argparse
import json
import os
import threading
import time
from collections import Counter

from common import fresh_org, setup_django
from events_out import percentile, post_webhook, reset_queues, start_workers, stop, waits_ms

LIVE_NUMBER = "940000000001"
REPLAY_BATCH = 1000  # the bulk replay's most per request


def seed_replaying_org(receiver_url):
    """The replaying org with REPLAY_BATCH delivered deliveries to replay, and an API key."""
    from django.utils import timezone

    from inbox.models import ApiKey
    from outbox.models import Delivery, DeliveryStatus, Event, EventType, WebhookSubscription

    org, _ = fresh_org("bench-replay", [])
    subscription = WebhookSubscription.objects.create(org=org, url=receiver_url, events=[EventType.MESSAGE_READ])
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(org=org, type=EventType.MESSAGE_READ, body=json.dumps({"n": n}), created_at=now)
        for n in range(REPLAY_BATCH)
    )
    Delivery.objects.bulk_create(
        Delivery(org=org, subscription=subscription, event=event, event_type=event.type, attempts=1,
                 status=DeliveryStatus.DELIVERED, next_attempt_at=None, created_at=now, finished_at=now)
        for event in events
    )  # fmt: skip
    _, key = ApiKey.issue(org=org, name="bench")
    return key


def replay_steadily(key, per_minute, until, outcomes):
    """Bulk replays spread evenly until `until` (monotonic); each outcome is (status, seconds taken)."""
    from django.db import connection
    from django.test import Client

    client = Client()
    every = 60 * REPLAY_BATCH / per_minute
    next_at = time.monotonic()
    while next_at < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        started = time.monotonic()
        response = client.post("/v1/webhook_deliveries/replay", json.dumps({"status": "delivered", "limit": REPLAY_BATCH}),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip
        outcomes.append((response.status_code, time.monotonic() - started))
        next_at += every
    connection.close()


def sample_queue(samples, stopped):
    """Once a second until `stopped`: (deliver tasks queued, running, the most queued or running for
    one delivery, pending deliveries, rows in the task table)."""
    from django.db import connection
    from django.db.models import Count
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from outbox.delivery import deliver
    from outbox.models import Delivery, DeliveryStatus

    while not stopped.wait(1.0):
        live = DBTaskResult.objects.filter(
            task_path=deliver.module_path, status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]
        )
        by_status = Counter(dict(live.values_list("status").annotate(n=Count("id"))))
        per_delivery = live.values("args_kwargs").annotate(n=Count("id")).values_list("n", flat=True)
        pending = Delivery.objects.filter(status=DeliveryStatus.PENDING).count()
        samples.append((by_status[TaskResultStatus.READY], by_status[TaskResultStatus.RUNNING],
                        max(per_delivery, default=0), pending, DBTaskResult.objects.count()))  # fmt: skip
    connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--per-minute", type=int, default=10000, help="deliveries the replaying org replays a minute")
    parser.add_argument("--receiver-seconds", type=float, default=1.0, help="how long its receiver takes to answer")
    parser.add_argument("--live-rate", type=float, default=2.0, help="the live org's webhooks a second")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    os.environ["WEBHOOK_ALLOW_PRIVATE_URLS"] = "true"
    setup_django()
    from django.conf import settings
    from django.test import Client

    from fakemeta.receiver import serve_in_thread
    from outbox.models import EventType, WebhookSubscription

    settings.ALLOWED_HOSTS = ["*"]
    slow, live = serve_in_thread(quiet=True), serve_in_thread(quiet=True)
    slow.delay = args.receiver_seconds
    reset_queues()
    key = seed_replaying_org(slow.url)
    live_org, _ = fresh_org("bench-live", [LIVE_NUMBER])
    WebhookSubscription.objects.create(org=live_org, url=live.url, events=[EventType.MESSAGE_RECEIVED])

    workers = start_workers("db", args.workers)
    started = time.monotonic()
    until = started + args.minutes * 60
    replays, samples, stopped = [], [], threading.Event()
    threads = [
        threading.Thread(target=replay_steadily, args=(key, args.per_minute, until, replays)),
        threading.Thread(target=sample_queue, args=(samples, stopped)),
    ]
    for thread in threads:
        thread.start()
    client, acked, sent_minute = Client(), {}, {}
    n = 0
    while time.monotonic() < until:
        wamid = post_webhook(client, f"LIVE{started:.0f}-{n}", LIVE_NUMBER)
        acked[wamid] = time.monotonic()
        sent_minute[wamid] = int((acked[wamid] - started) // 60)
        n += 1
        time.sleep(max(0.0, started + n / args.live_rate - time.monotonic()))
    arrived = live.wait_for(len(acked), timeout=60)
    stopped.set()
    for thread in threads:
        thread.join()
    stop(workers)
    slow.release.set()

    waits = waits_ms(arrived, acked)
    report(args, replays, slow, acked, waits, sent_minute, samples)
    live.shutdown()
    slow.shutdown()


def report(args, replays, slow, acked, waits, sent_minute, samples):
    statuses = Counter(status for status, _ in replays)
    print(f"{args.workers} db_workers, {args.minutes:g} min; replaying org: {len(replays)} bulk replays of "
          f"{REPLAY_BATCH} ({dict(statuses)}), p50 {percentile([s for _, s in replays], 0.5):.2f} s each; "
          f"its receiver ({args.receiver_seconds:g} s an answer) got {len(slow.received)}")  # fmt: skip
    print(f"live org: {len(waits)} of {len(acked)} events arrived; ack -> receipt ms")
    print("minute  events    p50     p95     p99     max")
    worst_p95 = 0.0
    for minute in sorted(set(sent_minute.values())):
        bucket = [w for wamid, w in waits.items() if sent_minute[wamid] == minute]
        missing = sum(1 for wamid in acked if sent_minute[wamid] == minute and wamid not in waits)
        p95 = percentile(bucket, 0.95) if bucket and not missing else float("inf")
        worst_p95 = max(worst_p95, p95)
        print(f"{minute + 1:>6} {len(bucket):>7} {percentile(bucket, 0.5):>6.0f} {p95:>7.0f} "
              f"{percentile(bucket, 0.99):>7.0f} {max(bucket):>7.0f}" + (f"  ({missing} never arrived)" if missing else ""))  # fmt: skip
    everything = list(waits.values())
    print(f"   all {len(everything):>7} {percentile(everything, 0.5):>6.0f} {percentile(everything, 0.95):>7.0f} "
          f"{percentile(everything, 0.99):>7.0f} {max(everything):>7.0f}")  # fmt: skip
    queued, running, per_delivery, pending, rows = zip(*samples, strict=True)
    over = sum(1 for q, p in zip(queued, pending, strict=True) if q > p)
    print(f"queue, sampled {len(samples)} times: deliver tasks queued at most {max(queued)}, running at most "
          f"{max(running)}, at most {max(per_delivery)} queued or running for one delivery, {over} samples with more "
          f"queued than pending deliveries; pending deliveries at most {max(pending)}, at the end {pending[-1]}; "
          f"task table rows at most {max(rows)}, at the end {rows[-1]}")  # fmt: skip
    print(f"  live events p95 < 2 s in every minute          {'ok' if worst_p95 < 2000 else 'MISSED'}")
    print(
        f"  never more than one task per pending delivery  {'ok' if max(per_delivery) <= 1 and not over else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
