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

from conftest import postgres_only
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
