"""End to end through Django's tasks framework: events committed by the real doors, queued in
django-tasks-db, run by db_worker's own Worker (in this process, or as `manage.py db_worker`
processes), and received over HTTP by the stand-in receiver (fakemeta/receiver.py)."""

import contextlib
import hashlib
import hmac
import io
import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_tasks.base import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from conftest import logged_in, postgres_only
from fakemeta import payloads
from fakemeta.receiver import kirim_signature_ok, serve_in_thread
from inbox.models import Message, Role
from outbox.delivery import deliver
from outbox.models import Delivery, DeliveryStatus, WebhookSubscription

pytestmark = pytest.mark.django_db(transaction=True)
CUSTOMER = "6281234567801"


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the receiver is on loopback
    settings.WEBHOOK_TIMEOUT = 2.0
    settings.WEBHOOK_RETRY_SCHEDULE = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4]  # compressed, same shape
    settings.WEBHOOK_SWEEP_INTERVAL = 0.2  # the sweeper queues due retries
    server = serve_in_thread(quiet=True)
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def subscribe(org, receiver, events=("message.received", "message.status", "message.read")):
    return WebhookSubscription.objects.create(org=org, url=receiver.url, events=list(events))


def run_worker_until(done, timeout=20.0):
    """db_worker's Worker, in batch mode, run again until `done()` (deferred retries become ready)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for the worker: {_queue()}"
        Worker(queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
               max_tasks=None, worker_id="test-worker", excluded_queue_names=[]).run()  # fmt: skip
        time.sleep(0.05)


def _queue():
    return list(DBTaskResult.objects.values_list("task_path", "status", "exception_class_path", "traceback"))


def meta_webhook(payload):
    body = json.dumps(payload).encode()
    signature = payloads.sign(body, settings.META_APP_SECRET)
    return Client().post("/webhooks/whatsapp", body, content_type="application/json",
                         HTTP_X_HUB_SIGNATURE_256=signature)  # fmt: skip


def inbound(phone_number, wamid, text="Halo"):
    return payloads.webhook(
        phone_number.phone_number_id,
        messages=[payloads.text_message(wamid, CUSTOMER, text)],
        contacts=[payloads.contact(CUSTOMER, "Dewi")],
    )


def test_a_signed_meta_webhook_reaches_the_subscriber_as_metas_json_and_both_signatures_verify(phone_number, receiver):
    subscription = subscribe(phone_number.org, receiver)
    payload = inbound(phone_number, "wamid.E2E1")

    assert meta_webhook(payload).status_code == 200
    run_worker_until(lambda: receiver.received)

    ((_, headers, body),) = receiver.received
    assert json.loads(body) == payload
    assert headers["X-Kirim-Event"] == "message.received" and headers["X-Kirim-Source"] == "meta"
    assert Webhook(subscription.secret).verify(body, headers) == payload  # the reference library
    signed = f"{headers['X-Kirim-Signature'].split(',')[0][2:]}.".encode() + body  # the Kirim scheme, by hand
    expected = hmac.new(subscription.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-Kirim-Signature"].split(",")[1] == f"v1={expected}"
    meta = "sha256=" + hmac.new(subscription.secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == meta  # as Meta signs, keyed with the subscription's secret
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_read_through_the_api_the_admin_and_batch_read_each_give_message_read(
    api, phone_number, receiver, make_message, make_member, meta
):
    meta.post(f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages", json={"success": True})
    meta.add_passthru(receiver.url)
    subscribe(phone_number.org, receiver, events=["message.read"])
    by_api, by_admin, by_batch = (make_message(phone_number, contact=f"62812000{n}") for n in range(3))

    api.post(f"/v1/{phone_number.phone_number_id}/messages",
             {"messaging_product": "whatsapp", "status": "read", "message_id": by_api.wamid}, format="json")  # fmt: skip
    agent = logged_in(make_member(phone_number.org, Role.AGENT))
    agent.post(reverse("admin:inbox_message_changelist"), {"action": "mark_read", "_selected_action": [by_admin.pk]})
    call_command("batch_read", "--org", phone_number.org.slug, "--concurrency", "1", stdout=io.StringIO(),
                 stderr=io.StringIO())  # fmt: skip
    run_worker_until(lambda: len(receiver.received) >= 3)

    events = [json.loads(body) for _, _, body in receiver.received]
    assert {e["type"] for e in events} == {"message.read"}
    assert {e["data"]["read_via"]: e["data"]["message"]["message_id"] for e in events} == {
        "api": by_api.wamid,
        "admin": by_admin.wamid,
        "batch": by_batch.wamid,
    }
    secret = WebhookSubscription.objects.get().secret
    assert all(h["X-Kirim-Source"] == "kirim" for _, h, _ in receiver.received)
    assert all(h["X-Hub-Signature-256"] == payloads.sign(body, secret) for _, h, body in receiver.received)
    assert Message.objects.filter(status="read").count() == 3


def test_a_receiver_answering_500_twice_gets_the_event_on_attempt_3(phone_number, receiver):
    subscribe(phone_number.org, receiver)
    receiver.answers = [500, 500]

    meta_webhook(inbound(phone_number, "wamid.E2E500"))
    run_worker_until(lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).exists())

    attempts = [h["X-Kirim-Attempt"] for _, h, _ in receiver.received]
    assert attempts == ["1", "2", "3"]
    assert len({h["webhook-id"] for _, h, _ in receiver.received}) == 1


def test_a_receiver_that_is_down_for_a_while_gets_the_event_when_it_returns(phone_number, receiver, settings):
    subscribe(phone_number.org, receiver)
    down_url = receiver.url
    receiver.shutdown()  # nothing listens: connection refused
    receiver.server_close()

    meta_webhook(inbound(phone_number, "wamid.E2EDOWN"))
    run_worker_until(lambda: Delivery.objects.get().attempts >= 2)
    back = serve_in_thread(quiet=True)
    WebhookSubscription.objects.update(url=back.url)  # the same receiver, back up (on a new port)
    run_worker_until(lambda: back.received)

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts >= 3
    assert "ConnectionError" in delivery.attempt_log.first().error
    assert down_url != back.url
    back.shutdown()


@postgres_only
def test_one_slow_subscriber_does_not_hold_up_another_orgs_events(phone_number, foreign_number, receiver, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 1  # here too: tasks are handed out where events commit
    slow = serve_in_thread(quiet=True)
    slow.answers = ["hold"] * 20
    subscribe(phone_number.org, slow)
    subscribe(foreign_number.org, receiver)
    for n in range(4):
        meta_webhook(inbound(phone_number, f"wamid.SLOW{n}"))
    meta_webhook(inbound(foreign_number, "wamid.FAST"))
    workers = [db_worker(WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION="1") for _ in range(2)]
    try:
        (fast_at, _, _), *_ = receiver.wait_for(1, timeout=20)
        (slow_at, _, _), *_ = slow.wait_for(1, timeout=0)
    finally:
        slow.release.set()
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=10)
    # Two workers, the slow subscriber capped at one attempt in flight: the other org's event goes
    # through the free worker at once instead of queueing behind four 2-second timeouts.
    assert fast_at - slow_at < 2.0
    slow.shutdown()


def db_worker(**settings_env):
    """`manage.py db_worker` as its own process, on the test database, with the compressed schedule."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_TIMEOUT": "2", "WEBHOOK_SWEEP_INTERVAL": "1",
        "WEBHOOK_RETRY_SCHEDULE": "0.2,0.4,0.6", "DEBUG": "false", "SECURE_SSL_REDIRECT": "false",
        **settings_env,
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@postgres_only
def test_kill_9_of_a_worker_mid_delivery_and_the_event_still_arrives(phone_number, receiver):
    subscribe(phone_number.org, receiver)
    receiver.answers = ["hold"]  # the first attempt hangs until its worker is killed

    meta_webhook(inbound(phone_number, "wamid.KILL9"))
    first = db_worker()
    try:
        assert len(receiver.wait_for(1, timeout=30)) == 1
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    second = db_worker()
    try:
        arrived = receiver.wait_for(2, timeout=40)
    finally:
        second.terminate()
        second.wait(timeout=10)

    assert len(arrived) == 2
    (_, killed, _), (_, retried, body) = arrived
    assert retried["webhook-id"] == killed["webhook-id"]
    assert (killed["X-Kirim-Attempt"], retried["X-Kirim-Attempt"]) == ("1", "2")
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == "wamid.KILL9"
    assert kirim_signature_ok(WebhookSubscription.objects.get().secret, retried["X-Kirim-Signature"], body)
    killed_task = DBTaskResult.objects.filter(task_path=deliver.module_path).order_by("started_at").first()
    assert killed_task.status == TaskResultStatus.FAILED  # marked so by the sweeper, not left RUNNING


@contextlib.contextmanager
def database_away():
    """As during a restart: every session of the test database but this one ends, and new ones are
    refused until the block ends (said from the maintenance database: a database cannot refuse
    connections from its own session)."""
    db = connection.settings_dict
    name = connection.ops.quote_name(db["NAME"])
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
                         dbname="postgres", autocommit=True) as maintenance:  # fmt: skip
        maintenance.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        try:
            yield
        finally:
            maintenance.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


@postgres_only
def test_a_worker_goes_on_through_a_database_outage_and_the_event_still_arrives(phone_number, receiver):
    subscribe(phone_number.org, receiver)
    receiver.answers = ["hold"]  # the first attempt is under way when the database goes
    meta_webhook(inbound(phone_number, "wamid.DBAWAY"))
    worker = db_worker(DB_POOL_SIZE="0")  # no pool to wait in: the outage reaches the worker at once
    try:
        assert len(receiver.wait_for(1, timeout=30)) == 1
        with database_away():
            time.sleep(3)  # the attempt times out (2 s) and finds no database to settle in, nor to fail in
        time.sleep(2)
        assert worker.poll() is None, "the worker died with the database"
        arrived = receiver.wait_for(2, timeout=40)
    finally:
        receiver.release.set()
        worker.terminate()
        worker.wait(timeout=10)

    assert len(arrived) == 2
    (_, cut_off, _), (_, retried, _) = arrived
    assert retried["webhook-id"] == cut_off["webhook-id"] and retried["X-Kirim-Attempt"] == "2"
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, task_path=deliver.module_path)


@postgres_only
def test_a_worker_told_to_stop_mid_attempt_stops_when_the_database_goes_instead_of_starting_again(
    phone_number, receiver
):
    subscribe(phone_number.org, receiver)
    receiver.answers = ["hold"]
    meta_webhook(inbound(phone_number, "wamid.STOPPING"))
    worker = db_worker(DB_POOL_SIZE="0")
    try:
        assert len(receiver.wait_for(1, timeout=30)) == 1
        worker.terminate()  # SIGTERM mid-attempt: the worker finishes it, then stops
        with database_away():
            # The attempt times out (2 s) and finds no database to settle in: the worker stops anyway.
            try:
                stopped = worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                stopped = None
    finally:
        receiver.release.set()
        worker.kill()
        worker.wait(timeout=10)

    assert stopped is not None, "the worker started again instead of stopping"
