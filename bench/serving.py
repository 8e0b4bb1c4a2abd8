"""Kirim served as production runs it, for the benchmarks that load it over HTTP: gunicorn and the Meta
stand-in on free ports, the load generator's runs and their statistics, the seeded org, and the
requests the scenarios send."""

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter

import requests
from common import ROOT, free_port, fresh_org

STAND_IN_PORT, KIRIM_PORT = free_port(), free_port()
WORKERS = 4
PHONE_NUMBER_ID = "920000000001"


def start(command, env=None, cwd=ROOT):
    return subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def wait_until_up(url):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start_stand_in(fail_rate=0.0):
    process = start([sys.executable, "-m", "fakemeta", "--port", str(STAND_IN_PORT), "--fail-rate", str(fail_rate)])
    wait_until_up(f"http://127.0.0.1:{STAND_IN_PORT}/_stand_in/requests")
    return process


def stand_in_requests():
    return requests.get(f"http://127.0.0.1:{STAND_IN_PORT}/_stand_in/requests", timeout=60).json()["requests"]


def load(base, plan_requests, concurrency=16, deadline_s=120):
    plan = {"base": base, "concurrency": concurrency, "deadline_s": deadline_s, "requests": plan_requests}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "loadgen.py")], input=json.dumps(plan),
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


def stats(run):
    done = [r for r in run["results"] if r is not None]
    latencies = sorted(ms for _, ms in done)
    return {
        "requests": len(done),
        "rps": len(done) / run["wall_s"],
        "p50": statistics.median(latencies),
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "statuses": Counter(status for status, _ in done),
    }


def seed(unread_count, outbound_count):
    """The bench org (its limit out of the way), its number, and an API key."""
    from django.db import connection

    from inbox.models import ApiKey, Conversation, Direction, Message, Status
    from inbox.services.inbound_rows import conversations_touch

    org, (number,) = fresh_org("bench-load", [PHONE_NUMBER_ID], rate_limit_per_minute=10**9)
    _, key = ApiKey.issue(org=org, name="bench")

    def message(n, direction, status):
        return Message(org=org, phone_number=number, wamid=f"wamid.LOAD{direction[0]}{n}", direction=direction,
                       status=status, contact_wa_id=f"62821{n:07d}", type="text", text=f"hello {n}")  # fmt: skip

    rows = [message(n, Direction.INBOUND, Status.RECEIVED) for n in range(unread_count)]
    rows += [message(n, Direction.OUTBOUND, Status.ACCEPTED) for n in range(outbound_count)]
    Message.objects.bulk_create(rows, batch_size=2000)
    conversations_touch(rows)
    # Statistics as autovacuum keeps them in a running system, and no autovacuum of the last run's
    # deleted rows during this one. Without, a number created a moment ago looks empty to the planner,
    # and a receipt's lock of its conversation scanned the whole number (2 ms instead of 0.06).
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {Message._meta.db_table}, {Conversation._meta.db_table}")
    return org, number, key


def receipt(wamid):
    return {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}


def straight_to_stand_in(body):
    """The baseline: the same call made to the stand-in without Kirim in between."""
    return {"method": "POST", "path": f"/v23.0/{PHONE_NUMBER_ID}/messages", "body": body}


def send_body(text):
    return {"messaging_product": "whatsapp", "to": "6282100000001", "type": "text", "text": {"body": text}}


def signed_webhook(payload):
    from django.conf import settings

    from fakemeta import payloads

    raw = payloads.encode(payload).decode()
    return {"method": "POST", "path": "/webhooks/whatsapp", "body": raw,
            "headers": {"X-Hub-Signature-256": payloads.sign(raw.encode(), settings.META_APP_SECRET)}}  # fmt: skip


def statuses_webhook(start, count=100):
    from fakemeta import payloads

    return signed_webhook(
        payloads.webhook(
            PHONE_NUMBER_ID,
            statuses=[
                payloads.status(f"wamid.LOADo{n}", ("sent", "delivered", "read")[n % 3], f"62821{n:07d}")
                for n in range(start, start + count)
            ],
        )
    )


def queries_per_request(key, spec):
    """The same request in-process, counting its SQL (the server runs the same code)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in spec.get("headers", {}).items()}
    body = spec["body"] if isinstance(spec["body"], str) else json.dumps(spec["body"])
    with CaptureQueriesContext(connection) as queries:
        client.post(spec["path"], body, content_type="application/json", **headers)
    return len(queries)


def in_turns(servers, round_):
    """The servers' (name, address) in order, reversed in every other round: none always runs right
    after the same other one, on its writes and in its wake."""
    order = list(servers.items())
    return order if round_ % 2 == 0 else order[::-1]


def gunicorn_env():
    """Kirim as production runs it, on this benchmark's database, with the stand-in as Meta."""
    from django.db import connection

    from dev.dburl import database_url

    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "META_GRAPH_URL": f"http://127.0.0.1:{STAND_IN_PORT}/v23.0",
        "WEB_CONCURRENCY": str(WORKERS),
        "BIND": f"127.0.0.1:{KIRIM_PORT}",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
