"""What metrics cost: the same requests to two gunicorn servers on the same PostgreSQL, one counting
(METRICS_ENABLED, the multiprocess files) and one not, in the same run. A read retry (no Meta call)
and a signed single-message Meta webhook, one request in flight, the servers taking turns request by
request in alternating order, so that the machine's drift lands on both alike. Prints each one's p50
and the ratio. Goal: metrics on costs at most 5% more. Loopback only, bounded.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/metrics_cost.py
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

import requests
from common import fresh_org, setup_django
from ingest import PHONE_NUMBER_ID as INGEST_NUMBER
from ingest import webhooks
from serving import PHONE_NUMBER_ID, gunicorn_env, receipt, seed, start, wait_until_up

WORKERS, THREADS = 2, 4
KINDS = ("read retry", "webhook")
GOAL = 1.05


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server(metrics_on, metrics_dir):
    port = free_port()
    env = {**gunicorn_env(), "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(WORKERS),
           "GUNICORN_THREADS": str(THREADS), "METRICS_ENABLED": str(metrics_on).lower(),
           "PROMETHEUS_MULTIPROC_DIR": metrics_dir}  # fmt: skip
    process = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"], env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/v1/health")
    return process, url


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500, help="requests of each kind to each server, each round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--control", action="store_true", help="both servers with metrics off: the bench's own bias")
    args = parser.parse_args()
    # This process counts as a gunicorn worker does (the client's mode is chosen when it is imported),
    # with production's settings.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kirim-bench-metrics-")
    os.environ.update(DEBUG="false", SECURE_SSL_REDIRECT="false", ALLOWED_HOSTS="localhost,127.0.0.1")
    setup_django()
    from django.conf import settings
    from django.utils import timezone

    from inbox.models import Message, Status

    fresh_org("bench-ingest", [INGEST_NUMBER])
    _, _, key = seed(unread_count=1, outbound_count=0)
    Message.objects.filter(wamid="wamid.LOADi0").update(status=Status.READ, read_at=timezone.now())  # retries only
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    retry_path = f"/v1/{PHONE_NUMBER_ID}/messages"
    retry_body = receipt("wamid.LOADi0")
    print(f"{os.cpu_count()} cores; gunicorn {WORKERS} workers x {THREADS} threads each; one client; "
          f"{args.rounds} rounds of {args.turns} requests of each kind to each server, taking turns; "
          f"fresh servers each round, the one counting started first in every other round"
          + ("; CONTROL: both servers with metrics off" if args.control else ""))  # fmt: skip
    latencies = {(metrics_on, kind): [] for metrics_on in (True, False) for kind in KINDS}
    for round_number in range(args.rounds):
        prefix = f"METRICS.{round_number}.{time.time_ns()}."
        hooks = {on: webhooks(f"{prefix}{int(on)}.", args.turns + 20, settings.META_APP_SECRET) for on in (True, False)}
        with tempfile.TemporaryDirectory() as on_dir, tempfile.TemporaryDirectory() as off_dir:
            started_first = (True, False) if round_number % 2 == 0 else (False, True)
            servers = {
                metrics_on: server(metrics_on and not args.control, on_dir if metrics_on else off_dir)
                for metrics_on in started_first
            }
            try:
                measured = run(servers, hooks, auth, retry_path, retry_body, args.turns)
            finally:
                for process, _ in servers.values():
                    process.terminate()
                    process.wait()
        ratios = "   ".join(
            f"{kind} {statistics.median(measured[(True, kind)]) / statistics.median(measured[(False, kind)]):.3f}"
            for kind in KINDS
        )
        print(f"  round {round_number + 1}: ratios {ratios}")
        for key, values in measured.items():
            latencies[key] += values
    report("over HTTP, all rounds:", latencies)
    report("in process, metrics on and off request by request:",
           in_process(auth, retry_path, retry_body, args.turns * 2, settings.META_APP_SECRET))  # fmt: skip
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def report(title, latencies):
    print(title)
    for kind in KINDS:
        on, off = (statistics.median(latencies[(metrics_on, kind)]) for metrics_on in (True, False))
        print(f"  {kind:10}  metrics off p50 {off:6.3f} ms   on p50 {on:6.3f} ms   ratio {on / off:5.3f}  "
              f"{'ok' if on / off <= GOAL else 'OVER 5%'}")  # fmt: skip


def in_process(auth, retry_path, retry_body, turns, app_secret):
    """The same requests in this process, free of HTTP and of two servers' luck on a busy machine: the
    read retry through Django's handler, the webhook through the WSGI application as production serves
    it (Meta's deliveries in front of Django), metrics switched on and off request by request."""
    from django.conf import settings
    from django.test import RequestFactory

    from kirim.wsgi import application

    factory = RequestFactory(HTTP_HOST="localhost")
    hooks = webhooks(f"INPROCESS.{time.time_ns()}.", 2 * turns + 40, app_secret)
    headers = {name.lower(): value for name, value in auth.items() if name != "Content-Type"}

    def retry():
        return factory.post(retry_path, json.dumps(retry_body), content_type="application/json", headers=headers)

    def webhook(spec):
        return factory.post(spec["path"], spec["body"], content_type="application/json", headers=spec["headers"])

    def answer(request):
        started = time.perf_counter()
        statuses = []
        body = application(request.environ, lambda status, response_headers: statuses.append(status))
        b"".join(body)
        body.close()
        spent = (time.perf_counter() - started) * 1000
        assert statuses[0].startswith("200"), statuses
        return spent

    latencies = {(metrics_on, kind): [] for metrics_on in (True, False) for kind in KINDS}
    for turn in range(-20, turns):  # 20 turns of warming up, not counted
        for n, metrics_on in enumerate((True, False) if turn % 2 == 0 else (False, True)):
            settings.METRICS_ENABLED = metrics_on
            spent = answer(retry()), answer(webhook(hooks[40 + 2 * turn + n]))
            if turn >= 0:
                latencies[(metrics_on, "read retry")].append(spent[0])
                latencies[(metrics_on, "webhook")].append(spent[1])
    settings.METRICS_ENABLED = True
    return latencies


def run(servers, hooks, auth, retry_path, retry_body, turns):
    session = requests.Session()
    for _, url in servers.values():  # both warmed up
        for _ in range(20):
            assert session.post(f"{url}{retry_path}", json=retry_body, headers=auth, timeout=10).status_code == 200
    for metrics_on in servers:
        for spec in hooks[metrics_on][:20]:
            post_webhook(session, servers[metrics_on][1], spec)
    latencies = {(metrics_on, kind): [] for metrics_on in servers for kind in KINDS}
    for turn in range(turns):
        order = (True, False) if turn % 2 == 0 else (False, True)
        for metrics_on in order:
            url = servers[metrics_on][1]
            started = time.perf_counter()
            answer = session.post(f"{url}{retry_path}", json=retry_body, headers=auth, timeout=10)
            latencies[(metrics_on, "read retry")].append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            started = time.perf_counter()
            post_webhook(session, url, hooks[metrics_on][20 + turn])
            latencies[(metrics_on, "webhook")].append((time.perf_counter() - started) * 1000)
    return latencies


def post_webhook(session, url, spec):
    answer = session.post(f"{url}{spec['path']}", data=spec["body"].encode(),
                          headers={**spec["headers"], "Content-Type": "application/json"}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text


if __name__ == "__main__":
    main()
