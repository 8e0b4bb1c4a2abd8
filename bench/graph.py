"""The overhead of Meta's own API at Kirim (/{version}/...) over /v1/, in the same run: p50 latency of a
read retry (no Meta call) and of a send (one call to the stand-in), one request in flight. The four
kinds take turns request by request, in alternating order, so that the machine's drift and any
ordering effect land on all alike. Goal: under 10%. Loopback only.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/graph.py
"""

import json
import os
import statistics
import sys
import time

from common import setup_django
from serving import (
    KIRIM_PORT,
    PHONE_NUMBER_ID,
    WORKERS,
    gunicorn_env,
    load,
    receipt,
    seed,
    send_body,
    start,
    start_stand_in,
    wait_until_up,
)

TURNS = 500  # requests of each kind
OPERATIONS = ("read retry", "send")
SURFACES = {"/v1/": f"/v1/{PHONE_NUMBER_ID}/messages", "/v23.0/": f"/v23.0/{PHONE_NUMBER_ID}/messages"}


def interleaved_plan(auth):
    """Each kind (operation, surface) TURNS times, taking turns: v1 first on even turns, graph first on
    odd ones. The first request reads the message: every receipt after it is a retry."""
    read = receipt("wamid.LOADi0")
    kinds = {
        (operation, surface): {"method": "POST", "path": path, "headers": auth, "body": body}
        for surface, path in SURFACES.items()
        for operation, body in (("read retry", read), ("send", send_body("bench")))
    }
    order = list(kinds)
    plan = [(None, kinds[("read retry", "/v1/")])]
    for turn in range(TURNS):
        plan += [(kind, kinds[kind]) for kind in (order if turn % 2 == 0 else order[::-1])]
    return plan


def report(title, plan, results):
    latencies = {}
    for (kind, spec), (status, ms) in zip(plan, results, strict=True):
        assert status == 200, f"{spec['path']} answered {status}"
        if kind is not None:
            latencies.setdefault(kind, []).append(ms)
    p50 = {kind: statistics.median(values) for kind, values in latencies.items()}
    print(title)
    for operation in OPERATIONS:
        v1, graph = p50[(operation, "/v1/")], p50[(operation, "/v23.0/")]
        print(f"  {operation:10}  /v1/ p50 {v1:5.2f} ms   /v23.0/ p50 {graph:5.2f} ms   "
              f"overhead {graph / v1 - 1:+6.1%}  {'ok' if graph / v1 < 1.10 else 'OVER 10%'}")  # fmt: skip


def in_process(plan):
    """The same plan through Django's test client: Kirim's own time per request, without HTTP."""
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    results = []
    for _, spec in plan:
        started = time.perf_counter()
        response = client.post(spec["path"], json.dumps(spec["body"]), content_type="application/json",
                               headers=spec["headers"])  # fmt: skip
        results.append((response.status_code, (time.perf_counter() - started) * 1000))
    return results


def main():
    setup_django()
    from django.conf import settings

    env = gunicorn_env()
    settings.META_GRAPH_URL = env["META_GRAPH_URL"]  # the in-process run's sends go to the stand-in too
    stand_in = start_stand_in()
    kirim = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"], env)
    print(f"{os.cpu_count()} cores; one client; {TURNS} requests of each kind taking turns")
    try:
        wait_until_up(f"http://127.0.0.1:{KIRIM_PORT}/v1/health")
        _, _, key = seed(unread_count=1, outbound_count=0)
        plan = interleaved_plan({"Authorization": f"Bearer {key}"})
        over_http = load(f"http://127.0.0.1:{KIRIM_PORT}", [spec for _, spec in plan], concurrency=1, deadline_s=600)
        report(f"over HTTP, gunicorn with {WORKERS} workers:", plan, over_http["results"])
        _, _, key = seed(unread_count=1, outbound_count=0)
        plan = interleaved_plan({"Authorization": f"Bearer {key}"})
        report("in process (Django's test client, no HTTP):", plan, in_process(plan))
    finally:
        kirim.terminate()
        stand_in.terminate()
        kirim.wait()


if __name__ == "__main__":
    main()
