"""Task workers' heartbeats: a thread of the worker process writes its row every
WORKER_HEARTBEAT_INTERVAL seconds, whichever task backend it runs, so any host's readiness and
metrics see it, and a worker killed or wedged without its process (the thread dies with it) goes
silent. A worker that stops in good order removes its row."""

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from outbox.models import WorkerHeartbeat

logger = logging.getLogger("kirim.outbox")

SILENT_BEATS = 3  # a worker this many intervals silent counts as gone
FORGOTTEN_AFTER = timedelta(hours=1)  # rows of workers gone this long are removed: the alert has fired


def silent_after() -> timedelta:
    return timedelta(seconds=settings.WORKER_HEARTBEAT_INTERVAL * SILENT_BEATS)


def beat(name: str, kind: str) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"kind": kind, "beat_at": now})
    WorkerHeartbeat.objects.filter(beat_at__lt=now - FORGOTTEN_AFTER).delete()


def _beat_until(stop: threading.Event, name: str, kind: str) -> None:
    while True:
        try:
            beat(name, kind)
        except DatabaseError as error:  # the database is away: the worker itself waits for it too
            logger.warning("worker heartbeat not written (%s)", type(error).__name__)
        finally:
            connection.close()  # this thread's connection goes back to the pool between beats
        if stop.wait(settings.WORKER_HEARTBEAT_INTERVAL):
            return


@contextmanager
def beating(kind: str) -> Iterator[str]:
    """Beat for this process while the block runs (a worker's whole life)."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    stop = threading.Event()
    thread = threading.Thread(target=_beat_until, args=(stop, name, kind), name="heartbeat", daemon=True)
    thread.start()
    try:
        yield name
    finally:
        stop.set()
        thread.join(timeout=settings.WORKER_HEARTBEAT_INTERVAL)
        try:
            WorkerHeartbeat.objects.filter(name=name).delete()
        except DatabaseError:
            logger.warning("worker heartbeat row left behind: the database is away")
