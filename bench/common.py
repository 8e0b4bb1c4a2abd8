"""Shared by the benchmarks: Django set up against the PostgreSQL named by DATABASE_URL, and timing."""

import logging
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kirim.settings")


def free_port():
    """A port nothing listens on now: fixed ones may be held by another run's servers on this machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def setup_django():
    import django
    from django.db import connection

    django.setup()
    # A log line per request or per conversation would be measured too, and drown the results.
    logging.disable(logging.INFO)
    if connection.vendor != "postgresql":
        sys.exit("Benchmarks run on PostgreSQL: set DATABASE_URL=postgres://... (a database they may fill).")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(function, runs):
    """Median and p95 wall time of `function()` in milliseconds over `runs` calls, after one warm-up."""
    function()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def fresh_org(slug, phone_number_ids, **fields):
    """The bench org `slug` anew (its old data deleted), with a number per id."""
    from inbox.models import Org, PhoneNumber

    Org.objects.filter(slug=slug).delete()
    org = Org.objects.create(name=slug, slug=slug, **fields)
    numbers = [
        PhoneNumber.objects.create(org=org, phone_number_id=pid, display_phone_number=f"+{pid}", access_token="bench")
        for pid in phone_number_ids
    ]
    return org, numbers
