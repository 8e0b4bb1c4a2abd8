"""What a backup gives away: the `pg_dump` of a running Kirim holds no Meta token and no subscription
secret, though Kirim itself reads them to call Meta and sign deliveries."""

import io
import subprocess

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command

from conftest import postgres_only
from dev.dburl import database_url
from inbox.models import ApiKey, Org, PhoneNumber
from outbox.models import WebhookSubscription

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

META_TOKEN = "EAAGm0PX4ZCpsBAsecret-token-of-the-business"
KEY = Fernet.generate_key().decode()


def pg_dump():
    result = subprocess.run(
        ["pg_dump", "--data-only", database_url(settings.DATABASES["default"])],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return result.stdout


def test_the_dump_of_a_running_kirim_holds_no_token_or_secret(start_gunicorn, stand_in, settings, monkeypatch):
    settings.ENCRYPTION_KEYS = [KEY]
    settings.META_GRAPH_URL = f"{stand_in.url}/v23.0"
    url = start_gunicorn(workers=1, ENCRYPTION_KEYS=KEY, WEBHOOK_ALLOW_PRIVATE_URLS="true")
    org = Org.objects.create(name="Toko Kopi", slug="toko-kopi")
    monkeypatch.setenv("META_ACCESS_TOKEN", META_TOKEN)
    call_command("add_phone_number", org="toko-kopi", phone_number_id="106540352242922", stdout=io.StringIO())
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ApiKey.issue(org=org)[1]}"
    created = session.post(
        f"{url}/v1/webhook_subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "events": ["message.read"]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    first_secret = created.json()["data"]["secret"]
    rotated = session.post(f"{url}/v1/webhook_subscriptions/{created.json()['data']['id']}/rotate_secret", timeout=10)
    assert rotated.status_code == 200, rotated.text
    second_secret = rotated.json()["data"]["secret"]
    # The running Kirim reads the token back to call Meta.
    sent = session.post(
        f"{url}/v1/106540352242922/messages",
        json={"messaging_product": "whatsapp", "to": "6281234567890", "type": "text", "text": {"body": "Halo"}},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    assert requests.get(f"{stand_in.url}/_stand_in/requests", timeout=5).json()["requests"][-1]["has_bearer_token"]
    assert PhoneNumber.objects.get().access_token == META_TOKEN
    subscription = WebhookSubscription.objects.get()
    assert (subscription.secret, subscription.previous_secret) == (second_secret, first_secret)

    dump = pg_dump()
    assert "toko-kopi" in dump  # the dump is the database's
    for secret in (META_TOKEN, first_secret, second_secret):
        assert secret not in dump
        assert secret.removeprefix("whsec_") not in dump
