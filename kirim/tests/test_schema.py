"""The OpenAPI documents in a fresh process: the first requests arrive together, and all are answered."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

FIRST_REQUESTS_AT_ONCE = """
import json, sys, threading
import django
django.setup()
from django.test import Client

barrier = threading.Barrier(16)
statuses = []

def first_request():
    barrier.wait()
    statuses.append(Client().get(sys.argv[1]).status_code)

threads = [threading.Thread(target=first_request) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(statuses))
"""


@pytest.mark.parametrize("path", ["/v1/openapi.json", "/v1/graph/openapi.json"])
def test_sixteen_concurrent_first_requests_all_get_the_schema(path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kirim.settings",
        "ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "CRITICAL",
    }
    for _ in range(3):  # each a fresh process, as a worker after a start or a restart
        run = subprocess.run(
            [sys.executable, "-c", FIRST_REQUESTS_AT_ONCE, path],
            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert json.loads(run.stdout.splitlines()[-1]) == [200] * 16
