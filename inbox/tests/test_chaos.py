"""Chaos: PostgreSQL restarted (cleanly, then as after a crash) while gunicorn takes a bounded load of
signed webhooks. Every webhook answered 200 must be stored; every one answered 5xx (or cut off) must be
stored once Meta delivers it again.

It runs against a PostgreSQL cluster of its own (initdb on a free port in a temporary directory), so
restarting it disturbs no other database on the machine. CI runs it (KIRIM_CHAOS=1, see .ci/run);
elsewhere it is skipped unless asked for:

    KIRIM_CHAOS=1 make test PYTEST_ARGS=inbox/tests/test_chaos.py
"""

import contextlib
import http.client
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import free_port
from fakemeta import payloads
from fakemeta.server import make_server

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
WEBHOOKS = int(os.environ.get("CHAOS_WEBHOOKS", "600"))
CONNECTIONS = 8
LOAD_DEADLINE_S = 120
PHONE_NUMBER_ID = "106540352242944"  # one the Meta stand-in has: it confirms the number when connected

pytestmark = [
    pytest.mark.skipif(not os.environ.get("KIRIM_CHAOS"), reason="chaos test: set KIRIM_CHAOS=1 (CI does)"),
    pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason=f"needs PostgreSQL's server binaries in {PG_BIN}"),
]


class Cluster:
    """A throwaway PostgreSQL cluster. initdb refuses root, so as root it runs as `postgres`."""

    def __init__(self, directory):
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/kirim_chaos"
        self.as_user = []
        if os.geteuid() == 0:
            os.chown(directory, pwd.getpwnam("postgres").pw_uid, -1)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, *command):
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=120)

    def pg_ctl(self, *args):
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args)

    def start(self):
        self.run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.directory / "postgres.log"), "start")
        self.run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "kirim_chaos")

    def restart(self, mode):
        self.pg_ctl("-m", mode, "-l", str(self.directory / "postgres.log"), "restart")

    def stop(self):
        self.pg_ctl("-m", "immediate", "stop")


@contextlib.contextmanager
def running_cluster(prefix):
    """A PostgreSQL cluster of the test's own, which it may stop; removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    server = Cluster(directory)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cluster():
    with running_cluster("kirim-chaos-") as server:
        yield server


@pytest.fixture
def meta_stand_in():
    server = make_server(port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v23.0"
    server.shutdown()
    server.server_close()


@pytest.fixture
def kirim(cluster, meta_stand_in):
    """Kirim under gunicorn (2 workers x 4 threads, as in production) on the cluster, with one number."""
    app_secret = secrets.token_urlsafe(24)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "META_APP_SECRET": app_secret,
        "META_WEBHOOK_VERIFY_TOKEN": secrets.token_urlsafe(12),
        "META_ACCESS_TOKEN": "chaos-token",
        "META_GRAPH_URL": meta_stand_in,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "BIND": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, "manage.py"]
    for command in (
        ["migrate", "--noinput"],
        ["create_org", "--name", "Chaos", "--slug", "chaos"],
        ["add_phone_number", "--org", "chaos", "--phone-number-id", PHONE_NUMBER_ID, "--display-phone-number", "+1"],
    ):
        subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    log = open(cluster.directory / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"], cwd=ROOT, env=env, stderr=log
    )
    try:
        wait_until_healthy(port)
        yield port, app_secret
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def wait_until_healthy(port):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if post(port, "GET", "/v1/health", b"", {}) == 200:
            return
        time.sleep(0.2)
    raise AssertionError("gunicorn did not come up")


def post(port, method, path, body, headers):
    """The status of one request on a fresh connection, or 0 when the connection failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def webhook(n, app_secret):
    message = payloads.text_message(f"wamid.CHAOS{n:05d}", f"6281300{n % 40:04d}", f"chaos {n}")
    body = payloads.encode(payloads.webhook(PHONE_NUMBER_ID, messages=[message]))
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, app_secret)}
    return message["id"], body, headers


def stored_wamids(url, wamids):
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as connection:
        rows = connection.execute("SELECT wamid FROM inbox_message WHERE wamid = ANY(%s)", (list(wamids),))
        return {wamid for (wamid,) in rows}


def test_a_postgresql_restart_under_webhook_load_loses_nothing_answered_200(cluster, kirim):
    port, app_secret = kirim
    deliveries = [webhook(n, app_secret) for n in range(WEBHOOKS)]
    answers = {}
    pending = iter(deliveries)
    take = threading.Lock()
    deadline = time.monotonic() + LOAD_DEADLINE_S

    def sender():
        while time.monotonic() < deadline:
            with take:
                delivery = next(pending, None)
            if delivery is None:
                return
            wamid, body, headers = delivery
            answers[wamid] = post(port, "POST", "/webhooks/whatsapp", body, headers)

    threads = [threading.Thread(target=sender) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    restarts = []
    for mode, share in (("fast", 1 / 4), ("immediate", 2 / 3)):  # a clean restart, then a crash's
        while len(answers) < WEBHOOKS * share and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        cluster.restart(mode)
        restarts.append((mode, len(answers)))
    for thread in threads:
        thread.join()

    ok = {wamid for wamid, status in answers.items() if status == 200}
    refused = {wamid for wamid, status in answers.items() if status != 200}
    print(f"chaos: {len(answers)} webhooks, {len(ok)} answered 200, {len(refused)} not; restarts {restarts}")
    assert len(answers) == WEBHOOKS, "the load did not finish within its deadline"
    assert all(status == 200 or status >= 500 or status == 0 for status in answers.values()), set(answers.values())
    assert stored_wamids(cluster.url, ok) == ok, "a webhook answered 200 was lost"

    # Meta delivers again what was not answered 200, until it is.
    retry_deadline = time.monotonic() + 60
    by_wamid = {wamid: (body, headers) for wamid, body, headers in deliveries}
    while refused and time.monotonic() < retry_deadline:
        refused = {w for w in refused if post(port, "POST", "/webhooks/whatsapp", *by_wamid[w]) != 200}
        time.sleep(0.2 if refused else 0)
    assert not refused, f"{len(refused)} webhook(s) still not answered 200"
    assert stored_wamids(cluster.url, by_wamid) == set(by_wamid)
    with psycopg.connect(cluster.url.replace("postgres://", "postgresql://")) as connection:
        empty = connection.execute(
            "SELECT count(*) FROM inbox_conversation c WHERE NOT EXISTS (SELECT 1 FROM inbox_message m"
            " WHERE m.phone_number_id = c.phone_number_id AND m.contact_wa_id = c.contact_wa_id)"
        ).fetchone()[0]
    assert empty == 0
