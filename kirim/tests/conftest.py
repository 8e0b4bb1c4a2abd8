"""Kirim's servers as production runs them, for the tests of this folder: gunicorn on the test
database, the Meta stand-in in a thread, and the task worker with its metrics directory."""

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
import requests
from django.conf import settings

from conftest import free_port
from dev.dburl import database_url
from fakemeta.server import make_server
from kirim.tests.observing import DELIVERY_SETTINGS


@contextmanager
def running_stand_in():
    server = make_server(port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stand_in():
    with running_stand_in() as server:
        yield server


@pytest.fixture
def start_gunicorn(stand_in):
    """Start gunicorn servers on the test database, with settings given as keywords (and its log
    written to the file `log`, when given), answering `health` once started; all stopped at the end.
    `root`: the checkout served (another release's); `port`: the one to bind (a free one by default)."""
    servers = []

    def start(workers=4, log=None, health="/v1/health", root=settings.BASE_DIR, port=None, **settings_env):
        port = port or free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "META_GRAPH_URL": f"{stand_in.url}/v23.0",
            "META_TIMEOUT": "1",
            "META_RETRY_BUDGET": "4",
            "WEB_CONCURRENCY": str(workers),
            "BIND": f"127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
            "META_FORBID_IN_TRANSACTION": "true",
            **settings_env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
        )  # fmt: skip
        servers.append(process)
        url = f"http://127.0.0.1:{port}"
        start.arbiter[url] = process
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}{health}", timeout=1).status_code == 200:
                    return url
            except requests.RequestException:  # not listening yet, or a worker still booting
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    start.arbiter = {}  # url: gunicorn's master process, whose children are the workers
    yield start
    for process in servers:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def metrics_dir(tmp_path):
    path = tmp_path / "metrics"
    path.mkdir()
    return path


@pytest.fixture
def task_worker(metrics_dir):
    """`manage.py db_worker` on the test database, its counts in the metrics directory."""
    processes = []

    def start(log=None, **settings_env):
        env = {
            **os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **DELIVERY_SETTINGS, **settings_env,
        }  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload"],
            cwd=settings.BASE_DIR, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
