"""Looking at Kirim as production runs it, for the tests of its metrics, readiness and logs: the
scrape read as samples, Debian's Prometheus tools, a signed webhook over HTTP."""

import json
import os
import shutil

import pytest
import requests
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from fakemeta import payloads
from outbox.tests.test_e2e import CUSTOMER

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
