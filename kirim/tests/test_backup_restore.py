"""A backup as docs/operations/backups.md takes it (pg_dump, custom format) restored into a fresh
database: Kirim served from it answers the same messages, subscriptions and deliveries, has the same
conversations, and its worker delivers the deliveries that were pending at the dump."""

import json
import os
import subprocess
import sys

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

from conftest import postgres_only
from dev.dburl import database_url
from inbox.models import Conversation
from outbox.models import Delivery, DeliveryStatus
from outbox.tests.test_e2e import inbound, meta_webhook, receiver, subscribe  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]


@pytest.fixture
def restored_database():
    """A database to restore into, dropped at the end."""
    url = database_url(settings.DATABASES["default"])
    name = f"{connection.settings_dict['NAME']}_restored"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def conversations(url):
    with psycopg.connect(url) as db:
        return db.execute("SELECT id, contact_wa_id, last_message_at FROM inbox_conversation ORDER BY id").fetchall()


def test_a_restored_dump_serves_the_same_data_and_delivers_what_was_pending(
    phone_number,
    api,
    api_key_secret,
    receiver,  # noqa: F811
    restored_database,
    start_gunicorn,
    tmp_path,
):
    subscribe(phone_number.org, receiver)
    for wamid in ("wamid.BACKUP1", "wamid.BACKUP2"):
        assert meta_webhook(inbound(phone_number, wamid)).status_code == 200
    pending = set(Delivery.objects.filter(status=DeliveryStatus.PENDING).values_list("external_id", flat=True))
    assert len(pending) == 2 and Conversation.objects.count() == 1  # no worker ran: both events still owed
    paths = [f"/v1/{phone_number.phone_number_id}/messages", "/v1/webhook_subscriptions", "/v1/webhook_deliveries"]
    before = {path: api.get(path).json()["data"] for path in paths}

    dump = tmp_path / "kirim.dump"
    original = database_url(settings.DATABASES["default"])
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", original], check=True)
    subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored_database}", dump], check=True)

    url = start_gunicorn(workers=1, DATABASE_URL=restored_database, WEBHOOK_ALLOW_PRIVATE_URLS="true")
    key = {"Authorization": f"Bearer {api_key_secret}"}
    for path in paths:
        answer = requests.get(url + path, headers=key, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == before[path], path
    assert conversations(restored_database) == conversations(original)

    env = {
        **os.environ,
        "DATABASE_URL": restored_database,
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen([sys.executable, "manage.py", "db_worker", "--interval", "0.1"], cwd=settings.BASE_DIR,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        delivered = receiver.wait_for(2, timeout=30)
    finally:
        worker.terminate()
        worker.wait(30)
    assert {headers["webhook-id"] for _, headers, _ in delivered} == pending
    messages = {json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for _, _, body in delivered}
    assert messages == {"wamid.BACKUP1", "wamid.BACKUP2"}
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 2  # the original was not touched
