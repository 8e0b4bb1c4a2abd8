"""Seeing inside Kirim as production runs it: gunicorn with two workers and a task worker sharing one
metrics directory, on PostgreSQL; the Meta stand-in and a subscriber's receiver in this process.
After a known mix of work, the scraped counters are exactly that mix, whichever process did each
part; Debian's promtool accepts the scrape, and Debian's Prometheus server reads the same counts."""

import re
import subprocess

import pytest
import requests

from conftest import free_port, postgres_only, wait_for
from kirim.tests.observing import (
    DELIVERY_SETTINGS,
    TOKEN,
    inbound_webhook,
    needs,
    samples,
    scrape,
    signed_webhook,
    value,
)
from outbox.models import Delivery, DeliveryStatus, WebhookSubscription
from outbox.tests.test_e2e import CUSTOMER, receiver  # noqa: F401 (a fixture)

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


COUNTERS = {
    "kirim_read_receipts_total", "kirim_meta_requests_total", "kirim_meta_webhooks_total",
    "kirim_meta_webhook_items_total", "kirim_event_deliveries_total",
}  # fmt: skip


def counted(text):
    return {key: v for key, v in samples(text).items() if key[0] in COUNTERS}


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
