"""`rqworker`: django-rq's RQ worker, beating (outbox/heartbeat.py) and, with WORKER_METRICS_PORT,
serving its counts, as `db_worker` does: readiness and the metrics see RQ's workers too."""

from django_rq.management.commands import rqworker

from core.metrics import serve_for_worker
from outbox.heartbeat import beating


class Command(rqworker.Command):
    def handle(self, *args, **options):
        serve_for_worker()
        with beating("rq"):
            return super().handle(*args, **options)
