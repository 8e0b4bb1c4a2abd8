"""`rqworker`: django-rq's RQ worker, beating (outbox/heartbeat.py) and, with WORKER_METRICS_PORT,
serving its counts, as `db_worker` does: readiness and the metrics see RQ's workers too.

It runs each job in itself (RQ's SimpleWorker) unless told otherwise: the heartbeat's thread opens the
process's connection pool, and a job in a forked child would inherit that pool without the threads
that fill it, and wait on it forever."""

from typing import Any

from django_rq.management.commands import rqworker

from core.metrics import serve_for_worker
from outbox.heartbeat import beating

NOT_FORKING = "rq.worker.SimpleWorker"


class Command(rqworker.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        options["worker_class"] = options.get("worker_class") or NOT_FORKING
        serve_for_worker()
        with beating("rq"):
            super().handle(*args, **options)
