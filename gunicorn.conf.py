"""Production serving: `gunicorn -c gunicorn.conf.py kirim.wsgi`. Every knob is an environment variable.

Threaded workers (gthread): a request waiting on Meta holds a thread, not a whole process, and no
database connection. Nothing is kept in process memory that more workers or hosts would break:
claims, idempotency keys and rate-limit counters all live in the database."""

import os
import shutil
import tempfile

bind = os.environ.get("BIND", "0.0.0.0:8000")
# A worker per core (and one spare) runs Python; threads are what wait. A request waiting on Meta (100
# to 500 ms, seconds when it is slow) holds a thread but no database connection (DB_POOL_SIZE per
# worker): threads enough for every request in flight at Meta's slowest keep /v1/health and already-
# read retries from queueing behind them. Sizing rule: docs/operations/deploy-and-sizing.md.
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
# gunicorn's gthread worker, answering what gunicorn refuses itself in JSON and logging none of the
# request with it (core/serving.py).
worker_class = "core.serving.Worker"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# A worker takes no more connections than it has threads. Kept-alive connections spread unevenly
# over the workers: one holding more than its threads queued requests (/v1/health among them, 86-171
# ms at p50 in bench/capacity.py) while another had threads free. Past the cap a connection waits in
# the listen backlog for whichever worker has room. gthread keeps alive only the connections past its
# threads, so none is kept alive between requests (gunicorn warns so at start): each request comes on
# a connection of its own, and a proxy in front keeps its own to clients.
worker_connections = threads
# Longer than a Meta call with its retries (META_RETRY_BUDGET), so gunicorn never kills one midway.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5  # not between requests (above): how long a new connection may wait to send its first
max_requests = 10_000  # recycle workers now and then, staggered
max_requests_jitter = 1_000
# The workers' heartbeat touches a file on every loop; on a disk-backed /tmp that costs each request
# ~0.3 ms of the thread that hands requests out (measured with py-spy). Memory-backed where there is one.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Above Kirim's own limits (core/middleware.py: a 4094-byte URL, 100 headers of 8190 bytes), so a
# request a little over those is answered by Kirim in its surface's envelope; past these, by the worker.
limit_request_line = 8190  # gunicorn's largest
limit_request_fields = 200
limit_request_field_size = 16380
accesslog = None  # kirim.requests writes one JSON line per request instead
errorlog = "-"
# gunicorn's own lines (booting, a worker's exit, what kirim.serving refuses) in Kirim's JSON format.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logs.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": False,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": False,
            "qualname": "gunicorn.access",
        },
    },
}
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Metrics (core/metrics.py): every worker writes its counts to files here, and a scrape answered by any
# worker sums them all. Task workers on this host given the same directory are summed too. Without one
# set, a directory of this server's own, removed when it stops. Set before any worker imports the client.
OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kirim-metrics-", dir=worker_tmp_dir)


def on_starting(server):
    # The counts of processes gone before this start: counters begin again from 0, as after any restart.
    from core.metrics_files import remove_dead_processes_files

    remove_dead_processes_files(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker):
    # The dead worker's live gauges (pool connections in use) stop counting; its counters stay summed.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
