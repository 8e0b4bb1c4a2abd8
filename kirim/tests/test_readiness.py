"""Readiness and liveness as production runs them (gunicorn and a task worker, on PostgreSQL): a killed
worker shown and its alert firing, one stopped in good order gone, and the database stopped or not
migrated on a cluster of the test's own, with liveness unmoved throughout."""

import os
import subprocess
import sys

import pytest
import requests
import yaml
from django.conf import settings

from conftest import postgres_only, wait_for
from inbox.tests.test_chaos import PG_BIN, running_cluster
from kirim.tests.observing import DELIVERY_SETTINGS, needs, samples, value
from outbox.models import WorkerHeartbeat

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


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
    with running_cluster("kirim-ready-") as server:
        yield server


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
