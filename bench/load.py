"""`make bench`: Kirim under load the way production runs it. Starts the Meta stand-in and a PostgreSQL-
backed gunicorn (4 workers), drives load from a separate process (bench/loadgen.py), and prints per
scenario requests/s, p50 and p99 latency and queries per request, beside the same requests sent
straight to the stand-in; then a mixed run with the stand-in failing 10% of calls, checked for 500s,
duplicate receipts, duplicate sends and webhooks acknowledged but not stored. Loopback only, bounded.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/load.py
"""

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from collections import Counter

from common import free_port, setup_django
from serving import (
    KIRIM_PORT,
    PHONE_NUMBER_ID,
    STAND_IN_PORT,
    WORKERS,
    gunicorn_env,
    in_turns,
    load,
    queries_per_request,
    receipt,
    seed,
    send_body,
    signed_webhook,
    stand_in_requests,
    start,
    start_stand_in,
    stats,
    statuses_webhook,
    straight_to_stand_in,
    wait_until_up,
)


def scenarios(args, kirims):
    from django.conf import settings

    settings.META_GRAPH_URL = f"http://127.0.0.1:{STAND_IN_PORT}/v23.0"
    n = args.requests
    _, _, key = seed(
        unread_count=n + 1 + ONE_CLIENT_ROUNDS * ONE_CLIENT_PER_ROUND * len(kirims),
        outbound_count=100 * (n // 10) + 100,
    )
    auth = {"Authorization": f"Bearer {key}"}
    path = f"/v1/{PHONE_NUMBER_ID}/messages"
    plans = {
        "first read": [{"method": "POST", "path": path, "headers": auth, "body": receipt(f"wamid.LOADi{i}")}
                       for i in range(n)],
        "read retry": [{"method": "POST", "path": path, "headers": auth, "body": receipt("wamid.LOADi0")}] * n,
        "send text": [{"method": "POST", "path": path, "headers": {**auth, "Idempotency-Key": f"bench-{i}"},
                       "body": send_body(f"order {i} shipped")} for i in range(n)],
        "webhook of 100 statuses": [statuses_webhook(100 * i) for i in range(n // 10)],
    }  # fmt: skip
    direct_bodies = {"first read": receipt("wamid.X"), "read retry": receipt("wamid.X"), "send text": send_body("x"),
                     "webhook of 100 statuses": receipt("wamid.X")}  # fmt: skip
    kirim = f"http://127.0.0.1:{KIRIM_PORT}"
    stand_in = f"http://127.0.0.1:{STAND_IN_PORT}"
    one_client_at_a_time(kirims, stand_in, path, auth, first_unread=n + 1)
    rows = []
    for name, plan in plans.items():
        measured = stats(load(kirim, plan, concurrency=args.concurrency))
        direct_plan = [straight_to_stand_in(direct_bodies[name])] * len(plan)
        direct = stats(load(stand_in, direct_plan, concurrency=args.concurrency))
        sample = dict(plan[-1])
        if name == "first read":
            sample["body"] = receipt(f"wamid.LOADi{n}")  # one not yet read, as the scenario's were
        if name == "send text":
            sample["headers"] = {**auth, "Idempotency-Key": "bench-sample"}
        if name == "webhook of 100 statuses":
            sample = statuses_webhook(100 * (n // 10))
        rows.append((name, measured, direct, queries_per_request(key, sample)))

    print(f"\n{'scenario':26} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'queries':>7} | "
          f"{'direct req/s':>12} {'p50':>6} {'p99':>6} | {'p50 ratio':>9} {'p50 overhead':>12}  statuses")  # fmt: skip
    for name, measured, direct, queries in rows:
        print(f"{name:26} {measured['rps']:7.0f} {measured['p50']:7.1f} {measured['p99']:7.1f} {queries:7d} | "
              f"{direct['rps']:12.0f} {direct['p50']:6.1f} {direct['p99']:6.1f} | "
              f"{measured['p50'] / direct['p50']:9.2f} {measured['p50'] - direct['p50']:9.1f} ms  "
              f"{dict(measured['statuses'])}")  # fmt: skip
    if "before" in kirims:
        retries_in_turns(kirims, plans["read retry"], args.concurrency)


ONE_CLIENT_ROUNDS, ONE_CLIENT_PER_ROUND = 10, 100


def one_client_at_a_time(kirims, stand_in, path, auth, first_unread):
    """p50 latencies with one request in flight, the overhead of a read receipt over the stand-in, on
    a quiet system: before the loaded scenarios, whose dead rows and autovacuum would be measured too.
    Rounds of each kind take turns, so that the machine's drift during the run lands on all alike; with
    a before served beside (--before), the two servers too, each going first in every other round."""
    direct = straight_to_stand_in(receipt("wamid.X"))
    retry = {"method": "POST", "path": path, "headers": auth, "body": receipt(f"wamid.LOADi{first_unread}")}
    for kirim in kirims.values():
        load(kirim, [retry], concurrency=1)  # read once: every timed request after it is a retry
    unread = itertools.count(first_unread + 1)
    latencies = {"straight to the stand-in": []}
    for round_ in range(ONE_CLIENT_ROUNDS):
        latencies["straight to the stand-in"] += [
            ms for _, ms in load(stand_in, [direct] * ONE_CLIENT_PER_ROUND, concurrency=1)["results"]
        ]
        for name, kirim in in_turns(kirims, round_):
            first_reads = [{"method": "POST", "path": path, "headers": auth, "body": receipt(f"wamid.LOADi{next(unread)}")}
                           for _ in range(ONE_CLIENT_PER_ROUND)]  # fmt: skip
            for kind, plan in (("read retry", [retry] * ONE_CLIENT_PER_ROUND), ("first read", first_reads)):
                latencies.setdefault((kind, name), []).extend(
                    ms for _, ms in load(kirim, plan, concurrency=1)["results"]
                )
    p50 = {key: statistics.median(values) for key, values in latencies.items()}
    baseline = p50["straight to the stand-in"]
    print(f"\none client at a time, {ONE_CLIENT_ROUNDS} rounds of {ONE_CLIENT_PER_ROUND} each taking turns: "
          f"straight to the stand-in p50 {baseline:.2f} ms")  # fmt: skip
    for kind, label in (("read retry", "read retry (no Meta call)"), ("first read", "first read (calls Meta)")):
        for name in kirims:
            ms = p50[kind, name]
            print(f"  {label:27} {name:6} p50 {ms:5.2f} ms  overhead {ms - baseline:5.2f} ms")
        if "before" in kirims:
            after, before = p50[kind, "after"], p50[kind, "before"]
            print(f"  {label:27} after/before: p50 {after / before:.2f}x, overhead "
                  f"{(after - baseline) / (before - baseline):.2f}x")  # fmt: skip


LOADED_ROUNDS = 6


def retries_in_turns(kirims, plan, concurrency):
    """The read retry under load, after and before taking turns: the same plan for both (the loaded
    first reads have read its message), so their throughput compares round by round."""
    runs = {name: [] for name in kirims}
    for round_ in range(LOADED_ROUNDS):
        for name, kirim in in_turns(kirims, round_):
            runs[name].append(stats(load(kirim, plan, concurrency=concurrency)))
    medians = {
        name: {key: statistics.median(run[key] for run in measured) for key in ("rps", "p50")}
        for name, measured in runs.items()
    }
    print(f"\nread retry with {concurrency} connections, {LOADED_ROUNDS} rounds of {len(plan)} taking turns (medians)")
    for name, measured in medians.items():
        print(f"  {name:6} {measured['rps']:7.0f} req/s  p50 {measured['p50']:6.1f} ms")
    after, before = medians["after"], medians["before"]
    print(f"  after/before: throughput {after['rps'] / before['rps']:.2f}x, p50 {after['p50'] / before['p50']:.2f}x")


def mixed(args):
    """Everything at once with Meta failing 10% of calls; then count what must never happen."""
    from fakemeta import payloads
    from inbox.models import Message, WebhookEvent

    _, _, key = seed(unread_count=300, outbound_count=0)
    auth = {"Authorization": f"Bearer {key}"}
    path = f"/v1/{PHONE_NUMBER_ID}/messages"
    events_before = WebhookEvent.objects.count()
    plan = []
    for i in range(300):  # every unread message gets 1 to 4 concurrent receipts
        plan += [{"method": "POST", "path": path, "headers": auth, "body": receipt(f"wamid.LOADi{i}")}] * (1 + i % 4)
    for i in range(300):  # sends, each key sent up to three times
        spec = {"method": "POST", "path": path, "headers": {**auth, "Idempotency-Key": f"mixed-{i}"},
                "body": send_body(f"mixed send {i}")}  # fmt: skip
        plan += [spec] * (1 + i % 3)
    for i in range(300):  # inbound messages by webhook; every fifth delivered twice, as Meta may
        hook = signed_webhook(payloads.webhook(PHONE_NUMBER_ID, contacts=[payloads.contact(f"62822{i:07d}", "Load")],
                              messages=[payloads.text_message(f"wamid.MIXEDIN{i}", f"62822{i:07d}", "hi")]))  # fmt: skip
        plan += [hook] * (2 if i % 5 == 0 else 1)
    random.Random(11).shuffle(plan)
    began = time.monotonic()
    run = load(f"http://127.0.0.1:{KIRIM_PORT}", plan, concurrency=args.concurrency, deadline_s=args.mixed_seconds)
    elapsed = time.monotonic() - began
    outcomes = [(spec, result) for spec, result in zip(plan, run["results"], strict=True) if result is not None]
    recorded = stand_in_requests()

    accepted = Counter(r["body"].get("message_id") for r in recorded
                       if r["answered"] == 200 and r["body"].get("status") == "read")  # fmt: skip
    sends = Counter(r["body"]["text"]["body"] for r in recorded if r["answered"] == 200 and r["body"].get("type"))
    webhooks_acked = sum(1 for spec, (status, _) in outcomes if spec["path"] == "/webhooks/whatsapp" and status == 200)
    webhooks_stored = WebhookEvent.objects.count() - events_before
    inbound_stored = Message.objects.filter(wamid__startswith="wamid.MIXEDIN").count()
    statuses = Counter(status for _, (status, _) in outcomes)
    checks = {
        "HTTP 500 answers": statuses.get(500, 0),
        "duplicate Meta receipts for one message": sum(n - 1 for n in accepted.values() if n > 1),
        "duplicate sends for one idempotency key": sum(n - 1 for n in sends.values() if n > 1),
        "webhooks acknowledged but not stored": webhooks_acked - webhooks_stored,
        "connection errors": statuses.get(0, 0),
    }
    print(f"\nmixed load: {len(outcomes)}/{len(plan)} requests in {elapsed:.1f}s with {args.concurrency} clients, "
          f"Meta failing 10% of {len(recorded)} calls; answers {dict(sorted(statuses.items()))}")  # fmt: skip
    print(f"  inbound messages stored {inbound_stored} of 300 distinct wamids; receipts accepted by Meta "
          f"{len(accepted)} of 300 messages; sends accepted {len(sends)} of 300 keys")  # fmt: skip
    for name, value in checks.items():
        print(f"  {name:44} {value:5d}  {'ok' if value == 0 else 'FAIL'}")
    return all(value == 0 for value in checks.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per scenario")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mixed-seconds", type=int, default=120, help="deadline of the mixed run")
    parser.add_argument("--before", metavar="CHECKOUT", help="another checkout of Kirim (same schema), served beside "
                        "this one: the one-client rounds take turns between the two and print after/before")  # fmt: skip
    args = parser.parse_args()
    setup_django()
    env = gunicorn_env()
    print(
        f"gunicorn: {WORKERS} workers x 4 threads; load from a separate process with {args.concurrency} "
        f"connections; {os.cpu_count()} cores",
        flush=True,
    )
    stand_in = start_stand_in()
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"]
    servers = {"after" if args.before else "kirim": (start(gunicorn, env), KIRIM_PORT)}
    if args.before:
        before_port = free_port()
        servers["before"] = (start(gunicorn, {**env, "BIND": f"127.0.0.1:{before_port}"}, cwd=args.before), before_port)
    try:
        for _, port in servers.values():
            wait_until_up(f"http://127.0.0.1:{port}/v1/health")
        scenarios(args, {name: f"http://127.0.0.1:{port}" for name, (_, port) in servers.items()})
        stand_in.terminate()
        stand_in.wait()
        stand_in = start_stand_in(fail_rate=0.1)
        passed = mixed(args)
    finally:
        for process, _ in servers.values():
            process.terminate()
        stand_in.terminate()
        for process, _ in servers.values():
            process.wait()
    if not passed:
        raise SystemExit("mixed load: a check failed")


if __name__ == "__main__":
    main()
