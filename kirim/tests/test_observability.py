"""Seeing inside Kirim as production runs it: gunicorn with two workers and a task worker sharing one
metrics directory, on PostgreSQL; the Meta stand-in and a subscriber's receiver in this process.
After a known mix of work, the scraped counters are exactly that mix, whichever process did each
part; Debian's promtool accepts the scrape, and Debian's Prometheus server reads the same counts."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, postgres_only, wait_for
from dev.dburl import database_url
from fakemeta import payloads
from inbox.tests.test_chaos import PG_BIN, Cluster
from outbox.models import Delivery, DeliveryStatus, WebhookSubscription, WorkerHeartbeat
from outbox.tests.test_e2e import CUSTOMER, receiver  # noqa: F401 (a fixture)

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

TOKEN = "scrape-token-for-tests"
DELIVERY_SETTINGS = {
    "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_TIMEOUT": "2", "WEBHOOK_SWEEP_INTERVAL": "0.2",
    "WEBHOOK_RETRY_SCHEDULE": "0.2,0.4,0.6", "WORKER_HEARTBEAT_INTERVAL": "0.5",
}  # fmt: skip


def needs(tool):
    """Debian's Prometheus tools (.ci/run installs them); skipped elsewhere, failed in CI."""
    path = shutil.which(tool)
    if path is None:
        reason = f"needs {tool} (apt-get install prometheus)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    return path


@pytest.fixture
def metrics_dir(tmp_path):
    path = tmp_path / "metrics"
    path.mkdir()
    return path


@pytest.fixture
def task_worker(metrics_dir):
    """`manage.py db_worker` on the test database, its counts in the metrics directory."""
    processes = []

    def start(log=None, **settings_env):
        env = {
            **os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **DELIVERY_SETTINGS, **settings_env,
        }  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload"],
            cwd=settings.BASE_DIR, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def scrape(url, token=TOKEN):
    response = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def samples(text):
    """{(name, frozenset(labels)): value} of every sample in a scrape."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


COUNTERS = {
    "kirim_read_receipts_total", "kirim_meta_requests_total", "kirim_meta_webhooks_total",
    "kirim_meta_webhook_items_total", "kirim_event_deliveries_total",
}  # fmt: skip


def counted(text):
    return {key: v for key, v in samples(text).items() if key[0] in COUNTERS}


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0)


def signed_webhook(url, payload):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, settings.META_APP_SECRET)}
    return requests.post(f"{url}/webhooks/whatsapp", data=body, headers=headers, timeout=10)


def inbound_webhook(phone_number, wamids):
    return payloads.webhook(
        phone_number.phone_number_id,
        messages=[payloads.text_message(wamid, CUSTOMER, "Halo") for wamid in wamids],
        contacts=[payloads.contact(CUSTOMER, "Dewi")],
    )


TOO_LONG_WAMID = "wamid." + "x" * 300  # longer than the column: the item fails, the rest is stored


def test_the_scraped_counters_are_exactly_the_work_done_whichever_process_did_it(
    start_gunicorn,
    stand_in,
    task_worker,
    metrics_dir,
    receiver,  # noqa: F811
    api_key_secret,
    phone_number,
    make_message,
):
    WebhookSubscription.objects.create(org=phone_number.org, url=receiver.url, events=["message.received"])
    receiver.answers = [500, 500]  # F = 2 attempts fail, then every delivery succeeds
    url = start_gunicorn(workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=TOKEN, **DELIVERY_SETTINGS)
    task_worker()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {api_key_secret}"
    messages_url = f"{url}/v1/{phone_number.phone_number_id}/messages"

    # N = 3 read receipts (another contact each: one conversation each), and one retry of the first.
    unread = [make_message(phone_number, contact=f"62811000{n}") for n in range(3)]
    for message in [*unread, unread[0]]:
        receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
        assert api.post(messages_url, json=receipt, timeout=10).status_code == 200

    # M = 4 sends, of which Meta refuses 2 (code 131026, not retried).
    send = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "Halo"}}
    assert [api.post(messages_url, json=send, timeout=10).status_code for _ in range(2)] == [200, 200]
    refusal = {"mode": "error", "status": 400, "times": 2,
               "error": {"message": "(#131026) Message undeliverable", "code": 131026}}  # fmt: skip
    requests.post(f"{stand_in.url}/_stand_in/faults", json=refusal, timeout=5)
    assert [api.post(messages_url, json=send, timeout=10).status_code for _ in range(2)] == [502, 502]

    # K = 3 webhooks of 6 items, J = 2 of them failing; each stored message is an event: D = 4 deliveries.
    batches = [["wamid.A1", "wamid.A2"], ["wamid.B1", TOO_LONG_WAMID], [TOO_LONG_WAMID + "2", "wamid.C1"]]
    assert [signed_webhook(url, inbound_webhook(phone_number, wamids)).status_code for wamids in batches] == [200] * 3
    assert wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3, seconds=30)

    # A refused scrape, and one without the token.
    assert requests.get(f"{url}/metrics", timeout=10).status_code == 401
    assert requests.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401

    texts = [scrape(url) for _ in range(6)]  # answered by either worker: the same counts
    found = samples(texts[-1])
    assert value(found, "kirim_read_receipts_total", outcome="claimed") == 3
    assert value(found, "kirim_read_receipts_total", outcome="already_read") == 1
    assert value(found, "kirim_meta_requests_total", operation="mark_read", outcome="ok") == 3
    assert value(found, "kirim_meta_requests_total", operation="send_message", outcome="ok") == 2
    assert value(found, "kirim_meta_requests_total", operation="send_message", outcome="131026") == 2
    assert value(found, "kirim_meta_webhooks_total", outcome="applied") == 1
    assert value(found, "kirim_meta_webhooks_total", outcome="partial") == 2
    assert value(found, "kirim_meta_webhook_items_total", outcome="stored") == 4
    assert value(found, "kirim_meta_webhook_items_total", outcome="failed") == 2
    # Three events delivered (the 2 failed items made no event), after 2 failed attempts.
    assert value(found, "kirim_event_deliveries_total", event_type="message.received", outcome="delivered") == 3
    assert value(found, "kirim_event_deliveries_total", event_type="message.received", outcome="retry") == 2
    assert value(found, "kirim_event_delivery_lag_seconds_count", event_type="message.received") == 3
    route = "v1/(?P<phone_number_id>[0-9]{6,20})/messages$"
    assert value(found, "kirim_http_requests_total", route=route, method="POST", status="200") == 4 + 2
    assert value(found, "kirim_http_requests_total", route=route, method="POST", status="502") == 2
    assert value(found, "kirim_http_requests_total", route="webhooks/whatsapp", method="POST", status="200") == 3
    assert value(found, "kirim_http_request_duration_seconds_count", route="webhooks/whatsapp", method="POST") == 3
    assert value(found, "kirim_events_out_pending") == 0
    assert value(found, "kirim_workers", state="alive") == 1
    assert value(found, "kirim_database_up") == 1
    assert value(found, "kirim_db_pool_connections_max") >= 1
    for text in texts:  # every scrape, by either worker, counts the same
        assert counted(text) == counted(texts[-1])
    # The counts came from several processes: the web workers' and the task worker's files.
    writers = {match.group(1) for path in metrics_dir.iterdir() if (match := re.search(r"_(\d+)\.db$", path.name))}
    assert len(writers) >= 2

    promtool = [needs("promtool"), "check", "metrics"]
    checked = subprocess.run(promtool, input=texts[-1], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_running_prometheus_scrapes_kirim_and_promql_returns_the_count_made(
    start_gunicorn, metrics_dir, api_key_secret, tmp_path
):
    prometheus = needs("prometheus")
    url = start_gunicorn(workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=TOKEN)
    for _ in range(7):
        assert requests.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {api_key_secret}"}, timeout=10).ok
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: kirim\n"
        f"    authorization: {{credentials: {TOKEN}}}\n"
        f"    static_configs: [{{targets: ['{url.removeprefix('http://')}']}}]\n"
    )
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    query = 'sum(kirim_http_requests_total{route="v1/me",method="GET",status="200"})'

    def answered():
        try:
            found = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        result = found.get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    try:
        assert wait_for(lambda: answered() is not None, seconds=60, every=0.5)
        assert answered() == 7
        targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        assert [target["health"] for target in targets] == ["up"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_readiness_shows_a_stopped_worker_and_its_alert_fires_and_liveness_needs_no_worker(
    start_gunicorn, task_worker, metrics_dir, tmp_path
):
    url = start_gunicorn(workers=1, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), **DELIVERY_SETTINGS)
    worker = task_worker()
    assert wait_for(lambda: WorkerHeartbeat.objects.exists(), seconds=30)
    ready = requests.get(f"{url}/v1/health/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["data"]["details"]["workers"]["alive"] == 1

    worker.kill()  # killed, not stopped in good order: its row stays and goes silent
    worker.wait()

    def workers():
        return requests.get(f"{url}/v1/health/ready", timeout=10).json()["data"]["details"]["workers"]

    assert wait_for(lambda: (workers()["alive"], workers()["silent"]) == (0, 1), seconds=10)
    ready = requests.get(f"{url}/v1/health/ready", timeout=10)
    assert ready.status_code == 200  # the web host still serves: the alert is the workers' (deploy/alerts)
    found = samples(scrape_without_token(url))
    assert value(found, "kirim_workers", state="alive") == 0
    assert value(found, "kirim_workers", state="silent") == 1
    assert requests.get(f"{url}/v1/health/live", timeout=10).json()["data"] == {"status": "alive"}
    assert_no_worker_alert_fires_on(found, tmp_path)


def assert_no_worker_alert_fires_on(found, directory):
    """The shipped rule, fed the scraped values for ten minutes: KirimNoWorkerHeartbeat fires."""
    rules = settings.BASE_DIR / "monitoring" / "kirim-alerts.yml"
    alert = next(rule for group in yaml.safe_load(rules.read_text())["groups"] for rule in group["rules"]
                 if rule["alert"] == "KirimNoWorkerHeartbeat")  # fmt: skip
    series = [
        {"series": f'kirim_workers{{state="{state}"}}', "values": f"{value(found, 'kirim_workers', state=state):g}x10"}
        for state in ("alive", "silent")
    ]
    case = {"eval_time": "10m", "alertname": alert["alert"],
            "exp_alerts": [{"exp_labels": alert["labels"], "exp_annotations": alert["annotations"]}]}  # fmt: skip
    scenario = {"rule_files": [str(rules)], "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [case]}]}  # fmt: skip
    (directory / "scraped.test.yml").write_text(yaml.safe_dump(scenario))
    tested = subprocess.run([needs("promtool"), "test", "rules", "scraped.test.yml"], cwd=directory,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def scrape_without_token(url):
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_a_worker_stopped_in_good_order_removes_its_heartbeat(task_worker):
    worker = task_worker()
    assert wait_for(lambda: WorkerHeartbeat.objects.exists(), seconds=30)
    (beat,) = WorkerHeartbeat.objects.all()
    assert beat.kind == "db" and beat.name.endswith(f":{worker.pid}")
    worker.terminate()
    worker.wait(timeout=30)
    assert not WorkerHeartbeat.objects.exists()


@pytest.fixture
def own_cluster():
    """A PostgreSQL cluster of this test's own (the chaos test's), which it may stop."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"needs PostgreSQL's server binaries in {PG_BIN}")
    directory = Path(tempfile.mkdtemp(prefix="kirim-ready-"))
    server = Cluster(directory)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def test_readiness_fails_without_the_database_or_its_migrations_and_liveness_stays_200(own_cluster, start_gunicorn):
    url = start_gunicorn(workers=2, DATABASE_URL=own_cluster.url, DB_POOL_SIZE="0", health="/v1/health/live")

    def ready():
        response = requests.get(f"{url}/v1/health/ready", timeout=10)
        return response.status_code, response.json()["data"]

    status, data = ready()  # a fresh database: nothing migrated yet
    assert (status, data["status"], data["checks"]["database"]) == (503, "not_ready", "ok")
    assert data["checks"]["migrations"].startswith("pending")
    migrate = [sys.executable, "manage.py", "migrate", "--noinput"]
    env = {**os.environ, "DATABASE_URL": own_cluster.url}
    subprocess.run(migrate, cwd=settings.BASE_DIR, env=env, check=True, capture_output=True, timeout=300)
    assert wait_for(lambda: ready()[0] == 200)  # each worker looks again until it sees them applied
    assert ready()[1]["checks"] == {"database": "ok", "migrations": "ok"}

    own_cluster.stop()
    status, data = ready()
    assert status == 503
    assert data["status"] == "not_ready" and data["checks"]["database"].startswith("unreachable")
    assert data["details"] == {}
    live = requests.get(f"{url}/v1/health/live", timeout=10)
    assert (live.status_code, live.json()["data"]) == (200, {"status": "alive"})

    options = f"-p {own_cluster.port} -c listen_addresses=127.0.0.1 -k {own_cluster.directory} -c fsync=off"
    own_cluster.pg_ctl("-o", options, "-l", str(own_cluster.directory / "postgres.log"), "start")
    assert wait_for(lambda: ready()[0] == 200, seconds=30)  # back without a restart of Kirim


def test_every_line_gunicorn_kirim_and_the_task_worker_log_is_one_json_object(
    start_gunicorn,
    task_worker,
    tmp_path,
    phone_number,
    receiver,  # noqa: F811
):
    WebhookSubscription.objects.create(org=phone_number.org, url=receiver.url, events=["message.received"])
    server_log, worker_log = (tmp_path / "gunicorn.log").open("w+"), (tmp_path / "worker.log").open("w+")
    url = start_gunicorn(workers=2, log=server_log, LOG_LEVEL="INFO", **DELIVERY_SETTINGS)
    task_worker(log=worker_log, LOG_LEVEL="INFO")
    assert requests.get(f"{url}/v1/health", headers={"Host": "evil.example"}, timeout=10).status_code == 400
    webhook = signed_webhook(url, inbound_webhook(phone_number, ["wamid.LOGGED1"]))
    assert webhook.status_code == 200
    assert receiver.wait_for(1, timeout=30)
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as client:  # gunicorn refuses it
        client.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        client.recv(4096)

    def lines(log):
        log.flush()
        return [json.loads(line) for line in Path(log.name).read_text().splitlines() if line.strip()]

    assert wait_for(lambda: any("refused" in line.get("message", "") for line in lines(server_log)))
    assert wait_for(lambda: any(line["logger"] == "kirim.outbox" for line in lines(worker_log)))
    served, worked = lines(server_log), lines(worker_log)  # json.loads of every line: each one is JSON
    loggers = {line["logger"] for line in served}
    assert {"gunicorn.error", "kirim.requests", "django.security.DisallowedHost"} <= loggers
    (refused_host,) = [line for line in served if line["logger"] == "django.security.DisallowedHost"]
    assert "evil.example" in refused_host["message"] and refused_host["request_id"].startswith("req_")
    (delivery,) = [
        line for line in served if line["logger"] == "kirim.requests" and line["route"] == "webhooks/whatsapp"
    ]
    assert delivery["request_id"] == webhook.headers["X-Request-Id"]
    assert all({"time", "level", "logger"} <= set(line) for line in served + worked)
    assert any("delivery" in line["message"] for line in worked if line["logger"] == "kirim.outbox")
