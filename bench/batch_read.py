"""batch_read at scale: 100,000 unread messages over 2,000 conversations in PostgreSQL, the Meta
stand-in answering each call after 50 ms. Prints Meta calls (must be 2,000), database statements
per conversation, wall time, and its ratio to the ideal 2000 * 50 ms / concurrency.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/batch_read.py [--concurrency 8]
"""

import argparse
import io
import json
import subprocess
import sys
import threading
import time

import requests
from common import ROOT, fresh_org, setup_django

MESSAGES = 100_000
CONVERSATIONS = 2_000
LATENCY_MS = 50
STAND_IN_PORT = 8091


def fill():
    from django.db import connection

    org, (number,) = fresh_org("bench-batch", ["910000000001"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO inbox_message (external_id, org_id, phone_number_id, wamid, direction, status,
                contact_wa_id, contact_name, type, text, payload, timestamp, created_at, updated_at, read_via)
            SELECT 'msg_' || upper(substr(md5('batch' || g), 1, 26)), %s, %s, 'wamid.BATCH' || g, 'inbound',
                   'received', '62813' || lpad((g %% {CONVERSATIONS})::text, 7, '0'), '', 'text', 'hi', '{{}}'::jsonb,
                   now() - ({MESSAGES} - g) * interval '1 second', now(), now(), ''
            FROM generate_series(1, {MESSAGES}) AS g
            """,
            [org.pk, number.pk],
        )
        cursor.execute("ANALYZE inbox_message")


class StatementCounter:
    """Counts every SQL statement any thread's connection runs."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    def install(self):
        from django.db.backends import utils

        counter, execute, executemany = self, utils.CursorWrapper._execute, utils.CursorWrapper._executemany

        def counted_execute(cursor, *args, **kwargs):
            with counter.lock:
                counter.count += 1
            return execute(cursor, *args, **kwargs)

        def counted_executemany(cursor, *args, **kwargs):
            with counter.lock:
                counter.count += 1
            return executemany(cursor, *args, **kwargs)

        utils.CursorWrapper._execute, utils.CursorWrapper._executemany = counted_execute, counted_executemany


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.core.management import call_command

    print(f"filling {MESSAGES:,} unread messages over {CONVERSATIONS:,} conversations ...", flush=True)
    fill()
    # The stand-in runs in its own process, as Meta would: it must not share this one's GIL.
    stand_in = subprocess.Popen(
        [sys.executable, "-m", "fakemeta", "--port", str(STAND_IN_PORT), "--latency-ms", str(LATENCY_MS)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    stand_in.stdout.readline()  # "listening on ..."
    settings.META_GRAPH_URL = f"http://127.0.0.1:{STAND_IN_PORT}/v23.0"
    counter = StatementCounter()
    counter.install()

    out = io.StringIO()
    began = time.perf_counter()
    call_command("batch_read", "--org", "bench-batch", "--concurrency", str(args.concurrency), "--json", stdout=out)
    wall = time.perf_counter() - began
    result = json.loads(out.getvalue())

    recorded = requests.get(f"http://127.0.0.1:{STAND_IN_PORT}/_stand_in/requests", timeout=30).json()["requests"]
    stand_in.terminate()
    received = len(recorded)
    distinct = len({r["body"]["message_id"] for r in recorded})
    ideal = CONVERSATIONS * LATENCY_MS / 1000 / args.concurrency
    print(f"concurrency                 {args.concurrency}")
    print(f"messages read               {result['messages_read']:,}")
    print(f"conversations               {result['conversations']:,}")
    print(f"Meta calls received         {received:,} ({distinct:,} distinct wamids; must be {CONVERSATIONS:,})")
    print(f"SQL statements              {counter.count:,} ({counter.count / CONVERSATIONS:.2f} per conversation)")
    print(f"wall time                   {wall:.2f} s")
    print(f"ideal {CONVERSATIONS} x {LATENCY_MS} ms / {args.concurrency}    {ideal:.2f} s")
    print(f"ratio wall / ideal          {wall / ideal:.2f}")
    if received != CONVERSATIONS or result["messages_read"] != MESSAGES:
        raise SystemExit("FAIL: not one call per conversation, or not every message read")


if __name__ == "__main__":
    main()
