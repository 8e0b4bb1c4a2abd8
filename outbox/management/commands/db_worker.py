"""`db_worker`: django-tasks-db's worker, which goes on through a database restart or failover.

Theirs stops at the first database error outside a task, and a task's failure path writes to the
database too, so a restart under load ended most workers (and left their task rows RUNNING: the
sweeper marks those failed and frees their deliveries). This one closes its connections, waits
(1 s, doubling to 30 s while the database stays away) and starts the worker again, same worker id,
unless it was told to stop (SIGTERM, SIGINT) before the database went: then it stops.
All along, the process beats (outbox/heartbeat.py) and, with WORKER_METRICS_PORT, serves its counts."""

import logging
import signal
import time
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from django_tasks_db.management.commands import db_worker
from django_tasks_db.management.commands.db_worker import Worker

from core.metrics import serve_for_worker
from outbox.heartbeat import beating

logger = logging.getLogger("kirim.outbox")
FIRST_WAIT, LONGEST_WAIT = 1.0, 30.0  # seconds


class Command(db_worker.Command):
    help = "Run the task worker (django-tasks-db's), started again whenever it loses the database"

    def handle(self, *args: Any, **options: Any) -> None:
        serve_for_worker()
        with beating("db"):
            return self._run(*args, **options)

    def _run(self, *args: Any, **options: Any) -> None:
        wait = FIRST_WAIT
        while True:
            started = time.monotonic()
            try:
                return super().handle(*args, **options)
            except (OperationalError, InterfaceError) as error:
                if _stop_requested():
                    logger.warning("task worker stopping as told; the database is away (%s)", type(error).__name__)
                    return None
                if time.monotonic() - started > LONGEST_WAIT:
                    wait = FIRST_WAIT  # it had been working: the database went away just now
                logger.warning("task worker lost the database (%s); starting again in %g s", type(error).__name__, wait)
                connections.close_all()
                time.sleep(wait)  # a SIGTERM meanwhile reaches the last worker's handler
                if _stop_requested():
                    return None
                wait = min(wait * 2, LONGEST_WAIT)


def _stop_requested() -> bool:
    """Whether the last worker was told to stop: its signal handler, still installed, is its bound
    `shutdown`, which clears `running` (and exits at once when no task is under way)."""
    worker = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return isinstance(worker, Worker) and not worker.running
