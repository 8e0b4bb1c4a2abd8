"""Periodic jobs, run by `manage.py scheduler` on any number of hosts, each once per period.

The guarantee lives in the database, never in a process: a job's row (ScheduledJob) holds the period
last claimed, and a scheduler runs a period only when its conditional UPDATE of that row claimed it.
Periods are counted on the database's clock, so hosts whose clocks drift apart still agree on them. A
run holds a lease: the next period is not claimed while it is still running, unless its scheduler
died (the lease ran out)."""

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from inbox.models import ScheduledJob

logger = logging.getLogger("kirim.scheduler")
SHORTEST_LEASE = timedelta(minutes=10)  # a run longer than its period is not taken for a dead one


@dataclass(frozen=True)
class Job:
    name: str
    seconds: int  # its period; 0 or less: never
    run: Callable[[], object]


def jobs_register(jobs: Iterable[Job]) -> None:
    ScheduledJob.objects.bulk_create([ScheduledJob(name=job.name) for job in jobs], ignore_conflicts=True)


def database_now() -> datetime:
    if connection.vendor != "postgresql":
        return timezone.now()  # SQLite: one host, its own clock
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        moment: datetime = cursor.fetchone()[0]
        return moment


def jobs_run_due(jobs: Iterable[Job], now: datetime | None = None) -> list[str]:
    """Claim and run each job whose current period nobody has claimed yet; the names of those run."""
    now = now or database_now()
    ran = []
    for job in jobs:
        if job.seconds <= 0:
            continue
        period = int(now.timestamp()) // job.seconds
        claim = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        claimable = Q(period__lt=period) & (Q(done=True) | Q(leased_until__lt=now))
        claimed = ScheduledJob.objects.filter(claimable, name=job.name).update(
            period=period, done=False, claim=claim, started_at=now, finished_at=None,
            leased_until=now + max(timedelta(seconds=job.seconds), SHORTEST_LEASE),
        )  # fmt: skip
        if not claimed:
            continue
        logger.info("scheduler: %s runs for period %d (%s)", job.name, period, claim)
        try:
            job.run()
        except Exception:
            logger.exception("scheduler: %s failed; it runs again next period", job.name)
        ScheduledJob.objects.filter(name=job.name, claim=claim).update(done=True, finished_at=database_now())
        ran.append(job.name)
    return ran
