"""The OpenAPI documents in a fresh process: the first requests arrive together, and all are answered."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings

from core.api import NOT_ONLY_WHITESPACE

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


def test_the_documents_not_only_whitespace_is_what_python_strips():
    """The documents' patterns are read with ECMA-262's `\\s`; the code strips with str.strip()."""
    kept = [c for c in map(chr, range(sys.maxunicode + 1)) if not 0xD800 <= ord(c) <= 0xDFFF]
    assert [c for c in kept if bool(re.fullmatch(NOT_ONLY_WHITESPACE, c)) == c.isspace()] == []
