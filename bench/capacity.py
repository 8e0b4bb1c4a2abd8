"""Capacity at Meta's real latency: 64 clients of first reads, then of sends, against gunicorn as
configured for production, with the stand-in answering in 0 ms and then like Meta (200 ms median, a
lognormal tail to 800 ms at p99), in the same run. While each scenario runs, a prober asks /v1/health
every 25 ms and a sampler counts this database's client connections in pg_stat_activity (all, and
`idle in transaction` ones) every 20 ms. Loopback only, bounded.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/capacity.py

Goals (issue 14): at 200 ms, throughput at least 80% of the 0 ms run; at most 10 PostgreSQL sessions;
/v1/health p99 under 50 ms throughout the 200 ms runs. Its p99 in the 0 ms runs, where the clients
keep both cores saturated, is checked and printed beside it.
"""

import argparse
import http.client
import os
import statistics
import sys
import threading
import time

import psycopg
import requests
from common import ROOT, free_port, setup_django
from serving import PHONE_NUMBER_ID, load, receipt, seed, send_body, start, stats, wait_until_up

CLIENTS = 64
META_LIKE = {"median_ms": 200, "p99_ms": 800}


class Watch:
    """Background probes while a scenario runs: /v1/health latencies, and this database's sessions."""

    def __init__(self, kirim_port, dsn, database):
        self.kirim_port, self.dsn, self.database = kirim_port, dsn, database
        self.stop = threading.Event()
        self.health_ms, self.sessions, self.idle_in_transaction = [], [], []

    def __enter__(self):
        self.threads = [threading.Thread(target=self._probe_health), threading.Thread(target=self._sample_sessions)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _probe_health(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.kirim_port, timeout=30)
        while not self.stop.wait(0.025):
            started = time.perf_counter()
            try:
                connection.request("GET", "/v1/health")
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.kirim_port, timeout=30)
            self.health_ms.append((time.perf_counter() - started) * 1000)
        connection.close()

    def _sample_sessions(self):
        # Connected to another database of the same server, so the sampler never counts itself.
        with psycopg.connect(self.dsn, dbname="postgres", autocommit=True) as conn:
            while not self.stop.wait(0.02):
                total, idle_in_transaction = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state LIKE 'idle in transaction%%') "
                    # Connections only: autovacuum's workers are listed under the database too.
                    "FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                    [self.database],
                ).fetchone()
                self.sessions.append(total)
                self.idle_in_transaction.append(idle_in_transaction)

    def summary(self):
        health = sorted(self.health_ms)
        return {
            "health_p50": statistics.median(health),
            "health_p99": health[max(0, int(len(health) * 0.99) - 1)],
            "health_max": health[-1],
            "sessions_peak": max(self.sessions),
            "idle_in_transaction_peak": max(self.idle_in_transaction),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per scenario and latency")
    parser.add_argument("--kirim-root", default=str(ROOT), help="the code to serve: another checkout, for a before")
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.db import connection

    from dev.dburl import database_url

    stand_in_port, kirim_port = free_port(), free_port()
    stand_in_url = f"http://127.0.0.1:{stand_in_port}"
    settings.META_GRAPH_URL = f"{stand_in_url}/v23.0"
    # Twice the requests for first reads (one set per latency), and none of them ever read before.
    _, _, key = seed(unread_count=2 * args.requests, outbound_count=0)
    database = connection.settings_dict["NAME"]
    dsn = database_url(connection.settings_dict)
    # Only Kirim's sessions are counted from here on: the seeding connection back to this process's
    # pool, and the pool closed.
    connection.close()
    connection.close_pool()
    env = {
        "DATABASE_URL": dsn,
        "META_GRAPH_URL": settings.META_GRAPH_URL,
        "BIND": f"127.0.0.1:{kirim_port}",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    stand_in = start([sys.executable, "-m", "fakemeta", "--port", str(stand_in_port)])
    kirim = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"], env, cwd=args.kirim_root)
    print(f"{args.kirim_root}: gunicorn as gunicorn.conf.py configures it (WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', 'default')}, "
          f"GUNICORN_THREADS={os.environ.get('GUNICORN_THREADS', 'default')}); {CLIENTS} clients from a separate "
          f"process; {os.cpu_count()} cores; Meta-like latency {META_LIKE}", flush=True)  # fmt: skip
    auth = {"Authorization": f"Bearer {key}"}
    path = f"/v1/{PHONE_NUMBER_ID}/messages"
    n = args.requests
    rows = []
    try:
        wait_until_up(f"{stand_in_url}/_stand_in/requests")
        wait_until_up(f"http://127.0.0.1:{kirim_port}/v1/health")
        for latency_name, latency in (("0 ms", {}), ("200 ms", META_LIKE)):
            requests.post(f"{stand_in_url}/_stand_in/latency", json=latency, timeout=10)
            offset = 0 if not latency else n
            plans = {
                "first read": [{"method": "POST", "path": path, "headers": auth,
                                "body": receipt(f"wamid.LOADi{offset + i}")} for i in range(n)],
                "send text": [{"method": "POST", "path": path,
                               "headers": {**auth, "Idempotency-Key": f"capacity-{latency_name}-{i}"},
                               "body": send_body(f"order {i} shipped")} for i in range(n)],
            }  # fmt: skip
            for name, plan in plans.items():
                with Watch(kirim_port, dsn, database) as watch:
                    measured = stats(load(f"http://127.0.0.1:{kirim_port}", plan, concurrency=CLIENTS))
                rows.append((name, latency_name, measured, watch.summary()))
                print(f"  {name} at {latency_name}: done", flush=True)
    finally:
        kirim.terminate()
        stand_in.terminate()
        kirim.wait()

    print(f"\n{'scenario':12} {'Meta':>6} {'req/s':>6} {'of 0 ms':>7} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'health p50':>10} {'p99':>6} {'max':>6} | {'PG sessions':>11} {'idle in tx':>10}  statuses")  # fmt: skip
    zero_ms = {name: measured["rps"] for name, latency_name, measured, _ in rows if latency_name == "0 ms"}
    for name, latency_name, measured, watch in rows:
        share = measured["rps"] / zero_ms[name]
        print(f"{name:12} {latency_name:>6} {measured['rps']:6.0f} {share:7.0%} {measured['p50']:7.1f} "
              f"{measured['p99']:7.1f} | {watch['health_p50']:10.1f} {watch['health_p99']:6.1f} "
              f"{watch['health_max']:6.1f} | {watch['sessions_peak']:11d} {watch['idle_in_transaction_peak']:10d}  "
              f"{dict(measured['statuses'])}")  # fmt: skip
    goals = {
        "throughput at 200 ms >= 80% of 0 ms": all(
            m["rps"] >= 0.8 * zero_ms[name] for name, latency_name, m, _ in rows if latency_name == "200 ms"
        ),
        "PostgreSQL sessions <= 10": all(w["sessions_peak"] <= 10 for *_, w in rows),
        "/v1/health p99 < 50 ms at 200 ms": all(w["health_p99"] < 50 for _, lat, _, w in rows if lat == "200 ms"),
        # The goal is for Meta's latency; at 0 ms the 64 clients saturate both cores by design.
        "  and at 0 ms too (saturated)": all(w["health_p99"] < 50 for _, lat, _, w in rows if lat == "0 ms"),
        "every answer 200": all(set(m["statuses"]) == {200} for _, _, m, _ in rows),
    }
    print()
    for goal, met in goals.items():
        print(f"  {goal:40} {'ok' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
