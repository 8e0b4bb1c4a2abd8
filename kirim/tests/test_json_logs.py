"""Every line gunicorn, Kirim and the task worker log is one JSON object, as production runs them."""

import json
import socket
from pathlib import Path

import pytest
import requests

from conftest import postgres_only, wait_for
from kirim.tests.observing import DELIVERY_SETTINGS, inbound_webhook, signed_webhook
from outbox.models import WebhookSubscription
from outbox.tests.test_e2e import receiver  # noqa: F401 (a fixture)

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


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
