"""An upgrade while serving, as docs/operations/upgrades.md tells it: the previous release serves a
steady load through nginx on two hosts while this release's migrations run, then the hosts switch to
this release one by one (gunicorn and task worker stopped with SIGTERM, this release started in their
place). No request fails, every acknowledged webhook and every accepted send is stored, and every event
owed to the subscriber arrives."""

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from django.conf import settings

from conftest import postgres_only
from dev.dburl import database_url
from fakemeta import payloads
from kirim.tests.topology import Topology
from outbox.tests.test_e2e import receiver  # noqa: F401 (a fixture)

# The previous release: the last commit before 1.0.0 (CHANGELOG.md), the one before issue 26's first change.
PREVIOUS_RELEASE = "95bab99"
PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = "6281234567890"
WORKER = ["manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay"]
ANSWERS_PER_PHASE = 30

pytestmark = [
    postgres_only,
    pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx (Debian: nginx-light)"),
]


@pytest.fixture
def previous_release(tmp_path):
    """The previous release's files, from this clone's history."""
    archive = subprocess.run(
        ["git", "-C", str(settings.BASE_DIR), "archive", PREVIOUS_RELEASE], capture_output=True, check=False
    )
    if archive.returncode:
        pytest.skip(f"needs the git history holding the previous release, {PREVIOUS_RELEASE}: a clone, not an export")
    root = tmp_path / "previous"
    root.mkdir()
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return root


@pytest.fixture
def upgraded_database():
    """The name of an empty database of its own: the test database already has this release's schema."""
    db = settings.DATABASES["default"]
    upgraded = {**db, "NAME": f"{db['NAME']}_upgrade"}
    server = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"],
    }
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{upgraded["NAME"]}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{upgraded["NAME"]}"')
    yield upgraded["NAME"]
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{upgraded["NAME"]}" WITH (FORCE)')


class Load:
    """Webhooks from Meta, sends and read receipts through the balancer, in a few threads, until
    stopped; every answer kept with the phase it came in."""

    def __init__(self, url, certificate, api_key):
        self.url, self.certificate, self.api_key = url, certificate, api_key
        self.phase = "previous release"
        self.answers = []  # (phase, what, status code or the exception's name)
        self.acknowledged, self.sent = [], []  # inbound wamids answered 200; ids of accepted sends
        self.numbers, self.lock, self.stop = itertools.count(), threading.Lock(), threading.Event()

    def answered(self, phase):
        return sum(1 for answered_in, *_ in self.answers if answered_in == phase)

    def wait_for_answers(self, phase):
        deadline = time.monotonic() + 60
        while self.answered(phase) < ANSWERS_PER_PHASE:
            assert time.monotonic() < deadline, f"too few answers while {phase}"
            time.sleep(0.05)

    def run(self):
        while not self.stop.is_set():
            n = next(self.numbers)
            self.webhook(f"wamid.UPGRADE{n:05d}")
            self.send(n)
            if self.acknowledged:
                self.read(self.acknowledged[-1])

    def record(self, what, call):
        phase = self.phase
        try:
            answer = call()
        except requests.RequestException as error:
            answer = None
            outcome = type(error).__name__
        else:
            outcome = (
                answer.status_code if answer.status_code in (200, 201) else (answer.status_code, answer.text[:300])
            )
        with self.lock:
            self.answers.append((phase, what, outcome))
        return answer

    def webhook(self, wamid):
        body = payloads.encode(
            payloads.webhook(
                PHONE_NUMBER_ID,
                messages=[payloads.text_message(wamid, CUSTOMER, "Halo")],
                contacts=[payloads.contact(CUSTOMER, "Dewi")],
            )
        )
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": payloads.sign(body, settings.META_APP_SECRET),
        }
        answer = self.record("webhook", lambda: requests.post(f"{self.url}/webhooks/whatsapp", data=body, headers=headers, timeout=30, verify=self.certificate))  # fmt: skip
        if answer is not None and answer.status_code == 200:
            with self.lock:
                self.acknowledged.append(wamid)

    def api(self, body, **headers):
        return requests.post(f"{self.url}/v1/{PHONE_NUMBER_ID}/messages", json=body, timeout=30, verify=self.certificate,
                             headers={"Authorization": f"Bearer {self.api_key}", **headers})  # fmt: skip

    def send(self, n):
        body = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": f"Pesan {n}"}}
        answer = self.record("send", lambda: self.api(body, **{"Idempotency-Key": f"upgrade-{n}"}))
        if answer is not None and answer.status_code in (200, 201):
            with self.lock:
                self.sent.append(answer.json()["data"]["id"])

    def read(self, wamid):
        self.record("read", lambda: self.api({"messaging_product": "whatsapp", "status": "read", "message_id": wamid}))


def manage(root, environment, *arguments, stdin=None):
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=root, env=environment, input=stdin,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def test_the_previous_release_serves_while_this_one_migrates_then_hosts_switch_one_by_one(
    start_gunicorn,
    stand_in,
    receiver,  # noqa: F811
    previous_release,
    upgraded_database,
):
    direct = database_url({**settings.DATABASES["default"], "NAME": upgraded_database})  # migrations go straight
    with Topology(start_gunicorn) as net:
        environment = {
            **os.environ,
            # Production's topology: PgBouncer in transaction mode, so no prepared statements.
            "DATABASE_URL": net.pgbouncer(upgraded_database),
            "DB_PREPARED_STATEMENTS": "false",
            "DB_SERVER_SIDE_CURSORS": "false",
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "META_APP_SECRET": settings.META_APP_SECRET,
            "META_WEBHOOK_VERIFY_TOKEN": "upgrade",
            "META_GRAPH_URL": f"{stand_in.url}/v23.0",
            "TASKS_BACKEND": "db",
            "TRUSTED_PROXY_COUNT": "1",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "WEBHOOK_SWEEP_INTERVAL": "0.5",
            "WEBHOOK_RETRY_SCHEDULE": "0.2,0.4,0.6,0.8,1",
            "LOG_LEVEL": "WARNING",
        }
        # The previous release, as it ran: its schema, an org with a number, an API key, two hosts (gunicorn
        # and a task worker each) behind nginx, and a subscription.
        manage(previous_release, {**environment, "DATABASE_URL": direct}, "migrate", "--noinput")
        manage(previous_release, environment, "create_org", "--name", "Upgrade", "--slug", "upgrade")
        manage(previous_release, environment, "add_phone_number", "--org", "upgrade", "--phone-number-id", PHONE_NUMBER_ID,
               "--display-phone-number", "+62 811 0000", "--access-token-stdin", stdin="EAAG-upgrade-token\n")  # fmt: skip
        api_key = manage(previous_release, environment, "create_api_key", "--org", "upgrade").split()[-1]
        hosts = []
        for _ in range(2):
            url = start_gunicorn(workers=2, root=previous_release, **environment)
            hosts.append((url, net.spawn([sys.executable, *WORKER], cwd=previous_release, env=environment)))
        balancer = net.nginx([url for url, _ in hosts])
        subscription = requests.post(f"{balancer}/v1/webhook_subscriptions", json={"url": receiver.url, "events": ["message.received"]},
                                     headers={"Authorization": f"Bearer {api_key}"}, timeout=30, verify=net.certificate)  # fmt: skip
        assert subscription.status_code == 201, subscription.text
        secret = subscription.json()["data"]["secret"]

        load = Load(balancer, net.certificate, api_key)
        with ThreadPoolExecutor(3) as pool:
            runs = [pool.submit(load.run) for _ in range(3)]
            try:
                load.wait_for_answers("previous release")
                load.phase = "migrating"
                manage(settings.BASE_DIR, {**environment, "DATABASE_URL": direct}, "migrate", "--noinput")
                load.wait_for_answers("migrating")
                # docs/operations/upgrades.md: each host out of the balancer, stopped (SIGTERM: what it
                # was doing finishes), this release started in its place and healthy, back in.
                for index, (url, worker) in enumerate(hosts):
                    load.phase = f"host {index} switching"
                    net.drain(down={url})
                    for process in (start_gunicorn.arbiter[url], worker):
                        process.terminate()
                        process.wait(30)
                    start_gunicorn(workers=2, port=int(url.rsplit(":", 1)[1]), **environment)
                    net.spawn([sys.executable, *WORKER], cwd=settings.BASE_DIR, env=environment)
                    net.drain(down=())
                    load.wait_for_answers(f"host {index} switching")
                load.phase = "this release"
                load.wait_for_answers("this release")
            finally:
                load.stop.set()
            for run in runs:
                run.result()

        failed = [answer for answer in load.answers if answer[2] not in (200, 201)]
        assert not failed, failed
        with psycopg.connect(direct) as db:
            rows = db.execute("SELECT wamid, external_id FROM inbox_message").fetchall()
        assert set(load.acknowledged) <= {wamid for wamid, _ in rows}
        assert set(load.sent) <= {external_id for _, external_id in rows}
        # Every event owed arrives: the previous release's worker delivered some, this release's the rest.
        deadline = time.monotonic() + 60
        while len(received_wamids(receiver)) < len(load.acknowledged) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert set(load.acknowledged) <= received_wamids(receiver)
        # Signed with the subscription's secret by both releases' workers: the migrations left the secrets
        # the previous release wrote readable to it (encrypted only by `reencrypt_secrets`, afterwards).
        assert all(
            headers["X-Hub-Signature-256"] == payloads.sign(body, secret) for _, headers, body in receiver.received
        )


def received_wamids(receiver):  # noqa: F811
    return {
        json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for _, _, body in receiver.received
    }
