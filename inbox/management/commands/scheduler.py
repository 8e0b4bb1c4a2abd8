"""`scheduler`: the periodic jobs without the operator's crontab, each once per period however many
hosts run one (inbox/services/scheduler.py says how)."""

import io
import logging
import signal
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, connections

from inbox.models import PhoneNumber
from inbox.services.replies import templates_sync_each
from inbox.services.scheduler import Job, jobs_register, jobs_run_due
from outbox.delivery import ensure_sweeper

logger = logging.getLogger("kirim.scheduler")
DATABASE_LOST_WAIT = 5.0  # seconds before looking again when the database is away


def purge_expired():
    report = io.StringIO()
    call_command("purge_expired", stdout=report)
    logger.info("purge_expired: %s", report.getvalue().strip())


def sync_templates():
    templates_sync_each(PhoneNumber.objects.exclude(waba_id="").order_by("pk"))  # failures are logged there


def scheduled_jobs():
    return [
        Job("purge_expired", settings.SCHEDULE_PURGE_EXPIRED, purge_expired),
        Job("sweeper", settings.SCHEDULE_SWEEPER, ensure_sweeper),
        Job("sync_templates", settings.SCHEDULE_SYNC_TEMPLATES, sync_templates),
    ]


class Command(BaseCommand):
    help = (
        "Run the periodic jobs on their periods (SCHEDULE_PURGE_EXPIRED, SCHEDULE_SWEEPER, "
        "SCHEDULE_SYNC_TEMPLATES): purge_expired, the delivery sweeper's restart and sync_templates, each "
        "once per period however many hosts run a scheduler. SIGTERM stops it after the job it is running."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between looks for due jobs")
        parser.add_argument("--once", action="store_true", help="run what is due now, then exit")

    def handle(self, *, tick, once, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        jobs = scheduled_jobs()
        registered = False
        while not stop.is_set():
            try:
                if not registered:
                    jobs_register(jobs)
                    registered = True
                jobs_run_due(jobs)
            except (OperationalError, InterfaceError) as error:
                logger.warning("scheduler lost the database (%s); looking again in %g s", type(error).__name__,
                               DATABASE_LOST_WAIT)  # fmt: skip
                connections.close_all()
                stop.wait(DATABASE_LOST_WAIT)
                continue
            finally:
                connections.close_all()  # back to the pool (or closed) between looks
            if once:
                return
            stop.wait(tick)
