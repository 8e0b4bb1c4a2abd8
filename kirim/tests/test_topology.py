"""Production's topology on one machine: nginx ending TLS (deploy/nginx/kirim.conf) in front of two
app hosts, each a gunicorn with its RQ worker (the commands compose.yaml and the systemd units run),
PgBouncer in transaction mode in front of PostgreSQL, Redis. Everything below goes through the
balancer. Skips, saying why, where nginx, pgbouncer or redis-server is missing (CI installs them)."""

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.conf import settings

from conftest import fire_at_once, postgres_only
from fakemeta import payloads
from inbox.models import Message
from inbox.tests.test_scheduler import assert_each_job_ran_once_per_period, wait_for_runs
from kirim.tests.topology import Topology, children
from outbox.models import Delivery, DeliveryStatus
from outbox.tests.test_e2e import inbound, receiver, subscribe  # noqa: F401 (a fixture)

MISSING = [tool for tool in ("nginx", "pgbouncer", "redis-server") if not shutil.which(tool)]
pytestmark = [
    pytest.mark.django_db(transaction=True),
    postgres_only,
    pytest.mark.skipif(
        bool(MISSING), reason=f"needs {', '.join(MISSING)} (Debian: nginx-light pgbouncer redis-server)"
    ),
]
REDIS_DB = 14  # the topology's own: its queue is emptied before and after


@pytest.fixture
def topology(start_gunicorn, stand_in, receiver):  # noqa: F811
    queue = redis.Redis(db=REDIS_DB)
    try:
        queue.flushdb()
    except redis.ConnectionError:
        pytest.skip("needs redis-server on 127.0.0.1:6379")
    with Topology(start_gunicorn) as net:
        environment = {
            "DATABASE_URL": net.pgbouncer(),
            "DB_PREPARED_STATEMENTS": "false",
            "DB_SERVER_SIDE_CURSORS": "false",
            "TASKS_BACKEND": "rq",
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "TRUSTED_PROXY_COUNT": "1",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "WEBHOOK_TIMEOUT": "2",
            "WEBHOOK_SWEEP_INTERVAL": "0.5",
            "WEBHOOK_RETRY_SCHEDULE": "0.2,0.4,0.6,0.8,1",
            "META_APP_SECRET": settings.META_APP_SECRET,
            "META_GRAPH_URL": f"{stand_in.url}/v23.0",  # the schedulers' template syncs
            "SCHEDULE_PURGE_EXPIRED": "1",
            "SCHEDULE_SWEEPER": "1",
            "SCHEDULE_SYNC_TEMPLATES": "2",
            "LOG_LEVEL": "WARNING",
        }
        net.host(environment)
        net.host(environment)
        net.url = net.nginx()
        yield net
    queue.flushdb()


def post(topology, path, key, body, **headers):
    headers = {"Authorization": f"Bearer {key}", **headers}
    return requests.post(topology.url + path, json=body, headers=headers, timeout=30, verify=topology.certificate)


def test_thirty_identical_receipts_over_both_hosts_make_one_meta_call(
    topology, stand_in, phone_number, api_key_secret, make_message
):
    message = make_message(phone_number)
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    path = f"/v1/{phone_number.phone_number_id}/messages"

    answers = fire_at_once(30, lambda: post(topology, path, api_key_secret, read))

    assert [answer.status_code for answer in answers] == [200] * 30
    assert len({answer.json()["data"]["id"] for answer in answers}) == 1
    assert len([r for r in stand_in.state.requests if r["body"].get("status") == "read"]) == 1
    assert all(topology.served_by_each()), topology.served_by_each()  # both hosts answered some


def test_one_idempotency_key_sends_once_through_the_balancer(topology, stand_in, phone_number, api_key_secret):
    send = {"messaging_product": "whatsapp", "to": "6281200000009", "type": "text", "text": {"body": "Halo"}}
    path = f"/v1/{phone_number.phone_number_id}/messages"

    answers = fire_at_once(10, lambda: post(topology, path, api_key_secret, send, **{"Idempotency-Key": "once"}))

    assert {answer.status_code for answer in answers} <= {200, 201, 409}, [a.text for a in answers]
    sent = [answer.json()["data"]["id"] for answer in answers if answer.status_code in (200, 201)]
    assert len(set(sent)) == 1
    assert len([r for r in stand_in.state.requests if r["body"].get("type") == "text"]) == 1


def test_the_rate_limit_holds_exactly_across_hosts(topology, org, api_key_secret):
    org.rate_limit_per_minute = 20
    org.save(update_fields=["rate_limit_per_minute"])
    if time.time() % 60 > 50:  # keep the burst inside one minute's window
        time.sleep(61 - time.time() % 60)

    def me(_):
        return requests.get(f"{topology.url}/v1/me", headers={"Authorization": f"Bearer {api_key_secret}"},
                            timeout=10, verify=topology.certificate)  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(answer.status_code for answer in pool.map(me, range(30)))

    assert statuses == [200] * 20 + [429] * 10
    assert all(topology.served_by_each())


def test_a_host_killed_under_webhook_load_loses_no_acknowledged_webhook_and_no_owed_event(
    topology,
    receiver,  # noqa: F811
    phone_number,
):
    subscribe(phone_number.org, receiver, events=("message.received",))
    acknowledged, lock = [], threading.Lock()
    # The victim: the host whose task worker runs RQ's scheduler (its forked child), the worst case: the
    # other worker's scheduler takes RQ's lock over only minutes later, so sweeps queued with a delay
    # wait, and the living host's `scheduler` must restart the sweep chain.
    deadline = time.monotonic() + 30
    while not (victims := [host for host in topology.hosts if children(host.worker.pid)]):
        assert time.monotonic() < deadline, "no task worker started RQ's scheduler"
        time.sleep(0.1)
    (victim,) = victims

    def webhook(n):
        wamid = f"wamid.KILL{n:04d}"
        body = payloads.encode(inbound(phone_number, wamid))
        signature = payloads.sign(body, settings.META_APP_SECRET)
        try:
            answer = requests.post(f"{topology.url}/webhooks/whatsapp", data=body, timeout=30, verify=topology.certificate,
                                   headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})  # fmt: skip
        except requests.RequestException:
            return
        if answer.status_code == 200:
            with lock:
                acknowledged.append(wamid)

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(webhook, n) for n in range(120)]
        while len(acknowledged) < 30:
            time.sleep(0.01)
        victim.crash()
        for future in futures:
            future.result()

    assert len(acknowledged) >= 100, len(acknowledged)  # the balancer sent the rest to the living host
    stored = set(Message.objects.filter(wamid__in=acknowledged).values_list("wamid", flat=True))
    assert stored == set(acknowledged)
    # Every event owed is delivered by the living host's worker, those the killed one held included.
    deadline = time.monotonic() + 60
    while Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    delivered = {json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
                 for _, _, body in receiver.received}  # fmt: skip
    assert set(acknowledged) <= delivered


def test_two_schedulers_run_each_periodic_job_once_per_period(topology):
    """Each host's `scheduler`, through PgBouncer in transaction mode, periods of one and two seconds."""
    logs = [host.scheduler_log for host in topology.hosts]
    wait_for_runs(logs, [host.scheduler for host in topology.hosts])

    assert_each_job_ran_once_per_period(logs, {"purge_expired", "sweeper", "sync_templates"})
