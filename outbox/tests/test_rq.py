"""The same delivery through RQ on a real redis-server (TASKS_BACKEND=rq): the event is enqueued to
Redis when the webhook's transaction commits, and `manage.py rqworker` delivers it. CI starts
redis-server; elsewhere the test skips when none answers."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from conftest import postgres_only, wait_for
from outbox.models import Delivery, DeliveryStatus, WebhookSubscription
from outbox.tests.test_e2e import inbound, meta_webhook, receiver  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]


@pytest.fixture
def redis_queue(settings):
    import django_rq
    import redis

    try:
        redis.Redis.from_url(settings.RQ_QUEUES["default"]["URL"]).ping()
    except redis.ConnectionError:
        reason = "needs a redis-server (REDIS_URL, default redis://127.0.0.1:6379/0)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    settings.TASKS = {"default": settings.TASK_BACKENDS["rq"]}
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def test_an_event_goes_through_rq_and_rqworker_delivers_it(phone_number, receiver, redis_queue):  # noqa: F811
    WebhookSubscription.objects.create(org=phone_number.org, url=receiver.url, events=["message.received"])

    meta_webhook(inbound(phone_number, "wamid.RQ1"))
    queued = {job.func_name for job in redis_queue.jobs}
    assert "outbox.delivery.deliver" in queued  # the delivery's task is in Redis, not in the database queue

    env = {
        **os.environ,
        "TASKS_BACKEND": "rq",
        "DATABASE_URL": "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    }
    worker = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst", "--job-class", "django_tasks_rq.backend.Job"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert worker.returncode == 0, worker.stderr
    ((_, headers, body),) = receiver.wait_for(1, timeout=10)
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == "wamid.RQ1"
    assert headers["webhook-id"] == Delivery.objects.get().external_id
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_rqworker_beats_while_it_runs_and_the_scrape_counts_rqs_queue(phone_number, receiver, redis_queue, settings):  # noqa: F811
    from django.test import Client

    from outbox.models import WorkerHeartbeat

    settings.TASKS_BACKEND = "rq"
    WebhookSubscription.objects.create(org=phone_number.org, url=receiver.url, events=["message.received"])
    meta_webhook(inbound(phone_number, "wamid.RQ2"))
    waiting = redis_queue.count  # the delivery's job (and the sweeper's) wait in Redis
    assert waiting >= 1
    assert f"kirim_task_queue_depth {waiting:.1f}" in Client().get("/metrics").content.decode()

    env = {
        **os.environ, "TASKS_BACKEND": "rq", "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WORKER_HEARTBEAT_INTERVAL": "0.2",
        "DATABASE_URL": "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--job-class", "django_tasks_rq.backend.Job"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert receiver.wait_for(1, timeout=30)
        assert wait_for(lambda: WorkerHeartbeat.objects.filter(kind="rq", name__endswith=f":{worker.pid}").exists())
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert not WorkerHeartbeat.objects.exists()  # stopped in good order: its row is gone
