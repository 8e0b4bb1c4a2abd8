"""Events out: how fast deliveries flow through the task queue, and how long a subscriber waits.

For the database queue (db_worker) and RQ (rqworker on a local redis-server), at 1 and 8 workers:
- throughput: EVENTS message.received events recorded first, then workers started; events delivered
  per second until the last one arrives at the stand-in receiver;
- latency: Meta webhooks posted to Kirim at a steady rate with the workers running; for each, the
  time from Kirim's 200 to Meta (the webhook acknowledged) to the receiver holding the event.
Baseline in the same run: the same receiver posted to directly (no Kirim, no queue), one at a time.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/events_out.py
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import requests
from common import ROOT, fresh_org, setup_django

PHONE_NUMBER_ID = "930000000001"
WORKER_INTERVAL = "0.05"  # seconds an idle db_worker waits before polling again


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def worker_command(backend):
    if backend == "db":
        return [sys.executable, "manage.py", "db_worker", "--interval", WORKER_INTERVAL, "--no-startup-delay",
                "--no-reload", "--verbosity", "0"]  # fmt: skip
    return [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler", "--job-class",
            "django_tasks_rq.backend.Job", "--worker-class", "rq.worker.SimpleWorker", "--verbosity", "0"]  # fmt: skip


def start_workers(backend, count):
    env = {**os.environ, "TASKS_BACKEND": backend, "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "LOG_LEVEL": "WARNING"}
    workers = [
        subprocess.Popen(
            worker_command(backend), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(count)
    ]
    time.sleep(3)  # Django starts in each
    return workers


def stop(workers):
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def use_backend(backend):
    from django.conf import settings
    from django.test.utils import override_settings

    override = override_settings(TASKS={"default": settings.TASK_BACKENDS[backend]})
    override.enable()
    return override


def reset_queues():
    from django_tasks_db.models import DBTaskResult

    from outbox.models import Delivery, Event, SweeperClock

    Delivery.objects.all().delete()
    Event.objects.all().delete()
    DBTaskResult.objects.all().delete()
    SweeperClock.objects.all().delete()
    import django_rq
    import redis

    try:
        django_rq.get_queue("default").empty()
    except redis.ConnectionError:
        print("(no Redis: its queue was not emptied)")


def webhook(n, phone_number_id=PHONE_NUMBER_ID):
    from fakemeta import payloads

    return payloads.webhook(phone_number_id, messages=[payloads.text_message(f"wamid.BENCH{n}", "6281", f"m{n}")],
                            contacts=[payloads.contact("6281", "Bench")])  # fmt: skip


def throughput(backend, workers, receiver, events):
    from django.db import transaction

    from inbox.models import Org
    from outbox.models import EventType
    from outbox.record import events_record, subscriptions_of, wanting

    reset_queues()
    org = Org.objects.get(slug="bench-events")
    wanted = wanting(subscriptions_of([org.pk]), EventType.MESSAGE_RECEIVED)
    with transaction.atomic():
        for n in range(events):
            events_record(EventType.MESSAGE_RECEIVED, {org.pk: webhook(n)}, wanted)
    receiver.received.clear()
    started = time.monotonic()
    processes = start_workers(backend, workers)
    arrived = receiver.wait_for(events, timeout=600)
    elapsed = arrived[-1][0] - started - 3  # the workers' start-up sleep is not delivery time
    stop(processes)
    return len(arrived), len(arrived) / elapsed


def post_webhook(client, n, phone_number_id=PHONE_NUMBER_ID):
    """Meta's webhook with message `n`, signed and posted to Kirim; returns its wamid once Kirim
    acknowledged it."""
    from django.conf import settings

    from fakemeta import payloads

    body = json.dumps(webhook(n, phone_number_id)).encode()
    response = client.post("/webhooks/whatsapp", body, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE_256=payloads.sign(body, settings.META_APP_SECRET))  # fmt: skip
    assert response.status_code == 200
    return f"wamid.BENCH{n}"


def waits_ms(arrived, acked):
    """{wamid: ms from Kirim's acknowledgement to the receiver holding its event} for what arrived."""
    waits = {}
    for at, _, body in arrived:
        wamid = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        waits[wamid] = (at - acked[wamid]) * 1000
    return waits


def latency(backend, workers, receiver, count, rate):
    from django.test import Client

    reset_queues()
    client = Client()
    processes = start_workers(backend, workers)
    receiver.received.clear()
    acked = {}
    run = f"{backend}{workers}L"  # wamids unique to the run: Kirim announces a wamid only once
    for n in range(count):
        acked[post_webhook(client, f"{run}{n}")] = time.monotonic()
        time.sleep(1 / rate)
    arrived = receiver.wait_for(count, timeout=120)
    stop(processes)
    waits = list(waits_ms(arrived, acked).values())
    return statistics.median(waits), percentile(waits, 0.99), len(waits)


def baseline(receiver, count):
    session = requests.Session()
    receiver.received.clear()
    started = time.monotonic()
    samples = []
    for n in range(count):
        t = time.monotonic()
        session.post(receiver.url, data=json.dumps(webhook(n)), headers={"Content-Type": "application/json"})
        samples.append((time.monotonic() - t) * 1000)
    return count / (time.monotonic() - started), statistics.median(samples), percentile(samples, 0.99)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="webhooks a second in the latency runs")
    parser.add_argument("--backends", default="db,rq")
    args = parser.parse_args()
    os.environ["WEBHOOK_ALLOW_PRIVATE_URLS"] = "true"
    setup_django()
    from django.conf import settings

    from fakemeta.receiver import serve_in_thread
    from outbox.models import WebhookSubscription

    settings.ALLOWED_HOSTS = ["*"]
    receiver = serve_in_thread(quiet=True)
    org, _ = fresh_org("bench-events", [PHONE_NUMBER_ID])
    WebhookSubscription.objects.create(org=org, url=receiver.url, events=["message.received"])

    rate, p50, p99 = baseline(receiver, 500)
    print(f"baseline: POST to the receiver directly, one at a time: {rate:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for backend in args.backends.split(","):
        use_backend(backend)
        for workers in (1, 8):
            delivered, per_second = throughput(backend, workers, receiver, args.events)
            p50, p99, measured = latency(backend, workers, receiver, args.latency_events, args.rate)
            print(f"{backend:>2} x{workers}: {delivered} events at {per_second:.0f}/s "
                  f"({per_second / rate:.2f} of baseline); ack -> receipt over {measured} webhooks at "
                  f"{args.rate:g}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)  # fmt: skip
    receiver.shutdown()


if __name__ == "__main__":
    main()
