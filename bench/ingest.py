"""Webhook ingestion against its floor: signed single-message webhooks (Meta's common case) driven at
Kirim and, in the same run, at a minimal Django view that verifies the signature, parses the body and
inserts the message with one statement (bench/minimal_webhook.py). Both under gunicorn with 2 workers x
4 threads, on the same PostgreSQL; load from a separate process (bench/loadgen.py) at 1 and 8
connections, the two servers interleaved in rounds so that a noisy moment hits both. Prints p50 and
throughput of each, and Kirim's ratio to the floor. Loopback only, bounded.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/ingest.py
"""

import argparse
import os
import statistics
import sys
import time

from common import free_port, fresh_org, setup_django
from serving import in_turns, load, start, wait_until_up

KIRIM_PORT, FLOOR_PORT = free_port(), free_port()
PHONE_NUMBER_ID = "940000000001"


def webhooks(prefix, count, app_secret):
    from fakemeta import payloads

    plan = []
    for n in range(count):
        message = payloads.text_message(f"wamid.{prefix}{n}", f"6282{n % 500:08d}", f"hello {n}")
        raw = payloads.encode(
            payloads.webhook(PHONE_NUMBER_ID, messages=[message], contacts=[payloads.contact(message["from"], "Ana")])
        )
        plan.append({"method": "POST", "path": "/webhooks/whatsapp", "body": raw.decode(),
                     "headers": {"X-Hub-Signature-256": payloads.sign(raw, app_secret)}})  # fmt: skip
    return plan


def floor_table():
    """The minimal view's one table (its TABLE), empty."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_minimal_message (id bigserial PRIMARY KEY, wamid varchar(255) UNIQUE "
            "NOT NULL, phone_number_id varchar(20) NOT NULL, sender varchar(64) NOT NULL, body jsonb NOT NULL)"
        )
        cursor.execute("TRUNCATE bench_minimal_message")


def measure(port, plan, concurrency):
    run = load(f"http://127.0.0.1:{port}", plan, concurrency=concurrency, deadline_s=300)
    statuses = {status for status, _ in run["results"]}
    if statuses != {200}:
        raise SystemExit(f"port {port}: answers {statuses}, not all 200")
    latencies = sorted(ms for _, ms in run["results"])
    return statistics.median(latencies), len(latencies) / run["wall_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="webhooks per server, connection count and round")
    parser.add_argument("--rounds", type=int, default=4, help="even, so that each server goes first as often")
    parser.add_argument("--before", metavar="CHECKOUT", help="another checkout of Kirim (same schema), served beside "
                        "this one as a third server in every round's turns; prints Kirim's ratio to it")  # fmt: skip
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.db import connection

    from dev.dburl import database_url

    fresh_org("bench-ingest", [PHONE_NUMBER_ID])
    url = database_url(connection.settings_dict)
    env = {
        "DATABASE_URL": url,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    ports = {"floor": FLOOR_PORT, "kirim": KIRIM_PORT}
    processes = [
        start(
            [*gunicorn, "--pythonpath", "bench", "minimal_webhook:application"],
            {**env, "BIND": f"127.0.0.1:{FLOOR_PORT}"},
        ),
        start([*gunicorn, "kirim.wsgi"], {**env, "BIND": f"127.0.0.1:{KIRIM_PORT}"}),
    ]
    if args.before:
        ports["before"] = free_port()
        processes.append(
            start([*gunicorn, "kirim.wsgi"], {**env, "BIND": f"127.0.0.1:{ports['before']}"}, cwd=args.before)
        )
    try:
        for name, port in ports.items():
            wait_until_up(f"http://127.0.0.1:{port}/" + ("" if name == "floor" else "v1/health"))
        floor_table()
        print(f"gunicorn 2 workers x 4 threads each; {os.cpu_count()} cores; {args.requests} webhooks a run")
        print("connections  server  p50 ms  webhooks/s   (median of rounds)")
        for concurrency in (1, 8):
            results = {name: [] for name in ports}
            for round_ in range(args.rounds):
                # The order turns in every other round: the second of a pair runs on the first's writes
                # (WAL, autovacuum, the checkpointer), and neither should always inherit them.
                for name, port in in_turns(ports, round_):
                    tag = f"{name}{concurrency}r{round_}t{int(time.time())}x"
                    results[name].append(measure(port, webhooks(tag, args.requests, settings.META_APP_SECRET),
                                                 concurrency))  # fmt: skip
            summary = {
                name: [statistics.median(values) for values in zip(*runs, strict=True)]
                for name, runs in results.items()
            }
            for name, (p50, rate) in summary.items():
                print(f"{concurrency:>11}  {name:>6}  {p50:6.2f}  {rate:10.0f}")
            for name, baseline in (("kirim", "floor"), ("before", "floor"), ("kirim", "before")):
                if baseline in summary and name in summary:
                    (p50, rate), (baseline_p50, baseline_rate) = summary[name], summary[baseline]
                    print(f"{concurrency:>11}  ratio   {p50 / baseline_p50:6.2f}x {baseline_rate / rate:9.2f}x  "
                          f"({name}'s p50 / {baseline}'s; {baseline}'s throughput / {name}'s)")  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
